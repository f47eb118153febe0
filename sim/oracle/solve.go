package oracle

import (
	"fmt"

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
	// Method is the LP solver. Default IPM.
	Method Method
	// Shed lets the oracle refuse requests at arrival, as loopgate's edge
	// may: the LP's overflow costs what a shed costs under the loss rules
	// (the class's value of a miss, nothing billed) and is refused, not
	// routed (see the package doc, "Shedding"). false routes the overflow
	// at a last-resort cost, the oracle without an edge. Default true.
	Shed bool
}

// Method is an LP solver for the allocation.
type Method uint8

const (
	// IPM is a primal-dual interior point method (Mehrotra) that solves the
	// normal equations through a Schur complement on the demand rows; it
	// scales to hundreds of orchestrators. See the package doc.
	IPM Method = iota
	// Simplex is gonum's dense simplex: an exact vertex, for small
	// instances and to check IPM against.
	Simplex
)

// DefaultConfig returns the defaults written on each field.
func DefaultConfig() Config {
	return Config{Utilisation: 0.9, Bands: []float64{0.5, 0.7, 0.8}, Queueing: true, Shed: true}
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
	if c.Method > Simplex {
		return fmt.Errorf("method %d: want IPM or Simplex", c.Method)
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
	Overflow  [][]float64   // [class][region]: demand not routed (shed with Config.Shed)
	Objective float64       // expected USD per second (overflow at its cost)
	shed      bool          // Config.Shed: the overflow is refused
	shedFrac  [][]float64   // [class][region]: ShedFraction
	capacity  []float64     // servers of each available orchestrator, 0 if unavailable
	serves    [][]bool      // [class][orch], available and serving
}

// minShed is the smallest shed fraction ShedFraction reports: below it
// the overflow is the solver's rounding.
const minShed = 1e-6

// ShedFraction is the fraction of (class, region) demand the oracle
// refuses at arrival with Config.Shed (else 0): its overflow ÷ its demand,
// where the demand of an on/off client is its long-run rate (meanRate).
func (a *Allocation) ShedFraction(class, region int) float64 {
	if !a.shed {
		return 0
	}
	return a.shedFrac[class][region]
}

// Shares returns the fraction of the routed (class, region) demand to send
// to each orchestrator: the LP's rates, plus, without Config.Shed, the
// overflow spread by capacity over the eligible available orchestrators
// (with it, the overflow is refused, ShedFraction). A (class, region)
// routed nothing is spread by capacity. All zero when nothing can serve it.
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
	if f := a.ShedFraction(class, region); f > 0 && f < 1-minShed && over < d {
		over, d = 0, d-over // the overflow is refused: share what is routed
	}
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
	bursty := false
	for i := range st.Clients {
		bursty = bursty || st.Clients[i].Bursty()
	}
	if !cfg.Shed || !bursty {
		return solve(sc, st, cfg, false)
	}
	// Route for the peak, without shedding: a burst is spread over the
	// fleet as the oracle without an edge spreads it. Refuse only what
	// the long-run rates overflow.
	peak := cfg
	peak.Shed = false
	a, err := solve(sc, st, peak, false)
	if err != nil {
		return nil, err
	}
	mean, err := solve(sc, st, cfg, true)
	if err != nil {
		return nil, err
	}
	a.shed, a.shedFrac = true, mean.shedFrac
	return a, nil
}

// solve is Solve for one demand: the clients' rates, or with mean their
// long-run rates (meanRate).
func solve(sc *scenario.Scenario, st *scenario.State, cfg Config, mean bool) (*Allocation, error) {
	nc, nr, no := len(sc.Classes), len(sc.Regions), len(st.Orchestrators)
	region := map[string]int{}
	for i, r := range sc.Regions {
		region[r] = i
	}
	a := &Allocation{
		Demand: grid2(nc, nr), Overflow: grid2(nc, nr), Rate: make([][][]float64, nc),
		shed: cfg.Shed, shedFrac: grid2(nc, nr), capacity: make([]float64, no), serves: make([][]bool, nc),
	}
	for c := range a.Rate {
		a.Rate[c] = grid2(nr, no)
		a.serves[c] = make([]bool, no)
	}
	rates := make([]float64, len(st.Clients))
	for i := range st.Clients {
		rates[i] = st.Clients[i].Rate
		if mean {
			rates[i] = meanRate(&st.Clients[i])
		}
	}
	rates = admittedRates(sc, st.Clients, rates) // gateway.go
	for i, cl := range st.Clients {
		for c, class := range sc.Classes {
			a.Demand[c][region[cl.Region]] += rates[i] * cl.Mix[class.ID]
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
	prob := buildProblem(sc, st, cfg, a)
	if prob == nil {
		return a, nil
	}
	x, u, err := prob.solve(cfg.Method)
	if err != nil {
		return nil, err
	}
	a.Objective = prob.objective(x, u)
	for j, col := range prob.cols {
		a.Rate[col.c][col.r][col.o] += x[j]
	}
	for i, dr := range prob.rows {
		c, r := dr[0], dr[1]
		a.Overflow[c][r] = u[i]
		if f := u[i] / a.Demand[c][r]; cfg.Shed && f >= minShed {
			a.shedFrac[c][r] = min(f, 1)
		}
	}
	return a, nil
}

// meanRate is a client's long-run rate: an on/off client's averaged over
// its cycle. The fluid model sees rates, not bursts; a burst is the
// per-request rule's to handle (package doc, "Shedding"), and the on rate
// would make the LP shed, at every moment, what a burst only needs queued.
func meanRate(cl *scenario.Client) float64 {
	if !cl.Bursty() {
		return cl.Rate
	}
	on, off := cl.On.Seconds(), cl.Off.Seconds()
	return (cl.Rate*on + cl.OffRate*off) / (on + off)
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
