package optimizer

import "math"

// lineSearch is the Frank–Wolfe step length of problems above exactLPArcs:
// the root of the directional derivative φ'(γ) = ⟨∇F(x + γd), d⟩ on
// [0, γmax], found from a Newton trial, then by the Illinois variant of
// regula falsi once bracketed. F is convex
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
	// aggX, aggD are per touched orchestrator the sums of its arcs'
	// on-time curves weighted by x·λvp and by d·λvp, on the grid points
	// its utilisation reaches in this step (computed when first read): the spline is linear in the
	// points, so the queueing externality q(γ) is the slope of aggX + γ·aggD,
	// read in O(1) per orchestrator instead of once per arc.
	aggX, aggD [][gridPoints]float64
	x, rho0    []float64 // the allocation the step starts from and its utilisation
	aggHave    []uint32  // per orchestrator, the grid points of aggX, aggD computed this step
	evals      int       // φ' evaluations so far, for the benchmark
}

// Line search tolerances: the derivative's root is accepted within
// lsDerivTol of |φ'(0)|, or when the bracket is lsWidthTol of γmax (golden
// section's 24 iterations left 1e-5 of it); lsIters bounds the regula falsi
// evaluations once the root is bracketed.
const (
	lsDerivTol = 1e-3
	lsWidthTol = 1e-6
	lsIters    = 16
)

func newLineSearch(p *problem) *lineSearch {
	na, nr, no := len(p.arcs), len(p.rows), len(p.orchs)
	return &lineSearch{
		p: p, dir: make([]float64, na), du: make([]float64, nr), seen: make([]bool, no),
		dload: make([]float64, no), rho: make([]float64, no), q: make([]float64, no),
		aggX: make([][gridPoints]float64, no), aggD: make([][gridPoints]float64, no), aggHave: make([]uint32, no),
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
	gmax := from.weight
	for _, i := range ls.touched {
		ls.aggHave[i] = 0
	}
	ls.x, ls.rho0 = x, rho
	deriv := ls.deriv
	// Newton's step from the curvature at 0 (a secant over a small δ) is
	// the first trial: late steps are short, and trials near the current
	// allocation read curve points already computed, where γmax would
	// compute every arc's points at the far vertex's utilisation.
	d0 := deriv(0)
	if !(d0 < 0) {
		return 0 // no descent along d
	}
	delta := 1e-4 * gmax
	d1 := deriv(delta)
	if d1 >= 0 {
		return delta / 2 // the root is within δ of 0
	}
	gamma := gmax
	if c := (d1 - d0) / delta; c > 0 {
		gamma = math.Min(gmax, math.Max(2*delta, -d0/c))
	}
	// Bracket the root: [lo, hi] with φ'(lo) < 0 ≤ φ'(hi), growing the
	// trial until φ' turns or γmax is reached.
	lo, flo := delta, d1
	var hi, fhi float64
	for {
		fg := deriv(gamma)
		if math.Abs(fg) <= lsDerivTol*-d0 {
			return gamma
		}
		if fg >= 0 {
			hi, fhi = gamma, fg
			break
		}
		if gamma >= gmax {
			return gmax // still descending at the end: the away vertex drops out
		}
		// The secant through the two last points, at least doubling (so
		// the loop reaches γmax in a few trials whatever φ' does).
		next := 2 * gamma
		if n := gamma - fg*(gamma-lo)/(fg-flo); n > next { // false for NaN
			next = n
		}
		lo, flo = gamma, fg
		gamma = math.Min(gmax, next)
	}
	side := 0
	for range lsIters {
		gamma = (lo*fhi - hi*flo) / (fhi - flo)
		if !(gamma > lo && gamma < hi) { // rounding: bisect
			gamma = (lo + hi) / 2
		}
		fg := deriv(gamma)
		if math.Abs(fg) <= lsDerivTol*-d0 || hi-lo <= lsWidthTol*gmax {
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

// gridIndex is the grid interval curve.at reads for utilisation rho.
func gridIndex(rho float64) int {
	const h = gridMax / (gridPoints - 1)
	if !(rho > 0) {
		rho = 0
	}
	if rho > gridMax {
		rho = gridMax
	}
	return min(int(rho/h), gridPoints-2)
}

// splineSlope is the slope curve.at gives at rho for the grid values c
// (the points it reads must be set).
func splineSlope(c *[gridPoints]float64, rho float64) float64 {
	const h = gridMax / (gridPoints - 1)
	if !(rho > 0) {
		rho = 0
	}
	if rho > gridMax {
		rho = gridMax
	}
	i := min(int(rho/h), gridPoints-2)
	t := (rho - float64(i)*h) / h
	c0, c1 := c[i], c[i+1]
	var m0, m1 float64
	if i == 0 {
		m0 = (c1 - c0) / h
	} else {
		m0 = (c1 - c[i-1]) / (2 * h)
	}
	if i+1 == gridPoints-1 {
		m1 = (c1 - c0) / h
	} else {
		m1 = (c[i+2] - c0) / (2 * h)
	}
	t2 := t * t
	return ((6*t2-6*t)*c0 + (3*t2-4*t+1)*h*m0 + (-6*t2+6*t)*c1 + (3*t2-2*t)*h*m1) / h
}

// agg makes sure grid points lo..hi of orchestrator i's sums are in.
func (ls *lineSearch) agg(i, lo, hi int) {
	p := ls.p
	ax, ad := &ls.aggX[i], &ls.aggD[i]
	for j := lo; j <= hi; j++ {
		if ls.aggHave[i]&(1<<j) != 0 {
			continue
		}
		ls.aggHave[i] |= 1 << j
		sx, sd := 0.0, 0.0
		for _, a := range p.orchs[i].arcs {
			arc := &p.arcs[a]
			v := arc.t.point(j)
			sx += ls.x[a] * arc.bvp * v
			sd += ls.dir[a] * arc.bvp * v
		}
		ax[j], ad[j] = sx, sd
	}
}

// deriv is φ'(γ) for the step step set up.
func (ls *lineSearch) deriv(gamma float64) float64 {
	p := ls.p
	ls.evals++
	// Each touched orchestrator's state is its own (the sums are computed
	// into its own rows), so the two halves of the list are independent.
	p.split(len(ls.touched), func(lo, hi int) {
		for _, i := range ls.touched[lo:hi] {
			r := ls.rho0[i] + gamma*ls.dload[i]/p.orchs[i].slots
			ls.rho[i] = r
			k := gridIndex(r)
			ls.agg(i, max(0, k-1), min(gridPoints-1, k+2))
			ls.q[i] = -(splineSlope(&ls.aggX[i], r) + gamma*splineSlope(&ls.aggD[i], r))
		}
	})
	d := 0.0
	for _, a := range ls.sup {
		arc := &p.arcs[a]
		t, _ := arc.t.at(ls.rho[arc.orch])
		d += ls.dir[a] * p.marginal(arc.orch, arc.base, arc.bvp, arc.w, t, ls.rho, ls.q)
	}
	for _, k := range ls.rows {
		d += ls.du[k] * p.rows[k].overflow
	}
	return d
}
