package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	kafkago "github.com/segmentio/kafka-go"
	"gopkg.in/yaml.v3"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/internal/testenv"
	"github.com/loopgate/loopgate/router"
	"github.com/loopgate/loopgate/warehouse"
)

// TestCluster runs loopgate's distributed form, every part a real process:
// three Apache Kafka brokers (KRaft) with loopgate.outcomes at replication
// 3, min.insync.replicas 2 and 6 partitions; two clickhouse-server replicas
// of one shard with ZooKeeper, under the warehouse's cluster profile; three
// `loopgate ingest` in one group, two `loopgate router`, one `loopgate
// optimizer`; and the simulated fleet and load (in the test process). While
// the load runs, one broker and one ClickHouse replica are stopped and
// started again, then one ingest is SIGKILLed and started again. The count,
// through the Distributed table, on either replica: count() = uniqExact(id)
// = the requests the load saw answered.
func TestCluster(t *testing.T) {
	start := time.Now()
	c := testenv.StartCluster(t, true)
	t.Logf("cluster up in %v: kafka %v, clickhouse %v", time.Since(start).Round(time.Second), c.Kafka, c.ClickHouse)
	r := newRigFor(t, c.Kafka, c.ClickHouse[0], 9*time.Minute)
	r.cfg.Kafka.Partitions, r.cfg.Kafka.Replication = 6, 3
	r.cfg.Warehouse.Cluster = c.Name

	// The schema first, once for the cluster, from here; every process
	// then finds it recorded.
	wcfg := warehouseConfig(r.cfg)
	store, err := warehouse.Open(r.ctx, wcfg, deps.Deps{Logger: slog.New(slog.NewTextHandler(testWriter{t, "warehouse"}, nil)), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	wcfg.Addr = c.ClickHouse[1]
	store2, err := warehouse.Open(r.ctx, wcfg, deps.Deps{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store2.Close() })

	routers := []string{r.cfg.RouterAddr, testenv.FreeAddr(t)}
	cfgFile := func(name string, edit func(*Config)) string {
		cfg := r.cfg
		cfg.DataDir = filepath.Join(t.TempDir(), name)
		edit(&cfg)
		b, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), name+".yaml")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	run := func(name, command, path string, args ...string) *child {
		cmd := cliChild(t, append([]string{command, "--config", path}, args...)...)
		cmd.Stderr = testWriter{t, name}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ch := &child{proc: cmd.Process, exited: make(chan struct{})}
		go func() { cmd.Wait(); close(ch.exited) }()
		t.Cleanup(func() {
			select {
			case <-ch.exited:
			default:
				ch.stop(t)
			}
		})
		return ch
	}

	plain := cfgFile("shared", func(*Config) {})
	run("optimizer", "optimizer", plain)
	// Ingest 1 and 3 write through replica 1, ingest 2 through replica 2.
	ingestOn := []string{c.ClickHouse[0], c.ClickHouse[1], c.ClickHouse[0]}
	ingests := make([]*child, 3)
	for i := range ingests {
		ingests[i] = run(fmt.Sprintf("ingest-%d", i+1), "ingest", plain, "--clickhouse", ingestOn[i])
	}
	var rts []*child
	var spills []string
	for i, addr := range routers {
		path := cfgFile(fmt.Sprintf("router-%d", i+1), func(cfg *Config) { cfg.RouterAddr = addr })
		spills = append(spills, filepath.Join(filepath.Dir(path), fmt.Sprintf("router-%d", i+1)))
		rts = append(rts, run(fmt.Sprintf("router-%d", i+1), "router", path))
		testenv.Eventually(t, 60*time.Second, "router "+addr+" listening", func() bool {
			conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
			if err == nil {
				conn.Close()
			}
			return err == nil
		})
	}
	checkOutcomesTopic(t, r.ctx, c.Kafka, r.cfg.Kafka.OutcomesTopic)

	stopLoad := startClusterLoad(r, routers, 8)
	time.Sleep(4 * time.Second)
	t.Logf("%d answered; stopping kafka-2 and clickhouse-2", r.answeredCount())
	c.Stop(t, "kafka-2")
	c.Stop(t, "clickhouse-2")
	time.Sleep(8 * time.Second)
	t.Logf("%d answered; starting them again", r.answeredCount())
	c.Start(t, "clickhouse-2")
	c.Start(t, "kafka-2")
	time.Sleep(3 * time.Second)
	t.Logf("%d answered; killing ingest-2", r.answeredCount())
	ingests[1].kill(t)
	time.Sleep(5 * time.Second)
	ingests[1] = run("ingest-2b", "ingest", plain, "--clickhouse", c.ClickHouse[1])
	time.Sleep(5 * time.Second)
	stopLoad()
	for _, rt := range rts {
		rt.stop(t)
	}
	for i, ing := range ingests {
		select {
		case <-ing.exited:
			t.Errorf("ingest-%d exited during the run, want it to ride out every fault", i+1)
		default:
		}
	}
	t.Logf("load ended: %d answered", r.answeredCount())
	if r.answeredCount() == 0 {
		t.Fatal("the load got no answer")
	}

	// Ingest catches up on what the faults held back: wait (logging the
	// progress, since a loaded machine can take minutes) until every
	// answered request is stored, then check the count.
	drain := time.Now()
	lastLog := drain
	testenv.Eventually(t, 4*time.Minute, "every answered request in ClickHouse", func() bool {
		found := answeredStored(t, r, store)
		if time.Since(lastLog) > 15*time.Second {
			t.Logf("drain: %d of %d answered requests stored after %v", found, r.answeredCount(), time.Since(drain).Round(time.Second))
			lastLog = time.Now()
		}
		return found >= r.answeredCount()
	})
	t.Logf("drained in %v", time.Since(drain).Round(time.Second))
	if dups, err := store.Query(r.ctx, "SELECT id, count(), groupArray(toString(ingested_at)), groupArray(toString(start_time)) FROM requests GROUP BY id HAVING count() > 1 LIMIT 10"); err == nil && dups.Len() > 0 {
		t.Errorf("ids stored more than once (id, copies, ingested_at, start_time): %v", dups.Values)
	}
	if !t.Failed() { // with duplicates, verify's wait for "each answered id once" cannot end
		r.verify(store) // through replica 1's Distributed tables, router-1's spill
	}
	// Replica 2 may still be fetching the last parts (an insert whose
	// quorum was being reached when the first check passed): wait for it to
	// hold as many rows as replica 1, then compare.
	want := queryCount(t, r.ctx, store, "SELECT count() FROM requests")
	testenv.Eventually(t, 60*time.Second, "replica 2 holding what replica 1 holds", func() bool {
		return queryCount(t, r.ctx, store2, "SELECT count() FROM requests") >= want
	})
	for i, s := range []*warehouse.Store{store, store2} {
		rows, err := s.Query(r.ctx, "SELECT count(), uniqExact(id) FROM requests")
		if err != nil {
			t.Fatal(err)
		}
		n, uniq := i64any(rows.Values[0][0]), i64any(rows.Values[0][1])
		t.Logf("replica %d: count() %d, uniqExact(id) %d, answered %d", i+1, n, uniq, r.answeredCount())
		if n != uniq || n != want {
			t.Errorf("replica %d: got count() %d, uniqExact(id) %d, want both = %d (replica 1's: the answered + interrupted)", i+1, n, uniq, want)
		}
		// Attempts are inserted after their requests: wait for the last
		// ones, then every attempt is there once, and in the rollup once.
		var attempts, rolled, sum int64
		testenv.Eventually(t, 60*time.Second, fmt.Sprintf("replica %d: every attempt stored and rolled up once", i+1), func() bool {
			attempts = queryCount(t, r.ctx, s, "SELECT count() FROM attempts")
			rolled = queryCount(t, r.ctx, s, "SELECT countMerge(attempts) FROM attempts_1m")
			sum = queryCount(t, r.ctx, s, "SELECT sum(attempt_count) FROM requests")
			return attempts == sum && rolled == sum
		})
		t.Logf("replica %d: %d attempts, %d in attempts_1m", i+1, attempts, rolled)
	}
	for _, dir := range spills[1:] {
		if segs, _ := filepath.Glob(filepath.Join(dir, "spill", "*", "*.seg")); len(segs) != 0 {
			t.Errorf("router left %d spill segments in %s", len(segs), dir)
		}
	}
	t.Logf("the whole run: %v", time.Since(start).Round(time.Second))
}

// startClusterLoad runs workers spread over the routers, each sending one
// request at a time and keeping the ids of the answered ones; it returns
// the function that stops them.
func startClusterLoad(r *rig, routers []string, workers int) func() {
	stop := make(chan struct{})
	client := &http.Client{Timeout: 10 * time.Second}
	for w := range workers {
		addr := routers[w%len(routers)]
		r.loadDone.Add(1)
		go func() {
			defer r.loadDone.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/text-to-image", strings.NewReader(`{"prompt":"a cat","model_id":"stabilityai/sdxl-turbo"}`))
				req.Header.Set("Authorization", "Bearer "+simKey("acme"))
				resp, err := client.Do(req)
				if err != nil {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				resp.Body.Close()
				if id := resp.Header.Get(router.HeaderRequestID); id != "" {
					r.mu.Lock()
					r.answered[id] = true
					r.mu.Unlock()
				}
			}
		}()
	}
	return func() { close(stop); r.loadDone.Wait() }
}

// checkOutcomesTopic asserts the outcome topic's layout on the cluster: 6
// partitions, 3 replicas each, min.insync.replicas 2.
func checkOutcomesTopic(t *testing.T, ctx context.Context, brokers []string, topic string) {
	t.Helper()
	client := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 10 * time.Second}
	md, err := client.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		t.Fatal(err)
	}
	if len(md.Topics) != 1 || md.Topics[0].Error != nil {
		t.Fatalf("metadata of %s: %+v", topic, md.Topics)
	}
	parts := md.Topics[0].Partitions
	if len(parts) != 6 {
		t.Errorf("%s: got %d partitions, want 6", topic, len(parts))
	}
	for _, p := range parts {
		if len(p.Replicas) != 3 {
			t.Errorf("%s partition %d: got %d replicas, want 3", topic, p.ID, len(p.Replicas))
		}
	}
	dc, err := client.DescribeConfigs(ctx, &kafkago.DescribeConfigsRequest{Resources: []kafkago.DescribeConfigRequestResource{{
		ResourceType: kafkago.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{"min.insync.replicas"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	got := ""
	for _, res := range dc.Resources {
		for _, e := range res.ConfigEntries {
			if e.ConfigName == "min.insync.replicas" {
				got = e.ConfigValue
			}
		}
	}
	if got != "2" {
		t.Errorf("%s: got min.insync.replicas %q, want 2", topic, got)
	}
}

// queryCount runs a query returning one integer.
func queryCount(t *testing.T, ctx context.Context, s *warehouse.Store, sql string) int64 {
	t.Helper()
	rows, err := s.Query(ctx, sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	if rows.Len() != 1 {
		t.Fatalf("%s: got %d rows, want 1", sql, rows.Len())
	}
	return i64any(rows.Values[0][0])
}

// answeredStored counts the answered requests in the warehouse.
func answeredStored(t *testing.T, r *rig, s *warehouse.Store) int {
	t.Helper()
	rows, err := s.Query(r.ctx, "SELECT id FROM requests")
	if err != nil {
		return -1
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	found := 0
	for _, row := range rows.Values {
		if r.answered[row[0].(string)] {
			found++
		}
	}
	return found
}
