package warehouse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/loopgate/loopgate/deps"
)

// Store is loopgate's warehouse: the schema, the exactly-once outcome
// writer and query access, over either backend. It is safe for concurrent
// use (the embedded backend serialises statements).
type Store struct {
	b       backend
	cfg     Config
	profile Profile
	log     *slog.Logger
	m       *metrics
	now     func() time.Time

	replicas []replica // on a cluster: every replica of every shard, for the existence checks
}

// replica is one server of the cluster, as system.clusters names it.
type replica struct {
	addr string
	b    *serverBackend
}

// Open connects to the configured backend, picks the profile from the
// engine's version, creates the database if missing and applies pending
// migrations. Metrics are registered on reg (nil: not registered). For the
// embedded backend only one Store may be open per process; a second Open
// returns ErrEngineInUse until the first is closed.
func Open(ctx context.Context, cfg Config, d deps.Deps) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("validate warehouse config: %w", err)
	}
	logger, reg := d.Log(), d.Registerer
	var (
		b   backend
		err error
	)
	switch cfg.Backend {
	case BackendServer:
		b, err = openServer(ctx, cfg, d.Now)
	default:
		b, err = openEmbedded(cfg)
	}
	if err != nil {
		return nil, err
	}
	s := &Store{b: b, cfg: cfg, log: logger.With("backend", cfg.Backend), m: newMetrics(), now: d.Now}
	if err := s.init(ctx); err != nil {
		s.closeReplicas()
		b.close()
		return nil, err
	}
	// Registered last, so a failed Open can be retried on the same registry.
	if err := s.m.register(reg); err != nil {
		s.closeReplicas()
		b.close()
		return nil, err
	}
	return s, nil
}

// init chooses the profile, creates the database and migrates.
func (s *Store) init(ctx context.Context) error {
	rows, err := s.b.query(ctx, "SELECT version()")
	if err != nil {
		return fmt.Errorf("query server version: %w", err)
	}
	if rows.Len() != 1 {
		return errors.New("query server version: no row")
	}
	version, _ := rows.Values[0][0].(string)
	if s.profile, err = profileFor(s.cfg.Profile, version); err != nil {
		return fmt.Errorf("choose schema profile: %w", err)
	}
	s.log.Info("warehouse connected", "version", version, "profile", s.profile.Name, "database", s.cfg.Database, "cluster", s.cfg.Cluster)
	onCluster := ""
	if s.cfg.Cluster != "" {
		if err := s.joinCluster(ctx); err != nil {
			return err
		}
		onCluster = " ON CLUSTER " + s.cfg.Cluster
	}
	if err := s.b.exec(ctx, "CREATE DATABASE IF NOT EXISTS "+s.cfg.Database+onCluster); err != nil {
		return fmt.Errorf("create database %s: %w", s.cfg.Database, err)
	}
	if err := s.b.use(ctx, s.cfg.Database); err != nil {
		return fmt.Errorf("use database %s: %w", s.cfg.Database, err)
	}
	return s.migrate(ctx)
}

// joinCluster checks that the server knows the configured cluster,
// connects to each of its replicas (the existence checks read them all,
// see checkIDs) and makes every insert synchronous through the Distributed
// tables, acknowledged by InsertQuorum replicas when that is above 1.
func (s *Store) joinCluster(ctx context.Context) error {
	sb, ok := s.b.(*serverBackend)
	if !ok {
		return fmt.Errorf("cluster %s needs the server backend", s.cfg.Cluster)
	}
	rows, err := s.b.query(ctx, "SELECT host_name, toUInt64(port), toUInt64(shard_num), toUInt64(replica_num) FROM system.clusters WHERE cluster = "+quote(s.cfg.Cluster)+" ORDER BY shard_num, replica_num")
	if err != nil {
		return fmt.Errorf("read cluster %s: %w", s.cfg.Cluster, err)
	}
	if rows.Len() == 0 {
		return fmt.Errorf("cluster %s: not in the server's remote_servers (system.clusters)", s.cfg.Cluster)
	}
	shards, replicas := map[int64]bool{}, int64(0)
	for _, r := range rows.Values {
		host, _ := r[0].(string)
		addr := net.JoinHostPort(host, fmt.Sprint(i64(r[1])))
		shards[i64(r[2])] = true
		replicas = max(replicas, i64(r[3]))
		cfg := s.cfg
		cfg.Addr = addr
		b, err := openServer(ctx, cfg, s.now)
		if err != nil {
			s.closeReplicas()
			return fmt.Errorf("cluster %s: replica %s (remote_servers must name addresses loopgate can reach): %w", s.cfg.Cluster, addr, err)
		}
		s.replicas = append(s.replicas, replica{addr: addr, b: b})
	}
	quorum := min(int64(s.cfg.InsertQuorum), replicas)
	sb.insertExtra = clusterInsertSettings(quorum, s.profile.InsertDedup)
	s.log.Info("warehouse cluster", "cluster", s.cfg.Cluster, "shards", len(shards), "replicas", replicas, "insert_quorum", quorum)
	return nil
}

func (s *Store) closeReplicas() {
	for _, r := range s.replicas {
		r.b.close()
	}
	s.replicas = nil
}

// clusterInsertSettings are sent with every insert on a cluster: wait for
// the Distributed table to hand each shard its rows (no queue on the local
// disk of the node we talk to, which "returns nil only when stored" cannot
// allow), and, with a quorum above 1, for that many replicas to hold them.
func clusterInsertSettings(quorum int64, modern bool) []setting {
	st := []setting{{"insert_distributed_sync", "1"}}
	if quorum > 1 {
		st = append(st, setting{"insert_quorum", fmt.Sprint(quorum)})
		if modern { // 18.16 has no such setting: its quorum inserts are always sequential
			st = append(st, setting{"insert_quorum_parallel", "0"})
		}
	}
	return st
}

// migrate applies every migration not yet recorded in schema_migrations,
// in version order. Statements are idempotent, so a migration interrupted
// before it is recorded is simply run again; two processes migrating at
// once both succeed.
func (s *Store) migrate(ctx context.Context) error {
	migs, err := renderSchema(s.profile, schemaParams{
		DB: s.cfg.Database, Cluster: s.cfg.Cluster, RawDays: s.cfg.RawRetentionDays, RollupDays: s.cfg.RollupRetentionDays, FineDays: s.cfg.FineRetentionDays,
	})
	if err != nil {
		return err
	}
	// Version 0 creates schema_migrations itself; it always runs.
	for _, stmt := range migs[0].Statements {
		if err := s.b.exec(ctx, stmt); err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
	}
	rows, err := s.b.query(ctx, "SELECT DISTINCT version FROM "+s.cfg.Database+".schema_migrations")
	if err != nil {
		return fmt.Errorf("read applied migrations: %w", err)
	}
	applied := map[uint64]bool{}
	for _, r := range rows.Values {
		if v, ok := r[0].(uint64); ok {
			applied[v] = true
		}
	}
	for _, mg := range migs[1:] {
		if applied[uint64(mg.Version)] {
			continue
		}
		for i, stmt := range mg.Statements {
			if err := s.b.exec(ctx, stmt); err != nil {
				return fmt.Errorf("apply migration %04d_%s statement %d: %w", mg.Version, mg.Name, i+1, err)
			}
		}
		b := &block{table: "schema_migrations", rows: 1, cols: []column{
			{"version", []uint32{uint32(mg.Version)}},
			{"name", []string{mg.Name}},
		}}
		if err := s.b.insert(ctx, s.cfg.Database, b, ""); err != nil {
			return fmt.Errorf("record migration %04d_%s: %w", mg.Version, mg.Name, err)
		}
		s.log.Info("migration applied", "version", mg.Version, "name", mg.Name)
	}
	return nil
}

// Profile is the schema profile in use.
func (s *Store) Profile() Profile { return s.profile }

// Database is the database holding loopgate's tables.
func (s *Store) Database() string { return s.cfg.Database }

// Ping checks that the warehouse answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.b.ping(ctx); err != nil {
		return fmt.Errorf("ping warehouse: %w", err)
	}
	return nil
}

// Query runs loopgate's own SQL (tests, tools, the stats queries) and
// returns all of its rows in memory. It checks nothing: SQL from outside
// (analysts, an HTTP endpoint) goes through QueryReadOnly. Tables without a
// database name are the store's, e.g. "SELECT count() FROM requests".
func (s *Store) Query(ctx context.Context, sql string) (*Rows, error) {
	rows, err := s.b.query(ctx, sql)
	if err != nil {
		s.m.errors.WithLabelValues("query").Inc()
		return nil, fmt.Errorf("query warehouse: %w", err)
	}
	return rows, nil
}

// Close releases the connection (and, for the embedded backend, the
// process's engine, after any statement still running).
func (s *Store) Close() error {
	s.closeReplicas()
	if err := s.b.close(); err != nil {
		return fmt.Errorf("close warehouse: %w", err)
	}
	return nil
}
