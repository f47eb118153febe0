package optimizer

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestLineSearchDerivative checks the scale line search against the
// objective it minimises, on problems above exactLPArcs: the directional
// derivative it roots agrees with the directional derivative of F along the
// step as grad computes it arc by arc, and the step it returns is no worse
// than golden section's (the search it replaced) by more than 1e-7 of F.
// Not closer: F reads each arc's on-time spline clamped to [0, 1], while
// the gradient (and φ') takes the unclamped spline's slope, and near a
// knee of a curve the spline overshoots 1 by up to 2 %, so F's own
// derivative differs a little from φ' there (on instance 2, with the
// Gauss–Legendre curves: the step is 1.6 % longer than golden section's,
// F 2.2e-8 higher).
func TestLineSearchDerivative(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 4 {
		cfg, stats := randomFleet(rng, 60+rng.IntN(40), 20, 4, 10, 0.6+0.4*rng.Float64())
		cfg.Solver.MaxIterations = 6
		st := newState()
		r := newRound(&cfg, &cfg.Catalog, stats, &st, t0, cfg.Lambda)
		pr := &planner{r: r, cfg: &cfg}
		pr.build()
		p := pr.p
		if len(p.arcs) <= exactLPArcs {
			t.Fatalf("instance %d: %d arcs, want above %d", i, len(p.arcs), exactLPArcs)
		}
		sol := p.solve()
		if len(sol.active) < 2 {
			t.Fatalf("instance %d: %d active vertices, want 2 or more to search between", i, len(sol.active))
		}
		from, v := &sol.active[0], &sol.active[1]
		x, u := sol.x, sol.u
		rho := make([]float64, len(p.orchs))
		xt, ut := make([]float64, len(x)), make([]float64, len(u))
		phi := func(gamma float64) float64 {
			for a := range x {
				xt[a] = x[a] + gamma*(v.y[a]-from.y[a])
			}
			for k := range u {
				ut[k] = u[k] + gamma*(v.u[k]-from.u[k])
			}
			return p.objective(xt, ut, rho)
		}
		ls := newLineSearch(p)
		gamma := ls.step(x, sol.rho, v, from)
		if gamma < 0 || gamma > from.weight {
			t.Fatalf("instance %d: step %v outside [0, %v]", i, gamma, from.weight)
		}
		golden := goldenSection(phi, 0, from.weight, 40)
		if got, want := phi(gamma), phi(golden); got > want+1e-7*math.Abs(want) {
			t.Errorf("instance %d: F at the derivative's step %v is %.12g, golden section's at %v %.12g", i, gamma, got, golden, want)
		}
		// φ' at steps across the range against the gradient computed arc by
		// arc, as grad does: the summed curves are the same function.
		for _, g0 := range []float64{0, from.weight / 3, from.weight} {
			got := ls.deriv(g0)
			want := directional(p, xt, rho, x, u, v, from, g0)
			if math.Abs(got-want) > 1e-9*(math.Abs(want)+1e-12) {
				t.Errorf("instance %d: φ'(%v) = %.12g, want %.12g (the gradient arc by arc)", i, g0, got, want)
			}
		}
	}
}

// directional is ⟨∇F(x + γd), d⟩ computed the plain way: the gradient at
// the point, arc by arc (p.state and p.marginal), dotted with d.
func directional(p *problem, xt, rho, x, u []float64, v, from *vertex, gamma float64) float64 {
	for a := range x {
		xt[a] = x[a] + gamma*(v.y[a]-from.y[a])
	}
	q := make([]float64, len(p.orchs))
	p.state(xt, rho, q)
	d := 0.0
	for a := range p.arcs {
		arc := &p.arcs[a]
		t, _ := arc.t.at(rho[arc.orch])
		d += (v.y[a] - from.y[a]) * p.marginal(arc.orch, arc.base, arc.bvp, arc.w, t, rho, q)
	}
	for k := range u {
		d += (v.u[k] - from.u[k]) * p.rows[k].overflow
	}
	return d
}
