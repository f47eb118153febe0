package optimizer

import (
	"fmt"
	"math"

	"github.com/loopgate/loopgate/event"
)

// plan is the result of one round: the policy body, the advisor's view and
// what the metrics report.
type plan struct {
	classes   []event.ClassPolicy
	ejections []event.Ejection
	advisor   *advisorView
	sol       solution
	demand    float64   // requests per second, every row
	unserved  float64   // requests per second beyond capacity
	damped    bool      // the shares moved ShareStep of the way (damp.go)
	share     []float64 // per orchestrator: its fraction of all demand
	fresh     int       // ejections made this round
	pr        *planner  // the problem and estimates, for the frontier
}

// Reasons the policy size guard recognises (see fitPolicy).
const (
	reasonExploration = "exploration"
	reasonEjected     = "ejected"
)

// overflowM prices demand beyond capacity far above any request served.
const overflowM = 1000

// weights returns the objective's weights on cost and on the value of
// misses: (1−λ, λ), each at least 1e-3 so that the other criterion still
// breaks ties at the ends of the knob.
func weights(lambda float64) (a, b float64) {
	return math.Max(1-lambda, 1e-3), math.Max(lambda, 1e-3)
}

// planner turns a round's estimates into a solver problem and the
// solution back into policy entries.
type planner struct {
	r      *round
	cfg    *Config
	p      *problem
	rows   []rowMeta     // per solver row
	est    []arcEstimate // per solver arc
	value  []float64     // per solver arc: its class's value of a miss, USD
	billed []float64     // per solver arc: the fraction of its attempts billed
	bend   []float64     // per solver arc: how the router bends its share (nil: not at all)
	sol    solution
	shares [][]float64 // per row, aligned with its arcs
	why    []string    // per pseudo row: how its shares were derived
}

// rowMeta ties a solver row to its class and client region.
type rowMeta struct {
	class  int
	region string
	// pseudo rows have no demand and take no part in the solve: they give
	// the region-less entry of a class (see pseudoShares).
	pseudo bool
}

// plan builds and solves the allocation of r.
func (r *round) plan(cfg *Config) *plan {
	pr := &planner{r: r, cfg: cfg}
	pr.build()
	pr.sol = pr.p.solve()
	pl := &plan{sol: pr.sol, share: make([]float64, len(r.orchs)), pr: pr}
	pr.demandShares(pl)
	pr.pseudoShares()
	pl.classes = pr.entries()
	for _, e := range r.ejections {
		pl.ejections = append(pl.ejections, event.Ejection{Orchestrator: r.orchs[e.orch].cfg.ID, Reason: e.reason, UntilMs: e.until.UnixMilli()})
		if e.fresh {
			pl.fresh++
		}
	}
	pl.advisor = pr.advisorView()
	return pl
}

// build lays out the problem: a row per (class, client region) with
// demand, plus a pseudo row per class without demand from region "", and
// an arc from each row to each eligible orchestrator serving the class.
func (pr *planner) build() {
	r, cfg := pr.r, pr.cfg
	p := &problem{maxIter: cfg.Solver.MaxIterations, tol: cfg.Solver.Tolerance}
	pr.p = p
	for i := range r.orchs {
		p.orchs = append(p.orchs, porch{slots: r.orchs[i].slots, capacity: r.orchs[i].slots * cfg.Capacity.Utilisation})
	}
	var flat curve // the on-time curve of an arc that is never loaded: 0
	memo := curves{}
	addRow := func(ci int, reg string, demand float64, pseudo bool) {
		c := &r.classes[ci]
		k := len(p.rows)
		row := prow{demand: demand}
		var eligible []int
		for j, o := range c.orchs {
			if r.orchs[o].eligible {
				eligible = append(eligible, j)
			}
		}
		f := pr.floor(len(eligible))
		for _, j := range eligible {
			est := r.estimate(cfg, ci, j, reg, pseudo)
			arc := parc{row: k, orch: c.orchs[j], w: est.work, t: flat}
			if !pseudo {
				arc.floor = f * demand
				arc.t = memo.get(est.lat, est.slots, c.slo, cfg.Solver.Queueing)
			}
			row.arcs = append(row.arcs, len(p.arcs))
			p.arcs = append(p.arcs, arc)
			pr.est = append(pr.est, est)
			pr.value = append(pr.value, c.value)
			pr.billed = append(pr.billed, billedFraction(&c.oc[j], est.p, cfg.Prior.SuccessWeight))
		}
		if !pseudo {
			row.rest = demand * (1 - f*float64(len(eligible)))
		}
		p.rows = append(p.rows, row)
		pr.rows = append(pr.rows, rowMeta{class: ci, region: reg, pseudo: pseudo})
	}
	for ci := range r.classes {
		hasDefault := false
		for _, reg := range r.regions {
			if d := r.demand[demandKey{ci, reg}]; d > 0 {
				addRow(ci, reg, d, false)
				hasDefault = hasDefault || reg == ""
			}
		}
		if !hasDefault {
			addRow(ci, "", 0, true)
		}
	}
	pr.weigh(p, r.lambda)
	p.scaleQuadrature()
}

// weigh sets the λ-dependent part of p: every arc's costs, the congestion
// premium and the rows' overflow prices. Everything else in p (demand,
// floors, work, on-time curves, capacities) is independent of λ, which is
// what lets the frontier re-weigh a copy of the round's problem instead of
// building it again.
//
// A class with a λ of its own (Config.ClassLambdas) is weighed with it;
// every other class with lambda.
func (pr *planner) weigh(p *problem, lambda float64) {
	for a := range p.arcs {
		arc, est, v := &p.arcs[a], &pr.est[a], pr.value[a]
		l := lambda
		if cl, ok := pr.r.classLambda[pr.r.classes[pr.rows[arc.row].class].key]; ok {
			l = cl
		}
		wa, wb := weights(l)
		arc.base, arc.bvp = wa*est.cost+wb*v, wb*v*est.p
	}
	// The congestion premium is priced at the round's mean cost per
	// server-second, so Spread is scale-free.
	sumBase, sumW := 0.0, 0.0
	p.spreadK = 0
	for a := range p.arcs {
		if !pr.rows[p.arcs[a].row].pseudo {
			sumBase += p.arcs[a].base
			sumW += p.arcs[a].w
		}
	}
	if sumW > 0 {
		p.spreadK = pr.cfg.Solver.Spread * sumBase / sumW
	}
	for k := range p.rows {
		maxBase, maxW := 0.0, 0.0
		for _, a := range p.rows[k].arcs {
			maxBase = math.Max(maxBase, p.arcs[a].base)
			maxW = math.Max(maxW, p.arcs[a].w)
		}
		// A big M: overflow is used only when capacity runs out.
		p.rows[k].overflow = overflowM*(maxBase+p.spreadK*maxW) + 1e-9
	}
}

// floor is the exploration share of each of n eligible orchestrators.
func (pr *planner) floor(n int) float64 {
	if n == 0 {
		return 0
	}
	return math.Min(pr.cfg.Exploration, pr.cfg.MaxExploration/float64(n))
}

// onTime is the probability that a request on arc a succeeds within its
// SLO at the planned utilisation.
func (pr *planner) onTime(a int) float64 {
	arc := &pr.p.arcs[a]
	rho := 0.0
	if pr.cfg.Solver.Queueing {
		rho = pr.sol.rho[arc.orch]
	}
	est := &pr.est[a]
	return est.p * onTime(est.lat, est.slots, rho, pr.r.classes[pr.rows[arc.row].class].slo)
}

// demandShares computes the shares of the rows with demand and the
// fleet-level figures of pl.
func (pr *planner) demandShares(pl *plan) {
	p := pr.p
	pr.shares = make([][]float64, len(p.rows))
	for k, rm := range pr.rows {
		if !rm.pseudo {
			pr.shares[k] = p.shares(&pr.sol, k)
		}
	}
	pl.damped = pr.dampShares() // damp.go
	for k, rm := range pr.rows {
		if rm.pseudo {
			continue
		}
		pl.demand += p.rows[k].demand
		pl.unserved += pr.sol.u[k]
		for i, a := range p.rows[k].arcs {
			pl.share[p.arcs[a].orch] += pr.shares[k][i] * p.rows[k].demand
		}
	}
	if pl.demand > 0 {
		for i := range pl.share {
			pl.share[i] /= pl.demand
		}
	}
}

// pseudoShares computes the shares of the pseudo rows: the demand-weighted
// blend of the class's regions, or, for a class without demand, the
// exploration floors and the rest to the lowest marginal cost at the
// planned loads.
func (pr *planner) pseudoShares() {
	p := pr.p
	pr.why = make([]string, len(p.rows))
	for k, rm := range pr.rows {
		row := &p.rows[k]
		if !rm.pseudo || len(row.arcs) == 0 {
			continue
		}
		out := make([]float64, len(row.arcs))
		total := 0.0
		for k2, rm2 := range pr.rows {
			if rm2.pseudo || rm2.class != rm.class {
				continue
			}
			d := p.rows[k2].demand
			total += d
			for i := range out { // same eligible orchestrators, same order
				out[i] += d * pr.shares[k2][i]
			}
		}
		if total > 0 {
			for i := range out {
				out[i] /= total
			}
			pr.why[k] = "blend of the class's client regions"
		} else {
			f := pr.floor(len(row.arcs))
			best, bestG := 0, math.Inf(1)
			for i, a := range row.arcs {
				arc := &p.arcs[a]
				t := pr.onTime(a) / math.Max(pr.est[a].p, 1e-12)
				if g := p.marginal(arc.orch, arc.base, arc.bvp, arc.w, t, pr.sol.rho, pr.sol.q); g < bestG {
					best, bestG = i, g
				}
				out[i] = f
			}
			out[best] += 1 - f*float64(len(out))
			pr.why[k] = "no demand in the window: lowest marginal cost"
		}
		pr.shares[k] = out
	}
}

// entries returns the policy's class entries: class by class, regions
// sorted ("" first), every serving orchestrator named with its share and
// the reason for it.
func (pr *planner) entries() []event.ClassPolicy {
	r, p := pr.r, pr.p
	var out []event.ClassPolicy
	for k, rm := range pr.rows {
		c := &r.classes[rm.class]
		row := &p.rows[k]
		if len(row.arcs) == 0 {
			continue // every orchestrator of the class is ejected: the router panic-routes
		}
		cp := event.ClassPolicy{Capability: c.key.capability, Model: c.key.model, ClientRegion: rm.region}
		shares := roundShares(pr.shares[k])
		byOrch := map[int]int{}
		for i, a := range row.arcs {
			byOrch[p.arcs[a].orch] = i
		}
		f := pr.floor(len(row.arcs))
		for _, o := range c.orchs {
			id := r.orchs[o].cfg.ID
			i, ok := byOrch[o]
			if !ok {
				// The reason is in the policy's ejections, once.
				cp.Shares = append(cp.Shares, event.Share{Orchestrator: id, Share: 0, Reason: reasonEjected})
				continue
			}
			a := row.arcs[i]
			est := &pr.est[a]
			var why string
			if shares[i] <= f+1e-4 {
				// Most shares of a large fleet are floors: keep them short.
				why = fmt.Sprintf("%s, %d attempts", reasonExploration, int64(est.n))
			} else {
				why = fmt.Sprintf("success %.3f, on time %.3f at load %.2f, $%.3g/req, %d attempts",
					est.p, pr.onTime(a)/math.Max(est.p, 1e-12), pr.sol.rho[o], est.cost, int64(est.n))
				if rm.pseudo {
					why = pr.why[k] + "; " + why
				}
				if r.orchs[o].learned {
					why += fmt.Sprintf("; capacity %.1f learned from busy answers", r.orchs[o].slots)
				}
			}
			cp.Shares = append(cp.Shares, event.Share{Orchestrator: id, Share: shares[i], Reason: why})
		}
		out = append(out, cp)
	}
	return out
}

// roundShares normalises shares, rounds them to 1e-6 and puts the rounding
// residual on the largest, so they sum to 1 as exactly as float64 allows.
func roundShares(v []float64) []float64 {
	out := make([]float64, len(v))
	sum := 0.0
	for _, s := range v {
		sum += s
	}
	if !(sum > 0) {
		return out
	}
	total, big := 0.0, 0
	for i, s := range v {
		out[i] = math.Round(s/sum*1e6) / 1e6
		total += out[i]
		if out[i] > out[big] {
			big = i
		}
	}
	out[big] = math.Max(0, out[big]+1-total)
	return out
}
