package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/eventlog"
	"github.com/loopgate/loopgate/ingest"
	"github.com/loopgate/loopgate/internal/testenv"
)

// gatedSink holds each write until the test releases it, and records which
// outcomes are durable (their write returned nil).
type gatedSink struct {
	gate    chan struct{} // one receive per write
	mu      sync.Mutex
	durable map[string]bool
	writes  int
	started int
}

func (s *gatedSink) WriteOutcomes(ctx context.Context, _ string, outs []event.Outcome) error {
	s.mu.Lock()
	s.started++
	s.mu.Unlock()
	select {
	case <-s.gate:
	case <-ctx.Done():
		return ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range outs {
		s.durable[o.ID] = true
	}
	s.writes++
	return nil
}

func (s *gatedSink) isDurable(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.durable[id]
}

// checkingSource is a fakeSource whose Commit fails the test when it would
// move a partition's offset past a message whose row is not durable, or
// backwards.
type checkingSource struct {
	fakeSource
	t       *testing.T
	sink    *gatedSink
	highest map[int]int64
	all     []eventlog.Message // every message, to check those below a commit
}

func (s *checkingSource) Commit(ctx context.Context, msgs ...eventlog.Message) error {
	top := map[int]int64{}
	for _, m := range msgs {
		top[m.Partition] = max(top[m.Partition], m.Offset)
	}
	s.mu.Lock()
	for p, off := range top {
		if off < s.highest[p] {
			s.t.Errorf("commit of partition %d at %d after %d: commits went backwards", p, off, s.highest[p])
		}
		s.highest[p] = off
	}
	s.mu.Unlock()
	// Every message at or below a committed offset must be durable.
	for _, m := range s.all {
		if off, ok := top[m.Partition]; ok && m.Offset <= off && !s.sink.isDurable(string(m.Key)) {
			s.t.Errorf("commit of partition %d up to %d while offset %d (%s) is not durable", m.Partition, off, m.Offset, m.Key)
		}
	}
	return s.fakeSource.Commit(ctx, msgs...)
}

// TestPipelineOverlapsAndCommitsInOrder holds the writer on its first batch
// and checks that later batches are fetched and decoded meanwhile (the
// pipeline), yet nothing is committed until the first write returns; then
// releases the writes one by one and checks, at every commit, that no
// offset is committed ahead of a durable row.
func TestPipelineOverlapsAndCommitsInOrder(t *testing.T) {
	for _, workers := range []int{1, 4} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			msgs := outcomeMessages(t, 1200)
			sink := &gatedSink{gate: make(chan struct{}), durable: map[string]bool{}}
			src := &checkingSource{fakeSource: fakeSource{msgs: msgs}, t: t, sink: sink, highest: map[int]int64{}, all: msgs}
			cfg := ingest.DefaultConfig()
			cfg.BatchRows, cfg.BatchWait, cfg.Pipeline, cfg.DecodeWorkers = 300, time.Hour, 2, workers
			ing := newIngester(t, cfg, src, sink, &fakeDLQ{}, nil)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() { done <- ing.Run(ctx) }()

			// Batch 1 is at the writer; batches 2 and 3 wait behind it
			// (decoded and fetched), and batch 4 is being collected.
			testenv.Eventually(t, 10*time.Second, "fetching ran ahead of the held write", func() bool {
				src.mu.Lock()
				defer src.mu.Unlock()
				return src.next >= 1000
			})
			if c := src.committedCount(); c != 0 {
				t.Fatalf("got %d commits while the first write is held, want 0", c)
			}
			for k := 1; k <= 4; k++ {
				sink.gate <- struct{}{}
				testenv.Eventually(t, 10*time.Second, "batch committed after its write", func() bool { return src.committedCount() == 300*k })
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Run: %v", err)
			}
			if sink.writes != 4 {
				t.Fatalf("got %d writes, want 4", sink.writes)
			}
		})
	}
}

// TestPipelineDrainsEveryHeldBatch cancels Run while several batches wait
// behind a held write: the drain writes and commits them all, in order.
func TestPipelineDrainsEveryHeldBatch(t *testing.T) {
	msgs := outcomeMessages(t, 1000)
	sink := &gatedSink{gate: make(chan struct{}), durable: map[string]bool{}}
	src := &checkingSource{fakeSource: fakeSource{msgs: msgs}, t: t, sink: sink, highest: map[int]int64{}, all: msgs}
	cfg := ingest.DefaultConfig()
	cfg.BatchRows, cfg.BatchWait, cfg.Pipeline = 300, time.Hour, 2
	ing := newIngester(t, cfg, src, sink, &fakeDLQ{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ing.Run(ctx) }()
	testenv.Eventually(t, 10*time.Second, "every message fetched", func() bool {
		src.mu.Lock()
		defer src.mu.Unlock()
		return src.next == 1000
	})
	cancel()
	go func() {
		for range 4 {
			sink.gate <- struct{}{}
		}
	}()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := src.committedCount(); got != 1000 {
		t.Fatalf("got %d committed after the drain, want all 1000", got)
	}
}

// failingSource fails Fetch after its messages, as a lost broker does.
type failingSource struct{ checkingSource }

var errBroken = errors.New("broker connection lost")

func (s *failingSource) Fetch(ctx context.Context) (eventlog.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.next < len(s.msgs) {
		s.next++
		return s.msgs[s.next-1], nil
	}
	return eventlog.Message{}, errBroken
}

// TestPipelineStopsOnSourceFailure: a Source failure ends Run with that
// error, and nothing is committed that was not written.
func TestPipelineStopsOnSourceFailure(t *testing.T) {
	msgs := outcomeMessages(t, 700)
	sink := &gatedSink{gate: make(chan struct{}), durable: map[string]bool{}}
	close(sink.gate) // writes pass at once
	src := &failingSource{checkingSource{fakeSource: fakeSource{msgs: msgs}, t: t, sink: sink, highest: map[int]int64{}, all: msgs}}
	cfg := ingest.DefaultConfig()
	cfg.BatchRows, cfg.BatchWait = 300, time.Hour
	ing := newIngester(t, cfg, src, sink, &fakeDLQ{}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ing.Run(ctx); !errors.Is(err, errBroken) {
		t.Fatalf("Run: got %v, want the source's error", err)
	}
	if got := src.committedCount(); got > 600 {
		t.Fatalf("got %d committed, want at most the two full batches", got)
	}
}

// burstSource serves its messages only as the test allows them, then
// blocks until more are allowed or ctx ends.
type burstSource struct {
	fakeSource
	allow chan int
	left  int
}

func (s *burstSource) Fetch(ctx context.Context) (eventlog.Message, error) {
	for {
		s.mu.Lock()
		if s.left > 0 && s.next < len(s.msgs) {
			s.left--
			s.next++
			m := s.msgs[s.next-1]
			s.mu.Unlock()
			return m, nil
		}
		s.mu.Unlock()
		select {
		case n := <-s.allow:
			s.mu.Lock()
			s.left += n
			s.mu.Unlock()
		case <-ctx.Done():
			return eventlog.Message{}, ctx.Err()
		}
	}
}

// sizedSink records the size of each write; writes wait for the gate.
type sizedSink struct {
	gatedSink
	sizes []int
}

func (s *sizedSink) WriteOutcomes(ctx context.Context, token string, outs []event.Outcome) error {
	if err := s.gatedSink.WriteOutcomes(ctx, token, outs); err != nil {
		return err
	}
	s.mu.Lock()
	s.sizes = append(s.sizes, len(outs))
	s.mu.Unlock()
	return nil
}

// TestPipelineTopsUpWhileWriterBusy: messages arrive in bursts of 50, each
// followed by a pause longer than BatchWait. While the writer is free each
// burst is a batch of its own; once the writer is held and the pipeline is
// full, the bursts that follow go into one growing batch (up to BatchRows)
// rather than into batches of 50 waiting in line.
func TestPipelineTopsUpWhileWriterBusy(t *testing.T) {
	const bursts, burst = 8, 50
	msgs := outcomeMessages(t, bursts*burst)
	sink := &sizedSink{gatedSink: gatedSink{gate: make(chan struct{}), durable: map[string]bool{}}}
	src := &burstSource{fakeSource: fakeSource{msgs: msgs}, allow: make(chan int)}
	cfg := ingest.DefaultConfig()
	cfg.BatchRows, cfg.BatchWait, cfg.Pipeline = 1000, time.Millisecond, 1
	ing := newIngester(t, cfg, src, sink, &fakeDLQ{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ing.Run(ctx) }()
	for k := 1; k <= bursts; k++ {
		select {
		case src.allow <- burst:
		case <-time.After(10 * time.Second):
			t.Fatalf("burst %d: the source is no longer read while the writer is held", k)
		}
		testenv.Eventually(t, 10*time.Second, "burst fetched", func() bool {
			src.mu.Lock()
			defer src.mu.Unlock()
			return src.next == k*burst
		})
		time.Sleep(20 * cfg.BatchWait) // let the burst's batch fall due
	}
	go func() {
		for range bursts {
			sink.gate <- struct{}{}
		}
	}()
	testenv.Eventually(t, 10*time.Second, "every message committed", func() bool { return src.committedCount() == bursts*burst })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	largest := 0
	for _, n := range sink.sizes {
		largest = max(largest, n)
	}
	// Held: one batch at the writer, one decoded, one at the decoder; the
	// fourth burst starts the batch that the rest top up.
	if largest < 2*burst {
		t.Fatalf("got batch sizes %v, want the bursts after the pipeline filled merged into one batch", sink.sizes)
	}
}
