package oracle

import (
	"fmt"
	"math"

	"github.com/loopgate/loopgate/sim/scenario"
)

// problem is the allocation LP in a sparse form that both solvers read:
//
//	minimise   Σ_j cost_j·x_j + Σ_i ucost_i·u_i
//	subject to Σ_{j∈row i} x_j + u_i = b_i            demand row i = (c, r)
//	           Σ_{j∈band k} w_j·x_j + s_k = b_{nd+k}   capacity row k = (o, b)
//	           x, u, s ≥ 0
//
// Every x column has exactly two nonzeros: 1 in its demand row and its
// work w in its band's capacity row.
type problem struct {
	rows  [][2]int // demand rows: (class, region)
	bands [][2]int // capacity rows: (orchestrator, band)
	cols  []column
	ucost []float64 // overflow cost by demand row
	b     []float64 // demand, then band capacities
	// byBand lists the columns of each capacity row, in column order.
	byBand [][]int32
}

// column is one x variable: class c from region r to orchestrator o in
// band k (an index into bands).
type column struct {
	c, r, o int
	row     int32 // demand row
	band    int32 // capacity row (index into bands)
	w       float64
	cost    float64
}

// buildProblem builds the LP for a's demand and fleet; nil when there is
// no demand.
func buildProblem(sc *scenario.Scenario, st *scenario.State, cfg Config, a *Allocation) *problem {
	nc, nr, no := len(sc.Classes), len(sc.Regions), len(st.Orchestrators)
	edges := cfg.edges()
	p := &problem{}
	rowOf := grid2i(nc, nr)
	for c := 0; c < nc; c++ {
		for r := 0; r < nr; r++ {
			if a.Demand[c][r] > 0 {
				rowOf[c][r] = len(p.rows)
				p.rows = append(p.rows, [2]int{c, r})
				p.b = append(p.b, a.Demand[c][r])
			}
		}
	}
	if len(p.rows) == 0 {
		return nil
	}
	// Capacity rows in (orchestrator, band) order, only where some column
	// lands.
	wanted := make([]bool, nc)
	for _, rc := range p.rows {
		wanted[rc[0]] = true
	}
	bandOf := make([][]int32, no)
	for o := 0; o < no; o++ {
		bandOf[o] = make([]int32, len(edges))
		used := false
		for c := 0; c < nc && !used; c++ {
			used = wanted[c] && a.serves[c][o]
		}
		for b := range edges {
			bandOf[o][b] = -1
			if used {
				bandOf[o][b] = int32(len(p.bands))
				p.bands = append(p.bands, [2]int{o, b})
			}
		}
	}
	miss := make([]float64, len(edges))
	maxCost := make([]float64, nc)
	for _, rc := range p.rows {
		c, r := rc[0], rc[1]
		class := sc.Classes[c]
		for o := 0; o < no; o++ {
			if !a.serves[c][o] {
				continue
			}
			orch := st.Orchestrators[o]
			off, s := offerOf(sc, st, c, o)
			rtt, _ := sc.RTT.Between(sc.Regions[r], orch.Region)
			billed := 1.0
			if orch.FailMode == scenario.FailFast {
				billed = 1 - orch.Fail
			}
			price := off.Price * class.Units * billed
			w := work(sc, st, c, o)
			for b, hi := range edges {
				if cfg.Queueing {
					miss[b] = missProb(s, orch.Capacity, hi, orch.Fail, rtt, class.SLO)
				} else {
					miss[b] = missProb(s, orch.Capacity, 0, orch.Fail, rtt, class.SLO)
				}
			}
			for b, hi := range edges {
				// m_b: the marginal miss rate of band b (package doc).
				m := miss[b]
				if cfg.Queueing {
					lo, plo := 0.0, 0.0
					if b > 0 {
						lo, plo = edges[b-1], miss[b-1]
					}
					m = (hi*miss[b] - lo*plo) / (hi - lo)
				}
				k := price + class.Value*m
				maxCost[c] = math.Max(maxCost[c], k)
				p.cols = append(p.cols, column{c: c, r: r, o: o, row: int32(rowOf[c][r]), band: bandOf[o][b], w: w, cost: k})
			}
		}
	}
	// A shed costs the class's value of a miss and is billed nothing;
	// without shedding the overflow is the last resort, dearer than any
	// band of its class.
	// (A shed is made a hair dearer than its value, so a band that costs
	// exactly the value — a sure miss at no price — is not an exact tie
	// with it: gonum's simplex cycled on such ties.)
	for _, rc := range p.rows {
		k := sc.Classes[rc[0]].Value*(1+1e-9) + 1e-12
		if !cfg.Shed {
			k = maxCost[rc[0]] + sc.Classes[rc[0]].Value + 1e-9
		}
		p.ucost = append(p.ucost, k)
	}
	for _, ob := range p.bands {
		lo := 0.0
		if ob[1] > 0 {
			lo = edges[ob[1]-1]
		}
		p.b = append(p.b, a.capacity[ob[0]]*(edges[ob[1]]-lo))
	}
	p.byBand = make([][]int32, len(p.bands))
	for j, col := range p.cols {
		p.byBand[col.band] = append(p.byBand[col.band], int32(j))
	}
	return p
}

func grid2i(n, m int) [][]int {
	g := make([][]int, n)
	for i := range g {
		g[i] = make([]int, m)
	}
	return g
}

// simplexFallbackCols is the largest problem the exact simplex takes over
// when the interior point method fails (it never has on the tests' 380
// instances; the simplex solves this size in well under a second).
const simplexFallbackCols = 2000

// solve returns the rates x (by column) and overflow u (by demand row),
// feasible to rounding: polish moves what a band or a demand row holds
// beyond its limit into the overflow.
func (p *problem) solve(m Method) (x, u []float64, err error) {
	switch m {
	case Simplex:
		x, u, err = p.simplex()
	default:
		x, u, err = p.ipm()
		if err != nil && len(p.cols) <= simplexFallbackCols {
			x, u, err = p.simplex()
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("solve allocation LP (%d demand rows, %d bands, %d columns): %w", len(p.rows), len(p.bands), len(p.cols), err)
	}
	p.polish(x, u)
	return x, u, nil
}

// polish makes a solver's answer exactly feasible: drops rates below
// 1e-9 of their demand row, scales down a band loaded beyond its capacity,
// then a demand row routed beyond its demand, and sets the overflow to
// what is left.
func (p *problem) polish(x, u []float64) {
	nd := len(p.rows)
	for j, col := range p.cols {
		if x[j] < 1e-9*p.b[col.row] {
			x[j] = 0
		}
	}
	for k, js := range p.byBand {
		load := 0.0
		for _, j := range js {
			load += p.cols[j].w * x[j]
		}
		if limit := p.b[nd+k]; load > limit {
			f := limit / load
			for _, j := range js {
				x[j] *= f
			}
		}
	}
	sum := make([]float64, nd)
	for j, col := range p.cols {
		sum[col.row] += x[j]
	}
	scale := make([]float64, nd)
	for i := range sum {
		scale[i] = 1
		if sum[i] > p.b[i] {
			scale[i] = p.b[i] / sum[i]
		}
	}
	routed := make([]float64, nd)
	for j, col := range p.cols {
		x[j] *= scale[col.row]
		routed[col.row] += x[j]
	}
	for i := range u {
		u[i] = max(p.b[i]-routed[i], 0)
	}
}

// objective is the LP's objective at (x, u), summed in column order.
func (p *problem) objective(x, u []float64) float64 {
	v := 0.0
	for j, col := range p.cols {
		v += col.cost * x[j]
	}
	for i, k := range p.ucost {
		v += k * u[i]
	}
	return v
}
