package ingest_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
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

// fakeSource serves a fixed list of messages, then blocks until ctx ends.
type fakeSource struct {
	mu        sync.Mutex
	msgs      []eventlog.Message
	next      int
	committed []eventlog.Message
	commitErr error
}

func (s *fakeSource) Fetch(ctx context.Context) (eventlog.Message, error) {
	s.mu.Lock()
	if s.next < len(s.msgs) {
		m := s.msgs[s.next]
		s.next++
		s.mu.Unlock()
		return m, nil
	}
	s.mu.Unlock()
	<-ctx.Done()
	return eventlog.Message{}, ctx.Err()
}

func (s *fakeSource) Commit(_ context.Context, msgs ...eventlog.Message) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.commitErr != nil {
		return s.commitErr
	}
	s.committed = append(s.committed, msgs...)
	return nil
}

func (s *fakeSource) committedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.committed)
}

// fakeSink stores outcomes by id and fails the first failures writes.
type fakeSink struct {
	mu       sync.Mutex
	failures int
	calls    int
	rows     map[string]event.Outcome
	tokens   []string
	// commitsAtWrite records how many messages were committed when each
	// write arrived, to check that commits never run ahead of writes.
	src            *fakeSource
	commitsAtWrite []int
}

func (s *fakeSink) WriteOutcomes(_ context.Context, token string, outs []event.Outcome) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.src != nil {
		s.commitsAtWrite = append(s.commitsAtWrite, s.src.committedCount())
	}
	if s.failures > 0 {
		s.failures--
		return errors.New("clickhouse: connection refused")
	}
	if s.rows == nil {
		s.rows = map[string]event.Outcome{}
	}
	for _, o := range outs {
		s.rows[o.ID] = o
	}
	s.tokens = append(s.tokens, token)
	return nil
}

func (s *fakeSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rows)
}

type fakeDLQ struct {
	mu   sync.Mutex
	msgs []eventlog.Message
}

func (d *fakeDLQ) Write(_ context.Context, msgs ...eventlog.Message) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.msgs = append(d.msgs, msgs...)
	return nil
}

func outcomeMessages(t *testing.T, n int) []eventlog.Message {
	t.Helper()
	msgs := make([]eventlog.Message, n)
	for i := range msgs {
		o := eventtest.Outcome(1, i)
		b, err := event.EncodeOutcome(o)
		if err != nil {
			t.Fatal(err)
		}
		msgs[i] = eventlog.Message{Topic: "loopgate.outcomes", Partition: i % 3, Offset: int64(i / 3), Key: []byte(o.ID), Value: b}
	}
	return msgs
}

// noSleep makes backoff instant but still honours cancellation.
func noSleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }

func newIngester(t *testing.T, cfg ingest.Config, src ingest.Source, sink ingest.Sink, dlq ingest.DeadLetters, reg prometheus.Registerer) *ingest.Ingester {
	t.Helper()
	ing, err := ingest.New(cfg, src, sink, dlq, deps.Deps{Registerer: reg}, ingest.WithSleep(noSleep))
	if err != nil {
		t.Fatal(err)
	}
	return ing
}

// runUntil runs ing until cond holds, then cancels it and waits for Run.
func runUntil(t *testing.T, ing *ingest.Ingester, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ing.Run(ctx) }()
	deadline := time.After(10 * time.Second)
	for !cond() {
		select {
		case <-deadline:
			cancel()
			<-done
			t.Fatal("condition not reached in 10s")
		case <-time.After(time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

func TestIngestWritesThenCommits(t *testing.T) {
	src := &fakeSource{msgs: outcomeMessages(t, 25)}
	sink := &fakeSink{src: src}
	cfg := ingest.DefaultConfig()
	cfg.BatchRows = 10
	reg := prometheus.NewRegistry()
	ing := newIngester(t, cfg, src, sink, &fakeDLQ{}, reg)
	runUntil(t, ing, func() bool { return src.committedCount() == 25 })

	if got := sink.count(); got != 25 {
		t.Fatalf("got %d rows, want 25", got)
	}
	// Two full batches by size, the last five by time.
	if got := len(sink.tokens); got != 3 {
		t.Fatalf("got %d writes, want 3", got)
	}
	for i, c := range sink.commitsAtWrite {
		if c != i*10 {
			t.Fatalf("write %d saw %d commits, want %d: commits must follow writes", i, c, i*10)
		}
	}
	if got := metrictest.Value(t, reg, "loopgate_ingest_rows_written_total"); got != 25 {
		t.Fatalf("got rows metric %v, want 25", got)
	}
}

func TestIngestRetriesWithoutCommitting(t *testing.T) {
	src := &fakeSource{msgs: outcomeMessages(t, 5)}
	sink := &fakeSink{failures: 7, src: src}
	cfg := ingest.DefaultConfig()
	cfg.BatchWait = time.Millisecond
	ing := newIngester(t, cfg, src, sink, &fakeDLQ{}, nil)
	runUntil(t, ing, func() bool { return src.committedCount() == 5 })

	if sink.calls != 8 {
		t.Fatalf("got %d write calls, want 7 failures + 1 success", sink.calls)
	}
	for i, c := range sink.commitsAtWrite {
		if c != 0 {
			t.Fatalf("write %d saw %d commits, want none before the write succeeded", i, c)
		}
	}
	if sink.count() != 5 {
		t.Fatalf("got %d rows, want 5", sink.count())
	}
}

func TestIngestDeadLetters(t *testing.T) {
	good := outcomeMessages(t, 4)
	wrongVersion := eventtest.Outcome(1, 99)
	wrongVersion.Schema = 99
	wv, _ := json.Marshal(wrongVersion)
	invalid := eventtest.Outcome(1, 98)
	invalid.Capability = ""
	inv, _ := json.Marshal(invalid)
	poison := []struct {
		value  []byte
		reason string
	}{
		{[]byte("{not json"), "malformed"},
		{wv, "schema_version"},
		{[]byte(`{"id":"` + strings.Repeat("x", event.MaxEncodedSize) + `"}`), "too_large"},
		{inv, "invalid"},
	}
	var msgs []eventlog.Message
	for i, p := range poison {
		msgs = append(msgs, good[i], eventlog.Message{Topic: "loopgate.outcomes", Partition: 7, Offset: int64(i), Key: []byte("k"), Value: p.value})
	}
	src := &fakeSource{msgs: msgs}
	sink := &fakeSink{}
	dlq := &fakeDLQ{}
	cfg := ingest.DefaultConfig()
	cfg.BatchWait = time.Millisecond
	reg := prometheus.NewRegistry()
	ing := newIngester(t, cfg, src, sink, dlq, reg)
	runUntil(t, ing, func() bool { return src.committedCount() == len(msgs) })

	if sink.count() != 4 {
		t.Fatalf("got %d rows, want the 4 good ones", sink.count())
	}
	if len(dlq.msgs) != len(poison) {
		t.Fatalf("got %d dead letters, want %d", len(dlq.msgs), len(poison))
	}
	for i, d := range dlq.msgs {
		h := headers(d)
		if h["loopgate.error_reason"] != poison[i].reason {
			t.Errorf("dead letter %d: got reason %q, want %q", i, h["loopgate.error_reason"], poison[i].reason)
		}
		if h["loopgate.error"] == "" || h["loopgate.source_partition"] != "7" {
			t.Errorf("dead letter %d: headers %v lack the error or the source", i, h)
		}
		if string(d.Value) != string(poison[i].value) {
			t.Errorf("dead letter %d: value changed", i)
		}
	}
	for _, p := range poison {
		got := metrictest.Value(t, reg, "loopgate_ingest_dead_letters_total", "reason", p.reason)
		if got != 1 {
			t.Errorf("dead letters{reason=%q}: got %v, want 1", p.reason, got)
		}
	}
}

func TestIngestDrainsOnCancel(t *testing.T) {
	src := &fakeSource{msgs: outcomeMessages(t, 3)}
	sink := &fakeSink{}
	cfg := ingest.DefaultConfig()
	cfg.BatchWait = time.Hour // only the drain can flush
	ing := newIngester(t, cfg, src, sink, &fakeDLQ{}, nil)
	runUntil(t, ing, func() bool {
		src.mu.Lock()
		defer src.mu.Unlock()
		return src.next == 3
	})
	if sink.count() != 3 || src.committedCount() != 3 {
		t.Fatalf("got %d rows and %d commits after cancel, want 3 and 3", sink.count(), src.committedCount())
	}
}

func TestTokenDeterministic(t *testing.T) {
	msgs := outcomeMessages(t, 9)
	a := ingest.Token(msgs)
	rev := make([]eventlog.Message, len(msgs))
	for i := range msgs {
		rev[len(msgs)-1-i] = msgs[i]
	}
	if b := ingest.Token(rev); a != b {
		t.Fatalf("got %q and %q for the same messages, want one token", a, b)
	}
	if c := ingest.Token(msgs[:8]); c == a {
		t.Fatalf("got the same token %q for different batches", c)
	}
	want := "loopgate.outcomes/0:0-2;loopgate.outcomes/1:0-2;loopgate.outcomes/2:0-2;"
	if a != want {
		t.Fatalf("got %q, want %q", a, want)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mut  func(*ingest.Config)
		ok   bool
	}{
		{"default", func(*ingest.Config) {}, true},
		{"zero rows", func(c *ingest.Config) { c.BatchRows = 0 }, false},
		{"zero wait", func(c *ingest.Config) { c.BatchWait = 0 }, false},
		{"backoff inverted", func(c *ingest.Config) { c.RetryMax = c.RetryMin / 2 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ingest.DefaultConfig()
			tt.mut(&c)
			if err := c.Validate(); (err == nil) != tt.ok {
				t.Fatalf("got %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func headers(m eventlog.Message) map[string]string {
	h := map[string]string{}
	for _, x := range m.Headers {
		h[x.Key] = string(x.Value)
	}
	return h
}
