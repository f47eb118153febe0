package closedloop

import (
	"context"
	"testing"
	"time"

	"github.com/loopgate/loopgate/internal/testenv"
	"github.com/loopgate/loopgate/router"
	"github.com/loopgate/loopgate/sim"
	"github.com/loopgate/loopgate/sim/scenario"
)

// The tests here pin what keeps the bench honest: the product's policy
// reads only what a deployed loopgate would know, its optimizer's steps
// take (modelled) time, and its retries spend the router's budget.

// newTiny builds the policy on the tiny scenario with the timeline tl
// appended, after change(cfg).
func newTiny(t *testing.T, tl string, change func(*Config)) (*scenario.Scenario, *Policy) {
	t.Helper()
	sc, err := scenario.Parse([]byte(benchTinyScenario + tl))
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.LibPath, cfg.TempDir = testenv.ChdbLib(t), t.TempDir()
	if change != nil {
		change(&cfg)
	}
	pol, err := New(context.Background(), cfg, sim.NewEnv(sc, Name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pol.Close() })
	return sc, pol
}

// TestCatalogIsWhatDiscoveryTells runs a scenario whose timeline cuts an
// orchestrator's capacity, takes another down and changes a price. The
// optimizer's catalog must keep every orchestrator's advertised capacity
// from the start (capacity, never capacity + queue; never the timeline's
// new capacity), learn the new price, and change only on the discovery
// period, never at a timeline instant.
func TestCatalogIsWhatDiscoveryTells(t *testing.T) {
	const tl = `
timeline:
  - {at: 13s, orchestrator: fra-2, set: {capacity: 2, queue: 0}}
  - {at: 17s, orchestrator: lon-1, set: {down: true}}
  - {at: 23s, orchestrator: fra-2, set: {classes: {t2i: {price: 1.0e-9}}}}
`
	sc, pol := newTiny(t, tl, func(c *Config) { c.Discovery = 20 * time.Second })
	if _, err := sim.Run(context.Background(), sc, pol, sim.Options{}); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"fra-1": 8, "fra-2": 8, "lon-1": 8}
	for _, o := range pol.catalog.Orchestrators {
		if o.MaxInFlight != want[o.ID] {
			t.Errorf("%s: catalog max in flight %d, want its advertised capacity %d at the start", o.ID, o.MaxInFlight, want[o.ID])
		}
		if o.ID == "fra-2" && (len(o.Classes) != 1 || o.Classes[0].PricePerUnit != 1.0e-9) {
			t.Errorf("fra-2: catalog prices %+v, want the new price 1e-9 learned by discovery", o.Classes)
		}
	}
	if len(pol.refreshes) == 0 {
		t.Fatal("the catalog never changed, want the price change learned")
	}
	// Advance runs before every event; at 15 requests per second the first
	// one after a period tick comes well within a second of it.
	for _, at := range pol.refreshes {
		if at < 40*time.Second || at%(20*time.Second) >= time.Second {
			t.Errorf("catalog refreshed at %s, want only just after a 20s discovery tick from 40s on (the price changed at 23s)", at)
		}
	}
}

// TestPolicyAppliesAfterStepTime drives the slow loop by hand: a policy
// computed from the window ending at a period tick reaches the fast loop
// only when the step's modelled time has passed, and a step longer than
// the period skips the ticks it overlaps.
func TestPolicyAppliesAfterStepTime(t *testing.T) {
	ctx := context.Background()
	_, pol := newTiny(t, "", func(c *Config) { c.StepTime = StepTime{Base: 7 * time.Second} })
	if got := pol.Stats().StepTime; got != 7*time.Second {
		t.Fatalf("modelled step time %s, want 7s", got)
	}
	steps := []struct {
		at          time.Duration
		rounds      int
		wantApplied bool
	}{
		{4 * time.Second, 0, false},
		{5 * time.Second, 1, false}, // the step starts at the 5s tick
		{11900 * time.Millisecond, 1, false},
		{12 * time.Second, 1, true}, // 5s + 7s
		{14 * time.Second, 1, true}, // the 10s tick fell inside the step
		{15 * time.Second, 2, true},
	}
	var first uint64
	for _, s := range steps {
		if err := pol.Advance(ctx, s.at); err != nil {
			t.Fatalf("advance to %s: %v", s.at, err)
		}
		st := pol.Stats()
		if st.Rounds != s.rounds {
			t.Errorf("at %s: %d rounds, want %d", s.at, st.Rounds, s.rounds)
		}
		if applied := st.Version != 0; applied != s.wantApplied {
			t.Errorf("at %s: policy version %d applied = %v, want %v", s.at, st.Version, applied, s.wantApplied)
		}
		if s.at == 14*time.Second {
			first = st.Version
		}
	}
	if v := pol.Stats().Version; v != first {
		t.Errorf("the second step's policy (version %d) applied at once, want it held until 22s (version %d in use)", v, first)
	}
}

// TestRetriesSpendTheBudget runs the tiny scenario with every orchestrator
// failing most attempts and three attempts per request: without a budget
// about 1.7 retries per request would be made. With the router's budget
// (10 % of requests, no minimum) retries stay within what the budget's
// windows allow — at most 2 × 10 % of requests, since a window straddles
// two — and the rest are refused.
func TestRetriesSpendTheBudget(t *testing.T) {
	tl := `
timeline:
  - {at: 0s, orchestrator: fra-1, set: {fail: 0.9, fail_mode: fast}}
  - {at: 0s, orchestrator: fra-2, set: {fail: 0.9}}
  - {at: 0s, orchestrator: lon-1, set: {fail: 0.9}}
`
	budget := router.RetryBudgetConfig{Ratio: 0.1, Window: 10 * time.Second}
	sc, pol := newTiny(t, tl, func(c *Config) {
		c.Router.MaxAttempts = 3
		c.Router.RetryBudget = budget
	})
	res, err := sim.Run(context.Background(), sc, pol, sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := pol.Stats()
	n := len(res.Requests)
	t.Logf("%d requests, %d retries allowed, %d refused", n, st.Retries, st.RetriesRefused)
	if st.RetriesRefused == 0 {
		t.Error("no retry refused, want the budget to bind")
	}
	if limit := 2 * budget.Ratio * float64(n); float64(st.Retries) > limit {
		t.Errorf("got %d retries for %d requests, want ≤ %.0f", st.Retries, n, limit)
	}
	retried := 0
	for _, a := range res.Attempts {
		if a.Seq > 0 {
			retried++
		}
	}
	if retried != st.Retries {
		t.Errorf("the simulator sent %d retries, the budget allowed %d", retried, st.Retries)
	}
}
