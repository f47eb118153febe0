package oracle

import (
	"math"

	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/sim/scenario"
)

// admittedRates are the clients' rates (rates, aligned with st.Clients)
// after the scenario's gateway: what reaches routing, since the bench puts
// the same gateway in front of every policy and the oracle's own
// refusals come after it. A client is held to its key's requests per
// second and units per minute, and the clients of one customer to the
// customer's, shared in proportion to what they send. Budgets (which
// refuse everything once spent, at a time that depends on the routing)
// and concurrency limits are not modelled: the oracle plans for the
// demand the rate limits let through.
func admittedRates(sc *scenario.Scenario, clients []scenario.Client, rates []float64) []float64 {
	g := sc.Gateway
	if g == nil {
		return rates
	}
	out := make([]float64, len(rates))
	customer := make([]string, len(rates))
	for i := range clients {
		k := g.KeyOf(clients[i].ID)
		customer[i] = k.Customer
		out[i] = rates[i] * admitFraction(sc, &clients[i], rates[i], k.Limits)
	}
	for _, cu := range g.Customers {
		sum := 0.0
		var mine []int
		for i := range clients {
			if customer[i] == cu.ID {
				sum += out[i]
				mine = append(mine, i)
			}
		}
		if sum <= 0 {
			continue
		}
		// The customer's limits see the sum of its clients, with their
		// own mix of classes: the blend, weighted by rate.
		blend := scenario.Client{Mix: map[string]float64{}}
		for _, i := range mine {
			for c, m := range clients[i].Mix {
				blend.Mix[c] += m * out[i] / sum
			}
		}
		f := admitFraction(sc, &blend, sum, cu.Limits)
		for _, i := range mine {
			out[i] *= f
		}
	}
	return out
}

// admitFraction is the share of a client's rate (with its mix) that lim's
// requests-per-second and units-per-minute limits admit in the long run.
func admitFraction(sc *scenario.Scenario, cl *scenario.Client, rate float64, lim event.Limits) float64 {
	if !(rate > 0) {
		return 1
	}
	f := 1.0
	if lim.RequestsPerSecond > 0 {
		f = math.Min(f, lim.RequestsPerSecond/rate)
	}
	for kind, perMin := range lim.UnitsPerMinute {
		units := 0.0 // units per second of this kind the client sends
		for _, c := range sc.Classes {
			if k, _ := event.UnitKindOf(c.Capability); k == kind {
				units += rate * cl.Mix[c.ID] * c.Units
			}
		}
		if units > 0 && perMin > 0 {
			f = math.Min(f, float64(perMin)/60/units)
		}
	}
	return f
}
