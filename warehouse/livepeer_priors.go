package warehouse

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/loopgate/loopgate/event"
)

// LivepeerPriors summarises what go-livepeer's own events said about each
// orchestrator in [from, to): its median discovery latency and the mean
// price paid to it per capability. It is the optimizer's prior reader, for
// orchestrators without loopgate outcomes. Orchestrators are keyed by their
// ETH address (lower case); prices are floats here, a prior rather than an
// amount (the exact amounts stay in livepeer_payments).
func (s *Store) LivepeerPriors(ctx context.Context, from, to time.Time) ([]event.OrchestratorPrior, error) {
	lo, hi := s.profile.timeLiteral(from.UnixMilli()), s.profile.timeLiteral(to.UnixMilli())
	disc, err := s.Query(ctx, fmt.Sprintf(`SELECT address, argMax(url, ts_ms), toFloat64(quantileExact(0.5)(latency_ms)), toInt64(count())
FROM %s.livepeer_discovery
WHERE event_time >= %s AND event_time < %s AND address != ''
GROUP BY address ORDER BY address`, s.cfg.Database, lo, hi))
	if err != nil {
		return nil, fmt.Errorf("read discovery priors: %w", err)
	}
	pay, err := s.Query(ctx, fmt.Sprintf(`SELECT recipient, argMax(orchestrator, ts_ms), capability, any(price_unit), avg(toFloat64(price_per_unit_wei)), toInt64(count())
FROM %s.livepeer_payments
WHERE event_time >= %s AND event_time < %s AND recipient != ''
GROUP BY recipient, capability ORDER BY recipient, capability`, s.cfg.Database, lo, hi))
	if err != nil {
		return nil, fmt.Errorf("read price priors: %w", err)
	}
	byAddr := map[string]*event.OrchestratorPrior{}
	get := func(addr string) *event.OrchestratorPrior {
		p := byAddr[addr]
		if p == nil {
			p = &event.OrchestratorPrior{Address: addr}
			byAddr[addr] = p
		}
		return p
	}
	for _, r := range disc.Values {
		p := get(str(r[0]))
		p.URL, p.DiscoveryP50Ms, p.DiscoverySamples = str(r[1]), f64(r[2]), i64(r[3])
	}
	for _, r := range pay.Values {
		p := get(str(r[0]))
		if p.URL == "" {
			p.URL = str(r[1])
		}
		p.Prices = append(p.Prices, event.PriorPrice{Capability: str(r[2]), PriceUnit: str(r[3]), PricePerUnitWei: f64(r[4]), Payments: i64(r[5])})
	}
	out := make([]event.OrchestratorPrior, 0, len(byAddr))
	for _, p := range byAddr {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out, nil
}
