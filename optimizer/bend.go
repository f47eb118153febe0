package optimizer

import (
	"time"

	"github.com/loopgate/loopgate/event"
)

// The router does not follow a policy's shares exactly: its fast loop
// weighs each share by fresh latency, in-flight load and recent failures,
// and explores on its own. The prediction corrects for that with what the
// window shows: per (class, client region) row and orchestrator, the
// ratio of the share of attempts it actually received to the share the
// policies in force during the window gave it (the "bend"), smoothed
// toward 1 by one attempt. A swept λ's shares are multiplied by the bends
// and renormalised before they are priced. It is a first-order model of
// the fast loop: the bends are those of the current allocation, and the
// fast loop's load weighting would bend another allocation differently.

// shareCell names one orchestrator's share of one policy entry.
type shareCell struct{ capability, model, region, orch string }

// published is the shares one published policy gave, and when.
type published struct {
	at     time.Time
	shares map[shareCell]float64
	// entries lists the (capability, model, region) keys the policy had.
	entries map[shareCell]bool // orch ""
}

// remember records the shares of a published policy, and forgets the
// policies older than window.
func (st *state) remember(p *event.Policy, now time.Time, window time.Duration) {
	pub := published{at: now, shares: map[shareCell]float64{}, entries: map[shareCell]bool{}}
	for _, c := range p.Classes {
		pub.entries[shareCell{c.Capability, c.Model, c.ClientRegion, ""}] = true
		for _, s := range c.Shares {
			pub.shares[shareCell{c.Capability, c.Model, c.ClientRegion, s.Orchestrator}] = s.Share
		}
	}
	keep := st.history[:0]
	for _, h := range st.history {
		if now.Sub(h.at) < window {
			keep = append(keep, h)
		}
	}
	st.history = append(keep, pub)
}

// bends computes the bend of every arc of pr's rows with demand (1
// elsewhere): observed attempt share over the mean planned share of the
// policies published in [now − window, now), both within the row.
func (st *state) bends(pr *planner, now time.Time, window time.Duration) []float64 {
	p, r := pr.p, pr.r
	out := make([]float64, len(p.arcs))
	for a := range out {
		out[a] = 1
	}
	var in []*published
	for i := range st.history {
		if h := &st.history[i]; !h.at.Before(now.Add(-window)) && h.at.Before(now) {
			in = append(in, h)
		}
	}
	if len(in) == 0 {
		return out
	}
	for k, rm := range pr.rows {
		row := &p.rows[k]
		if rm.pseudo || len(row.arcs) == 0 {
			continue
		}
		c := &r.classes[rm.class]
		total := 0.0
		obs := make([]float64, len(row.arcs))
		for i, a := range row.arcs {
			if cell := r.cells[cellKey{rm.class, rm.region, p.arcs[a].orch}]; cell != nil {
				obs[i] = cell.attempts
				total += cell.attempts
			}
		}
		if !(total > 0) {
			continue
		}
		planned := make([]float64, len(row.arcs))
		for _, h := range in {
			region := rm.region // the router falls back to the class's region-less entry
			if !h.entries[shareCell{c.key.capability, c.key.model, region, ""}] {
				region = ""
			}
			for i, a := range row.arcs {
				planned[i] += h.shares[shareCell{c.key.capability, c.key.model, region, r.orchs[p.arcs[a].orch].cfg.ID}] / float64(len(in))
			}
		}
		for i, a := range row.arcs {
			out[a] = (obs[i] + 1) / (planned[i]*total + 1)
		}
	}
	return out
}
