package ingest_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/eventlog"
	"github.com/loopgate/loopgate/ingest"
	"github.com/loopgate/loopgate/internal/metrictest"
	"github.com/loopgate/loopgate/internal/testenv"
	"github.com/loopgate/loopgate/sim/lpevents"
	"github.com/loopgate/loopgate/warehouse"
)

func suffix() string {
	var b [5]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// lpBackends are the warehouse backends the adapter is checked on: the
// ClickHouse server (18.16 here, the legacy profile) and chDB (26.x, modern).
var lpBackends = []struct {
	name   string
	config func(t *testing.T) warehouse.Config
}{
	{"server", func(t *testing.T) warehouse.Config {
		cfg := warehouse.DefaultConfig()
		cfg.Backend, cfg.Addr = warehouse.BackendServer, testenv.ClickHouse(t)
		return cfg
	}},
	{"embedded", func(t *testing.T) warehouse.Config {
		cfg := warehouse.DefaultConfig()
		cfg.Backend, cfg.LibPath, cfg.DataDir = warehouse.BackendEmbedded, testenv.ChdbLib(t), t.TempDir()
		return cfg
	}},
}

func openLPStore(t *testing.T, cfg warehouse.Config) *warehouse.Store {
	t.Helper()
	st, _ := openLPStoreReg(t, cfg)
	return st
}

func openLPStoreReg(t *testing.T, cfg warehouse.Config) (*warehouse.Store, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg.Database = "loopgate_lp_" + suffix()
	cfg.RawRetentionDays, cfg.RollupRetentionDays, cfg.FineRetentionDays = 3650, 3650, 3650
	st, err := warehouse.Open(context.Background(), cfg, deps.Deps{Registerer: reg})
	if err != nil {
		t.Fatalf("open %s warehouse: %v", cfg.Backend, err)
	}
	t.Cleanup(func() {
		st.Query(context.Background(), "DROP DATABASE IF EXISTS "+cfg.Database)
		st.Close()
	})
	return st, reg
}

// lpTopic creates a fresh gateway topic (3 partitions) and its DLQ on the
// real Kafka.
func lpTopic(t *testing.T, brokers []string) (topic, dlq string) {
	t.Helper()
	topic = "livepeer.gateway." + suffix()
	tc := eventlog.DefaultTopicsConfig()
	tc.Outcomes, tc.OutcomesPartitions, tc.Policy, tc.DLQ = topic, 3, topic+".unused", topic+".dlq"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := eventlog.EnsureTopics(ctx, brokers, tc); err != nil {
		t.Fatal(err)
	}
	return topic, tc.DLQ
}

// poison are events the adapter must dead-letter (malformed, invalid) or
// skip (unknown types), mixed into the stream.
var poison = []struct {
	value, want string // want: the DLQ reason, or "skipped"
}{
	{`{"id":`, "malformed"},
	{`not json at all`, "malformed"},
	{`{"id":"bad-1","type":"create_new_payment","timestamp":"1767225600000","data":{"faceValue":"1.5 BTC","winProb":"0.1","price":"1 wei/pixel","numTickets":"1"}}`, "invalid"},
	{`{"id":"bad-2","type":"discovery_results","timestamp":"yesterday","data":[]}`, "invalid"},
	{`{"id":"bad-3","type":"stream_trace","timestamp":"1767225600000","data":{"stream_id":"s"}}`, "invalid"},
	{`{"id":"unk-1","type":"stream_ingest_metrics","timestamp":"1767225600000","data":{"bytes":1}}`, "skipped"},
	{`{"id":"unk-2","type":"create_signed_ticket","timestamp":"1767225600000","data":{}}`, "skipped"},
}

// publishMix writes n generated events with the poison spread among them,
// and returns the messages written.
func publishMix(t *testing.T, w *eventlog.Writer, g *lpevents.Generator, n int, withPoison bool) int {
	t.Helper()
	var msgs []eventlog.Message
	for i, e := range g.Events(n) {
		msgs = append(msgs, eventlog.Message{Key: e.Key, Value: e.Value})
		if withPoison && i%(n/len(poison)) == 0 && i/(n/len(poison)) < len(poison) {
			p := poison[i/(n/len(poison))]
			msgs = append(msgs, eventlog.Message{Key: []byte(fmt.Sprint("poison-", i)), Value: []byte(p.value)})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Write(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	return len(msgs)
}

// fixedClock ticks 250 ms per reading from 2026-01-01, so the generated
// events spread over minutes.
func fixedClock() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(250 * time.Millisecond)
		return t
	}
}

func newGateway(t *testing.T) *lpevents.Generator {
	t.Helper()
	g, err := lpevents.New(lpevents.DefaultConfig(), deps.Deps{Rand: mrand.New(mrand.NewPCG(15, 1)), Clock: fixedClock()})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// countingDLQ is the real DLQ writer, counting what it acknowledged.
type countingDLQ struct {
	w *eventlog.Writer
	n atomic.Int64
}

func (d *countingDLQ) Write(ctx context.Context, msgs ...eventlog.Message) error {
	if err := d.w.Write(ctx, msgs...); err != nil {
		return err
	}
	d.n.Add(int64(len(msgs)))
	return nil
}

// crashingSink writes to the warehouse, and after `after` successful
// writes, writes once more and then "crashes": it cancels the adapter
// before the batch is committed, so the batch is re-delivered to the next
// adapter, which must not store it twice.
type crashingSink struct {
	st     *warehouse.Store
	after  int
	writes int
	crash  context.CancelFunc
}

func (c *crashingSink) WriteLivepeer(ctx context.Context, token string, b *event.LivepeerBatch) error {
	if err := c.st.WriteLivepeer(ctx, token, b); err != nil {
		return err
	}
	c.writes++
	if c.crash != nil && c.writes > c.after {
		c.crash()
		c.crash = nil
		return errors.New("killed after the write, before the commit")
	}
	return nil
}

type adapterRun struct {
	cancel context.CancelFunc
	done   chan error
	reg    *prometheus.Registry
}

func startAdapter(t *testing.T, brokers []string, topic, group string, sink ingest.LivepeerSink, dlq ingest.DeadLetters, drain time.Duration) *adapterRun {
	t.Helper()
	rc := eventlog.DefaultReaderConfig()
	rc.Brokers, rc.Topic, rc.GroupID = brokers, topic, group
	rd, err := eventlog.NewReader(rc, deps.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	cfg := ingest.DefaultLivepeerConfig()
	cfg.Batch.BatchRows, cfg.Batch.BatchWait, cfg.Batch.DrainTimeout = 200, 200*time.Millisecond, drain
	reg := prometheus.NewRegistry()
	a, err := ingest.NewLivepeer(cfg, rd, sink, dlq, deps.Deps{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	run := &adapterRun{cancel: cancel, done: make(chan error, 1), reg: reg}
	go func() {
		err := a.Run(ctx)
		rd.Close()
		run.done <- err
	}()
	return run
}

func (r *adapterRun) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	if err := <-r.done; err != nil {
		t.Fatalf("adapter Run: %v", err)
	}
}

// checkTables asserts exact row counts and exact wei sums against the
// generator's totals.
func checkTables(t *testing.T, st *warehouse.Store, tot lpevents.Totals) {
	t.Helper()
	db := st.Database()
	for table, want := range map[string]int{
		"livepeer_payments": tot.Payments, "livepeer_discovery": tot.Discovery,
		"livepeer_orchestrators": tot.Orchestrators, "livepeer_streams": tot.Streams,
	} {
		if got := scalar(t, st, "SELECT toInt64(count()) FROM "+db+"."+table); got != int64(want) {
			t.Errorf("%s: got %d rows, want %d", table, got, want)
		}
	}
	if got := scalar(t, st, "SELECT toInt64(sum(num_tickets)) FROM "+db+".livepeer_payments"); got != tot.Tickets {
		t.Errorf("tickets: got %d, want %d", got, tot.Tickets)
	}
	// Exact: compared as decimals inside ClickHouse (a float64 has 15–17
	// significant digits; these sums have more than 20).
	face, ev := tot.FaceValueWei.String(), tot.EVWei.FloatString(10)
	if got := scalar(t, st, fmt.Sprintf("SELECT toInt64(sum(face_value_wei) = toDecimal128('%s', 0)) FROM %s.livepeer_payments", face, db)); got != 1 {
		t.Errorf("Σ face_value_wei: got %v, want exactly %s", anyOf(t, st, "SELECT sum(face_value_wei) FROM "+db+".livepeer_payments"), face)
	}
	if got := scalar(t, st, fmt.Sprintf("SELECT toInt64(sum(ev_wei) = toDecimal128('%s', 10)) FROM %s.livepeer_payments", ev, db)); got != 1 {
		t.Errorf("Σ ev_wei: got %v, want exactly %s", anyOf(t, st, "SELECT sum(ev_wei) FROM "+db+".livepeer_payments"), ev)
	}
	if got := scalar(t, st, "SELECT toInt64(countIf(type = 'gateway_receive_first_processed_segment')) FROM "+db+".livepeer_streams"); got != int64(tot.FirstSegments) {
		t.Errorf("first segments: got %d, want %d", got, tot.FirstSegments)
	}
}

func scalar(t *testing.T, st *warehouse.Store, sql string) int64 {
	t.Helper()
	rows, err := st.Query(context.Background(), sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	switch v := rows.Values[0][0].(type) {
	case int64:
		return v
	case uint64:
		return int64(v)
	}
	t.Fatalf("%s: got %T", sql, rows.Values[0][0])
	return 0
}

func anyOf(t *testing.T, st *warehouse.Store, sql string) any {
	t.Helper()
	rows, err := st.Query(context.Background(), sql)
	if err != nil {
		return err
	}
	return rows.Values[0][0]
}

func lpWriter(t *testing.T, brokers []string, topic string) *eventlog.Writer {
	t.Helper()
	wc := eventlog.DefaultWriterConfig()
	wc.Brokers, wc.Topic = brokers, topic
	w, err := eventlog.NewWriter(wc, deps.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// TestLivepeerAdapterIntegration: a mix of every go-livepeer event type,
// with malformed and unknown ones, through the real Apache Kafka into each
// warehouse backend: exact counts, exact wei sums, poison dead-lettered
// with its reason, unknown types counted and skipped.
func TestLivepeerAdapterIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Kafka and ClickHouse")
	}
	brokers := []string{testenv.Kafka(t)}
	topic, dlqTopic := lpTopic(t, brokers)
	g := newGateway(t)
	total := publishMix(t, lpWriter(t, brokers, topic), g, 1400, true)
	tot := g.Totals()
	for _, tt := range []string{ingest.TypePayment, ingest.TypeDiscovery, ingest.TypeNetworkCapabilities, ingest.TypeStreamTrace, ingest.TypeAIStreamStatus, ingest.TypeAIStreamEvents} {
		if tot.Events[tt] == 0 {
			t.Fatalf("the mix has no %s event", tt)
		}
	}
	for _, be := range lpBackends {
		t.Run(be.name, func(t *testing.T) {
			st := openLPStore(t, be.config(t))
			dlq := &countingDLQ{w: lpWriter(t, brokers, dlqTopic)}
			run := startAdapter(t, brokers, topic, "lp-"+be.name+"-"+suffix(), st, dlq, 10*time.Second)
			wantDead := 0
			for _, p := range poison {
				if p.want != "skipped" {
					wantDead++
				}
			}
			testenv.Eventually(t, 90*time.Second, "every event stored and the poison dead-lettered", func() bool {
				return scalar(t, st, "SELECT toInt64(count()) FROM "+st.Database()+".livepeer_payments") >= int64(tot.Payments) &&
					dlq.n.Load() >= int64(wantDead) &&
					metrictest.Value(t, run.reg, "loopgate_ingest_livepeer_messages_total", "type", "unknown", "result", "skipped") >= 2 &&
					sumMessages(t, run.reg) >= float64(total)
			})
			run.stop(t)
			checkTables(t, st, tot)
			if got := dlq.n.Load(); got != int64(wantDead) {
				t.Errorf("got %d dead letters, want %d", got, wantDead)
			}
			for reason, want := range map[string]float64{"malformed": 2, "invalid": 3} {
				if got := metrictest.Value(t, run.reg, "loopgate_ingest_livepeer_dead_letters_total", "reason", reason); got != want {
					t.Errorf("dead letters{reason=%s}: got %v, want %v", reason, got, want)
				}
			}
			if got := metrictest.Value(t, run.reg, "loopgate_ingest_livepeer_messages_total", "type", "unknown", "result", "skipped"); got != 2 {
				t.Errorf("unknown types skipped: got %v, want 2", got)
			}
		})
	}
}

// sumMessages is every event the adapter has read, whatever the result.
func sumMessages(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == "loopgate_ingest_livepeer_messages_total" {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// TestLivepeerAdapterRestart: the adapter is killed mid-stream, after a
// batch reached the warehouse but before its offsets were committed, with
// events still arriving; a new adapter in the same consumer group finishes
// the topic, and every table holds exact counts and sums.
func TestLivepeerAdapterRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Kafka and ClickHouse")
	}
	brokers := []string{testenv.Kafka(t)}
	for _, be := range lpBackends {
		t.Run(be.name, func(t *testing.T) {
			topic, dlqTopic := lpTopic(t, brokers)
			w := lpWriter(t, brokers, topic)
			g := newGateway(t)
			st, reg := openLPStoreReg(t, be.config(t))
			dlq := &countingDLQ{w: lpWriter(t, brokers, dlqTopic)}
			group := "lp-restart-" + suffix()
			publishMix(t, w, g, 1000, false)

			sink := &crashingSink{st: st, after: 2}
			first := startAdapter(t, brokers, topic, group, sink, dlq, 0)
			sink.crash = first.cancel // the kill: no drain, no commit of the batch in hand
			select {
			case err := <-first.done:
				if err != nil {
					t.Fatalf("first adapter: %v", err)
				}
			case <-time.After(90 * time.Second):
				t.Fatal("the first adapter was not killed within 90s")
			}
			if sink.writes <= sink.after {
				t.Fatalf("got %d writes before the kill, want more than %d", sink.writes, sink.after)
			}
			publishMix(t, w, g, 600, false) // the stream goes on while it is down
			tot := g.Totals()

			second := startAdapter(t, brokers, topic, group, st, dlq, 10*time.Second)
			testenv.Eventually(t, 90*time.Second, "the second adapter stores the rest", func() bool {
				return scalar(t, st, "SELECT toInt64(count()) FROM "+st.Database()+".livepeer_streams") >= int64(tot.Streams) &&
					scalar(t, st, "SELECT toInt64(count()) FROM "+st.Database()+".livepeer_payments") >= int64(tot.Payments)
			})
			time.Sleep(time.Second) // a re-delivered batch that doubled rows would land by now
			second.stop(t)
			checkTables(t, st, tot)
			// The batch in hand at the kill was re-delivered and found stored.
			if got := metrictest.Value(t, reg, "loopgate_warehouse_duplicate_rows_skipped_total", "table", "livepeer_payments", "where", "warehouse"); got == 0 {
				t.Errorf("got %v payments skipped as already stored, want the re-delivered batch's", got)
			}
		})
	}
}
