package optimizer

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestPricedMatchesExact solves many random small rounds twice — with the
// exact simplex as the linear subproblem, and with Lagrangian pricing, the
// formulation used above exactLPArcs — both to a tight tolerance, and
// checks that pricing's allocation is feasible (no orchestrator above its
// utilisation cap) and how far its objective is above the exact one's, as
// a fraction of the part of the objective the allocation can change (F
// above every request at its row's best zero-load cost): at most 2 % on
// average and 60 % at worst (measured: about 1 % and 57 %; the worst is an
// overloaded fleet of four orchestrators, where the priced greedy strands
// capacity — 12 % of the whole objective). Loads up to 1.2 make capacity
// bind, which is when the two differ at all.
func TestPricedMatchesExact(t *testing.T) {
	const instances, tolMean, tolWorst = 60, 0.02, 0.6
	rng := rand.New(rand.NewPCG(8, 8))
	bound, worst, sum := 0, 0.0, 0.0
	for i := range instances {
		nOrch, nClass, nRegion := 3+rng.IntN(10), 1+rng.IntN(4), 1+rng.IntN(3)
		load := 0.5 + 0.7*rng.Float64()
		cfg, stats := randomFleet(rng, nOrch, nClass, nRegion, 1+rng.IntN(nClass), load)
		cfg.Solver.Tolerance, cfg.Solver.MaxIterations = 1e-3, 200
		solve := func(priced bool) (*problem, solution) {
			st := newState()
			r := newRound(&cfg, &cfg.Catalog, stats, &st, t0, cfg.Lambda)
			pr := &planner{r: r, cfg: &cfg}
			pr.build()
			pr.p.priced = priced
			return pr.p, pr.p.solve()
		}
		pe, exact := solve(false)
		pp, priced := solve(true)
		if priced.priced > 0 {
			bound++
		}
		for o := range pp.orchs {
			if c := pp.orchs[o].capacity / pp.orchs[o].slots; priced.rho[o] > c*(1+1e-6)+1e-9 {
				t.Errorf("instance %d: orchestrator %d at utilisation %.4f, above its cap %.4f", i, o, priced.rho[o], c)
			}
		}
		lower := 0.0
		for k := range pe.rows {
			best := math.Inf(1)
			for _, a := range pe.rows[k].arcs {
				v, _ := pe.arcs[a].t.at(0)
				best = math.Min(best, pe.arcs[a].base-pe.arcs[a].bvp*v)
			}
			if pe.rows[k].demand > 0 && !math.IsInf(best, 1) {
				lower += pe.rows[k].demand * best
			}
		}
		scale := math.Max(exact.objective-lower, 1e-9*math.Abs(exact.objective))
		rel := (priced.objective - exact.objective) / scale
		worst = math.Max(worst, rel)
		sum += rel
		if rel > tolWorst {
			t.Errorf("instance %d (%d orchestrators, %d classes, %d regions, load %.2f): priced objective %.6g, exact %.6g: %.1f %% of the changeable part %.4g above, want ≤ %.0f %%",
				i, nOrch, nClass, nRegion, load, priced.objective, exact.objective, 100*rel, scale, 100*tolWorst)
		}
	}
	t.Logf("%d of %d instances had binding capacity; excess over exact: mean %.2f %%, worst %.2f %% of the changeable part", bound, instances, 100*sum/instances, 100*worst)
	if mean := sum / instances; mean > tolMean {
		t.Errorf("mean excess %.2f %% of the changeable part, want ≤ %.0f %%", 100*mean, 100*tolMean)
	}
	if bound < instances/4 {
		t.Errorf("capacity bound in %d of %d instances, want ≥ %d: the test would not exercise pricing", bound, instances, instances/4)
	}
}
