package eventlog_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/eventlog"
)

// TestPublisherSurvivesBrokerOutage stops the embedded broker under a running
// Publisher, keeps publishing (the events spill), restarts the broker on the
// same port and data dir, and checks that every event arrives exactly once,
// in publish order per key, and that the spill is empty afterwards.
func TestPublisherSurvivesBrokerOutage(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 60*time.Second)
	topics := uniqueTopics(t)
	dataDir := t.TempDir()
	e := startEmbedded(t, dataDir, 0, topics)
	port := e.Port()

	reg := prometheus.NewRegistry()
	cfg := publisherConfig(t, e.Brokers(), topics.Outcomes)
	cfg.SpillSegmentBytes = 4 << 10 // several segments
	pub, err := eventlog.NewPublisher(cfg, deps.Deps{Logger: testLogger(t), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	wait := runPublisher(t, ctx, pub)
	evs := newEvents(23)

	// Phase 1: broker up.
	evs.publish(t, pub, 300)
	waitFor(t, ctx, "phase 1 published", func() bool { return pub.Stats().Published == 300 })

	// Phase 2: broker down. Publish keeps accepting; after the first failed
	// batch everything in memory moves to the spill.
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	evs.publish(t, pub, 300)
	waitFor(t, ctx, "queued events moved to the spill", func() bool {
		s := pub.Stats()
		return s.QueuedEvents == 0 && s.SpillEvents == int64(evs.n-300)
	})
	evs.publish(t, pub, 300) // straight to the spill
	if s := pub.Stats(); s.SpillEvents != 600 || s.Published != 300 || s.Spilled < 300 {
		t.Fatalf("during the outage: got %+v, want 600 events in the spill, 300 published", s)
	}
	if len(segmentFiles(t, cfg.SpillDir)) < 2 {
		t.Errorf("got %d spill segments, want several", len(segmentFiles(t, cfg.SpillDir)))
	}

	// Phase 3: broker back on the same port and data; publish while the
	// spill drains.
	e2 := startEmbedded(t, dataDir, port, topics)
	evs.publish(t, pub, 300)
	for _, k := range sentinelKeys(topics.OutcomesPartitions) {
		if err := pub.Publish([]byte(k), []byte("end")); err != nil {
			t.Fatal(err)
		}
	}
	total := int64(evs.n + topics.OutcomesPartitions)
	waitFor(t, ctx, "everything published", func() bool { return pub.Stats().Published == total })
	s := pub.Stats()
	if s.SpillEvents != 0 || s.SpillBytes != 0 || s.QueuedEvents != 0 || s.Dropped != 0 || s.Replayed < 600 {
		t.Fatalf("after recovery: got %+v, want an empty spill, nothing dropped, at least 600 replayed", s)
	}
	if files := segmentFiles(t, cfg.SpillDir); len(files) != 0 {
		t.Errorf("spill segments left after replay: %v", files)
	}
	if got := counterValue(t, reg, "loopgate_eventlog_publisher_spill_bytes"); got != 0 {
		t.Errorf("spill_bytes gauge: got %v, want 0", got)
	}
	if got := counterValue(t, reg, "loopgate_eventlog_publisher_write_errors_total"); got == 0 {
		t.Error("write_errors_total: got 0, want the failed writes counted")
	}
	if err := pub.Close(ctx); err != nil {
		t.Fatal(err)
	}
	wait()

	r, err := eventlog.NewReader(readerConfig(e2.Brokers(), topics.Outcomes, "g"), deps.Deps{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := readUntilSentinels(t, ctx, r, topics.OutcomesPartitions)
	checkOrder(t, got, evs.next, false)
}

// TestPublisherSpillReplayedOnRestart runs a Publisher against a dead
// address, closes it (everything lands in the spill, with a torn record
// appended as a crash would leave), then starts a new Publisher on the same
// SpillDir against a live broker: the old events go out first, then the
// new ones, each key in publish order.
func TestPublisherSpillReplayedOnRestart(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 60*time.Second)
	topics := uniqueTopics(t)
	spillDir := t.TempDir()

	cfg := publisherConfig(t, []string{deadAddr(t)}, topics.Outcomes)
	cfg.SpillDir = spillDir
	cfg.WriteTimeout = 500 * time.Millisecond
	p1, err := eventlog.NewPublisher(cfg, deps.Deps{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	wait := runPublisher(t, ctx, p1)
	evs := newEvents(11)
	evs.publish(t, p1, 400)
	if err := p1.Close(ctx); err != nil {
		t.Fatalf("close publisher with a dead broker: %v", err)
	}
	wait()
	if s := p1.Stats(); s.SpillEvents != 400 || s.QueuedEvents != 0 || s.Dropped != 0 || s.Published != 0 {
		t.Fatalf("after close: got %+v, want all 400 events in the spill", s)
	}
	if err := p1.Publish([]byte("k"), []byte("v")); !errors.Is(err, eventlog.ErrClosed) {
		t.Errorf("publish after close: got %v, want ErrClosed", err)
	}
	if err := p1.Close(ctx); !errors.Is(err, eventlog.ErrClosed) {
		t.Errorf("second close: got %v, want ErrClosed", err)
	}

	// A crash in the middle of an append leaves a torn record.
	files := segmentFiles(t, spillDir)
	if len(files) == 0 {
		t.Fatal("no spill segments after close")
	}
	slices.Sort(files)
	torn := []byte{0, 0, 1, 0, 0xde, 0xad}
	appendFile(t, files[len(files)-1], torn)

	e := startEmbedded(t, "", 0, topics)
	cfg.Brokers = e.Brokers()
	reg := prometheus.NewRegistry()
	p2, err := eventlog.NewPublisher(cfg, deps.Deps{Logger: testLogger(t), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if got := counterValue(t, reg, "loopgate_eventlog_publisher_spill_corrupt_bytes_total"); got != float64(len(torn)) {
		t.Errorf("spill_corrupt_bytes_total: got %v, want %d", got, len(torn))
	}
	// Published before Run: these must wait behind the spill.
	evs.publish(t, p2, 100)
	if s := p2.Stats(); s.SpillEvents != 500 {
		t.Fatalf("new events while a spill is pending: got %+v, want them behind it in the spill (500)", s)
	}
	wait2 := runPublisher(t, ctx, p2)
	evs.publish(t, p2, 100)
	for _, k := range sentinelKeys(topics.OutcomesPartitions) {
		if err := p2.Publish([]byte(k), []byte("end")); err != nil {
			t.Fatal(err)
		}
	}
	if err := p2.Close(ctx); err != nil {
		t.Fatal(err)
	}
	wait2()
	s := p2.Stats()
	if want := int64(600 + topics.OutcomesPartitions); s.Published != want || s.Replayed < 500 || s.SpillEvents != 0 {
		t.Fatalf("after replay: got %+v, want %d published, the spill empty", s, want)
	}
	if files := segmentFiles(t, spillDir); len(files) != 0 {
		t.Errorf("spill segments left after replay: %v", files)
	}

	r, err := eventlog.NewReader(readerConfig(e.Brokers(), topics.Outcomes, "g"), deps.Deps{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := readUntilSentinels(t, ctx, r, topics.OutcomesPartitions)
	checkOrder(t, got, evs.next, false)
	// Old events first: within each key the sequence numbers already prove
	// it; also check no value is mangled.
	for _, m := range got {
		if !bytes.HasPrefix(m.Value, m.Key) {
			t.Fatalf("mangled record %q=%q", m.Key, m.Value)
		}
	}
}

// TestPublisherOverflowKeepsOrder fills a tiny memory queue before Run so
// most events overflow into the spill, then checks the order in Kafka.
func TestPublisherOverflowKeepsOrder(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 30*time.Second)
	topics := uniqueTopics(t)
	e := startEmbedded(t, "", 0, topics)
	cfg := publisherConfig(t, e.Brokers(), topics.Outcomes)
	cfg.MaxQueuedBytes = 4 << 10
	cfg.BatchSize = 7 // many small batches
	pub, err := eventlog.NewPublisher(cfg, deps.Deps{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	evs := newEvents(5)
	evs.publish(t, pub, 500)
	if s := pub.Stats(); s.SpillEvents == 0 || s.QueuedEvents == 0 {
		t.Fatalf("before Run: got %+v, want events both in memory and in the spill", s)
	}
	wait := runPublisher(t, ctx, pub)
	evs.publish(t, pub, 500)
	for _, k := range sentinelKeys(topics.OutcomesPartitions) {
		if err := pub.Publish([]byte(k), []byte("end")); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Close(ctx); err != nil {
		t.Fatal(err)
	}
	wait()
	r, err := eventlog.NewReader(readerConfig(e.Brokers(), topics.Outcomes, "g"), deps.Deps{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	checkOrder(t, readUntilSentinels(t, ctx, r, topics.OutcomesPartitions), evs.next, false)
}

// TestPublisherCloseWithoutBroker checks that Close returns once ctx ends
// even when the broker never answers, and keeps every event.
func TestPublisherCloseWithoutBroker(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 30*time.Second)
	cfg := publisherConfig(t, []string{deadAddr(t)}, "t.close")
	pub, err := eventlog.NewPublisher(cfg, deps.Deps{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	evs := newEvents(3)
	evs.publish(t, pub, 50)
	cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := pub.Close(cctx); err != nil {
		t.Fatal(err)
	}
	if s := pub.Stats(); s.SpillEvents != 50 || s.QueuedEvents != 0 {
		t.Fatalf("got %+v, want all 50 events in the spill", s)
	}
	if _, err := os.Stat(cfg.SpillDir); err != nil {
		t.Fatal(err)
	}
}

// TestPublisherBrokerDiesMidBatch stops the broker while batches are in
// flight. A batch the broker stored but could not acknowledge is sent again
// (at-least-once), so repeats are allowed here; gaps and reorderings are
// not.
func TestPublisherBrokerDiesMidBatch(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 60*time.Second)
	topics := uniqueTopics(t)
	dataDir := t.TempDir()
	e := startEmbedded(t, dataDir, 0, topics)
	port := e.Port()
	pub, err := eventlog.NewPublisher(publisherConfig(t, e.Brokers(), topics.Outcomes), deps.Deps{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	wait := runPublisher(t, ctx, pub)
	evs := newEvents(23)
	// Publish in small bursts so batches keep going out, and stop the
	// broker once some have been acknowledged.
	stopped := false
	for i := 0; i < 100; i++ {
		evs.publish(t, pub, 10)
		if !stopped && pub.Stats().Published > 200 {
			e.Close()
			stopped = true
		}
		time.Sleep(time.Millisecond) // let the sender interleave; not an assertion
	}
	if !stopped {
		e.Close()
	}
	e2 := startEmbedded(t, dataDir, port, topics)
	for _, k := range sentinelKeys(topics.OutcomesPartitions) {
		if err := pub.Publish([]byte(k), []byte("end")); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Close(ctx); err != nil {
		t.Fatal(err)
	}
	wait()
	if s := pub.Stats(); s.SpillEvents != 0 || s.Dropped != 0 {
		t.Fatalf("after close: got %+v, want everything sent", s)
	}
	r, err := eventlog.NewReader(readerConfig(e2.Brokers(), topics.Outcomes, "g"), deps.Deps{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if dups := checkOrder(t, readUntilSentinels(t, ctx, r, topics.OutcomesPartitions), evs.next, true); dups > 0 {
		t.Logf("%d records repeated after the broker died mid-batch", dups)
	}
}
