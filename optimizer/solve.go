package optimizer

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/optimize/convex/lp"
)

// problem is one round's allocation in solver form: demand rows, arcs from
// rows to orchestrators, and orchestrator capacities. Rates are requests
// per second, work is server-seconds, costs are USD (weighted by λ).
type problem struct {
	rows    []prow
	arcs    []parc
	orchs   []porch
	spreadK float64 // congestion premium per server-second at utilisation 1
	maxIter int
	tol     float64
	// greedyLMO replaces the capacity LP by the greedy vertex (feasible,
	// not optimal) whenever capacity binds: the frontier's sweep solves a
	// dozen problems a round and cannot afford a dozen rounds of LPs.
	greedyLMO bool
	// priced solves the linear subproblem by Lagrangian pricing (lagrange)
	// whatever the size; problems above exactLPArcs always are.
	priced   bool
	pi       []float64 // capacity prices, kept between linear subproblems
	rowOrder []int     // the order pricedGreedy fills rows in
	regret   []float64 // per row, pricedGreedy's scratch
	lg       *lagrangeScratch
	// noStall turns the stall stop off (tests compare against it).
	noStall bool
}

type prow struct {
	demand   float64 // requests per second
	rest     float64 // demand above the exploration floors
	overflow float64 // cost of a request no orchestrator takes
	arcs     []int
}

type parc struct {
	row, orch int
	floor     float64 // requests per second reserved for exploration
	base      float64 // (1−λ)·cost + λ·value: the cost of a sure miss
	bvp       float64 // λ·value·p: what delivery on time saves
	w         float64 // mean service seconds: the work of one request
	t         curve   // on-time probability by utilisation
}

type porch struct {
	slots    float64
	capacity float64 // server-seconds per second at the utilisation cap
	rem      float64 // capacity left after the exploration floors
	arcs     []int
}

// solution is the allocation the solver found.
type solution struct {
	x          []float64 // per arc, requests per second, floors included
	u          []float64 // per row, demand no orchestrator takes
	rho        []float64 // per orchestrator, planned utilisation
	q          []float64 // per orchestrator, Σ x·λvp·(−dT/dρ): the queueing externality
	objective  float64
	gap        float64
	iterations int
	lpSolves   int
	lpFailures int
	priced     int      // linear subproblems solved by Lagrangian pricing
	lsEvals    int      // directional-derivative evaluations of the line search (above exactLPArcs)
	active     []vertex // the convex combination x is made of, for warm starts
}

// finish sets the derived fields of p: remaining capacities and the
// orchestrators' arc lists.
func (p *problem) finish() {
	for i := range p.orchs {
		p.orchs[i].arcs = p.orchs[i].arcs[:0]
		p.orchs[i].rem = p.orchs[i].capacity
	}
	for a := range p.arcs {
		arc := &p.arcs[a]
		o := &p.orchs[arc.orch]
		o.arcs = append(o.arcs, a)
		o.rem -= arc.floor * arc.w
	}
	for i := range p.orchs {
		p.orchs[i].rem = math.Max(0, p.orchs[i].rem)
	}
}

// state computes utilisation and the queueing externality of x.
func (p *problem) state(x []float64, rho, q []float64) {
	for i := range p.orchs {
		o := &p.orchs[i]
		load := 0.0
		for _, a := range o.arcs {
			load += x[a] * p.arcs[a].w
		}
		rho[i] = load / o.slots
		ext := 0.0
		for _, a := range o.arcs {
			_, slope := p.arcs[a].t.at(rho[i])
			ext += x[a] * p.arcs[a].bvp * -slope
		}
		q[i] = ext
	}
}

// objective is F(x, u): expected weighted cost per second.
func (p *problem) objective(x, u, rho []float64) float64 {
	f := 0.0
	for i := range p.orchs {
		o := &p.orchs[i]
		load := 0.0
		for _, a := range o.arcs {
			load += x[a] * p.arcs[a].w
		}
		rho[i] = load / o.slots
		f += p.spreadK * o.slots * rho[i] * rho[i] / 2
	}
	for a := range p.arcs {
		arc := &p.arcs[a]
		if x[a] == 0 {
			continue
		}
		t, _ := arc.t.at(rho[arc.orch])
		f += x[a] * (arc.base - arc.bvp*t)
	}
	for k := range p.rows {
		f += u[k] * p.rows[k].overflow
	}
	return f
}

// marginal is ∂F/∂x for a request of an arc-like (base, bvp, w, on-time t)
// at orchestrator o in state (rho, q).
func (p *problem) marginal(o int, base, bvp, w, t float64, rho, q []float64) float64 {
	return base - bvp*t + w/p.orchs[o].slots*q[o] + p.spreadK*rho[o]*w
}

// Above exactLPArcs the Frank–Wolfe loop also stops, from iteration
// stallMinIter on, when F fell by less than stallTol of its changeable
// part (F above the zero-load bound) over the last stallWindow
// iterations. At 1,000 orchestrators × 100 classes × 8 regions it stops
// after 12 iterations instead of 18, F 0.09 % above (docs/BENCHMARKS.md,
// "Optimizer step at scale"). Progress comes in bursts: without the floor
// the 5,000-orchestrator round stopped after 5 iterations, F 0.9 % above.
const (
	stallWindow  = 2
	stallTol     = 2e-3
	stallMinIter = 10
)

// solve minimises F by pairwise Frank–Wolfe. Each iteration linearises F
// at the current allocation and solves the linear program "route every
// row's demand at the linearised costs within capacity" (lmo); its answer
// is a vertex of the feasible polytope. The allocation is kept as a convex
// combination of the vertices found so far, and each step moves weight
// from the worst of them (at the current gradient) to the new one, as far
// as an exact line search says. Every vertex respects capacity, so every
// iterate does. The loop ends when the duality gap ⟨g, y − vertex⟩ — a
// bound on how far F is from its minimum — falls below Tolerance × the part
// of F the allocation can change (F above every request served at its
// row's best zero-load cost).
func (p *problem) solve() solution { return p.solveFrom(nil) }

// vertex is an LP vertex of the feasible polytope and its weight in the
// allocation's convex combination. The polytope (demand, floors,
// capacities) does not depend on λ, so the vertices of one solve are
// feasible starting points for a solve at another λ.
type vertex struct {
	y, u   []float64 // never modified once found
	weight float64
}

// solveFrom is solve started from the convex combination start (the active
// vertices of a solve of the same polytope), or from the first LP vertex
// when start is empty. start is not modified.
func (p *problem) solveFrom(start []vertex) solution {
	p.finish()
	na, nr, no := len(p.arcs), len(p.rows), len(p.orchs)
	s := solution{x: make([]float64, na), u: make([]float64, nr), rho: make([]float64, no), q: make([]float64, no)}
	g := make([]float64, na)
	y := make([]float64, na) // x above the floors
	xt, ut, rt := make([]float64, na), make([]float64, nr), make([]float64, no)
	capped := make([]bool, no)

	newVertex := func() *vertex { return &vertex{y: make([]float64, na), u: make([]float64, nr)} }
	dot := func(v *vertex) float64 {
		d := 0.0
		for a, val := range v.y {
			d += g[a] * val
		}
		for k, val := range v.u {
			d += p.rows[k].overflow * val
		}
		return d
	}
	same := func(a, b *vertex) bool {
		for i := range a.y {
			if math.Abs(a.y[i]-b.y[i]) > 1e-9*(1+math.Abs(a.y[i])) {
				return false
			}
		}
		for i := range a.u {
			if math.Abs(a.u[i]-b.u[i]) > 1e-9*(1+math.Abs(a.u[i])) {
				return false
			}
		}
		return true
	}
	setX := func() {
		for a := range p.arcs {
			s.x[a] = p.arcs[a].floor + y[a]
		}
	}
	tv := make([]float64, na) // per arc, its on-time probability in grad
	gradOrchs := func(lo, hi int) {
		// p.state and then p.marginal per arc, with each arc's curve read
		// once: the same numbers in the same order. An arc's marginal
		// reads only its own orchestrator's state, so orchestrators are
		// independent.
		for i := lo; i < hi; i++ {
			o := &p.orchs[i]
			load := 0.0
			for _, a := range o.arcs {
				load += s.x[a] * p.arcs[a].w
			}
			s.rho[i] = load / o.slots
			ext := 0.0
			for _, a := range o.arcs {
				t, slope := p.arcs[a].t.at(s.rho[i])
				tv[a] = t
				ext += s.x[a] * p.arcs[a].bvp * -slope
			}
			s.q[i] = ext
			for _, a := range o.arcs {
				arc := &p.arcs[a]
				g[a] = p.marginal(arc.orch, arc.base, arc.bvp, arc.w, tv[a], s.rho, s.q)
			}
		}
	}
	grad := func() { p.split(no, gradOrchs) }
	var ls *lineSearch
	if len(p.arcs) > exactLPArcs {
		ls = newLineSearch(p)
	}

	// lower bounds what is served: every request at the best zero-load
	// cost of its row. The tolerance applies to what the allocation adds
	// above it, the part it can change.
	lower := 0.0
	rowBest := make([]float64, nr)
	p.split(nr, func(lo, hi int) {
		for k := lo; k < hi; k++ {
			best := math.Inf(1)
			for _, a := range p.rows[k].arcs {
				t, _ := p.arcs[a].t.at(0)
				best = math.Min(best, p.arcs[a].base-p.arcs[a].bvp*t)
			}
			rowBest[k] = best
		}
	})
	for k, best := range rowBest {
		if p.rows[k].demand > 0 && !math.IsInf(best, 1) {
			lower += p.rows[k].demand * best
		}
	}

	var active []*vertex
	if len(start) == 0 {
		setX()
		grad()
		first := newVertex()
		_ = p.lmo(g, first.y, first.u, capped, &s)
		first.weight = 1
		active = []*vertex{first}
		copy(y, first.y)
		copy(s.u, first.u)
	} else {
		for _, v := range start {
			v := v
			active = append(active, &v)
			for a, val := range v.y {
				y[a] += v.weight * val
			}
			for k, val := range v.u {
				s.u[k] += v.weight * val
			}
		}
	}
	setX()
	var fs []float64 // F by iteration, above exactLPArcs
	for s.iterations = 1; s.iterations < p.maxIter; s.iterations++ {
		grad()
		v := newVertex()
		lmoErr := p.lmo(g, v.y, v.u, capped, &s)
		cur := 0.0
		for a := range y {
			cur += g[a] * y[a]
		}
		served := 0.0 // F without the overflow penalty: the tolerance's scale
		for k := range s.u {
			cur += p.rows[k].overflow * s.u[k]
			served -= p.rows[k].overflow * s.u[k]
		}
		s.gap = cur - dot(v) + lmoErr // an inexact vertex: its certificate keeps the gap a bound
		f := p.objective(s.x, s.u, rt)
		served += f
		if s.gap <= p.tol*(served-lower) || s.gap <= 1e-12*math.Abs(served) {
			break
		}
		if ls != nil && !p.noStall {
			// Above exactLPArcs the gap carries pricing's certificate,
			// which stays near the tolerance however close F is, so the
			// loop also stops when F has stalled (stallWindow, stallTol).
			fs = append(fs, f)
			if n := len(fs); s.iterations >= stallMinIter && n > stallWindow && fs[n-1-stallWindow]-f < stallTol*(served-lower) {
				break
			}
		}
		// The away vertex: the active one the gradient likes least.
		away, worst := 0, math.Inf(-1)
		for i, a := range active {
			if d := dot(a); d > worst {
				away, worst = i, d
			}
		}
		in := -1
		for i, a := range active {
			if same(a, v) {
				in = i
				break
			}
		}
		if in == away {
			break // nothing to trade: the gap is rounding
		}
		from := active[away]
		phi := func(gamma float64) float64 {
			for a := range y {
				xt[a] = p.arcs[a].floor + y[a] + gamma*(v.y[a]-from.y[a])
			}
			for k := range s.u {
				ut[k] = s.u[k] + gamma*(v.u[k]-from.u[k])
			}
			return p.objective(xt, ut, rt)
		}
		var gamma float64
		if ls != nil {
			gamma = ls.step(s.x, s.rho, v, from)
			if gamma <= 0 {
				// The derivative says no descent, but F along the step
				// need not be convex (queueing): golden section on F
				// itself decides before the loop gives up.
				gamma = goldenSection(phi, 0, from.weight, 24)
			}
		} else {
			gamma = goldenSection(phi, 0, from.weight, p.lineSearchIters())
		}
		if gamma <= 0 {
			break
		}
		for a := range y {
			y[a] = math.Max(0, y[a]+gamma*(v.y[a]-from.y[a]))
		}
		for k := range s.u {
			s.u[k] = math.Max(0, s.u[k]+gamma*(v.u[k]-from.u[k]))
		}
		if in < 0 {
			active = append(active, v)
			in = len(active) - 1
		}
		active[in].weight += gamma
		from.weight -= gamma
		if from.weight <= 1e-12 {
			active = append(active[:away], active[away+1:]...)
		}
		setX()
	}
	if ls != nil {
		s.lsEvals = ls.evals
	}
	s.objective = p.objective(s.x, s.u, s.rho)
	p.state(s.x, s.rho, s.q)
	s.active = make([]vertex, len(active))
	for i, v := range active {
		s.active[i] = *v
	}
	return s
}

// split runs f over [0, n) in two fixed halves, the first on a goroutine
// of its own, and returns when both are done (a panic in either reaches
// the caller once both have stopped, as from a serial loop): the round's loops over
// orchestrators or rows use both cores. Callers split only work whose
// halves write disjoint elements, and sum in a fixed order afterwards, so
// the numbers are the same as a serial loop's whatever the scheduling.
// Problems up to exactLPArcs run f(0, n) on the caller's goroutine: a
// goroutine costs more than their loops.
func (p *problem) split(n int, f func(lo, hi int)) {
	if len(p.arcs) <= exactLPArcs || n < 2 {
		f(0, n)
		return
	}
	mid := n / 2
	var wg sync.WaitGroup
	var lost any // a panic of the other half, raised again here
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() { lost = recover() }()
		f(0, mid)
	}()
	func() {
		defer wg.Wait() // the other half ends first, even if this one panics
		f(mid, n)
	}()
	if lost != nil {
		panic(lost)
	}
}

// goldenSection returns an approximate minimiser of f on [lo, hi], f
// assumed unimodal; the ends are candidates too.
func goldenSection(f func(float64) float64, lo, hi float64, iters int) float64 {
	const r = 0.6180339887498949
	a, b := lo, hi
	c, d := b-r*(b-a), a+r*(b-a)
	fc, fd := f(c), f(d)
	for i := 0; i < iters; i++ {
		if fc <= fd {
			b, d, fd = d, c, fc
			c = b - r*(b-a)
			fc = f(c)
		} else {
			a, c, fc = c, d, fd
			d = a + r*(b-a)
			fd = f(d)
		}
	}
	best, fbest := (a+b)/2, f((a+b)/2)
	for _, e := range [...]float64{lo, hi} {
		if fe := f(e); fe < fbest {
			best, fbest = e, fe
		}
	}
	return best
}

// lmo solves the linear subproblem: minimise Σ g·y + Σ overflow·u subject
// to each row's rest being routed (Σ y + u = rest) and each orchestrator's
// remaining capacity (Σ w·y ≤ rem). Without binding capacity the answer is
// each row's cheapest arc; otherwise an LP is solved with capacity rows for
// the orchestrators that are full in the current allocation (s.rho) or
// overflow, the latter added until none does. Above exactLPArcs (or with
// priced) the LP is replaced by Lagrangian pricing, and lmo returns the
// pricing's certificate: how far above the LP's optimum the answer may be
// (0 when exact). capped is scratch space.
func (p *problem) lmo(g, sy, su []float64, capped []bool, s *solution) float64 {
	clear(sy)
	clear(su)
	// Orchestrators (nearly) full in the current allocation are likely to
	// bind: they get capacity rows from the start.
	for i := range p.orchs {
		capped[i] = s.rho[i] >= 0.95*p.orchs[i].capacity/p.orchs[i].slots
	}
	for k := range p.rows {
		row := &p.rows[k]
		if row.rest <= 0 {
			continue
		}
		best := -1
		for _, a := range row.arcs {
			if best < 0 || g[a] < g[best] {
				best = a
			}
		}
		if best < 0 || g[best] >= row.overflow {
			su[k] = row.rest
		} else {
			sy[best] = row.rest
		}
	}
	p.markOverloaded(sy, capped)
	if !slices.Contains(capped, true) {
		return 0
	}
	if p.greedyLMO {
		p.greedy(g, sy, su)
		return 0
	}
	if p.priced || len(p.arcs) > exactLPArcs {
		s.priced++
		return p.lagrange(g, sy, su)
	}
	for range len(p.orchs) {
		s.lpSolves++
		if err := p.solveLP(g, capped, sy, su); err != nil {
			s.lpFailures++
			p.greedy(g, sy, su)
			return 0
		}
		if !p.markOverloaded(sy, capped) {
			return 0
		}
	}
	return 0
}

// markOverloaded marks the orchestrators whose load under sy exceeds their
// remaining capacity and reports whether it marked any new one.
func (p *problem) markOverloaded(sy []float64, capped []bool) bool {
	added := false
	for i := range p.orchs {
		if capped[i] {
			continue
		}
		o := &p.orchs[i]
		load := 0.0
		for _, a := range o.arcs {
			load += sy[a] * p.arcs[a].w
		}
		if load > o.rem*(1+1e-9)+1e-12 {
			capped[i] = true
			added = true
		}
	}
	return added
}

// solveLP solves the linear subproblem with capacity rows for the capped
// orchestrators only. An uncapped orchestrator has no capacity row, so in
// each row only its cheapest uncapped arc can be used, and capped arcs
// dearer than that never are: both are pruned before the LP is built.
func (p *problem) solveLP(g []float64, capped []bool, sy, su []float64) (err error) {
	// Rows whose cheapest arc is uncapped and no dearer than their capped
	// arcs are settled without the LP: all to that arc (or to overflow).
	var drows []int
	for k := range p.rows {
		row := &p.rows[k]
		if row.rest <= 0 {
			continue
		}
		free, best := -1, -1
		for _, a := range row.arcs {
			if !capped[p.arcs[a].orch] && (free < 0 || g[a] < g[free]) {
				free = a
			}
			if best < 0 || g[a] < g[best] {
				best = a
			}
		}
		if best >= 0 && capped[p.arcs[best].orch] && g[best] < row.overflow && (free < 0 || g[best] < g[free]) {
			drows = append(drows, k)
			continue
		}
		for _, a := range row.arcs {
			sy[a] = 0
		}
		su[k] = 0
		if free >= 0 && g[free] < row.overflow {
			sy[free] = row.rest
		} else {
			su[k] = row.rest
		}
	}
	if len(drows) == 0 {
		return nil
	}
	var crow []int // orchestrators with a capacity row
	capIdx := make([]int, len(p.orchs))
	for i := range p.orchs {
		capIdx[i] = -1
		if capped[i] {
			capIdx[i] = len(drows) + len(crow)
			crow = append(crow, i)
		}
	}
	var cols []lpCol
	for ri, k := range drows {
		row := &p.rows[k]
		free := -1
		for _, a := range row.arcs {
			if !capped[p.arcs[a].orch] && (free < 0 || g[a] < g[free]) {
				free = a
			}
		}
		limit := row.overflow
		if free >= 0 && g[free] < limit {
			limit = g[free]
			cols = append(cols, lpCol{free, ri})
		}
		for _, a := range row.arcs {
			if capped[p.arcs[a].orch] && g[a] < limit {
				cols = append(cols, lpCol{a, ri})
			}
		}
	}
	m := len(drows) + len(crow)
	n := len(cols) + m
	A := mat.NewDense(m, n, nil)
	c := make([]float64, n)
	b := make([]float64, m)
	scale := 0.0
	for j, cl := range cols {
		arc := &p.arcs[cl.arc]
		A.Set(cl.row, j, 1)
		if ci := capIdx[arc.orch]; ci >= 0 {
			A.Set(ci, j, arc.w)
		}
		c[j] = g[cl.arc]
		scale = math.Max(scale, math.Abs(c[j]))
	}
	for ri, k := range drows {
		A.Set(ri, len(cols)+ri, 1)
		c[len(cols)+ri] = p.rows[k].overflow
		scale = math.Max(scale, math.Abs(p.rows[k].overflow))
		// Distinct relative perturbations of the right-hand side keep the
		// vertices non-degenerate, so the simplex does not cycle; demand is
		// nudged up (the answer is scaled back below), capacity down.
		b[ri] = p.rows[k].rest * (1 + 1e-7*perturb(ri))
	}
	for j, o := range crow {
		A.Set(len(drows)+j, len(cols)+len(drows)+j, 1)
		b[len(drows)+j] = p.orchs[o].rem * (1 - 1e-7*perturb(len(drows)+j))
	}
	if scale > 0 {
		for j := range c {
			c[j] /= scale
		}
	}
	basic := p.crashBasis(g, cols, b, len(drows), capIdx)
	x, err := simplex(c, A, b, basic)
	if err != nil {
		return fmt.Errorf("allocation LP (%d rows, %d columns): %w", m, n, err)
	}
	for _, k := range drows {
		for _, a := range p.rows[k].arcs {
			sy[a] = 0
		}
	}
	for j, cl := range cols {
		sy[cl.arc] += math.Max(0, x[j])
	}
	for ri, k := range drows {
		su[k] = math.Max(0, x[len(cols)+ri])
		// Scale the row back to its unperturbed demand (down: capacity holds).
		sum := su[k]
		for _, a := range p.rows[k].arcs {
			sum += sy[a]
		}
		if sum > 0 {
			f := p.rows[k].rest / sum
			if f > 1 { // never scale load up: the rounding shortfall overflows
				su[k] += p.rows[k].rest - sum
				f = 1
			}
			su[k] *= f
			for _, a := range p.rows[k].arcs {
				sy[a] *= f
			}
		}
	}
	return nil
}

// perturb returns distinct numbers in (0, 1] for distinct i (the golden
// ratio's multiples modulo 1 never repeat).
func perturb(i int) float64 {
	_, f := math.Modf(float64(i+1) * 0.6180339887498949)
	return f + 1e-3
}

// lpCol is an arc's column in the LP: the arc and its LP row.
type lpCol struct{ arc, row int }

// crashBasis returns a feasible starting basis close to the optimum, so
// the simplex needs few pivots: each LP row in turn takes its cheapest
// column whose capacity row can still hold the row's whole demand, or its
// overflow; capacity rows keep their slack. The basis is block triangular,
// hence regular, and its values are non-negative by construction.
func (p *problem) crashBasis(g []float64, cols []lpCol, b []float64, nd int, capIdx []int) []int {
	basic := make([]int, len(b))
	for i := range basic {
		basic[i] = len(cols) + i // overflows, then slacks
	}
	rem := slices.Clone(b) // the capacity rows' entries are what is left
	byRow := make([][]int, nd)
	for j, c := range cols {
		byRow[c.row] = append(byRow[c.row], j)
	}
	order := make([]int, nd)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(x, y int) bool { return b[order[x]] > b[order[y]] })
	for _, ri := range order {
		need := b[ri]
		best := -1
		for _, j := range byRow[ri] {
			arc := &p.arcs[cols[j].arc]
			if ci := capIdx[arc.orch]; ci >= 0 && rem[ci]-need*arc.w < 1e-9*(1+rem[ci]) {
				continue
			}
			if best < 0 || g[cols[j].arc] < g[cols[best].arc] {
				best = j
			}
		}
		if best < 0 {
			continue
		}
		if ci := capIdx[p.arcs[cols[best].arc].orch]; ci >= 0 {
			rem[ci] -= need * p.arcs[cols[best].arc].w
		}
		basic[ri] = best
	}
	return basic
}

// errLPBudget aborts a simplex that pivots far longer than it should.
var errLPBudget = errors.New("simplex exceeded its pivot budget")

// budgetMatrix is the LP's constraint matrix as gonum's Simplex reads it.
// Simplex has no iteration limit and can cycle forever on a degenerate
// problem; every pivot reads at least one column of A through At, so
// counting reads bounds the pivots: past the budget At panics with
// errLPBudget, which simplex turns into an error. It deliberately exposes
// only the mat.Matrix methods, so gonum cannot bypass At.
type budgetMatrix struct {
	a      *mat.Dense
	reads  int
	budget int
}

func (m *budgetMatrix) Dims() (r, c int) { return m.a.Dims() }
func (m *budgetMatrix) T() mat.Matrix    { return mat.Transpose{Matrix: m} }

func (m *budgetMatrix) At(i, j int) float64 {
	m.reads++
	if m.reads > m.budget {
		panic(errLPBudget)
	}
	return m.a.At(i, j)
}

// simplex calls gonum's Simplex with a pivot budget of about m + n, and
// turns its panics into errors: a bad round must not take the process
// down or hang it.
func simplex(c []float64, A *mat.Dense, b []float64, basic []int) (x []float64, err error) {
	m, n := A.Dims()
	return simplexBudget(c, A, b, basic, 3*m*n+m*(m+n)) // reading the input, then ~m+n pivots
}

func simplexBudget(c []float64, A *mat.Dense, b []float64, basic []int, budget int) (x []float64, err error) {
	bm := &budgetMatrix{a: A, budget: budget}
	defer func() {
		if r := recover(); r != nil {
			x, err = nil, fmt.Errorf("simplex panicked: %v", r)
			if r == errLPBudget {
				err = errLPBudget
			}
		}
	}()
	_, x, err = lp.Simplex(c, bm, b, 0, basic)
	if err != nil {
		return nil, err
	}
	if x == nil {
		return nil, errors.New("simplex returned no solution")
	}
	return x, nil
}

// greedy is the fallback when the LP fails: each row in turn fills its
// cheapest arcs up to their remaining capacity; the rest overflows. It is
// feasible, not optimal.
func (p *problem) greedy(g, sy, su []float64) {
	clear(sy)
	clear(su)
	rem := make([]float64, len(p.orchs))
	for i := range p.orchs {
		rem[i] = p.orchs[i].rem
	}
	for k := range p.rows {
		row := &p.rows[k]
		left := row.rest
		arcs := append([]int(nil), row.arcs...)
		sort.SliceStable(arcs, func(i, j int) bool { return g[arcs[i]] < g[arcs[j]] })
		for _, a := range arcs {
			if left <= 0 || g[a] >= row.overflow {
				break
			}
			arc := &p.arcs[a]
			take := math.Min(left, rem[arc.orch]/arc.w)
			if take <= 0 {
				continue
			}
			sy[a] += take
			rem[arc.orch] -= take * arc.w
			left -= take
		}
		su[k] = math.Max(0, left)
	}
}

// shares returns the fraction of row k's demand each of its arcs gets
// (aligned with row.arcs): the allocation plus the overflow spread in
// proportion to capacity (better to queue than to fail at the edge).
func (p *problem) shares(s *solution, k int) []float64 {
	row := &p.rows[k]
	out := make([]float64, len(row.arcs))
	if row.demand <= 0 || len(row.arcs) == 0 {
		return out
	}
	capSum := 0.0
	for _, a := range row.arcs {
		capSum += p.orchs[p.arcs[a].orch].capacity
	}
	for i, a := range row.arcs {
		v := s.x[a]
		if s.u[k] > 0 {
			if capSum > 0 {
				v += s.u[k] * p.orchs[p.arcs[a].orch].capacity / capSum
			} else {
				v += s.u[k] / float64(len(row.arcs))
			}
		}
		out[i] = v / row.demand
	}
	return out
}
