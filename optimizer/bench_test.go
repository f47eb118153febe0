package optimizer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/loopgate/loopgate/eventlog"
)

// benchFleet is nOrch orchestrators, nClass classes and nRegion client
// regions; every orchestrator serves perOrch classes, with prices,
// latencies and failure rates that differ, and demand at load of the
// fleet's capacity.
func benchFleet(nOrch, nClass, nRegion, perOrch int, load float64) (Config, []Stat) {
	return randomFleet(rand.New(rand.NewPCG(1, 2)), nOrch, nClass, nRegion, perOrch, load)
}

// randomFleet is benchFleet drawn from rng.
func randomFleet(rng *rand.Rand, nOrch, nClass, nRegion, perOrch int, load float64) (Config, []Stat) {
	cfg := DefaultConfig()
	regions := []string{"FRA", "LAX", "MDW", "SIN", "NYC", "LON", "SAO", "PRG"}[:nRegion]
	for c := 0; c < nClass; c++ {
		cfg.Catalog.Classes = append(cfg.Catalog.Classes, Class{
			Capability: "cap", Model: fmt.Sprintf("m%d", c), SLO: time.Duration(2+c%3) * time.Second, Value: 0.02, Units: 1e6,
		})
	}
	type offer struct {
		orch, class  int
		p50, p99, ok float64
	}
	var offers []offer
	for o := 0; o < nOrch; o++ {
		orch := Orchestrator{
			ID: fmt.Sprintf("o%03d", o), URL: fmt.Sprintf("https://o%03d:8935", o), Address: fmt.Sprintf("0x%040x", o+1),
			MaxInFlight: 4 + rng.IntN(12),
		}
		first := rng.IntN(nClass)
		for k := 0; k < perOrch; k++ {
			c := (first + k) % nClass
			orch.Classes = append(orch.Classes, ClassPrice{Capability: "cap", Model: fmt.Sprintf("m%d", c), PricePerUnit: 1e-9 * (1 + 3*rng.Float64())})
			p50 := 300 + 1500*rng.Float64()
			offers = append(offers, offer{o, c, p50, p50 * (1.5 + 2*rng.Float64()), 0.9 + 0.1*rng.Float64()})
		}
		cfg.Catalog.Orchestrators = append(cfg.Catalog.Orchestrators, orch)
	}
	// Demand: spread evenly over offers and regions, scaled to the load.
	capacity, work := 0.0, 0.0
	for _, o := range cfg.Catalog.Orchestrators {
		capacity += float64(o.MaxInFlight)
	}
	for _, of := range offers {
		work += of.p50 / 1000 * 1.3 * float64(nRegion)
	}
	perStat := load * capacity / work * 60 // attempts per offer and region in 60 s
	var stats []Stat
	for _, of := range offers {
		for _, reg := range regions {
			n := int64(perStat * (0.5 + rng.Float64()))
			ok := int64(float64(n) * of.ok)
			stats = append(stats, Stat{
				Orchestrator: cfg.Catalog.Orchestrators[of.orch].ID, Capability: "cap", Model: fmt.Sprintf("m%d", of.class), ClientRegion: reg,
				Attempts: n, Successes: ok, Errors: n - ok, LatencyP50Ms: of.p50, LatencyP90Ms: of.p50 * 1.4, LatencyP99Ms: of.p99,
			})
		}
	}
	return cfg, stats
}

func benchmarkStep(b *testing.B, perOrch int, load float64, frontier bool) {
	cfg, stats := benchFleet(100, 10, 4, perOrch, load)
	if !frontier {
		cfg.Frontier.Points = 0
	}
	h := newHarness(b, cfg)
	h.stats.set(stats...)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	var iters, lps int
	for i := 0; i < b.N; i++ {
		if _, err := h.opt.Step(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	st := newState()
	r := newRound(&cfg, &cfg.Catalog, stats, &st, t0, cfg.Lambda)
	pl := r.plan(&cfg)
	iters, lps = pl.sol.iterations, pl.sol.lpSolves
	b.ReportMetric(float64(iters), "fw-iters")
	b.ReportMetric(float64(lps), "lp-solves")
}

// BenchmarkStep is one round for 100 orchestrators × 10 classes × 4 client
// regions: estimation, the allocation, the frontier's λ sweep and the
// policy; "frontier=off" is the same round without the sweep
// (Frontier.Points 0), so the pair measures what the sweep costs.
func BenchmarkStep(b *testing.B) {
	for _, f := range []struct {
		name string
		on   bool
	}{{"frontier=off", false}, {"frontier=on", true}} {
		b.Run("serve4of10/load0.6/"+f.name, func(b *testing.B) { benchmarkStep(b, 4, 0.6, f.on) })
		b.Run("serve10of10/load0.6/"+f.name, func(b *testing.B) { benchmarkStep(b, 10, 0.6, f.on) })
		b.Run("serve10of10/load0.9/"+f.name, func(b *testing.B) { benchmarkStep(b, 10, 0.9, f.on) })
	}
}

// BenchmarkStepScale is one round (statistics from an in-memory reader,
// estimation, the allocation, the policy; no frontier sweep) at 100
// classes × 8 client regions, every orchestrator serving 10 classes, at
// load 0.7 of the fleet's capacity, for a growing fleet: the growth the
// scale target (1,000 orchestrators ≤ 500 ms, ≤ 1 GiB) is read from.
// "arcs" is the number of (class, region, orchestrator) variables;
// "policy-bytes" the published encoding, which must fit the policy topic
// (eventlog.PolicyMaxMessageBytes) at every size: the policy's wire format
// must not bound the fleet (docs/BENCHMARKS.md, "Optimizer step at scale").
func BenchmarkStepScale(b *testing.B) {
	for _, n := range []int{10, 100, 1000, 5000} {
		b.Run(fmt.Sprintf("orchs=%d/classes=100/regions=8", n), func(b *testing.B) {
			cfg, stats := benchFleet(n, 100, 8, 10, 0.7)
			cfg.Frontier.Points = 0
			h := newHarness(b, cfg)
			h.stats.set(stats...)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			for i := 0; i < b.N; i++ {
				if _, err := h.opt.Step(ctx); err != nil {
					b.Fatal(err)
				}
			}
			cpu := cpuTime() - cpu0
			b.StopTimer()
			// CPU seconds of the process per step (GC included): on a
			// shared machine wall time measures the neighbours too.
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
			st := newState()
			r := newRound(&cfg, &cfg.Catalog, stats, &st, t0, cfg.Lambda)
			pl := r.plan(&cfg)
			b.ReportMetric(float64(len(pl.pr.p.arcs)), "arcs")
			b.ReportMetric(float64(pl.sol.iterations), "fw-iters")
			b.ReportMetric(float64(pl.sol.lpSolves), "lp-solves")
			b.ReportMetric(float64(pl.sol.priced), "priced")
			// The objective F of the allocation (USD/s, λ-weighted) and its
			// duality gap: a faster solver must not buy its speed with a
			// worse allocation.
			b.ReportMetric(pl.sol.objective, "objective")
			b.ReportMetric(pl.sol.gap, "gap")
			b.ReportMetric(float64(pl.sol.lsEvals), "ls-evals")
			size := h.pub.sizes[len(h.pub.sizes)-1]
			b.ReportMetric(float64(size), "policy-bytes")
			if size+len(eventlog.PolicyKey) > eventlog.PolicyMaxMessageBytes {
				b.Fatalf("got a %d-byte policy, want it within the policy topic's %d bytes", size, eventlog.PolicyMaxMessageBytes)
			}
		})
	}
}

// cpuTime is the process's user + system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
