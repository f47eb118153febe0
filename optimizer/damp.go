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
// toward the solution: each orchestrator's part above its exploration
// floor becomes last + ShareStep × (solved − last) (lastParts, spread).
// It reports whether it did. A round after λ
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
	was := make([][]float64, len(pr.rows)) // per row: the last policy's parts above the floors
	moved := false
	for k, rm := range pr.rows {
		if !rm.pseudo && pr.shares[k] != nil {
			was[k] = pr.lastParts(k)
			moved = moved || was[k] != nil
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
		var last []float64
		if was[k] != nil {
			last = pr.spread(k, was[k])
		}
		for i, a := range p.rows[k].arcs {
			xSol[a] = pr.shares[k][i] * d
			xLast[a] = xSol[a]
			if last != nil {
				xLast[a] = last[i] * d
			}
		}
	}
	none, rho := make([]float64, len(p.rows)), make([]float64, len(p.orchs))
	fSol, fLast := p.objective(xSol, none, rho), p.objective(xLast, none, rho)
	if fLast-fSol > moveOnEvidence*math.Abs(fSol) {
		return false
	}
	step := pr.cfg.ShareStep
	for k := range pr.rows {
		if was[k] == nil {
			continue
		}
		f := pr.floor(len(was[k]))
		parts := make([]float64, len(was[k]))
		for i, w := range was[k] {
			parts[i] = w + step*(max(0, pr.shares[k][i]-f)-w)
		}
		pr.shares[k] = pr.spread(k, parts)
	}
	return true
}

// lastParts is what the last published policy gave each of row k's
// orchestrators above its exploration floor, aligned with the row's arcs
// (an orchestrator without an arc now, ejected, is left out). It is nil
// for a row the last policy did not have, or gave nothing above the
// floors.
func (pr *planner) lastParts(k int) []float64 {
	rm := pr.rows[k]
	c := &pr.r.classes[rm.class]
	cell := shareCell{capability: c.key.capability, model: c.key.model, region: rm.region}
	if !pr.r.prev.entries[cell] {
		return nil
	}
	row := &pr.p.rows[k]
	f := pr.floor(len(row.arcs))
	out := make([]float64, len(row.arcs))
	sum := 0.0
	for i, a := range row.arcs {
		cell.orch = pr.r.orchs[pr.p.arcs[a].orch].cfg.ID
		out[i] = max(0, pr.r.prev.shares[cell]-f)
		sum += out[i]
	}
	if !(sum > 0) || !(1-f*float64(len(out)) > 0) {
		return nil
	}
	return out
}

// spread turns row k's parts above the floors into shares: each its floor
// plus its part of what the floors leave, in proportion. The exploration
// floors thus stay whole, an orchestrator no longer eligible leaves at
// once (its share spread over the rest in proportion), and one back from
// an ejection starts at its floor. The round's prediction is of the
// solution the shares move toward. parts must sum to more than 0.
func (pr *planner) spread(k int, parts []float64) []float64 {
	f := pr.floor(len(parts))
	rest := 1 - f*float64(len(parts))
	sum := 0.0
	for _, v := range parts {
		sum += v
	}
	out := make([]float64, len(parts))
	for i, v := range parts {
		out[i] = f + v/sum*rest
	}
	return out
}
