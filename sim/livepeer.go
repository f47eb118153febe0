package sim

import (
	"errors"
	"math/rand/v2"
	"time"
)

// LivepeerConfig tunes the go-livepeer baseline; the defaults are
// go-livepeer's.
type LivepeerConfig struct {
	StakeWeight float64       // weight of the stake share in the draw. Default 0.7.
	Suspension  time.Duration // how long a failing orchestrator is suspended. Default 30m.
	MaxAttempts int           // Default 3.
}

// DefaultLivepeerConfig returns the defaults written on each field.
func DefaultLivepeerConfig() LivepeerConfig {
	return LivepeerConfig{StakeWeight: 0.7, Suspension: 30 * time.Minute, MaxAttempts: 3}
}

// Validate reports a config the policy cannot use.
func (c LivepeerConfig) Validate() error {
	if c.StakeWeight < 0 || c.StakeWeight > 1 || c.Suspension < 0 || c.MaxAttempts < 1 {
		return errors.New("livepeer: want stake weight in [0, 1], suspension ≥ 0, max attempts ≥ 1")
	}
	return nil
}

// Livepeer is go-livepeer's selection with its defaults: a weighted random
// draw with P(o) = 0.7·stake share + 0.3·uniform over the candidates (price
// weight 0), up to 3 attempts on distinct orchestrators, and an orchestrator
// whose attempt fails in any way (500, 503, refused, reset, timeout) is
// suspended for 30 minutes. Like go-livepeer's discovery, which lists
// suspended orchestrators after the others rather than dropping them, it
// draws among suspended candidates only when no unsuspended one is left.
type Livepeer struct {
	cfg       LivepeerConfig
	rng       *rand.Rand
	suspended []time.Duration // until when, by orchestrator
	buf, act  []int
	w         []float64
}

// NewLivepeer returns the go-livepeer baseline.
func NewLivepeer(env Env, cfg LivepeerConfig) (*Livepeer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Livepeer{cfg: cfg, rng: env.Rand, suspended: make([]time.Duration, len(env.Scenario.Orchestrators))}, nil
}

// Limits implements Policy.
func (p *Livepeer) Limits(time.Duration, *Request) Limits {
	return Limits{MaxAttempts: p.cfg.MaxAttempts}
}

// Pick implements Policy.
func (p *Livepeer) Pick(now time.Duration, req *Request, fleet *Fleet) Choice {
	p.buf = candidates(p.buf, req, fleet)
	p.act = p.act[:0]
	for _, o := range p.buf {
		if now >= p.suspended[o] {
			p.act = append(p.act, o)
		}
	}
	pool := p.act
	if len(pool) == 0 {
		pool = p.buf
	}
	if len(pool) == 0 {
		return GiveUp()
	}
	total := 0.0
	for _, o := range pool {
		total += fleet.Orchestrator(o).Stake
	}
	p.w = p.w[:0]
	sum := 0.0
	for _, o := range pool {
		w := (1 - p.cfg.StakeWeight) / float64(len(pool))
		if total > 0 {
			w += p.cfg.StakeWeight * fleet.Orchestrator(o).Stake / total
		} else {
			w += p.cfg.StakeWeight / float64(len(pool))
		}
		p.w = append(p.w, w)
		sum += w
	}
	u := p.rng.Float64() * sum
	for i, w := range p.w {
		if u < w {
			return Use(pool[i])
		}
		u -= w
	}
	return Use(pool[len(pool)-1])
}

// Observe implements Policy.
func (p *Livepeer) Observe(now time.Duration, a *Attempt) {
	if a.Outcome != OK && a.Outcome != Cancelled {
		p.suspended[a.Orch] = now + p.cfg.Suspension
	}
}
