package oracle

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/optimize/convex/lp"

	"github.com/loopgate/loopgate/sim/scenario"
)

// Config tunes the formulation.
type Config struct {
	// Utilisation caps each orchestrator's server utilisation. Default 0.9.
	Utilisation float64
	// Bands are the utilisation band edges, ascending, in (0, Utilisation];
	// Utilisation is appended when missing. Default 0.5, 0.7, 0.8.
	Bands []float64
	// Queueing adds the M/M/c waiting time to the miss probability; false
	// ignores queueing and uses one band. Default true.
	Queueing bool
}

// DefaultConfig returns the defaults written on each field.
func DefaultConfig() Config {
	return Config{Utilisation: 0.9, Bands: []float64{0.5, 0.7, 0.8}, Queueing: true}
}

// Validate reports a config Solve cannot use.
func (c Config) Validate() error {
	if !(c.Utilisation > 0 && c.Utilisation <= 1) {
		return fmt.Errorf("utilisation %v: want in (0, 1]", c.Utilisation)
	}
	prev := 0.0
	for i, b := range c.Bands {
		if !(b > prev && b <= c.Utilisation) {
			return fmt.Errorf("bands[%d] %v: want ascending in (0, utilisation %v]", i, b, c.Utilisation)
		}
		prev = b
	}
	return nil
}

func (c Config) edges() []float64 {
	if !c.Queueing {
		return []float64{c.Utilisation}
	}
	e := append([]float64(nil), c.Bands...)
	if len(e) == 0 || e[len(e)-1] < c.Utilisation {
		e = append(e, c.Utilisation)
	}
	return e
}

// Allocation is the solution: routed rates in requests per second, indexed
// [class][region][orchestrator] by the scenario's class, region and
// orchestrator order.
type Allocation struct {
	Demand    [][]float64   // [class][region]
	Rate      [][][]float64 // [class][region][orch], summed over bands
	Overflow  [][]float64   // [class][region]: demand beyond the utilisation cap
	Objective float64       // expected USD per second (overflow at its penalty)
	capacity  []float64     // servers of each available orchestrator, 0 if unavailable
	serves    [][]bool      // [class][orch], available and serving
}

// Shares returns the fraction of (class, region) demand to send to each
// orchestrator: the LP's rates plus the overflow spread by capacity over the
// eligible available orchestrators. All zero when nothing can serve it.
func (a *Allocation) Shares(class, region int) []float64 {
	n := len(a.capacity)
	out := make([]float64, n)
	d := a.Demand[class][region]
	capSum := 0.0
	for o := 0; o < n; o++ {
		if a.serves[class][o] {
			capSum += a.capacity[o]
		}
	}
	if capSum == 0 {
		return out
	}
	over := a.Overflow[class][region]
	if d <= 0 {
		// No demand expected: a stray request is spread by capacity.
		over, d = 1, 1
	}
	for o := 0; o < n; o++ {
		out[o] = a.Rate[class][region][o]
		if a.serves[class][o] {
			out[o] += over * a.capacity[o] / capSum
		}
		out[o] /= d
	}
	return out
}

// Solve computes the allocation for the fleet and demand in st.
func Solve(sc *scenario.Scenario, st *scenario.State, cfg Config) (*Allocation, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("oracle config: %w", err)
	}
	nc, nr, no := len(sc.Classes), len(sc.Regions), len(st.Orchestrators)
	region := map[string]int{}
	for i, r := range sc.Regions {
		region[r] = i
	}
	a := &Allocation{
		Demand: grid2(nc, nr), Overflow: grid2(nc, nr), Rate: make([][][]float64, nc),
		capacity: make([]float64, no), serves: make([][]bool, nc),
	}
	for c := range a.Rate {
		a.Rate[c] = grid2(nr, no)
		a.serves[c] = make([]bool, no)
	}
	for _, cl := range st.Clients {
		for c, class := range sc.Classes {
			a.Demand[c][region[cl.Region]] += cl.Rate * cl.Mix[class.ID]
		}
	}
	for o, orch := range st.Orchestrators {
		if orch.Down || orch.Hang {
			continue
		}
		a.capacity[o] = float64(orch.Capacity)
		for c, class := range sc.Classes {
			_, ok := orch.Classes[class.ID]
			a.serves[c][o] = ok
		}
	}
	edges := cfg.edges()

	// Columns: x variables, then one overflow per demand row, then one slack
	// per capacity row. Rows: demand rows, then capacity rows.
	type xvar struct{ c, r, o, b int }
	var xs []xvar
	var classOf []int
	var cost []float64
	var demandRows [][2]int
	for c := 0; c < nc; c++ {
		for r := 0; r < nr; r++ {
			if a.Demand[c][r] <= 0 {
				continue
			}
			demandRows = append(demandRows, [2]int{c, r})
			for o := 0; o < no; o++ {
				if !a.serves[c][o] {
					continue
				}
				for b := range edges {
					xs = append(xs, xvar{c, r, o, b})
					classOf = append(classOf, c)
					cost = append(cost, bandCost(sc, st, cfg, edges, c, r, o, b))
				}
			}
		}
	}
	if len(demandRows) == 0 {
		return a, nil
	}
	capRow := map[[2]int]int{} // (o, b) -> capacity row index among capacity rows
	var capKeys [][2]int
	for _, x := range xs {
		k := [2]int{x.o, x.b}
		if _, ok := capRow[k]; !ok {
			capRow[k] = len(capKeys)
			capKeys = append(capKeys, k)
		}
	}
	rows := len(demandRows) + len(capKeys)
	cols := len(xs) + len(demandRows) + len(capKeys)
	A := mat.NewDense(rows, cols, nil)
	bvec := make([]float64, rows)
	cvec := make([]float64, cols)
	copy(cvec, cost)
	rowOf := map[[2]int]int{}
	for i, dr := range demandRows {
		rowOf[dr] = i
		bvec[i] = a.Demand[dr[0]][dr[1]]
		u := len(xs) + i
		A.Set(i, u, 1)
		cvec[u] = overflowCost(sc, dr[0], classOf, cost)
	}
	for j, k := range capKeys {
		row := len(demandRows) + j
		lo := 0.0
		if k[1] > 0 {
			lo = edges[k[1]-1]
		}
		bvec[row] = a.capacity[k[0]] * (edges[k[1]] - lo)
		A.Set(row, len(xs)+len(demandRows)+j, 1)
	}
	for col, x := range xs {
		A.Set(rowOf[[2]int{x.c, x.r}], col, 1)
		A.Set(len(demandRows)+capRow[[2]int{x.o, x.b}], col, work(sc, st, x.c, x.o))
	}
	basic := make([]int, rows)
	for i := range basic {
		basic[i] = len(xs) + i
	}
	opt, sol, err := lp.Simplex(cvec, A, bvec, 0, basic)
	if err != nil {
		return nil, fmt.Errorf("solve allocation LP (%d rows, %d columns): %w", rows, cols, err)
	}
	a.Objective = opt
	for col, x := range xs {
		a.Rate[x.c][x.r][x.o] += clean(sol[col])
	}
	for i, dr := range demandRows {
		a.Overflow[dr[0]][dr[1]] = clean(sol[len(xs)+i])
	}
	return a, nil
}

// clean drops the LP's rounding noise.
func clean(v float64) float64 {
	if v < 1e-12 {
		return 0
	}
	return v
}

func grid2(n, m int) [][]float64 {
	g := make([][]float64, n)
	for i := range g {
		g[i] = make([]float64, m)
	}
	return g
}

func offerOf(sc *scenario.Scenario, st *scenario.State, c, o int) (scenario.Offer, lognormal) {
	off := st.Orchestrators[o].Classes[sc.Classes[c].ID]
	return off, lognormal{p50: off.P50.Seconds(), sigma: off.Sigma()}
}

// work is the server-seconds one request of class c takes at o on average.
func work(sc *scenario.Scenario, st *scenario.State, c, o int) float64 {
	_, s := offerOf(sc, st, c, o)
	orch := st.Orchestrators[o]
	if orch.FailMode == scenario.FailFast {
		return s.mean() * (1 - orch.Fail)
	}
	return s.mean()
}

// bandCost is k[c,r,o,b]: price paid plus value × marginal miss rate.
func bandCost(sc *scenario.Scenario, st *scenario.State, cfg Config, edges []float64, c, r, o, b int) float64 {
	class := sc.Classes[c]
	orch := st.Orchestrators[o]
	off, s := offerOf(sc, st, c, o)
	rtt, _ := sc.RTT.Between(sc.Regions[r], orch.Region)
	billed := 1.0
	if orch.FailMode == scenario.FailFast {
		billed = 1 - orch.Fail
	}
	miss := func(rho float64) float64 {
		if !cfg.Queueing {
			rho = 0
		}
		return missProb(s, orch.Capacity, rho, orch.Fail, rtt, class.SLO)
	}
	hi := edges[b]
	lo := 0.0
	if b > 0 {
		lo = edges[b-1]
	}
	var m float64
	if !cfg.Queueing {
		m = miss(0)
	} else {
		m = (hi*miss(hi) - lo*miss(lo)) / (hi - lo)
	}
	return off.Price*class.Units*billed + class.Value*m
}

// overflowCost is K[c]: the dearest band of class c plus its value, so
// overflow is the last resort.
func overflowCost(sc *scenario.Scenario, c int, classOf []int, cost []float64) float64 {
	k := 0.0
	for i, cc := range classOf {
		if cc == c {
			k = math.Max(k, cost[i])
		}
	}
	return k + sc.Classes[c].Value + 1e-9
}
