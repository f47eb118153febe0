package warehouse

import (
	"context"
	"testing"
	"time"

	"github.com/loopgate/loopgate/internal/testenv"
)

// TestClusterExactlyOnce runs the cluster profile on a real ClickHouse
// cluster (two clickhouse-server replicas of one shard, ZooKeeper) that
// the test starts: the schema is created once ON CLUSTER and recorded once;
// a batch written through one replica and retried through the other is
// stored once, even when the other has not fetched it yet; the rollup is
// fed once per row (not once per replica); and with a replica down a write
// is refused, and goes through once it is back.
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
	converged(t, a, b)
	checkExactlyOnce(t, a, n)
	checkExactlyOnce(t, b, n)
	for i, s := range []*Store{a, b} { // each replica's local tables hold every row once
		if got := queryInt(t, s, "SELECT count() FROM "+db+".requests_local"); got != n {
			t.Errorf("replica %d: got %d rows in requests_local, want %d", i+1, got, n)
		}
	}

	// Replica 2 stops fetching: what replica 1 acknowledges now is on
	// replica 1 only, as when a replica dies before the other copied its
	// last insert. A writer on replica 2 retrying that batch must still see
	// it (the check reads every replica), or the rows would be stored twice
	// once replica 2 fetches them.
	for _, tb := range []string{"requests_local", "attempts_local"} {
		if err := b.b.exec(ctx, "SYSTEM STOP FETCHES "+db+"."+tb); err != nil {
			t.Fatal(err)
		}
	}
	lagging := outcomes(1, n, n+100)
	if err := a.WriteOutcomes(ctx, "p1/0-99", lagging); err != nil {
		t.Fatalf("write through replica 1: %v", err)
	}
	if got := queryInt(t, b, "SELECT count() FROM "+db+".requests_local"); got != n {
		t.Fatalf("replica 2 holds %d requests with fetches stopped, want the %d from before", got, n)
	}
	if err := b.WriteOutcomes(ctx, "p1/0-99", lagging); err != nil {
		t.Fatalf("retry through replica 2: %v", err)
	}
	for _, tb := range []string{"requests_local", "attempts_local"} {
		if err := b.b.exec(ctx, "SYSTEM START FETCHES "+db+"."+tb); err != nil {
			t.Fatal(err)
		}
	}
	converged(t, a, b)
	checkExactlyOnce(t, a, n+100)
	checkExactlyOnce(t, b, n+100)

	// A replica down: the check cannot read it, so the write is refused
	// rather than risk a duplicate, and goes through once it is back.
	c.Stop(t, "clickhouse-2")
	more := outcomes(1, n+100, n+200)
	if err := a.WriteOutcomes(ctx, "p2/0-99", more); err == nil {
		t.Error("got a write accepted with a replica down, want it refused (the check reads every replica)")
	}
	c.Start(t, "clickhouse-2")
	testenv.Eventually(t, 60*time.Second, "the write accepted once the replica is back", func() bool {
		return a.WriteOutcomes(ctx, "p2/0-99", more) == nil
	})
	converged(t, a, b)
	checkExactlyOnce(t, a, n+200)
	checkExactlyOnce(t, b, n+200)
}

// converged waits until both replicas hold the same rows in every table
// the checks read: replication is asynchronous, and each store reads its
// own replica.
func converged(t *testing.T, a, b *Store) {
	t.Helper()
	db := a.Database()
	sql := "SELECT (SELECT count() FROM " + db + ".requests_local) * 1000000000 + (SELECT count() FROM " + db + ".attempts_local) * 1000 + (SELECT count() FROM " + db + ".attempts_1m_local)"
	testenv.Eventually(t, 60*time.Second, "the replicas holding the same rows", func() bool {
		ra, err := a.Query(context.Background(), sql)
		if err != nil {
			return false
		}
		rb, err := b.Query(context.Background(), sql)
		return err == nil && ra.Values[0][0] == rb.Values[0][0]
	})
}
