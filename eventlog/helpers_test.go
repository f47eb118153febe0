package eventlog_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/eventlog"
	"github.com/loopgate/loopgate/internal/testenv"
)

// testLogger logs at info and above into the test's output.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// testCtx is a context that ends with the test, with a generous deadline so
// a hang fails instead of stalling the suite.
func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// uniqueTopics names topics after the test with a random suffix, so tests
// against a shared broker never see each other's records.
func uniqueTopics(t testing.TB) eventlog.TopicsConfig {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, t.Name())
	if len(name) > 80 {
		name = name[:80]
	}
	prefix := fmt.Sprintf("t.%s.%08x", name, rand.Uint32())
	cfg := eventlog.DefaultTopicsConfig()
	cfg.Outcomes = prefix + ".outcomes"
	cfg.Policy = prefix + ".policy"
	cfg.DLQ = prefix + ".dlq"
	cfg.OutcomesPartitions = 4
	return cfg
}

// broker is a Kafka to run a test against.
type broker struct {
	name  string
	start func(t *testing.T, topics eventlog.TopicsConfig) []string
}

// brokers are the embedded broker and the real Apache Kafka (skipped
// locally when LOOPGATE_TEST_KAFKA is unset, failed under CI).
func brokers() []broker {
	return []broker{
		{"embedded", func(t *testing.T, topics eventlog.TopicsConfig) []string {
			e := startEmbedded(t, "", 0, topics)
			return e.Brokers()
		}},
		{"kafka", func(t *testing.T, topics eventlog.TopicsConfig) []string {
			addr := testenv.Kafka(t)
			bs := []string{addr}
			if err := eventlog.EnsureTopics(testCtx(t, 30*time.Second), bs, topics); err != nil {
				t.Fatalf("ensure topics on %s: %v", addr, err)
			}
			return bs
		}},
	}
}

func startEmbedded(t testing.TB, dataDir string, port int, topics eventlog.TopicsConfig) *eventlog.Embedded {
	t.Helper()
	cfg := eventlog.DefaultEmbeddedConfig()
	cfg.DataDir = dataDir
	cfg.Port = port
	cfg.Topics = topics
	e, err := eventlog.StartEmbedded(t.Context(), cfg, deps.Deps{Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("start embedded broker: %v", err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func publisherConfig(t testing.TB, brokers []string, topic string) eventlog.PublisherConfig {
	cfg := eventlog.DefaultPublisherConfig()
	cfg.Brokers = brokers
	cfg.Topic = topic
	cfg.SpillDir = t.TempDir()
	cfg.Linger = time.Millisecond
	cfg.WriteTimeout = 3 * time.Second
	cfg.RetryBackoff = 20 * time.Millisecond
	cfg.MaxRetryBackoff = 200 * time.Millisecond
	return cfg
}

// runPublisher starts p.Run and returns a function that waits for it.
func runPublisher(t testing.TB, ctx context.Context, p *eventlog.Publisher) (wait func()) {
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	waited := false
	wait = func() {
		if waited {
			return
		}
		waited = true
		if err := <-done; err != nil {
			t.Errorf("publisher run: %v", err)
		}
	}
	t.Cleanup(wait)
	return wait
}

func readerConfig(brokers []string, topic, group string) eventlog.ReaderConfig {
	cfg := eventlog.DefaultReaderConfig()
	cfg.Brokers = brokers
	cfg.Topic = topic
	cfg.GroupID = group
	cfg.SessionTimeout = 6 * time.Second
	cfg.HeartbeatInterval = time.Second
	cfg.MaxWait = 500 * time.Millisecond
	cfg.JoinGroupBackoff = 200 * time.Millisecond
	return cfg
}

// waitFor polls cond until it holds or ctx ends. It is not a timing
// assertion: the deadline only turns a hang into a failure.
func waitFor(t testing.TB, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// ev is a test event: key k carries seq 0, 1, 2, ... in publish order.
type ev struct {
	key string
	seq int
}

func (e ev) value() []byte { return fmt.Appendf(nil, "%s#%06d", e.key, e.seq) }

func parseEv(t testing.TB, m eventlog.Message) ev {
	t.Helper()
	k, s, ok := strings.Cut(string(m.Value), "#")
	var seq int
	if _, err := fmt.Sscanf(s, "%d", &seq); !ok || err != nil || k != string(m.Key) {
		t.Fatalf("unexpected record %q=%q", m.Key, m.Value)
	}
	return ev{k, seq}
}

// keyedEvents publishes events for its keys round-robin and remembers how
// many each key got.
type keyedEvents struct {
	keys []string
	next map[string]int
	n    int
}

func newEvents(nkeys int) *keyedEvents {
	p := &keyedEvents{next: map[string]int{}}
	for i := range nkeys {
		p.keys = append(p.keys, fmt.Sprintf("req-%03d", i))
	}
	return p
}

func (p *keyedEvents) publish(t testing.TB, pub *eventlog.Publisher, n int) {
	t.Helper()
	for range n {
		k := p.keys[p.n%len(p.keys)]
		e := ev{k, p.next[k]}
		if err := pub.Publish([]byte(k), e.value()); err != nil {
			t.Fatalf("publish %v: %v", e, err)
		}
		p.next[k]++
		p.n++
	}
}

// sentinelKeys returns one key per partition (by kafka-go's Hash balancer,
// which the Publisher and Writer use), so a sentinel written with each marks
// the end of every partition.
func sentinelKeys(partitions int) []string {
	keys := make([]string, partitions)
	found := 0
	var h kafka.Hash
	ids := make([]int, partitions)
	for i := range ids {
		ids[i] = i
	}
	for i := 0; found < partitions; i++ {
		k := fmt.Sprintf("sentinel-%d", i)
		if p := h.Balance(kafka.Message{Key: []byte(k)}, ids...); keys[p] == "" {
			keys[p] = k
			found++
		}
	}
	return keys
}

func isSentinel(m eventlog.Message) bool { return strings.HasPrefix(string(m.Key), "sentinel-") }

// readUntilSentinels reads through a group until it has seen one sentinel
// per partition, committing every 100 records (as a handler committing
// after each stored batch would) and at the end, and returns the other
// records.
func readUntilSentinels(t testing.TB, ctx context.Context, r *eventlog.Reader, partitions int) []eventlog.Message {
	t.Helper()
	var got, pending []eventlog.Message
	seen := map[int]bool{}
	commit := func() {
		if err := r.Commit(ctx, pending...); err != nil {
			t.Fatalf("commit %d records: %v", len(pending), err)
		}
		pending = pending[:0]
	}
	for len(seen) < partitions {
		m, err := r.Fetch(ctx)
		if err != nil {
			t.Fatalf("fetch after %d records, %d sentinels: %v", len(got), len(seen), err)
		}
		if isSentinel(m) {
			seen[m.Partition] = true
		} else {
			got = append(got, m)
		}
		if pending = append(pending, m); len(pending) == 100 {
			commit()
		}
	}
	commit()
	return got
}

// checkOrder asserts that got holds want[k] distinct events for each key k,
// in publish order. Unless allowDups, each exactly once. With allowDups a
// record may repeat an earlier one (a batch resent after its
// acknowledgement was lost) but never skip ahead; it returns the number of
// repeats.
func checkOrder(t testing.TB, got []eventlog.Message, want map[string]int, allowDups bool) (dups int) {
	t.Helper()
	next := map[string]int{}
	for _, m := range got {
		e := parseEv(t, m)
		switch {
		case e.seq == next[e.key]:
			next[e.key]++
		case e.seq < next[e.key] && allowDups:
			dups++
		default:
			t.Fatalf("key %s: got seq %d, want %d (a duplicate or a reordering)", e.key, e.seq, next[e.key])
		}
	}
	for k, n := range want {
		if next[k] != n {
			t.Errorf("key %s: got %d events, want %d", k, next[k], n)
		}
	}
	if len(next) != len(want) {
		t.Errorf("got %d keys, want %d", len(next), len(want))
	}
	return dups
}

func counterValue(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range mf.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			}
		}
		return sum
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}

func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// adminClient returns a kafka-go client with its own transport: the
// package's DefaultTransport caches metadata across tests for seconds.
func adminClient(t testing.TB, brokers []string) *kafka.Client {
	tr := &kafka.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &kafka.Client{Addr: kafka.TCP(brokers...), Transport: tr}
}

// deadAddr returns an address where nothing listens.
func deadAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func appendFile(t testing.TB, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
