package warehouse

import (
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/loopgate/loopgate/internal/tlsconf"
)

// Backends, for Config.Backend.
const (
	BackendEmbedded = "embedded"
	BackendServer   = "server"
)

// Config says which ClickHouse to use and how to lay out the schema.
type Config struct {
	// Backend is "embedded" (chDB inside this process, see LibPath) or
	// "server" (a ClickHouse server over the native protocol, see Addr).
	// Default "embedded".
	Backend string
	// Database holds every loopgate table; Open creates it if missing. Only
	// letters, digits and underscores. Default "loopgate".
	Database string
	// Profile forces the DDL profile: "auto" chooses from SELECT version()
	// (modern for ClickHouse ≥ 22.3 and chDB, legacy below), "modern" or
	// "legacy" force one. Default "auto".
	Profile string
	// RawRetentionDays is the TTL of requests and attempts on the modern
	// profile; 0 keeps rows forever. It is written into the DDL when a table
	// is created; later changes need an ALTER TABLE ... MODIFY TTL. Default 90.
	RawRetentionDays int
	// RollupRetentionDays is the TTL of attempts_1m on the modern profile;
	// 0 keeps rows forever. Same caveat as RawRetentionDays. Default 400.
	RollupRetentionDays int
	// FineRetentionDays is the TTL of attempts_10s, the optimizer's
	// fine-grained rollup, on the modern profile; 0 keeps rows forever.
	// Default 7.
	FineRetentionDays int
	// Cluster, when set, lays the schema out for the ClickHouse cluster of
	// that name (the servers' remote_servers; server backend only): every
	// table is a Replicated*MergeTree named <table>_local on each node with
	// a Distributed table <table> over it, all created ON CLUSTER, and every
	// query and insert goes through the Distributed tables. Empty: one node,
	// the single-node DDL. Only letters, digits and underscores. Default empty.
	Cluster string
	// InsertQuorum, on a cluster, is how many replicas of a shard must hold
	// an insert before it is acknowledged (insert_quorum); 0 or 1: the one
	// it was written to, the others fetch it within moments. Exactly once
	// does not rest on it (the existence check reads every replica, see the
	// package documentation); a quorum adds durability against losing a
	// replica's disk before it was copied, at a price: quorum inserts into a
	// table are sequential across the cluster, so concurrent writers wait
	// for each other, and a materialized view's insert into a rollup can be
	// refused after its source rows landed, leaving the rollup short.
	// Default 0.
	InsertQuorum int
	// CheckChunk is the most ids one existence query asks about; a larger
	// batch is checked in several queries, each over its own time range.
	// The ids travel beside the statement (native external data, or a
	// temporary file for chDB), so max_query_size does not limit it.
	// Default 10000.
	CheckChunk int

	// Addr is the server's native-protocol address (server backend).
	// Default "127.0.0.1:9000".
	Addr string
	// Username for the server backend. Default "default".
	Username string
	// Password for the server backend. Default empty.
	Password string
	// TLS for the server backend: connect to the server's secure native
	// port (tcp_port_secure, 9440 by default) and verify its certificate.
	// Default off.
	TLS tlsconf.Config
	// DialTimeout bounds connecting to the server. Default 10s.
	DialTimeout time.Duration
	// MaxOpenConns caps the server backend's connection pool. Default 8.
	MaxOpenConns int

	// DataDir is where the embedded engine keeps its data; created if
	// missing. Default ".var/chdb".
	DataDir string
	// LibPath is libchdb.so for the embedded backend. Empty: the
	// environment variable LOOPGATE_CHDB_LIB, then CHDB_LIB_PATH, read when
	// the store opens. Default empty.
	LibPath string
}

// DefaultConfig returns the defaults documented on each field.
func DefaultConfig() Config {
	return Config{
		Backend:             BackendEmbedded,
		Database:            "loopgate",
		Profile:             ProfileAuto,
		RawRetentionDays:    90,
		RollupRetentionDays: 400,
		FineRetentionDays:   7,
		CheckChunk:          10000,
		Addr:                "127.0.0.1:9000",
		Username:            "default",
		DialTimeout:         10 * time.Second,
		MaxOpenConns:        8,
		DataDir:             ".var/chdb",
	}
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate reports settings that cannot work.
func (c Config) Validate() error {
	var errs []error
	switch c.Backend {
	case BackendEmbedded:
		if c.DataDir == "" {
			errs = append(errs, errors.New("data dir is required for the embedded backend"))
		}
	case BackendServer:
		if c.Addr == "" {
			errs = append(errs, errors.New("addr is required for the server backend"))
		}
		if c.DialTimeout <= 0 {
			errs = append(errs, fmt.Errorf("dial timeout %v must be positive", c.DialTimeout))
		}
		if c.MaxOpenConns <= 0 {
			errs = append(errs, fmt.Errorf("max open conns %d must be positive", c.MaxOpenConns))
		}
		if err := c.TLS.Validate(); err != nil {
			errs = append(errs, err)
		}
	default:
		errs = append(errs, fmt.Errorf("backend %q: want %q or %q", c.Backend, BackendEmbedded, BackendServer))
	}
	if !identRE.MatchString(c.Database) {
		errs = append(errs, fmt.Errorf("database %q: want letters, digits and underscores", c.Database))
	}
	switch c.Profile {
	case ProfileAuto, ProfileModern, ProfileLegacy:
	default:
		errs = append(errs, fmt.Errorf("profile %q: want auto, modern or legacy", c.Profile))
	}
	if c.RawRetentionDays < 0 || c.RollupRetentionDays < 0 || c.FineRetentionDays < 0 {
		errs = append(errs, fmt.Errorf("retention days %d, %d and %d must not be negative", c.RawRetentionDays, c.RollupRetentionDays, c.FineRetentionDays))
	}
	if c.Cluster != "" {
		if !identRE.MatchString(c.Cluster) {
			errs = append(errs, fmt.Errorf("cluster %q: want letters, digits and underscores", c.Cluster))
		}
		if c.Backend != BackendServer {
			errs = append(errs, fmt.Errorf("cluster %q needs the server backend, not %q", c.Cluster, c.Backend))
		}
	}
	if c.InsertQuorum < 0 {
		errs = append(errs, fmt.Errorf("insert quorum %d must not be negative", c.InsertQuorum))
	}
	if c.CheckChunk <= 0 {
		errs = append(errs, fmt.Errorf("check chunk %d must be positive", c.CheckChunk))
	}
	return errors.Join(errs...)
}
