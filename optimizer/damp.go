package optimizer

import "math"

// moveOnEvidence: a solution better than the last policy's shares,
// re-priced on this round's estimates, by more than this fraction of F
// (the expected weighted cost per second of the solution) is taken at
// once; a smaller gain is within the estimates' noise, and the shares move
// Config.ShareStep of the way. (F above its zero-load bound would be the
// natural scale, but with capacity to spare it is near 0 and any gain
// would pass.)
const moveOnEvidence = 0.01

// lastPublished is the newest policy remembered (published within the
// window), nil when there is none.
func (st *state) lastPublished() *published {
	if len(st.history) == 0 {
		return nil
	}
	return &st.history[len(st.history)-1]
}

// dampShares keeps the slow loop from moving traffic on noise
// (Config.ShareStep): it prices the last published policy's shares on
// this round's estimates and, unless the solution beats them by
// moveOnEvidence, moves every row's shares ShareStep of the way from them
// toward the solution (damp). It reports whether it did. A round after λ
// moved has no last policy to move from (Optimizer.knobMoved): an
// operator's move applies at once.
//
// On fault-storm, following every solution changed the top orchestrator
// of a (class, region) in 20 % of rounds and moved 12 % of its traffic a
// round; damping every round (ShareStep 0.5), 11 % and 8 %, but bursty,
// whose bursts need the policy to follow them, lost 4 % (1.009 × round-
// robin's loss, against 0.971); hence the test on evidence: 12 % and 9 %
// on fault-storm, bursty 0.978.
func (pr *planner) dampShares() bool {
	if pr.cfg.ShareStep >= 1 || pr.r.prev == nil {
		return false
	}
	p := pr.p
	last := make([][]float64, len(pr.rows))
	moved := false
	for k, rm := range pr.rows {
		if rm.pseudo || pr.shares[k] == nil {
			continue
		}
		if last[k] = pr.damp(k, pr.shares[k], 0); last[k] != nil {
			moved = true
		}
	}
	if !moved {
		return false
	}
	// F of both allocations with every row's whole demand routed by its
	// shares (the solution's overflow spread as the router would).
	xSol, xLast := make([]float64, len(p.arcs)), make([]float64, len(p.arcs))
	for k, rm := range pr.rows {
		if rm.pseudo || pr.shares[k] == nil {
			continue
		}
		d := p.rows[k].demand
		for i, a := range p.rows[k].arcs {
			xSol[a] = pr.shares[k][i] * d
			xLast[a] = xSol[a]
			if last[k] != nil {
				xLast[a] = last[k][i] * d
			}
		}
	}
	none, rho := make([]float64, len(p.rows)), make([]float64, len(p.orchs))
	fSol, fLast := p.objective(xSol, none, rho), p.objective(xLast, none, rho)
	if fLast-fSol > moveOnEvidence*math.Abs(fSol) {
		return false
	}
	for k := range pr.rows {
		if last[k] != nil {
			pr.shares[k] = pr.damp(k, pr.shares[k], pr.cfg.ShareStep)
		}
	}
	return true
}

// damp moves row k's shares from the last published policy's toward the
// solved ones by step (0: the last policy's shares on this round's
// orchestrators). The exploration floors stay whole: what each eligible
// orchestrator has above its floor becomes last + step × (solved − last),
// and those parts are renormalised to what the floors leave, so an
// orchestrator no longer eligible (no arc: ejected) leaves at once, its
// share spread over the rest in proportion, and one back from an ejection
// starts at its floor. It returns nil for a row the last policy did not
// have (the solution is taken as it is). The round's prediction is of the
// solution the shares move toward.
func (pr *planner) damp(k int, solved []float64, step float64) []float64 {
	last := pr.r.prev
	rm := pr.rows[k]
	c := &pr.r.classes[rm.class]
	cell := shareCell{capability: c.key.capability, model: c.key.model, region: rm.region}
	if last == nil || !last.entries[cell] {
		return nil
	}
	row := &pr.p.rows[k]
	f := pr.floor(len(row.arcs))
	out := make([]float64, len(solved))
	sum := 0.0
	for i, a := range row.arcs {
		cell.orch = pr.r.orchs[pr.p.arcs[a].orch].cfg.ID
		was, now := max(0, last.shares[cell]-f), max(0, solved[i]-f)
		out[i] = was + step*(now-was)
		sum += out[i]
	}
	rest := 1 - f*float64(len(out))
	if !(sum > 0) || !(rest > 0) {
		return nil
	}
	for i := range out {
		out[i] = f + out[i]/sum*rest
	}
	return out
}
