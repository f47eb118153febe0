package sim

import (
	"errors"
	"math"
	"math/rand/v2"
	"time"
)

// P2CConfig tunes the p2c-ewma baseline.
type P2CConfig struct {
	// Decay is the time constant τ of the peak EWMA: an estimate left alone
	// for τ keeps 1/e of its value (half of it after τ·ln 2). Default 10s,
	// the decayTime of Finagle's p2cPeakEwma and Linkerd's default.
	Decay time.Duration
}

// DefaultP2CConfig returns the defaults written on each field.
func DefaultP2CConfig() P2CConfig {
	return P2CConfig{Decay: 10 * time.Second}
}

// Validate reports a config the policy cannot use.
func (c P2CConfig) Validate() error {
	if c.Decay <= 0 {
		return errors.New("p2c-ewma: want a positive decay")
	}
	return nil
}

// p2cPenalty is the load of a node with no latency history but requests
// pending, as Finagle's PeakEwma has it (Long.MaxValue >> 16, in ns): only
// its first reply, not a second probe, tells us how slow it is.
const p2cPenalty = float64(math.MaxInt64 >> 16)

// peakEWMA is Finagle's PeakEwma Metric for one orchestrator and class: a
// round-trip estimate in ns that jumps to any slower sample at once and
// otherwise moves towards samples with a weight that grows with the time
// since it was last touched. Reads touch it too (observe(0) in get()), so
// an estimate nobody refreshes decays towards 0 and the node gets probed
// again.
type peakEWMA struct {
	cost  float64 // ns
	stamp time.Duration
}

// observe folds one round trip (ns) into the estimate at now; rtt 0 only
// decays it.
func (m *peakEWMA) observe(now time.Duration, rtt float64, tau float64) {
	w := math.Exp(-float64(max(now-m.stamp, 0)) / tau)
	if rtt > m.cost {
		m.cost = rtt
	} else {
		m.cost = m.cost*w + rtt*(1-w)
	}
	m.stamp = now
}

// P2CEWMA is the power of two choices on peak-EWMA latency as Finagle
// (PeakEwma.scala with the P2C balancer) and Linkerd (tower's PeakEwma) do
// it: draw two distinct candidates at random and take the one with the
// lower load, where
//
//	load = ewma × (pending + 1), or 2⁴⁷ + pending when there is no history yet but requests are pending
//
// Faithful to Finagle:
//   - the EWMA decays on every read: computing a candidate's load first
//     calls observe(0), so the estimate falls as exp(−Δt/τ) between
//     samples and the read moves the stamp that weighs the next sample;
//   - every attempt's round trip feeds the EWMA when it ends, whatever the
//     outcome (Finagle's end(ts) runs on Return and Throw alike): a 10 s
//     client timeout is a 10 s peak, a fast 500 is a fast sample. There is
//     no separate failure score;
//   - a node with no history is free (load 0) while idle and costs the
//     penalty while its first request is pending;
//   - ties go to the first of the two draws.
//
// Simplified or adapted:
//   - one estimate per (orchestrator, class), as a balancer per route
//     would keep, because classes differ in speed; pending is the router's
//     in-flight count at the orchestrator over all classes, the load the
//     endpoint actually carries;
//   - retries are the benchmark's common rule for classic balancers (up to
//     3 attempts on orchestrators not yet tried), not Finagle's requeue
//     budget; there is no failure accrual (Finagle's separate module, off
//     in Linkerd by default) and no node status (Busy/Closed).
type P2CEWMA struct {
	cfg   P2CConfig
	tau   float64 // Decay in ns
	rng   *rand.Rand
	stats [][]peakEWMA // [orch][class]
	buf   []int
}

// NewP2CEWMA returns the p2c-ewma policy.
func NewP2CEWMA(env Env, cfg P2CConfig) (*P2CEWMA, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &P2CEWMA{cfg: cfg, tau: float64(cfg.Decay), rng: env.Rand, stats: make([][]peakEWMA, len(env.Scenario.Orchestrators))}
	for i := range p.stats {
		p.stats[i] = make([]peakEWMA, len(env.Scenario.Classes))
	}
	return p, nil
}

// Limits implements Policy.
func (p *P2CEWMA) Limits(time.Duration, *Request) Limits { return fixedLimits() }

// load is Finagle's Metric.get(): decay, then weigh by pending requests.
func (p *P2CEWMA) load(now time.Duration, o, class int, fleet *Fleet) float64 {
	m := &p.stats[o][class]
	m.observe(now, 0, p.tau)
	pending := float64(fleet.InFlight(o))
	if m.cost == 0 && pending != 0 {
		return p2cPenalty + pending
	}
	return m.cost * (pending + 1)
}

// Pick implements Policy.
func (p *P2CEWMA) Pick(now time.Duration, req *Request, fleet *Fleet) Choice {
	p.buf = candidates(p.buf, req, fleet)
	switch len(p.buf) {
	case 0:
		return GiveUp()
	case 1:
		return Use(p.buf[0])
	}
	i := p.rng.IntN(len(p.buf))
	j := p.rng.IntN(len(p.buf) - 1)
	if j >= i {
		j++
	}
	a, b := p.buf[i], p.buf[j]
	if p.load(now, b, req.Class, fleet) < p.load(now, a, req.Class, fleet) {
		a = b
	}
	return Use(a)
}

// Observe implements Policy: the attempt's round trip, however it ended,
// is one sample.
func (p *P2CEWMA) Observe(now time.Duration, a *Attempt) {
	p.stats[a.Orch][a.Class].observe(now, float64(a.Latency), p.tau)
}
