package optimizer

import (
	"math"
	"testing"
	"time"
)

// TestShareStep: when the estimates flip the solution between two
// near-equal orchestrators, a round moves the shares ShareStep of the way;
// a flip that is worth it (one became much slower) and an ejection take
// effect at once.
func TestShareStep(t *testing.T) {
	tests := []struct {
		name          string
		first, second []Stat
		halfway       bool
	}{
		{"near-equal: noise, moved halfway",
			[]Stat{stat("a", 300, 300, 900, 2000), stat("b", 300, 300, 950, 2100)},
			[]Stat{stat("a", 300, 300, 950, 2100), stat("b", 300, 300, 900, 2000)}, true},
		{"a became much slower: evidence, moved at once",
			[]Stat{stat("a", 300, 300, 500, 1200), stat("b", 300, 300, 2700, 6500)},
			[]Stat{stat("a", 300, 300, 2700, 6500), stat("b", 300, 300, 500, 1200)}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			run := func(step float64) (r1, r2 float64) {
				cfg := DefaultConfig()
				cfg.ShareStep = step
				cfg.Catalog = catalogOf(3*time.Second, 0.02, orchSpec{"a", 2e-9, 200}, orchSpec{"b", 2e-9, 200})
				h := newHarness(t, cfg)
				h.stats.set(tc.first...)
				r1 = sharesOf(t, h.step(t), "FRA")["a"].Share
				h.clock.advance(cfg.Period)
				h.stats.set(tc.second...)
				p := h.step(t)
				checkPolicy(t, p)
				return r1, sharesOf(t, p, "FRA")["a"].Share
			}
			before, after := run(1)
			if before-after < 0.05 || (!tc.halfway && (before < 0.9 || after > 0.1)) {
				t.Fatalf("step 1: got a's share %.4f then %.4f, want the solution to move from a (to b for the evidence)", before, after)
			}
			b, got := run(0.5)
			if b != before {
				t.Fatalf("first round: got %.6f with step 0.5, %.6f with 1; want the same (nothing to move from)", b, before)
			}
			want := after
			if tc.halfway { // two orchestrators, same floors: exactly halfway
				want = (before + after) / 2
			}
			if math.Abs(got-want) > 1e-5 {
				t.Fatalf("step 0.5: got a's share %.6f, want %.6f", got, want)
			}
		})
	}

	// An ejected orchestrator leaves at once, whatever the step.
	cfg, stats := failingFleet()
	h := newHarness(t, cfg)
	h.stats.set(stats[0], stats[1], stat("c", 200, 200, 800, 2000))
	if got := sharesOf(t, h.step(t), "FRA")["c"].Share; got < 0.1 {
		t.Fatalf("healthy c: got share %.4f, want a real one", got)
	}
	h.clock.advance(cfg.Period)
	h.stats.set(stats...)
	p := h.step(t)
	if len(p.Ejections) != 1 || sharesOf(t, p, "FRA")["c"].Share != 0 {
		t.Fatalf("c failing: got ejections %+v, share %+v; want c out at once", p.Ejections, sharesOf(t, p, "FRA")["c"])
	}
}
