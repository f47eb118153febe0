package ingest_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/event/eventtest"
	"github.com/loopgate/loopgate/eventlog"
	"github.com/loopgate/loopgate/ingest"
	"github.com/loopgate/loopgate/internal/metrictest"
)

// outageSink is a warehouse that can be down: while down, every write fails
// as a ClickHouse connection would.
type outageSink struct {
	down atomic.Bool
	rows atomic.Int64
}

func (s *outageSink) WriteOutcomes(_ context.Context, _ string, outs []event.Outcome) error {
	if s.down.Load() {
		return errors.New("dial tcp 127.0.0.1:9000: connect: connection refused")
	}
	s.rows.Add(int64(len(outs)))
	return nil
}

// TestLagFollowsGroupDuringOutage: with the warehouse down, ingest stops
// fetching, and loopgate_ingest_consumer_lag must still follow the consumer
// group's real lag as producers keep writing (it used to stay at its last
// value, 0, because it was recomputed only after a commit); once the
// warehouse is back it falls to 0. Embedded broker, real consumer group.
func TestLagFollowsGroupDuringOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an embedded broker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	topics := eventlog.DefaultTopicsConfig()
	topics.OutcomesPartitions = 3
	ecfg := eventlog.DefaultEmbeddedConfig()
	ecfg.Topics = topics
	broker, err := eventlog.StartEmbedded(t.Context(), ecfg, deps.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()

	wcfg := eventlog.DefaultWriterConfig()
	wcfg.Brokers, wcfg.Topic = broker.Brokers(), topics.Outcomes
	w, err := eventlog.NewWriter(wcfg, deps.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	next := 0
	produce := func(n int) {
		t.Helper()
		msgs := make([]eventlog.Message, n)
		for i := range msgs {
			o := eventtest.Outcome(7, next)
			next++
			b, err := event.EncodeOutcome(o)
			if err != nil {
				t.Fatal(err)
			}
			msgs[i] = eventlog.Message{Key: []byte(o.ID), Value: b}
		}
		if err := w.Write(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
	}

	rcfg := eventlog.DefaultReaderConfig()
	rcfg.Brokers, rcfg.Topic, rcfg.GroupID = broker.Brokers(), topics.Outcomes, "lag-test"
	rcfg.MaxWait = 100 * time.Millisecond
	reader, err := eventlog.NewReader(rcfg, deps.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()

	sink := &outageSink{}
	sink.down.Store(true) // ClickHouse is down from the start
	icfg := ingest.DefaultConfig()
	icfg.BatchRows, icfg.BatchWait, icfg.LagInterval = 50, 50*time.Millisecond, 50*time.Millisecond
	icfg.RetryMin, icfg.RetryMax = 10*time.Millisecond, 50*time.Millisecond
	reg := prometheus.NewRegistry()
	ing, err := ingest.New(icfg, reader, sink, nopDLQ{}, deps.Deps{Registerer: reg}, ingest.WithLag(reader.Lag))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ing.Run(runCtx) }()
	defer func() { stop(); <-done }()

	// waitLag polls the gauge until it equals want (the group's lag as
	// the broker reports it), or fails after the context's deadline.
	waitLag := func(want int64) {
		t.Helper()
		for {
			got := metrictest.Value(t, reg, "loopgate_ingest_consumer_lag")
			if int64(got) == want {
				gl, err := reader.GroupLag(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if gl != want {
					t.Fatalf("group lag from the broker: got %d, want %d", gl, want)
				}
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("loopgate_ingest_consumer_lag: got %v, want %d", got, want)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}

	produce(300)
	waitLag(300)
	produce(965) // the outage goes on; producers do not stop
	waitLag(1265)
	if sink.rows.Load() != 0 {
		t.Fatalf("got %d rows written while the warehouse was down, want 0", sink.rows.Load())
	}

	sink.down.Store(false) // ClickHouse is back
	waitLag(0)
	if got := sink.rows.Load(); got < 1265 {
		t.Errorf("got %d rows written after the outage, want at least 1265 (at-least-once)", got)
	}
}

type nopDLQ struct{}

func (nopDLQ) Write(context.Context, ...eventlog.Message) error { return nil }
