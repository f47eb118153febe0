package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/event/eventtest"
	"github.com/loopgate/loopgate/eventlog"
	"github.com/loopgate/loopgate/ingest"
	"github.com/loopgate/loopgate/internal/testenv"
	"github.com/loopgate/loopgate/warehouse"
)

// chdbDir is the embedded engine's data directory for this test process.
var chdbDir string

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	dir, err := os.MkdirTemp("", "loopgate-e2e-chdb-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	chdbDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func logger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

func suffix() string {
	var b [5]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// broker is a Kafka to run a path on.
type broker struct {
	name    string
	brokers func(t testing.TB) []string
}

var brokers = []broker{
	{"kafka", func(t testing.TB) []string { return []string{testenv.Kafka(t)} }},
	{"embedded", func(t testing.TB) []string {
		cfg := eventlog.DefaultEmbeddedConfig()
		cfg.DataDir = t.TempDir()
		emb, err := eventlog.StartEmbedded(t.Context(), cfg, deps.Deps{Logger: logger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { emb.Close() })
		return emb.Brokers()
	}},
}

// backend is a warehouse to run a path on.
type backend struct {
	name   string
	config func(t testing.TB) warehouse.Config
}

var backends = []backend{
	{"server", func(t testing.TB) warehouse.Config {
		cfg := warehouse.DefaultConfig()
		cfg.Backend, cfg.Addr = warehouse.BackendServer, testenv.ClickHouse(t)
		return cfg
	}},
	{"embedded", func(t testing.TB) warehouse.Config {
		cfg := warehouse.DefaultConfig()
		cfg.Backend, cfg.LibPath, cfg.DataDir = warehouse.BackendEmbedded, testenv.ChdbLib(t), chdbDir
		return cfg
	}},
}

// openStore opens a warehouse with a fresh database, dropped at the end.
// eventtest's outcomes are dated 2026-01-01, so retention is set far enough
// out that the TTL does not drop them on insert.
func openStore(t testing.TB, cfg warehouse.Config) *warehouse.Store {
	t.Helper()
	if cfg.Database == warehouse.DefaultConfig().Database {
		cfg.Database = "loopgate_e2e_" + suffix()
	}
	cfg.RawRetentionDays, cfg.RollupRetentionDays, cfg.FineRetentionDays = 3650, 3650, 3650
	st, err := warehouse.Open(context.Background(), cfg, deps.Deps{Logger: logger(t)})
	if err != nil {
		t.Fatalf("open %s warehouse: %v", cfg.Backend, err)
	}
	t.Cleanup(func() {
		st.Query(context.Background(), "DROP DATABASE IF EXISTS "+cfg.Database)
		st.Close()
	})
	return st
}

// topics creates a fresh set of topics for one test.
func topics(t testing.TB, brokers []string) eventlog.TopicsConfig {
	t.Helper()
	return topicsWith(t, brokers, eventlog.Security{})
}

// topicsWith is topics on brokers reached with sec.
func topicsWith(t testing.TB, brokers []string, sec eventlog.Security) eventlog.TopicsConfig {
	t.Helper()
	s := suffix()
	tc := eventlog.DefaultTopicsConfig()
	tc.Security = sec
	tc.Outcomes, tc.Policy, tc.DLQ = "e2e.outcomes."+s, "e2e.policy."+s, "e2e.dlq."+s
	tc.OutcomesPartitions = 4
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := eventlog.EnsureTopics(ctx, brokers, tc); err != nil {
		t.Fatalf("ensure topics: %v", err)
	}
	return tc
}

// publish sends outcomes [from, to) of eventtest's sequence through a
// Publisher and closes it, so every event is acknowledged or spilled.
func publish(t testing.TB, brokers []string, topic string, from, to int) {
	t.Helper()
	publishWith(t, brokers, eventlog.Security{}, topic, from, to)
}

// publishWith is publish to brokers reached with sec.
func publishWith(t testing.TB, brokers []string, sec eventlog.Security, topic string, from, to int) {
	t.Helper()
	cfg := eventlog.DefaultPublisherConfig()
	cfg.Brokers, cfg.Topic, cfg.SpillDir, cfg.Security = brokers, topic, t.TempDir(), sec
	pub, err := eventlog.NewPublisher(cfg, deps.Deps{Logger: logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- pub.Run(ctx) }()
	for i := from; i < to; i++ {
		o := eventtest.Outcome(1, i)
		b, err := event.EncodeOutcome(o)
		if err != nil {
			t.Fatal(err)
		}
		if err := pub.Publish([]byte(o.ID), b); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer ccancel()
	if err := pub.Close(cctx); err != nil {
		t.Fatalf("close publisher: %v", err)
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("publisher run: %v", err)
	}
	if st := pub.Stats(); st.SpillEvents != 0 || st.Dropped != 0 {
		t.Fatalf("publisher stats after close %+v: want nothing spilled or dropped against a live broker", st)
	}
}

// pipeline is ingest wired as cmd/loopgate wires it, with hooks for tests.
type pipeline struct {
	reader *eventlog.Reader
	dlq    *eventlog.Writer
	ing    *ingest.Ingester
	cancel context.CancelFunc
	done   chan error
}

type pipelineOpts struct {
	group     string
	batchRows int
	sink      ingest.Sink                       // default: the store
	source    func(ingest.Source) ingest.Source // wraps the reader
	drain     bool                              // flush the held batch on cancel (a clean stop)
	security  eventlog.Security                 // how the reader and the DLQ writer connect
	registry  prometheus.Registerer             // the ingester's metrics; default none
}

func startPipeline(t testing.TB, brokers []string, tc eventlog.TopicsConfig, st *warehouse.Store, o pipelineOpts) *pipeline {
	t.Helper()
	rcfg := eventlog.DefaultReaderConfig()
	rcfg.Brokers, rcfg.Topic, rcfg.GroupID = brokers, tc.Outcomes, o.group
	rcfg.SessionTimeout, rcfg.HeartbeatInterval = 6*time.Second, time.Second
	rcfg.Security = o.security
	reader, err := eventlog.NewReader(rcfg, deps.Deps{Logger: logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	wcfg := eventlog.DefaultWriterConfig()
	wcfg.Brokers, wcfg.Topic, wcfg.Security = brokers, tc.DLQ, o.security
	dlq, err := eventlog.NewWriter(wcfg, deps.Deps{Logger: logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	icfg := ingest.DefaultConfig()
	if o.batchRows > 0 {
		icfg.BatchRows = o.batchRows
	}
	icfg.BatchWait = 300 * time.Millisecond
	icfg.RetryMax = time.Second
	if !o.drain {
		icfg.DrainTimeout = 0
	}
	var sink ingest.Sink = st
	if o.sink != nil {
		sink = o.sink
	}
	var src ingest.Source = reader
	if o.source != nil {
		src = o.source(reader)
	}
	ing, err := ingest.New(icfg, src, sink, dlq, deps.Deps{Logger: logger(t), Registerer: o.registry})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &pipeline{reader: reader, dlq: dlq, ing: ing, cancel: cancel, done: make(chan error, 1)}
	go func() { p.done <- ing.Run(ctx) }()
	return p
}

// stop cancels the ingester and closes its reader and writer cleanly.
func (p *pipeline) stop(t testing.TB) {
	t.Helper()
	p.kill(t)
	p.reader.Close()
	p.dlq.Close()
}

// kill cancels the ingester without closing anything: what a crash leaves.
// The reader's group membership is left to expire.
func (p *pipeline) kill(t testing.TB) {
	t.Helper()
	p.cancel()
	if err := <-p.done; err != nil {
		t.Fatalf("ingest run: %v", err)
	}
}

// count runs a single-number query.
func count(t testing.TB, st *warehouse.Store, sql string) int64 {
	t.Helper()
	rows, err := st.Query(context.Background(), sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	if rows.Len() != 1 || len(rows.Values[0]) != 1 {
		t.Fatalf("%s: got %d rows, want one number", sql, rows.Len())
	}
	switch v := rows.Values[0][0].(type) {
	case uint64:
		return int64(v)
	case int64:
		return v
	case float64:
		return int64(v)
	}
	t.Fatalf("%s: got %T %v, want a number", sql, rows.Values[0][0], rows.Values[0][0])
	return 0
}

// waitRows waits until the requests table holds want rows (or more).
func waitRows(t testing.TB, st *warehouse.Store, want int64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var got int64
	for time.Now().Before(deadline) {
		if got = count(t, st, "SELECT count() FROM requests"); got >= want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("after %v: got %d requests, want %d", timeout, got, want)
}

// checkExactlyOnce asserts n requests, each once, with all their attempts.
func checkExactlyOnce(t testing.TB, st *warehouse.Store, n int) {
	t.Helper()
	if got := count(t, st, "SELECT count() FROM requests"); got != int64(n) {
		t.Errorf("requests: got %d rows, want %d", got, n)
	}
	if got := count(t, st, "SELECT uniqExact(id) FROM requests"); got != int64(n) {
		t.Errorf("requests: got %d distinct ids, want %d", got, n)
	}
	want := int64(eventtest.TotalAttempts(n))
	if got := count(t, st, "SELECT count() FROM attempts"); got != want {
		t.Errorf("attempts: got %d rows, want %d", got, want)
	}
	if got := count(t, st, "SELECT uniqExact(request_id, attempt) FROM attempts"); got != want {
		t.Errorf("attempts: got %d distinct (request, attempt), want %d", got, want)
	}
	if got := count(t, st, "SELECT toInt64(sum(attempts)) FROM (SELECT countMerge(attempts) AS attempts FROM attempts_1m)"); got != want {
		t.Errorf("attempts_1m rollup: got %d attempts, want %d", got, want)
	}
}

// commitLog wraps a Source and records every commit, for tests that check
// when ingest commits.
type commitLog struct {
	ingest.Source
	mu      sync.Mutex
	commits int
	msgs    int
}

func (c *commitLog) Commit(ctx context.Context, msgs ...eventlog.Message) error {
	if err := c.Source.Commit(ctx, msgs...); err != nil {
		return err
	}
	c.mu.Lock()
	c.commits++
	c.msgs += len(msgs)
	c.mu.Unlock()
	return nil
}

func (c *commitLog) committed() (commits, msgs int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.commits, c.msgs
}
