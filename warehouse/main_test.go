package warehouse

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/internal/testenv"
)

// chdbDataDir is the embedded engine's data directory, shared by every
// test in this process (each test uses its own database in it).
var chdbDataDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "loopgate-warehouse-chdb-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	chdbDataDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testBackend is one way to run the integration tests.
type testBackend struct {
	name    string
	backend string
	profile string
}

// testBackends are the backends every integration test runs on: the
// server (whatever version it is; 18.16 locally and in CI) and the embedded
// engine with both profiles, so the legacy DDL is also exercised on a
// modern engine.
var testBackends = []testBackend{
	{"server", BackendServer, ProfileAuto},
	{"embedded", BackendEmbedded, ProfileAuto},
	{"embedded_legacy", BackendEmbedded, ProfileLegacy},
}

// forEachBackend runs f as a subtest per backend.
func forEachBackend(t *testing.T, f func(t *testing.T, tb testBackend)) {
	for _, tb := range testBackends {
		t.Run(tb.name, func(t *testing.T) { f(t, tb) })
	}
}

// testConfig is the config for tb with a fresh database; it skips (or
// fails under CI) when the backend's service is missing.
func testConfig(t testing.TB, tb testBackend) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Backend = tb.backend
	cfg.Profile = tb.profile
	// eventtest's outcomes are dated 2026-01-01: keep the TTL clauses but
	// far enough out that they do not expire the test data on insert.
	cfg.RawRetentionDays, cfg.RollupRetentionDays, cfg.FineRetentionDays = 3650, 3650, 3650
	switch tb.backend {
	case BackendServer:
		cfg.Addr = testenv.ClickHouse(t)
	case BackendEmbedded:
		cfg.LibPath = testenv.ChdbLib(t)
		cfg.DataDir = chdbDataDir
	}
	var b [6]byte
	rand.Read(b[:])
	cfg.Database = "loopgate_test_" + hex.EncodeToString(b[:])
	return cfg
}

// openStore opens a Store for cfg, closed at the end of the test.
func openStore(t testing.TB, cfg Config) *Store {
	t.Helper()
	s, err := Open(context.Background(), cfg, deps.Deps{Registerer: prometheus.NewRegistry()})
	if err != nil {
		// A failed migration leaves the database behind on the server (the
		// embedded one lives in a temporary directory).
		if cfg.Backend == BackendServer {
			if b, err := openServer(context.Background(), cfg, time.Now); err == nil {
				b.exec(context.Background(), "DROP DATABASE IF EXISTS "+cfg.Database)
				b.close()
			}
		}
		t.Fatalf("open %s store: %v", cfg.Backend, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// newStore opens a Store on a fresh database, dropped and closed after the
// test.
func newStore(t testing.TB, tb testBackend) *Store {
	t.Helper()
	s := openStore(t, testConfig(t, tb))
	t.Cleanup(func() { dropDatabase(t, s) })
	return s
}

// dropDatabase removes a test database (before the store closes: cleanups
// run last-in first-out).
func dropDatabase(t testing.TB, s *Store) {
	t.Helper()
	if err := s.b.exec(context.Background(), "DROP DATABASE IF EXISTS "+s.Database()); err != nil {
		t.Errorf("drop database %s: %v", s.Database(), err)
	}
}

// queryInt runs a query returning one integer.
func queryInt(t testing.TB, s *Store, sql string) int64 {
	t.Helper()
	rows, err := s.Query(context.Background(), sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	if rows.Len() != 1 || len(rows.Columns) != 1 {
		t.Fatalf("%s: got %d rows × %d columns, want 1 × 1", sql, rows.Len(), len(rows.Columns))
	}
	switch v := rows.Values[0][0].(type) {
	case int64:
		return v
	case uint64:
		return int64(v)
	}
	t.Fatalf("%s: got %T %v, want an integer", sql, rows.Values[0][0], rows.Values[0][0])
	return 0
}
