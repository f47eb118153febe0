package eventlog_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/eventlog"
)

func TestPublisherConfigValidate(t *testing.T) {
	runValidate(t, func() eventlog.PublisherConfig {
		c := eventlog.DefaultPublisherConfig()
		c.Brokers = []string{"127.0.0.1:9092"}
		c.SpillDir = "/var/lib/loopgate/spill"
		return c
	}, eventlog.PublisherConfig.Validate, []validateCase[eventlog.PublisherConfig]{
		{"defaults with brokers and dir", func(*eventlog.PublisherConfig) {}, ""},
		{"no brokers", func(c *eventlog.PublisherConfig) { c.Brokers = nil }, "Brokers"},
		{"no spill dir", func(c *eventlog.PublisherConfig) { c.SpillDir = "" }, "SpillDir"},
		{"bad topic", func(c *eventlog.PublisherConfig) { c.Topic = "a topic" }, "Topic"},
		{"zero batch size", func(c *eventlog.PublisherConfig) { c.BatchSize = 0 }, "BatchSize"},
		{"zero queue", func(c *eventlog.PublisherConfig) { c.MaxQueuedBytes = 0 }, "MaxQueuedBytes"},
		{"batch smaller than a message", func(c *eventlog.PublisherConfig) { c.BatchBytes = int64(c.MaxMessageBytes) }, "BatchBytes"},
		{"huge messages", func(c *eventlog.PublisherConfig) { c.MaxMessageBytes = 32 << 20; c.BatchBytes = 64 << 20 }, "MaxMessageBytes"},
		{"negative linger", func(c *eventlog.PublisherConfig) { c.Linger = -time.Millisecond }, "Linger"},
		{"zero linger", func(c *eventlog.PublisherConfig) { c.Linger = 0 }, ""},
		{"backoff cap below backoff", func(c *eventlog.PublisherConfig) { c.MaxRetryBackoff = time.Millisecond }, "MaxRetryBackoff"},
		{"unknown compression", func(c *eventlog.PublisherConfig) { c.Compression = "brotli" }, "compression"},
		{"zstd", func(c *eventlog.PublisherConfig) { c.Compression = "zstd" }, ""},
	})
}

// TestPublisherDropsOnlyWhenSpillFull fills memory, then the spill, with no
// broker and no Run: memory overflows into the spill, and only events that
// fit in neither are dropped, each counted.
func TestPublisherDropsOnlyWhenSpillFull(t *testing.T) {
	cfg := publisherConfig(t, []string{deadAddr(t)}, "t.drop")
	cfg.MaxQueuedBytes = 10 * (100 + 64) // ten events in memory
	cfg.MaxSpillBytes = 8 + 20*(8+8+1+0+100)
	reg := prometheus.NewRegistry()
	pub, err := eventlog.NewPublisher(cfg, deps.Deps{Logger: testLogger(t), Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	value := bytes.Repeat([]byte("v"), 100)
	dropped := 0
	for range 40 {
		err := pub.Publish(nil, value)
		switch {
		case errors.Is(err, eventlog.ErrDropped):
			dropped++
		case err != nil:
			t.Fatal(err)
		}
	}
	s := pub.Stats()
	if s.QueuedEvents != 10 || s.SpillEvents != 20 || dropped != 10 || s.Dropped != 10 || s.Spilled != 20 {
		t.Fatalf("got %+v and %d ErrDropped, want 10 queued, 20 spilled, 10 dropped", s, dropped)
	}
	for name, want := range map[string]float64{
		"loopgate_eventlog_publisher_dropped_total": 10,
		"loopgate_eventlog_publisher_spilled_total": 20,
		"loopgate_eventlog_publisher_queue_depth":   10,
		"loopgate_eventlog_publisher_spill_events":  20,
	} {
		if got := counterValue(t, reg, name); got != want {
			t.Errorf("%s: got %v, want %v", name, got, want)
		}
	}
	if err := pub.Publish(nil, bytes.Repeat([]byte("x"), cfg.MaxMessageBytes+1)); !errors.Is(err, eventlog.ErrTooLarge) {
		t.Errorf("oversized event: got %v, want ErrTooLarge", err)
	}

	// Close cannot reach Kafka and must not lose the ten events in memory,
	// even though the spill is at its limit.
	ctx := testCtx(t, 10*time.Second)
	if err := pub.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if s := pub.Stats(); s.SpillEvents != 30 || s.QueuedEvents != 0 || s.Dropped != 10 {
		t.Fatalf("after close: got %+v, want 30 events in the spill", s)
	}
}

func TestPublisherRunTwice(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	pub, err := eventlog.NewPublisher(publisherConfig(t, []string{deadAddr(t)}, "t.run"), deps.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 2)
	for range 2 {
		go func() { done <- pub.Run(ctx) }()
	}
	// Whichever starts second refuses at once; the other runs until Close.
	refused := <-done
	if refused == nil {
		t.Fatal("concurrent Run: got nil, want an error from one of them")
	}
	if err := pub.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Errorf("the running Run: got %v, want nil after Close", err)
	}
	if err := pub.Run(ctx); err != nil {
		t.Errorf("Run after Close: got %v, want nil", err)
	}
}

func TestPublisherMetricsRegistration(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := publisherConfig(t, []string{"127.0.0.1:1"}, "t.metrics")
	pub, err := eventlog.NewPublisher(cfg, deps.Deps{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close(testCtx(t, 5*time.Second))
	cfg.SpillDir = t.TempDir()
	if _, err := eventlog.NewPublisher(cfg, deps.Deps{Registerer: reg}); err == nil {
		t.Fatal("second publisher for the same topic on one registry: got nil error")
	}
	// Another topic registers fine: metrics carry a topic label.
	cfg.Topic = "t.metrics2"
	p2, err := eventlog.NewPublisher(cfg, deps.Deps{Registerer: reg})
	if err != nil {
		t.Fatalf("publisher for another topic: %v", err)
	}
	p2.Close(testCtx(t, 5*time.Second))
	want := []string{"published_total", "spilled_total", "replayed_total", "dropped_total", "rejected_total",
		"write_errors_total", "spill_corrupt_bytes_total", "queue_depth", "queue_bytes", "spill_events", "spill_bytes"}
	for _, w := range want {
		counterValue(t, reg, "loopgate_eventlog_publisher_"+w) // fails if missing
	}
}
