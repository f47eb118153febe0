package optimizer

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/loopgate/loopgate/event"
)

// PriorsReader reads what stock go-livepeer's own events (ingested from its
// -kafkaGatewayTopic) say about each orchestrator in [from, to): discovery
// latency and the prices paid to it (warehouse.Store.LivepeerPriors).
type PriorsReader interface {
	LivepeerPriors(ctx context.Context, from, to time.Time) ([]event.OrchestratorPrior, error)
}

// PriorsConfig says how go-livepeer's events shape the estimates of
// orchestrators without loopgate outcomes.
type PriorsConfig struct {
	// Window of go-livepeer events read each round. Default 1h (discovery
	// runs about once a minute, so it holds dozens of samples).
	Window time.Duration `yaml:"window"`
	// DiscoveryTrips is how many discovery round trips a request is taken
	// to add to the class's latency: the request and its response cross
	// the same network. Default 2.
	DiscoveryTrips float64 `yaml:"discovery_trips"`
	// USDPerETH converts ticket prices (wei) into the catalog's currency.
	// Default 3000; only the ratio between orchestrators matters when no
	// catalog price is given in USD.
	USDPerETH float64 `yaml:"usd_per_eth"`
}

// DefaultPriorsConfig returns the documented defaults.
func DefaultPriorsConfig() PriorsConfig {
	return PriorsConfig{Window: time.Hour, DiscoveryTrips: 2, USDPerETH: 3000}
}

// Validate reports a config that cannot work.
func (c PriorsConfig) Validate() error {
	if c.Window <= 0 || c.DiscoveryTrips < 0 || !(c.USDPerETH > 0) {
		return fmt.Errorf("optimizer priors: window %v must be positive, discovery trips %v non-negative, usd per eth %v positive", c.Window, c.DiscoveryTrips, c.USDPerETH)
	}
	return nil
}

// WithPriors makes every round also read go-livepeer's events through pr:
// an orchestrator with no loopgate outcomes for a class then gets its
// discovery latency added to the class's latency estimate, and, when the
// catalog gives no price, the mean price paid to it by tickets as its cost.
// So the advisor endpoints give stock go-livepeer a useful score from the
// first minute, before any request went through loopgate. A failed read
// keeps the previous round's priors (and logs): they are a starting point,
// not a reason to skip a round. cfg must be valid (DefaultPriorsConfig).
//
// It wraps the StatsReader, so the priors are read in the same round, under
// the same lock, as the statistics.
func WithPriors(pr PriorsReader, cfg PriorsConfig) Option {
	return func(o *Optimizer) {
		if pr == nil || cfg.Validate() != nil {
			o.log.Warn("go-livepeer priors disabled", "reader", pr != nil, "err", cfg.Validate())
			return
		}
		o.stats = &priorStats{StatsReader: o.stats, pr: pr, cfg: cfg, st: &o.st, log: o.log}
	}
}

// priorStats reads the statistics, then the priors into the state the
// round is built from.
type priorStats struct {
	StatsReader
	pr  PriorsReader
	cfg PriorsConfig
	st  *state
	log *slog.Logger
}

func (p *priorStats) Stats(ctx context.Context, from, to time.Time) ([]Stat, error) {
	stats, err := p.StatsReader.Stats(ctx, from, to)
	if err != nil {
		return nil, err
	}
	priors, err := p.pr.LivepeerPriors(ctx, to.Add(-p.cfg.Window), to)
	if err != nil {
		p.log.Warn("go-livepeer priors unreadable; keeping the last ones", "err", err)
		return stats, nil
	}
	idx := &priorIndex{cfg: p.cfg, byKey: map[string]*event.OrchestratorPrior{}}
	for i := range priors {
		pr := &priors[i]
		if pr.Address != "" {
			idx.byKey[strings.ToLower(pr.Address)] = pr
		}
		if pr.URL != "" {
			idx.byKey[pr.URL] = pr
		}
	}
	p.st.priors = idx
	return stats, nil
}

// priorIndex finds an orchestrator's prior by address or URL.
type priorIndex struct {
	cfg   PriorsConfig
	byKey map[string]*event.OrchestratorPrior
}

func (x *priorIndex) of(o *Orchestrator) *event.OrchestratorPrior {
	if x == nil {
		return nil
	}
	if o.Address != "" {
		if p := x.byKey[strings.ToLower(o.Address)]; p != nil {
			return p
		}
	}
	return x.byKey[o.URL]
}

// priorLatency is lat, for the j-th orchestrator of c, with its discovery
// latency added when it has no outcomes of its own in c.
func (r *round) priorLatency(c *classInfo, j int, lat lognormal) lognormal {
	if c.oc[j].muN > 0 {
		return lat
	}
	p := r.priors.of(&r.orchs[c.orchs[j]].cfg)
	if p == nil || p.DiscoverySamples == 0 {
		return lat
	}
	extra := r.priors.cfg.DiscoveryTrips * p.DiscoveryP50Ms / 1000
	lat.mu = math.Log(math.Exp(lat.mu) + extra)
	return lat
}

// priorCost is the USD cost of one request of c on its j-th orchestrator
// from the ticket prices paid to it (its price for c's capability, else
// its mean over capabilities), or 0 when unknown.
func (r *round) priorCost(c *classInfo, j int) float64 {
	p := r.priors.of(&r.orchs[c.orchs[j]].cfg)
	if p == nil || !(c.units > 0) {
		return 0
	}
	var sum, n float64
	for _, pp := range p.Prices {
		if pp.Capability == c.key.capability && pp.PricePerUnitWei > 0 {
			return pp.PricePerUnitWei * c.units / 1e18 * r.priors.cfg.USDPerETH
		}
		if pp.PricePerUnitWei > 0 {
			sum += pp.PricePerUnitWei * float64(pp.Payments)
			n += float64(pp.Payments)
		}
	}
	if n == 0 {
		return 0
	}
	return sum / n * c.units / 1e18 * r.priors.cfg.USDPerETH
}
