package ingest_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/eventlog"
	"github.com/loopgate/loopgate/ingest"
	"github.com/loopgate/loopgate/internal/metrictest"
)

// holdingSource is a fakeSource whose messages belong to consumer-group
// generations, as eventlog.Reader's do: Hold refuses messages of any
// generation but the live one, and revoke ends the live one, cancelling
// the open Holds' contexts.
type holdingSource struct {
	*fakeSource
	mu          sync.Mutex
	live        int64
	cancels     []context.CancelFunc
	heldGens    [][]int64 // per Hold call, the distinct generations of its messages
	refuseAfter bool      // Commit of generation 1 is refused (and ends it)
}

func (s *holdingSource) Hold(ctx context.Context, msgs []eventlog.Message) (context.Context, func(), error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[int64]bool{}
	var gens []int64
	for _, m := range msgs {
		if !seen[m.Generation] {
			seen[m.Generation] = true
			gens = append(gens, m.Generation)
		}
	}
	s.heldGens = append(s.heldGens, gens)
	for _, m := range msgs {
		if m.Generation != s.live {
			return nil, nil, fmt.Errorf("generation %d: %w", m.Generation, eventlog.ErrRevoked)
		}
	}
	hctx, cancel := context.WithCancel(ctx)
	s.cancels = append(s.cancels, cancel)
	return hctx, cancel, nil
}

// revoke ends the live generation and makes next the live one.
func (s *holdingSource) revoke(next int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.live = next
	for _, c := range s.cancels {
		c()
	}
	s.cancels = nil
}

func (s *holdingSource) Commit(ctx context.Context, msgs ...eventlog.Message) error {
	if s.refuseAfter && len(msgs) > 0 && msgs[0].Generation == 1 {
		s.revoke(2)
		return fmt.Errorf("commit: %w", eventlog.ErrRevoked)
	}
	return s.fakeSource.Commit(ctx, msgs...)
}

// hookSink is a fakeSink that runs before on every write first.
type hookSink struct {
	fakeSink
	before func(outs []event.Outcome) error
}

func (s *hookSink) WriteOutcomes(ctx context.Context, token string, outs []event.Outcome) error {
	if s.before != nil {
		if err := s.before(outs); err != nil {
			return err
		}
	}
	return s.fakeSink.WriteOutcomes(ctx, token, outs)
}

// TestIngestDropsRevokedBatches: ten messages of generation 1, then ten of
// generation 2. However generation 1 ends — before its batch is held,
// during its write, or by a refused commit — its batch is dropped
// uncommitted and not retried, every Hold covers one generation only, and
// generation 2 is written and committed.
func TestIngestDropsRevokedBatches(t *testing.T) {
	for _, tc := range []struct {
		name        string
		live        int64 // the live generation at the start
		revokeWrite bool  // the first write ends generation 1 and fails
		refuseAfter bool
		wantWrites1 int // writes of generation 1's outcomes
	}{
		{name: "before the hold", live: 2, wantWrites1: 0},
		{name: "during the write", live: 1, revokeWrite: true, wantWrites1: 1},
		{name: "commit refused", live: 1, refuseAfter: true, wantWrites1: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs := outcomeMessages(t, 20)
			for j := range msgs {
				msgs[j].Generation = 1 + int64(j/10)
			}
			gen1 := map[string]bool{}
			for _, m := range msgs[:10] {
				gen1[string(m.Key)] = true
			}
			src := &holdingSource{fakeSource: &fakeSource{msgs: msgs}, live: tc.live, refuseAfter: tc.refuseAfter}
			var mu sync.Mutex
			writes1 := 0
			sink := &hookSink{before: func(outs []event.Outcome) error {
				mu.Lock()
				defer mu.Unlock()
				if len(outs) == 0 || !gen1[outs[0].ID] {
					return nil
				}
				writes1++
				if tc.revokeWrite {
					src.revoke(2)
					return fmt.Errorf("clickhouse: connection reset")
				}
				return nil
			}}
			cfg := ingest.DefaultConfig()
			cfg.BatchRows, cfg.BatchWait = 100, 50*time.Millisecond // both generations would fit in one batch
			reg := prometheus.NewRegistry()
			ing := newIngester(t, cfg, src, sink, &fakeDLQ{}, reg)
			runUntil(t, ing, func() bool { return src.committedCount() >= 10 })

			src.fakeSource.mu.Lock()
			committed := append([]eventlog.Message(nil), src.committed...)
			src.fakeSource.mu.Unlock()
			if len(committed) != 10 {
				t.Errorf("committed %d messages, want 10 (generation 2's)", len(committed))
			}
			for _, m := range committed {
				if m.Generation != 2 {
					t.Errorf("committed offset %d/%d of generation %d, want only generation 2", m.Partition, m.Offset, m.Generation)
				}
			}
			src.mu.Lock()
			for k, gens := range src.heldGens {
				if len(gens) != 1 {
					t.Errorf("hold %d covered generations %v, want one", k, gens)
				}
			}
			src.mu.Unlock()
			mu.Lock()
			if writes1 != tc.wantWrites1 {
				t.Errorf("generation 1 written %d times, want %d (no retry once revoked)", writes1, tc.wantWrites1)
			}
			mu.Unlock()
			if got := metrictest.Value(t, reg, "loopgate_ingest_revoked_messages_total"); got != 10 {
				t.Errorf("revoked messages: got %v, want 10", got)
			}
		})
	}
}
