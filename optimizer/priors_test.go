package optimizer

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/loopgate/loopgate/event"
)

type fakePriors struct {
	priors []event.OrchestratorPrior
	err    error
	calls  int
}

func (f *fakePriors) LivepeerPriors(context.Context, time.Time, time.Time) ([]event.OrchestratorPrior, error) {
	f.calls++
	return f.priors, f.err
}

// priorFleet is two catalog orchestrators with no catalog price and no
// loopgate outcomes, and what go-livepeer's events say of them: "fast" is
// discovered in 20 ms and paid 1,000 wei/pixel, "slow" in 900 ms and paid
// 9,000 wei/pixel.
func priorFleet() (Config, *fakePriors) {
	cfg := DefaultConfig()
	cfg.AdvisorRegions = []string{"FRA"}
	cfg.Catalog = catalogOf(time.Second, 0, orchSpec{"fast", 0, 8}, orchSpec{"slow", 0, 8})
	fast, slow := cfg.Catalog.Orchestrators[0], cfg.Catalog.Orchestrators[1]
	return cfg, &fakePriors{priors: []event.OrchestratorPrior{
		{Address: fast.Address, URL: fast.URL, DiscoveryP50Ms: 20, DiscoverySamples: 60,
			Prices: []event.PriorPrice{{Capability: capT2I, PricePerUnitWei: 1000, PriceUnit: "pixel", Payments: 40}}},
		{Address: slow.Address, URL: slow.URL, DiscoveryP50Ms: 900, DiscoverySamples: 60,
			Prices: []event.PriorPrice{{Capability: capT2I, PricePerUnitWei: 9000, PriceUnit: "pixel", Payments: 40}}},
	}}
}

// TestPriorsRankFastCheapAboveSlowDear: with only go-livepeer events and no
// outcomes, the advisor's perf-stats score ranks the fast, cheap
// orchestrator above the slow, dear one, and the estimates behind it
// have the fast one quicker and cheaper.
func TestPriorsRankFastCheapAboveSlowDear(t *testing.T) {
	cfg, pr := priorFleet()
	h := newHarness(t, cfg, WithPriors(pr, DefaultPriorsConfig()))
	h.step(t)
	if pr.calls != 1 {
		t.Fatalf("got %d prior reads, want 1 per round", pr.calls)
	}
	var perf map[string]map[string]map[string]float64
	get(t, h.opt.AdvisorHandler(), PerfStatsPath, &perf)
	fast, slow := perf[cfg.Catalog.Orchestrators[0].Address]["FRA"]["score"], perf[cfg.Catalog.Orchestrators[1].Address]["FRA"]["score"]
	if !(fast > slow) {
		t.Errorf("perf-stats: got fast %v, slow %v, want fast above slow", fast, slow)
	}

	r := newRound(&h.opt.cfg, &h.opt.catalog, nil, &h.opt.st, t0, cfg.Lambda)
	c := &r.classes[0]
	if !(c.work[0] < c.work[1]) {
		t.Errorf("service time: got fast %v s, slow %v s, want fast below slow", c.work[0], c.work[1])
	}
	if !(c.cost[0] > 0 && c.cost[0] < c.cost[1]) {
		t.Errorf("cost: got fast %v, slow %v USD, want fast positive and below slow", c.cost[0], c.cost[1])
	}
	// Without priors the two are indistinguishable.
	h2 := newHarness(t, cfg)
	h2.step(t)
	perf = nil
	get(t, h2.opt.AdvisorHandler(), PerfStatsPath, &perf)
	if a, b := perf[cfg.Catalog.Orchestrators[0].Address]["FRA"]["score"], perf[cfg.Catalog.Orchestrators[1].Address]["FRA"]["score"]; a != b {
		t.Errorf("without priors: got %v and %v, want equal scores", a, b)
	}
}

// TestPriorsYieldToOutcomes: once an orchestrator has loopgate outcomes,
// its measured latency wins over its discovery latency.
func TestPriorsYieldToOutcomes(t *testing.T) {
	cfg, pr := priorFleet()
	h := newHarness(t, cfg, WithPriors(pr, DefaultPriorsConfig()))
	h.stats.set(stat("slow", 200, 200, 100, 200), stat("fast", 200, 200, 100, 200))
	h.step(t)
	r := newRound(&h.opt.cfg, &h.opt.catalog, h.stats.stats, &h.opt.st, t0, cfg.Lambda)
	c := &r.classes[0]
	if d := c.work[1] - c.work[0]; d > 0.01 || d < -0.01 {
		t.Errorf("service time with outcomes: got fast %v s, slow %v s, want equal (the outcomes say so)", c.work[0], c.work[1])
	}
}

// TestPriorsReadFailureKeepsLast: a failed read neither fails the round
// nor forgets the previous priors.
func TestPriorsReadFailureKeepsLast(t *testing.T) {
	cfg, pr := priorFleet()
	h := newHarness(t, cfg, WithPriors(pr, DefaultPriorsConfig()))
	h.step(t)
	pr.err = errors.New("clickhouse: table livepeer_discovery does not exist")
	h.step(t)
	if h.opt.st.priors == nil || len(h.opt.st.priors.byKey) == 0 {
		t.Fatal("got no priors after a failed read, want the last ones kept")
	}
}

func TestPriorsConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		mut  func(*PriorsConfig)
		ok   bool
	}{
		{"default", func(*PriorsConfig) {}, true},
		{"no window", func(c *PriorsConfig) { c.Window = 0 }, false},
		{"negative trips", func(c *PriorsConfig) { c.DiscoveryTrips = -1 }, false},
		{"no rate", func(c *PriorsConfig) { c.USDPerETH = 0 }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultPriorsConfig()
			tt.mut(&c)
			if err := c.Validate(); (err == nil) != tt.ok {
				t.Fatalf("got %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
