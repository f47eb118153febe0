package sim

import (
	"errors"
	"math"
	"math/rand/v2"
	"time"
)

// P2CConfig tunes the p2c-ewma baseline.
type P2CConfig struct {
	// Decay is the time constant of the latency EWMA. Default 10s (Finagle's).
	Decay time.Duration
	// FailureDecay is the time constant of the failure score. Default 10s.
	FailureDecay time.Duration
	// FailureWeight multiplies the cost by 1 + FailureWeight × failure score,
	// where each failure adds 1 to the score. Default 10.
	FailureWeight float64
}

// DefaultP2CConfig returns the defaults written on each field.
func DefaultP2CConfig() P2CConfig {
	return P2CConfig{Decay: 10 * time.Second, FailureDecay: 10 * time.Second, FailureWeight: 10}
}

// Validate reports a config the policy cannot use.
func (c P2CConfig) Validate() error {
	if c.Decay <= 0 || c.FailureDecay <= 0 || c.FailureWeight < 0 {
		return errors.New("p2c-ewma: want positive decays and a failure weight ≥ 0")
	}
	return nil
}

// p2cStat is what p2c-ewma knows of one orchestrator for one class.
type p2cStat struct {
	ewma    float64 // peak-EWMA latency, ns; 0 until the first reply
	at      time.Duration
	fails   float64 // decaying failure score
	failsAt time.Duration
}

// P2CEWMA is the power of two choices on peak-EWMA latency (Finagle,
// Linkerd): draw two distinct candidates at random and take the one with the
// lower cost ewma × (in flight + 1) × (1 + weight × failure score). The EWMA
// jumps up to a slower sample at once and decays towards faster ones, per
// (orchestrator, class) since classes differ in speed. Successes feed the
// EWMA (a failure's latency says little: a fast 500 looks fast); every failure,
// refusal, rejection and timeout adds to a failure score that halves
// roughly every 7 s (FailureDecay 10 s), so a bad orchestrator is drained
// fast and tried again once it has been quiet.
type P2CEWMA struct {
	cfg   P2CConfig
	rng   *rand.Rand
	stats [][]p2cStat // [orch][class]
	buf   []int
}

// NewP2CEWMA returns the p2c-ewma policy.
func NewP2CEWMA(env Env, cfg P2CConfig) (*P2CEWMA, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &P2CEWMA{cfg: cfg, rng: env.Rand, stats: make([][]p2cStat, len(env.Scenario.Orchestrators))}
	for i := range p.stats {
		p.stats[i] = make([]p2cStat, len(env.Scenario.Classes))
	}
	return p, nil
}

// Limits implements Policy.
func (p *P2CEWMA) Limits(time.Duration, *Request) Limits { return fixedLimits() }

func (p *P2CEWMA) cost(now time.Duration, o, class int, fleet *Fleet) float64 {
	s := &p.stats[o][class]
	inflight := float64(fleet.InFlight(o))
	lat := s.ewma
	if lat == 0 {
		if inflight > 0 {
			return math.MaxFloat64 / 4 // unknown and busy: let its first reply come back
		}
		return 0 // unknown and idle: explore it
	}
	fails := s.fails * math.Exp(-float64(now-s.failsAt)/float64(p.cfg.FailureDecay))
	return lat * (inflight + 1) * (1 + p.cfg.FailureWeight*fails)
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
	if p.cost(now, b, req.Class, fleet) < p.cost(now, a, req.Class, fleet) {
		a = b
	}
	return Use(a)
}

// Observe implements Policy.
func (p *P2CEWMA) Observe(now time.Duration, a *Attempt) {
	s := &p.stats[a.Orch][a.Class]
	switch a.Outcome {
	case Cancelled:
		return // says nothing about the orchestrator
	case OK:
	default:
		s.fails = s.fails*math.Exp(-float64(now-s.failsAt)/float64(p.cfg.FailureDecay)) + 1
		s.failsAt = now
		return // a failure's latency says little (a fast 500 looks fast)
	}
	lat := float64(a.Latency)
	if lat > s.ewma {
		s.ewma = lat
	} else {
		w := math.Exp(-float64(now-s.at) / float64(p.cfg.Decay))
		s.ewma = s.ewma*w + lat*(1-w)
	}
	s.at = now
}
