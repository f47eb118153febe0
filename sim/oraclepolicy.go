package sim

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/loopgate/loopgate/sim/oracle"
	"github.com/loopgate/loopgate/sim/scenario"
)

// OracleConfig tunes the oracle policy.
type OracleConfig struct {
	Allocation  oracle.Config // the fluid LP; see package oracle
	MaxAttempts int           // Default 3, like the baselines.
}

// DefaultOracleConfig returns the defaults written on each field.
func DefaultOracleConfig() OracleConfig {
	return OracleConfig{Allocation: oracle.DefaultConfig(), MaxAttempts: BaselineAttempts}
}

// Validate reports a config the policy cannot use.
func (c OracleConfig) Validate() error {
	if c.MaxAttempts < 1 {
		return fmt.Errorf("oracle: max attempts %d, want ≥ 1", c.MaxAttempts)
	}
	return c.Allocation.Validate()
}

// Oracle knows the true parameters and the timeline (it is a
// ChangeObserver) and routes by the traffic shares of the fluid allocation
// of package oracle, re-solved at every change. A request draws its
// orchestrator from its (class, region) shares; a retry draws again from the
// shares of the orchestrators not yet tried, or, when those are all zero,
// uniformly among the untried eligible orchestrators that are up. It never
// sends to an orchestrator it knows is down or hung.
type Oracle struct {
	cfg     OracleConfig
	sc      *scenario.Scenario
	rng     *rand.Rand
	regions map[string]int
	alloc   *oracle.Allocation
	shares  [][][]float64 // [class][region][orch], cached from alloc
	usable  []bool        // not down, not hung
	buf     []int
	err     error
}

// NewOracle returns the oracle policy.
func NewOracle(env Env, cfg OracleConfig) (*Oracle, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	p := &Oracle{cfg: cfg, sc: env.Scenario, rng: env.Rand, regions: map[string]int{}}
	for i, r := range env.Scenario.Regions {
		p.regions[r] = i
	}
	st := env.Scenario.Initial()
	p.OnChange(0, &st)
	return p, p.err
}

// Allocation returns the allocation in force.
func (p *Oracle) Allocation() *oracle.Allocation { return p.alloc }

// OnChange implements ChangeObserver: it re-solves the allocation.
func (p *Oracle) OnChange(now time.Duration, st *scenario.State) {
	a, err := oracle.Solve(p.sc, st, p.cfg.Allocation)
	if err != nil && p.cfg.Allocation.Queueing {
		// A numerically awkward banded LP: the plain one is smaller.
		plain := p.cfg.Allocation
		plain.Queueing = false
		a, err = oracle.Solve(p.sc, st, plain)
	}
	if err != nil {
		// Keep the previous allocation; Run reports nothing, so remember it.
		p.err = fmt.Errorf("oracle at %v: %w", now, err)
		return
	}
	p.alloc = a
	p.usable = make([]bool, len(st.Orchestrators))
	for i, o := range st.Orchestrators {
		p.usable[i] = !o.Down && !o.Hang
	}
	p.shares = make([][][]float64, len(p.sc.Classes))
	for c := range p.shares {
		p.shares[c] = make([][]float64, len(p.sc.Regions))
		for r := range p.shares[c] {
			p.shares[c][r] = a.Shares(c, r)
		}
	}
}

// Err reports a failure to solve an allocation during the run, if any.
func (p *Oracle) Err() error { return p.err }

// Limits implements Policy.
func (p *Oracle) Limits(time.Duration, *Request) Limits {
	return Limits{MaxAttempts: p.cfg.MaxAttempts}
}

// Pick implements Policy.
func (p *Oracle) Pick(_ time.Duration, req *Request, fleet *Fleet) Choice {
	shares := p.shares[req.Class][p.regions[req.Region]]
	p.buf = candidates(p.buf, req, fleet)
	sum := 0.0
	for _, o := range p.buf {
		sum += shares[o]
	}
	if sum > 0 {
		u := p.rng.Float64() * sum
		last := -1
		for _, o := range p.buf {
			if shares[o] <= 0 {
				continue
			}
			if u < shares[o] {
				return Use(o)
			}
			u -= shares[o]
			last = o
		}
		return Use(last) // rounding
	}
	n := 0
	for _, o := range p.buf {
		if p.usable[o] {
			p.buf[n] = o
			n++
		}
	}
	if n == 0 {
		return GiveUp()
	}
	return Use(p.buf[p.rng.IntN(n)])
}

// Observe implements Policy.
func (p *Oracle) Observe(time.Duration, *Attempt) {}
