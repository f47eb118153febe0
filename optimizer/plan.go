package optimizer

import (
	"fmt"
	"math"
	"sort"

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
	share     []float64 // per orchestrator: its fraction of all demand
	fresh     int       // ejections made this round
}

// rowMeta ties a solver row to its class and region.
type rowMeta struct {
	class  int
	region string
	pseudo bool // no demand: shares are derived after the solve
}

// arcMeta is what a share's reason and the advisor say about an arc.
type arcMeta struct {
	j   int // index in the class's serving orchestrators
	est arcEstimate
}

// overflowM prices demand beyond capacity far above any request served.
const overflowM = 1000

// weights returns the objective's weights on cost and on the value of
// misses: (1−λ, λ), each at least 1e-3 so that the other criterion still
// breaks ties at the ends of the knob.
func weights(lambda float64) (a, b float64) {
	return math.Max(1-lambda, 1e-3), math.Max(lambda, 1e-3)
}

// plan builds and solves the allocation of r.
func (r *round) plan(cfg *Config) *plan {
	wa, wb := weights(r.lambda)
	p := &problem{maxIter: cfg.Solver.MaxIterations, tol: cfg.Solver.Tolerance}
	for i := range r.orchs {
		p.orchs = append(p.orchs, porch{slots: r.orchs[i].slots, capacity: r.orchs[i].slots * cfg.Capacity.Utilisation})
	}
	var rows []rowMeta
	var metas []arcMeta
	flat := make(curve, gridPoints) // the on-time curve of an arc that is never loaded
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
		f := 0.0
		if n := len(eligible); n > 0 {
			f = math.Min(cfg.Exploration, cfg.MaxExploration/float64(n))
		}
		maxBase, maxW := 0.0, 0.0
		for _, j := range eligible {
			est := r.estimate(cfg, ci, j, reg)
			arc := parc{
				row: k, orch: c.orchs[j], base: wa*est.cost + wb*c.value, bvp: wb * c.value * est.p, w: est.work,
			}
			if pseudo {
				arc.t = flat // never loaded: it has no floor and no rest
			} else {
				arc.floor = f * demand
				arc.t = newCurve(est.lat, est.slots, c.slo, cfg.Solver.Queueing)
			}
			maxBase = math.Max(maxBase, arc.base)
			maxW = math.Max(maxW, arc.w)
			row.arcs = append(row.arcs, len(p.arcs))
			p.arcs = append(p.arcs, arc)
			metas = append(metas, arcMeta{j: j, est: est})
		}
		if !pseudo {
			row.rest = demand * (1 - f*float64(len(eligible)))
		}
		row.overflow = maxBase // finished below, once the premium is known
		p.rows = append(p.rows, row)
		rows = append(rows, rowMeta{class: ci, region: reg, pseudo: pseudo})
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
	// The congestion premium is priced at the round's mean cost per
	// server-second, so Spread is scale-free.
	sumBase, sumW := 0.0, 0.0
	for a := range p.arcs {
		if !rows[p.arcs[a].row].pseudo {
			sumBase += p.arcs[a].base
			sumW += p.arcs[a].w
		}
	}
	if sumW > 0 {
		p.spreadK = cfg.Solver.Spread * sumBase / sumW
	}
	for k := range p.rows {
		maxW := 0.0
		for _, a := range p.rows[k].arcs {
			maxW = math.Max(maxW, p.arcs[a].w)
		}
		// A big M: overflow is used only when capacity runs out.
		p.rows[k].overflow = overflowM*(p.rows[k].overflow+p.spreadK*maxW) + 1e-9
	}
	sol := p.solve()

	pl := &plan{sol: sol, share: make([]float64, len(r.orchs))}
	for e := range r.ejections {
		if r.ejections[e].fresh {
			pl.fresh++
		}
	}
	// Shares of the demand rows.
	rowShares := make([][]float64, len(p.rows))
	for k, rm := range rows {
		if rm.pseudo {
			continue
		}
		rowShares[k] = p.shares(&sol, k)
		pl.demand += p.rows[k].demand
		pl.unserved += sol.u[k]
		for i, a := range p.rows[k].arcs {
			pl.share[p.arcs[a].orch] += rowShares[k][i] * p.rows[k].demand
		}
	}
	if pl.demand > 0 {
		for i := range pl.share {
			pl.share[i] /= pl.demand
		}
	}
	// Shares of the pseudo rows: the demand-weighted blend of the class's
	// regions, or, for a class without demand, the exploration floors and
	// the rest to the lowest marginal cost at the planned loads.
	onTimeAt := func(a int) float64 {
		arc := &p.arcs[a]
		c := &r.classes[rows[arc.row].class]
		return onTime(metas[a].est.lat, metas[a].est.slots, sol.rho[arc.orch]*boolf(cfg.Solver.Queueing), c.slo)
	}
	pseudoReason := make([]string, len(p.rows))
	for k, rm := range rows {
		if !rm.pseudo || len(p.rows[k].arcs) == 0 {
			continue
		}
		row := &p.rows[k]
		out := make([]float64, len(row.arcs))
		total := 0.0
		for k2, rm2 := range rows {
			if rm2.pseudo || rm2.class != rm.class {
				continue
			}
			d := p.rows[k2].demand
			total += d
			for i := range out { // same eligible orchestrators, same order
				out[i] += d * rowShares[k2][i]
			}
		}
		if total > 0 {
			for i := range out {
				out[i] /= total
			}
			pseudoReason[k] = "blend of the class's client regions"
		} else {
			n := float64(len(row.arcs))
			f := math.Min(cfg.Exploration, cfg.MaxExploration/n)
			best, bestG := 0, math.Inf(1)
			for i, a := range row.arcs {
				arc := &p.arcs[a]
				if g := p.marginal(arc.orch, arc.base, arc.bvp, arc.w, onTimeAt(a), sol.rho, sol.q); g < bestG {
					best, bestG = i, g
				}
				out[i] = f
			}
			out[best] += 1 - f*n
			pseudoReason[k] = "no demand in the window: lowest marginal cost"
		}
		rowShares[k] = out
	}

	// The policy entries, class by class, regions sorted ("" first).
	for k, rm := range rows {
		c := &r.classes[rm.class]
		row := &p.rows[k]
		if len(row.arcs) == 0 {
			continue // every orchestrator of the class is ejected
		}
		cp := event.ClassPolicy{Capability: c.key.capability, Model: c.key.model, ClientRegion: rm.region}
		shares := roundShares(rowShares[k])
		byOrch := map[int]int{}
		for i, a := range row.arcs {
			byOrch[p.arcs[a].orch] = i
		}
		f := 0.0
		if len(row.arcs) > 0 {
			f = math.Min(cfg.Exploration, cfg.MaxExploration/float64(len(row.arcs)))
		}
		for _, o := range c.orchs {
			i, ok := byOrch[o]
			if !ok {
				cp.Shares = append(cp.Shares, event.Share{Orchestrator: r.orchs[o].cfg.ID, Share: 0, Reason: "ejected: " + r.ejectionReason(o)})
				continue
			}
			a := row.arcs[i]
			m := metas[a]
			why := fmt.Sprintf("success %.3f, on time %.3f at load %.2f, $%.3g/req, %d attempts",
				m.est.p, onTimeAt(a), sol.rho[p.arcs[a].orch], m.est.cost, int64(m.est.n))
			switch {
			case rm.pseudo:
				why = pseudoReason[k] + "; " + why
			case shares[i] <= f+1e-4:
				why = "exploration; " + why
			}
			if r.orchs[o].learned {
				why += fmt.Sprintf("; capacity %.1f learned from busy answers", r.orchs[o].slots)
			}
			cp.Shares = append(cp.Shares, event.Share{Orchestrator: r.orchs[o].cfg.ID, Share: shares[i], Reason: why})
		}
		pl.classes = append(pl.classes, cp)
	}
	for _, e := range r.ejections {
		pl.ejections = append(pl.ejections, event.Ejection{Orchestrator: r.orchs[e.orch].cfg.ID, Reason: e.reason, UntilMs: e.until.UnixMilli()})
	}
	pl.advisor = r.advisorView(cfg, p, &sol, rowShares)
	return pl
}

func (r *round) ejectionReason(o int) string {
	for _, e := range r.ejections {
		if e.orch == o {
			return e.reason
		}
	}
	return ""
}

func boolf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// roundShares rounds shares to 1e-6 and puts the rounding residual on the
// largest, so they sum to 1 as exactly as float64 allows.
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

// advisorView builds what the advisor endpoints serve.
func (r *round) advisorView(cfg *Config, p *problem, sol *solution, rowShares [][]float64) *advisorView {
	v := &advisorView{perf: map[string]map[string]perfScore{}}
	maxShare := make([]float64, len(r.orchs))
	for k := range p.rows {
		for i, a := range p.rows[k].arcs {
			if rowShares[k] != nil {
				maxShare[p.arcs[a].orch] = math.Max(maxShare[p.arcs[a].orch], rowShares[k][i])
			}
		}
	}
	for i := range r.orchs {
		o := &r.orchs[i]
		if o.cfg.URL == "" || !o.eligible {
			continue
		}
		entry := webhookEntry{Address: o.cfg.URL, Score: 1}
		if maxShare[i] >= cfg.AdvisorMinShare {
			v.webhook = append(v.webhook, entry)
		}
		v.fallback = append(v.fallback, entry)
	}
	if len(v.webhook) == 0 {
		// Never advise an empty pool: go-livepeer would have no orchestrator.
		v.webhook = v.fallback
	}

	regions := map[string]bool{}
	for _, reg := range r.regions {
		if reg != "" {
			regions[reg] = true
		}
	}
	for _, reg := range cfg.AdvisorRegions {
		regions[reg] = true
	}
	var regs []string
	for reg := range regions {
		regs = append(regs, reg)
	}
	sort.Strings(regs)
	for i := range r.orchs {
		o := &r.orchs[i]
		if !addressRE.MatchString(o.cfg.Address) {
			continue // go-livepeer rejects the whole document on a key that is not an address
		}
		scores := map[string]perfScore{}
		for _, reg := range regs {
			num, den := 0.0, 0.0
			for ci := range r.classes {
				c := &r.classes[ci]
				for j, oi := range c.orchs {
					if oi != i {
						continue
					}
					est := r.estimate(cfg, ci, j, reg)
					rho := 0.0
					if cfg.Solver.Queueing {
						rho = sol.rho[i]
					}
					w := r.demand[demandKey{ci, reg}] + 1e-9
					num += w * est.p * onTime(est.lat, est.slots, rho, c.slo)
					den += w
				}
			}
			score := 0.0
			if den > 0 && o.eligible {
				score = math.Round(num/den*1000) / 1000
			}
			scores[reg] = perfScore{Score: score}
		}
		v.perf[o.cfg.Address] = scores
	}
	return v
}
