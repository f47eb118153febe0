package optimizer

import (
	"cmp"
	"math"
	"slices"
)

// exactLPArcs is the largest problem (in arcs: class × client region ×
// orchestrator) whose linear subproblem is solved exactly by the simplex.
// gonum's simplex is dense — its matrix is (rows + capped orchestrators) ×
// (arcs + rows) — so its time and memory grow with the square of the fleet:
// 3 s and 1.1 GB a round at 100 orchestrators × 100 classes × 8 regions.
// Larger problems price capacity instead (lagrange), in time linear in the
// arcs. Every public scenario but fleet-200-faults is below it.
const exactLPArcs = 2000

// Lagrangian pricing settings: the subgradient iterations per linear
// subproblem, how often a feasible point is built from the prices, and the
// relative gap between it and the dual bound that ends the iterations.
const (
	lagrangeIters = 200
	// lagrangeItersScale is the iterations above exactLPArcs, where one
	// costs a pass over every arc and the warm prices of the previous
	// subproblem are already close.
	lagrangeItersScale = 50
	lagrangeRepair     = 5
	lagrangeTol        = 1e-3
)

// lagrange solves the linear subproblem of lmo — minimise Σ g·y + Σ
// overflow·u with every row's rest routed and every orchestrator within
// its remaining capacity — at scale, by pricing capacity. For prices π ≥ 0
// per orchestrator the Lagrangian dual
//
//	D(π) = Σ_k rest_k · min(overflow_k, min_{a∈k} g_a + π_o(a)·w_a) − Σ_o rem_o·π_o
//
// is a lower bound on the subproblem's optimum, and it decomposes: each
// row takes its arc of least priced cost. Projected subgradient ascent with
// Polyak steps (towards the best feasible value found) raises it; every few
// iterations a feasible point is built from the current prices (priced
// greedy: each row fills its arcs in order of priced cost up to the
// capacity left), and the best one is returned in sy, su. Its value minus
// the best bound is returned too: a certificate of how far the answer is
// from the subproblem's optimum, which the Frank–Wolfe gap then includes.
// The prices in p.pi carry over to the next call (the next iteration's
// gradient is close), which is what keeps the iterations few.
func (p *problem) lagrange(g, sy, su []float64) (gap float64) {
	no := len(p.orchs)
	if len(p.pi) != no {
		p.pi = make([]float64, no)
	}
	pi := p.pi
	load := make([]float64, no)
	if p.lg == nil || len(p.lg.by) != len(sy) || len(p.lg.bu) != len(su) {
		p.lg = newLagrangeScratch(p, len(sy), len(su))
	}
	by, bu, orch, work := p.lg.by, p.lg.bu, p.lg.orch, p.lg.work
	best, bound := math.Inf(1), math.Inf(-1)
	bestPi := slices.Clone(pi)
	sub := make([]float64, no)
	iters := lagrangeIters
	if len(p.arcs) > exactLPArcs {
		iters = lagrangeItersScale
	}
	bestArc, bestCost := make([]int, len(p.rows)), make([]float64, len(p.rows))
	cheapest := func(lo, hi int) {
		for k := lo; k < hi; k++ {
			row := &p.rows[k]
			if row.rest <= 0 {
				continue
			}
			ba, bc := -1, row.overflow
			for _, a := range row.arcs {
				if c := g[a] + pi[orch[a]]*work[a]; c < bc {
					ba, bc = a, c
				}
			}
			bestArc[k], bestCost[k] = ba, bc
		}
	}
	for it := 0; it < iters; it++ {
		// The dual at π: each row's cheapest priced arc, or overflow
		// (rows are independent: both halves at once), summed in row order.
		p.split(len(p.rows), cheapest)
		clear(load)
		d := 0.0
		for k := range p.rows {
			row := &p.rows[k]
			if row.rest <= 0 {
				continue
			}
			ba, bc := bestArc[k], bestCost[k]
			d += row.rest * bc
			if ba >= 0 {
				load[p.arcs[ba].orch] += row.rest * p.arcs[ba].w
			}
		}
		norm := 0.0
		for o := range p.orchs {
			d -= p.orchs[o].rem * pi[o]
			sub[o] = load[o] - p.orchs[o].rem
			if pi[o] <= 0 && sub[o] < 0 {
				sub[o] = 0 // projected: a free orchestrator's price stays 0
			}
			norm += sub[o] * sub[o]
		}
		if d > bound {
			bound = d
			copy(bestPi, pi)
		}
		if it%lagrangeRepair == 0 || norm == 0 {
			v := p.pricedGreedy(g, pi, by, bu)
			if v < best {
				best = v
				copy(sy, by)
				copy(su, bu)
			}
		}
		if norm == 0 || best-bound <= lagrangeTol*math.Abs(best) {
			break
		}
		step := (best - d) / norm
		for o := range pi {
			pi[o] = math.Max(0, pi[o]+step*sub[o])
		}
	}
	copy(pi, bestPi)
	return math.Max(0, best-bound)
}

// lagrangeScratch is what lagrange keeps between the linear subproblems
// of one problem (a subproblem a Frank–Wolfe iteration, each allocated
// 1.8 MB of it at 1,000 orchestrators): the feasible point's buffers, and
// each arc's orchestrator and work, which every dual step reads — copied
// out of the arcs (64 bytes each) into 12 bytes an arc, the pass reads a
// fifth of the memory. Neither orchestrators nor work depend on λ.
type lagrangeScratch struct {
	by, bu []float64
	orch   []int32
	work   []float64
}

func newLagrangeScratch(p *problem, na, nr int) *lagrangeScratch {
	lg := &lagrangeScratch{by: make([]float64, na), bu: make([]float64, nr), orch: make([]int32, len(p.arcs)), work: make([]float64, len(p.arcs))}
	for a := range p.arcs {
		lg.orch[a], lg.work[a] = int32(p.arcs[a].orch), p.arcs[a].w
	}
	return lg
}

// pricedGreedy builds a feasible point of the linear subproblem from
// capacity prices pi: rows in order, each fills its arcs in order of priced
// cost g + π·w up to the capacity left, never at a cost (unpriced) above
// its overflow; the rest overflows. It returns the point's value Σ g·y +
// Σ overflow·u.
func (p *problem) pricedGreedy(g, pi, sy, su []float64) float64 {
	clear(sy)
	clear(su)
	rem := make([]float64, len(p.orchs))
	for i := range p.orchs {
		rem[i] = p.orchs[i].rem
	}
	v := 0.0
	var key []float64
	// Rows by regret, the largest first: what a row loses per request if
	// its cheapest priced arc is full and it must take its second (the
	// classic order for assignment under capacity), so that a row with no
	// good alternative is not left the capacity nobody else wanted.
	if len(p.rowOrder) != len(p.rows) {
		p.rowOrder = make([]int, len(p.rows))
		p.regret = make([]float64, len(p.rows))
	}
	p.split(len(p.rows), func(lo, hi int) {
		for k := lo; k < hi; k++ {
			p.rowOrder[k] = k
			b1, b2 := p.rows[k].overflow, p.rows[k].overflow
			for _, a := range p.rows[k].arcs {
				c := g[a] + pi[p.arcs[a].orch]*p.arcs[a].w
				if c < b1 {
					b1, b2 = c, b1
				} else if c < b2 {
					b2 = c
				}
			}
			p.regret[k] = b2 - b1
		}
	})
	slices.SortStableFunc(p.rowOrder, func(x, y int) int { return cmp.Compare(p.regret[y], p.regret[x]) })
	for _, k := range p.rowOrder {
		row := &p.rows[k]
		left := row.rest
		if left <= 0 {
			continue
		}
		// Selection, not a sort: a row usually fits on its first arc or two.
		key = key[:0]
		for _, a := range row.arcs {
			key = append(key, g[a]+pi[p.arcs[a].orch]*p.arcs[a].w)
		}
		for left > 0 {
			bi := -1
			for i, a := range row.arcs {
				if !math.IsInf(key[i], 1) && g[a] < row.overflow && (bi < 0 || key[i] < key[bi]) {
					bi = i
				}
			}
			if bi < 0 {
				break
			}
			key[bi] = math.Inf(1) // taken
			a := row.arcs[bi]
			arc := &p.arcs[a]
			take := left
			if arc.w > 0 {
				take = math.Min(left, rem[arc.orch]/arc.w)
			}
			if take <= 0 {
				continue
			}
			sy[a] += take
			rem[arc.orch] -= take * arc.w
			left -= take
			v += g[a] * take
		}
		su[k] = math.Max(0, left)
		v += row.overflow * su[k]
	}
	return v
}

// curveKey is what an on-time curve is a function of.
type curveKey struct {
	lat      lognormal
	slots, t float64
	queueing bool
}

// curves memoises newCurve within one round: arcs with the same latency
// estimate, slots and SLO (the same orchestrator and class seen from
// regions whose records are alike, or pseudo rows) share one curve, which
// is read-only once built. Each curve costs gridPoints × quadPoints
// lognormal CDFs, the largest part of building a problem at scale.
type curves map[curveKey]curve

func (cs curves) get(s lognormal, slots, t float64, queueing bool) curve {
	k := curveKey{s, slots, t, queueing}
	if c, ok := cs[k]; ok {
		return c
	}
	c := newCurve(s, slots, t, queueing)
	cs[k] = c
	return c
}

// scaleQuadrature switches the on-time curves of a problem above
// exactLPArcs to the 12-point Gauss–Legendre quadrature over a tabulated
// normal CDF (onTimeGauss): computing curve points was a third of a round
// at 1,000 orchestrators.
// It must run before any point is read, while p's curves are its own
// (build calls it last): it replaces them.
func (p *problem) scaleQuadrature() {
	if len(p.arcs) <= exactLPArcs {
		return
	}
	nt := newNormalTable()
	// The curves move into one array in orchestrator order: the gradient
	// and the line search read them orchestrator by orchestrator, and in
	// build's order (class, region, orchestrator) each read was a cache
	// miss — the largest single cost of a point read at 1,000
	// orchestrators. Shared curves stay shared.
	order := make([]int, len(p.arcs))
	for a := range order {
		order[a] = a
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(p.arcs[a].orch, p.arcs[b].orch) })
	index := make(map[*curveData]int, len(p.arcs))
	for _, a := range order {
		if d := p.arcs[a].t.d; d != nil {
			if _, ok := index[d]; !ok {
				index[d] = len(index)
			}
		}
	}
	slab := make([]curveData, len(index))
	for d, i := range index {
		nd := &slab[i]
		nd.lat, nd.slots, nd.t, nd.gauss = d.lat, d.slots, d.t, nt
		for j := range d.pts {
			nd.pts[j].Store(d.pts[j].Load())
		}
	}
	for a := range p.arcs {
		if d := p.arcs[a].t.d; d != nil {
			p.arcs[a].t.d = &slab[index[d]]
		}
	}
}

// lineSearchIters is the golden-section iterations of a Frank–Wolfe step
// (an interval of 1e-8 of the step). Only problems up to exactLPArcs use
// golden section; larger ones find the step from the derivative
// (lineSearch).
func (p *problem) lineSearchIters() int { return 40 }
