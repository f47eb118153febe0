package optimizer

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/loopgate/loopgate/event"
)

const modelGold = "gold-model"

// twoClassFleet: three orchestrators taking 6 at once, serving the test
// class (value 0.02) and a gold class (value 1, 50× more) on the same
// capability.
func twoClassFleet() Config {
	cfg := DefaultConfig()
	cfg.Catalog = catalogOf(3*time.Second, 0.02, orchSpec{"a", 2e-9, 6}, orchSpec{"b", 2e-9, 6}, orchSpec{"c", 2e-9, 6})
	for i := range cfg.Catalog.Orchestrators {
		o := &cfg.Catalog.Orchestrators[i]
		o.Classes = append(o.Classes, ClassPrice{Capability: capT2I, Model: modelGold, PricePerUnit: 2e-9})
	}
	cfg.Catalog.Classes = append(cfg.Catalog.Classes, Class{Capability: capT2I, Model: modelGold, SLO: 3 * time.Second, Value: 1, Units: unitsT2I})
	return cfg
}

// load is a window where each orchestrator saw cheap and gold attempts
// (per 60 s) at about 1 s latency.
func load(cheap, gold int64) []Stat {
	var out []Stat
	for _, o := range []string{"a", "b", "c"} {
		out = append(out, stat(o, cheap, cheap, 900, 2000))
		g := stat(o, gold, gold, 900, 2000)
		g.Model = modelGold
		out = append(out, g)
	}
	return out
}

func entryOf(p event.Policy, model, region string) *event.ClassPolicy {
	for i := range p.Classes {
		if c := &p.Classes[i]; c.Model == model && c.ClientRegion == region {
			return c
		}
	}
	return nil
}

func TestShapingLimitsByLittlesLaw(t *testing.T) {
	tests := []struct {
		name      string
		p50, p99  float64 // ms
		timeouts  int64   // of the 300 attempts
		wantLimit int
	}{
		// μ = 6 / ~1 s; μ·SLO ≈ 17 > 7: the advertised concurrency + 1 queued binds.
		{"fast orchestrators: what they take and one queued", 900, 2000, 0, 7},
		// The same, but 3 attempts timed out: a request queued behind a
		// slot whose service does not end would wait for it.
		{"attempts timed out: none queued", 900, 2000, 3, 6},
		// p95 ≈ 2.9 s (lognormal of p50 2 s, p99 3.5 s): SLO − p95 ≈ 0.1 s < 1/μ ≈ 0.4 s:
		// the queued one would push the tail past the SLO; μ·T ≈ 7.7 allows 6.
		{"slow tail: what they take, none queued", 2000, 3500, 0, 6},
		// mean ≈ 2.8 s (p50 2.7 s, p99 4.3 s): μ·T = 6/2.8 × 3 ≈ 6.5 → 6: no room for the queued one.
		{"the SLO leaves no room to queue", 2700, 4300, 0, 6},
		// mean ≈ 5.6 s: μ·T = 6/5.6 × 3 ≈ 3.2 → 3.
		{"slower than the SLO: Little's law binds", 5000, 9000, 0, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Catalog = catalogOf(3*time.Second, 0.02, orchSpec{"a", 2e-9, 6}, orchSpec{"b", 2e-9, 0})
			h := newHarness(t, cfg)
			a := stat("a", 300, 300-tc.timeouts, tc.p50, tc.p99)
			a.Errors, a.Timeouts = 0, tc.timeouts
			h.stats.set(a, stat("b", 300, 300, tc.p50, tc.p99))
			p := h.step(t)
			checkPolicy(t, p)
			if len(p.Limits) != 1 || p.Limits[0].Orchestrator != "a" {
				t.Fatalf("got limits %+v, want one for a (b advertises no concurrency)", p.Limits)
			}
			l := p.Limits[0]
			if l.MaxInFlight != tc.wantLimit || !strings.Contains(l.Reason, "Little's law") {
				t.Fatalf("got %d (%s), want %d with its reason", l.MaxInFlight, l.Reason, tc.wantLimit)
			}
		})
	}
}

func TestShapingAdmitsCheapClassFirst(t *testing.T) {
	cfg := twoClassFleet()
	h := newHarness(t, cfg)
	// Capacity: 0.9 × 18 slots = 16.2 server-s/s. Gold: 3 × 60/60 s = 3/s ×
	// ~1 s ≈ 3.2; cheap: 3 × 600/60 = 30/s ≈ 32 server-s/s: over.
	h.stats.set(load(600, 60)...)
	p := h.step(t)
	checkPolicy(t, p)
	gold, cheap := entryOf(p, modelGold, "FRA"), entryOf(p, modelT2I, "FRA")
	if gold == nil || cheap == nil {
		t.Fatalf("missing entries in %+v", p.Classes)
	}
	if gold.AdmitPerS != 0 {
		t.Fatalf("gold: got admission %v (%s), want none: it is served first", gold.AdmitPerS, gold.AdmitReason)
	}
	if gold.Value != 1 || cheap.Value != 0.02 || gold.SLOMs != 3000 {
		t.Fatalf("got values %v/%v SLO %d, want 1/0.02 and 3000 ms", gold.Value, cheap.Value, gold.SLOMs)
	}
	// What gold leaves, ≈ 13 server-s/s at ≈ 1.06 s: ≈ 12/s of cheap's 30/s.
	if cheap.AdmitPerS < 8 || cheap.AdmitPerS > 16 || !strings.Contains(cheap.AdmitReason, "overload") {
		t.Fatalf("cheap: got admission %v (%s), want ≈ 12/s", cheap.AdmitPerS, cheap.AdmitReason)
	}
	rate := cheap.AdmitPerS

	// Next window: cheap only shows what was admitted; it stays limited.
	h.clock.advance(5 * time.Second)
	h.stats.set(load(int64(rate*60/3), 60)...)
	p = h.step(t)
	if c := entryOf(p, modelT2I, "FRA"); c.AdmitPerS == 0 || math.Abs(c.AdmitPerS-rate) > 0.2*rate {
		t.Fatalf("held at its rate: got %v, want ≈ %v", c.AdmitPerS, rate)
	}

	// The surge is over: demand well below the rate releases it.
	h.clock.advance(5 * time.Second)
	h.stats.set(load(int64(0.5*rate*60/3), 60)...)
	p = h.step(t)
	if c := entryOf(p, modelT2I, "FRA"); c.AdmitPerS != 0 {
		t.Fatalf("after the surge: got admission %v (%s), want none", c.AdmitPerS, c.AdmitReason)
	}
}

func TestShapingOff(t *testing.T) {
	cfg := twoClassFleet()
	cfg.Shaping.NoLimits, cfg.Shaping.NoAdmission = true, true
	h := newHarness(t, cfg)
	h.stats.set(load(600, 60)...)
	p := h.step(t)
	if len(p.Limits) != 0 {
		t.Fatalf("got limits %+v, want none", p.Limits)
	}
	for _, c := range p.Classes {
		if c.AdmitPerS != 0 {
			t.Fatalf("got admission %v, want none", c.AdmitPerS)
		}
	}
}

// fakeShed is a ShedReader returning what it is set to.
type fakeShed struct {
	shed []event.ShedStats
	err  error
}

func (f *fakeShed) Shed(context.Context, time.Time, time.Time) ([]event.ShedStats, error) {
	return f.shed, f.err
}

// cheapShed is n cheap-class requests shed from FRA in the 60 s window.
func cheapShed(n int64) []event.ShedStats {
	return []event.ShedStats{{Capability: capT2I, Model: modelT2I, ClientRegion: "FRA", Reason: event.ShedAdmission, Requests: n}}
}

// With the requests shed at the edge in view, a class under admission is
// judged on what it was offered: held while that exceeds what is left,
// released as soon as it fits, with no hysteresis to wait out.
func TestShapingCountsShedDemand(t *testing.T) {
	shed := &fakeShed{}
	h := newHarness(t, twoClassFleet(), WithShed(shed))
	h.stats.set(load(600, 60)...) // cheap 30/s against ≈ 12/s left (TestShapingAdmitsCheapClassFirst)
	p := h.step(t)
	rate := entryOf(p, modelT2I, "FRA").AdmitPerS
	if rate < 8 || rate > 16 {
		t.Fatalf("cheap: got admission %v, want ≈ 12/s", rate)
	}

	// Admitted ≈ rate, the rest of the 30/s shed: still 30/s offered.
	h.clock.advance(5 * time.Second)
	admitted := int64(rate * 60 / 3) // per orchestrator, per 60 s
	h.stats.set(load(admitted, 60)...)
	shed.shed = cheapShed(int64((30 - rate) * 60))
	p = h.step(t)
	c := entryOf(p, modelT2I, "FRA")
	if c.AdmitPerS == 0 || math.Abs(c.AdmitPerS-rate) > 0.2*rate || !strings.Contains(c.AdmitReason, "refused by admission") {
		t.Fatalf("30/s still offered: got admission %v (%s), want ≈ %v", c.AdmitPerS, c.AdmitReason, rate)
	}

	// Offered falls to 0.9 × the rate: it fits, and is released at once
	// (without the shed requests in view, the hysteresis would hold it
	// until below 0.8 × the rate). What the edge queue shed inside a
	// burst is not demand to admit against, however much.
	h.clock.advance(5 * time.Second)
	h.stats.set(load(int64(0.9*rate*60/3), 60)...)
	shed.shed = []event.ShedStats{{Capability: capT2I, Model: modelT2I, ClientRegion: "FRA", Reason: event.ShedDeadline, Requests: 6000}}
	p = h.step(t)
	if c := entryOf(p, modelT2I, "FRA"); c.AdmitPerS != 0 {
		t.Fatalf("offered 0.9 × the rate: got admission %v (%s), want none", c.AdmitPerS, c.AdmitReason)
	}

	// A failed read leaves the round to the hysteresis, and says so in a metric.
	h.clock.advance(5 * time.Second)
	h.stats.set(load(600, 60)...)
	shed.err = errors.New("warehouse down")
	h.step(t)
	if got := gathered(t, h, "loopgate_optimizer_shed_read_errors_total"); got != 1 {
		t.Fatalf("shed read errors: got %v, want 1", got)
	}
}

// gathered is the value of the counter or gauge name in h's registry.
func gathered(t *testing.T, h *harness, name string) float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			m := mf.GetMetric()[0]
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	t.Fatalf("metric %s not registered", name)
	return 0
}
