package warehouse

import (
	"context"
	"testing"

	"github.com/loopgate/loopgate/internal/testenv"
)

// TestClusterExactlyOnce runs the cluster profile on a real ClickHouse
// cluster (two clickhouse-server replicas of one shard, ZooKeeper) that
// the test starts: the schema is created once ON CLUSTER and recorded once,
// a batch written through one replica and retried through the other is
// stored once, the rollup is fed once per row (not once per replica), and
// with a replica down an insert is refused rather than acknowledged by one
// copy, and goes through once it is back.
func TestClusterExactlyOnce(t *testing.T) {
	c := testenv.StartCluster(t, false)
	ctx := context.Background()
	cfgFor := func(replica int, db string) Config {
		cfg := testConfig(t, testBackend{"cluster", BackendServer, ProfileAuto})
		cfg.Addr, cfg.Cluster = c.ClickHouse[replica], c.Name
		if db != "" {
			cfg.Database = db
		}
		return cfg
	}
	a := openStore(t, cfgFor(0, ""))
	b := openStore(t, cfgFor(1, a.Database()))
	db := a.Database()

	migs, err := renderSchema(a.Profile(), schemaParams{DB: db, Cluster: c.Name})
	if err != nil {
		t.Fatal(err)
	}
	// Migrations ran once for the cluster: the second store found them
	// recorded (a second run would have recorded each again).
	if got, want := queryInt(t, b, "SELECT count() FROM "+db+".schema_migrations"), int64(len(migs)-1); got != want {
		t.Errorf("got %d schema_migrations rows, want %d (each migration once for the cluster)", got, want)
	}
	for i, s := range []*Store{a, b} {
		for _, tc := range []struct{ table, engine string }{
			{"requests_local", "ReplicatedMergeTree"},
			{"requests", "Distributed"},
			{"attempts_local", "ReplicatedMergeTree"},
			{"attempts_1m_local", "ReplicatedAggregatingMergeTree"},
			{"policies_local", "ReplicatedReplacingMergeTree"},
			{"schema_migrations_local", "ReplicatedReplacingMergeTree"},
		} {
			rows, err := s.Query(ctx, "SELECT engine FROM system.tables WHERE database = '"+db+"' AND name = '"+tc.table+"'")
			if err != nil {
				t.Fatal(err)
			}
			if rows.Len() != 1 || rows.Values[0][0] != tc.engine {
				t.Errorf("replica %d: %s: got engine %v, want %s", i+1, tc.table, rows.Values, tc.engine)
			}
		}
	}

	const n = 600
	if err := a.WriteOutcomes(ctx, "p0/0-399", outcomes(1, 0, 400)); err != nil {
		t.Fatalf("write through replica 1: %v", err)
	}
	// The consumer moved to another node (a rebalance, a failover) and
	// retries an overlapping batch there: replica 2 holds what replica 1
	// acknowledged, so only the new rows are inserted.
	if err := b.WriteOutcomes(ctx, "p0/200-599", outcomes(1, 200, n)); err != nil {
		t.Fatalf("write through replica 2: %v", err)
	}
	if got := counterValue(t, b.m.dupsSkipped.WithLabelValues("requests", "warehouse")); got != 200 {
		t.Errorf("replica 2 skipped %v requests as stored, want the 200 replica 1 wrote", got)
	}
	checkExactlyOnce(t, a, n)
	checkExactlyOnce(t, b, n)
	for i, s := range []*Store{a, b} { // each replica's local tables hold every row once
		if got := queryInt(t, s, "SELECT count() FROM "+db+".requests_local"); got != n {
			t.Errorf("replica %d: got %d rows in requests_local, want %d", i+1, got, n)
		}
	}

	// A replica down: the quorum (both replicas) cannot be met, so the
	// insert is refused, not acknowledged by one copy.
	c.Stop(t, "clickhouse-2")
	more := outcomes(1, n, n+100)
	if err := a.WriteOutcomes(ctx, "p0/600-699", more); err == nil {
		t.Error("got an acknowledged insert with a replica down, want it refused (insert_quorum = all replicas)")
	}
	c.Start(t, "clickhouse-2")
	testenv.Eventually(t, 60*1e9, "the write accepted once the replica is back", func() bool {
		return a.WriteOutcomes(ctx, "p0/600-699", more) == nil
	})
	checkExactlyOnce(t, a, n+100)
}
