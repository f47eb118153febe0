package optimizer

import "math"

// lineSearch is the Frank–Wolfe step length of problems above exactLPArcs:
// the root of the directional derivative φ'(γ) = ⟨∇F(x + γd), d⟩ on
// [0, γmax], found by the Illinois variant of regula falsi. F is convex
// along the pairwise direction d = vertex − away vertex, so φ' rises and
// its root is the minimiser of φ. d is sparse (a vertex routes each row to
// an arc or two), so φ' reads only the orchestrators d loads or unloads,
// where golden section read every arc two dozen times a step. Below
// exactLPArcs golden section is kept, so the exact path's allocations do
// not move.
type lineSearch struct {
	p       *problem
	dir     []float64 // per arc, d; 0 off the support
	du      []float64 // per row, d's overflow part
	sup     []int     // arcs with d ≠ 0
	rows    []int     // rows with du ≠ 0
	touched []int     // orchestrators of the support
	seen    []bool    // per orchestrator, in touched
	dload   []float64 // per orchestrator, Σ d·w over its arcs
	rho, q  []float64 // per orchestrator, at the γ being evaluated
	tv      []float64 // per arc, on-time probability at that γ
	evals   int       // φ' evaluations so far, for the benchmark
}

// Line search tolerances: the derivative's root is accepted within
// lsDerivTol of |φ'(0)|, or when the bracket is lsWidthTol of γmax (golden
// section's 24 iterations left 1e-5 of it); lsIters bounds the evaluations
// after the two at the ends.
const (
	lsDerivTol = 1e-3
	lsWidthTol = 1e-6
	lsIters    = 16
)

func newLineSearch(p *problem) *lineSearch {
	na, nr, no := len(p.arcs), len(p.rows), len(p.orchs)
	return &lineSearch{
		p: p, dir: make([]float64, na), du: make([]float64, nr), seen: make([]bool, no),
		dload: make([]float64, no), rho: make([]float64, no), q: make([]float64, no), tv: make([]float64, na),
	}
}

// step returns the γ in [0, from.weight] minimising F(x + γ(v − from)),
// where rho is the utilisation at x.
func (ls *lineSearch) step(x, rho []float64, v, from *vertex) float64 {
	p := ls.p
	for _, a := range ls.sup {
		ls.dir[a] = 0
	}
	for _, k := range ls.rows {
		ls.du[k] = 0
	}
	for _, o := range ls.touched {
		ls.seen[o], ls.dload[o] = false, 0
	}
	ls.sup, ls.rows, ls.touched = ls.sup[:0], ls.rows[:0], ls.touched[:0]
	for a := range v.y {
		if d := v.y[a] - from.y[a]; d != 0 {
			ls.dir[a] = d
			ls.sup = append(ls.sup, a)
			o := p.arcs[a].orch
			ls.dload[o] += d * p.arcs[a].w
			if !ls.seen[o] {
				ls.seen[o] = true
				ls.touched = append(ls.touched, o)
			}
		}
	}
	for k := range v.u {
		if d := v.u[k] - from.u[k]; d != 0 {
			ls.du[k] = d
			ls.rows = append(ls.rows, k)
		}
	}
	deriv := func(gamma float64) float64 {
		ls.evals++
		for _, i := range ls.touched {
			o := &p.orchs[i]
			r := rho[i] + gamma*ls.dload[i]/o.slots
			ext := 0.0
			for _, a := range o.arcs {
				t, slope := p.arcs[a].t.at(r)
				ls.tv[a] = t
				ext += (x[a] + gamma*ls.dir[a]) * p.arcs[a].bvp * -slope
			}
			ls.rho[i], ls.q[i] = r, ext
		}
		d := 0.0
		for _, a := range ls.sup {
			arc := &p.arcs[a]
			d += ls.dir[a] * p.marginal(arc.orch, arc.base, arc.bvp, arc.w, ls.tv[a], ls.rho, ls.q)
		}
		for _, k := range ls.rows {
			d += ls.du[k] * p.rows[k].overflow
		}
		return d
	}
	lo, hi := 0.0, from.weight
	flo := deriv(lo)
	if !(flo < 0) {
		return 0 // no descent along d
	}
	d0 := flo
	fhi := deriv(hi)
	if fhi <= 0 {
		return hi // still descending at the end: the away vertex drops out
	}
	gamma, side := lo, 0
	for range lsIters {
		gamma = (lo*fhi - hi*flo) / (fhi - flo)
		if !(gamma > lo && gamma < hi) { // rounding: bisect
			gamma = (lo + hi) / 2
		}
		fg := deriv(gamma)
		if math.Abs(fg) <= lsDerivTol*-d0 || hi-lo <= lsWidthTol*from.weight {
			break
		}
		if fg < 0 {
			lo, flo = gamma, fg
			if side < 0 {
				fhi /= 2
			}
			side = -1
		} else {
			hi, fhi = gamma, fg
			if side > 0 {
				flo /= 2
			}
			side = 1
		}
	}
	return gamma
}
