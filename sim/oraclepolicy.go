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
//
// With Allocation.Shed (the default) it may refuse a request at arrival,
// as loopgate's edge may, and a refusal counts as every policy's shed
// does (a missed SLO, nothing billed). Two rules, both at the first pick:
//
//   - saving capacity (fluid): a (class, region) whose demand the
//     allocation does not route — beyond the fleet's capacity at the
//     utilisation cap, the cheapest classes first, or where serving
//     costs more than a miss — is refused with probability
//     oracle.Allocation.ShedFraction;
//   - cannot finish in time (per request): when the drawn orchestrator's
//     odds of answering within the SLO at its true queue
//     (oracle.OnTimeOdds) are not worth its price (value × odds ≤ price),
//     the request goes to the untried orchestrator, up, with the best
//     odds that is worth it, and is refused when there is none.
//
// Retries are never refused.
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
	first := req.Attempts == 0
	if first && p.cfg.Allocation.Shed {
		if f := p.alloc.ShedFraction(req.Class, p.regions[req.Region]); f > 0 && p.rng.Float64() < f {
			return GiveUp()
		}
	}
	c := p.draw(req, fleet)
	if first && p.cfg.Allocation.Shed && c.Orch >= 0 {
		c = p.inTime(req, fleet, c.Orch)
	}
	return c
}

// worth is value × the odds that o answers req within its SLO now, less
// o's price: positive when sending is better than shedding.
func (p *Oracle) worth(req *Request, fleet *Fleet, o int) (worth, odds float64) {
	cl := &p.sc.Classes[req.Class]
	orch := fleet.Orchestrator(o)
	odds = oracle.OnTimeOdds(orch, orch.Classes[cl.ID], fleet.InFlight(o), fleet.RTT(req.Region, o), cl.SLO)
	return cl.Value*odds - fleet.Price(o, req.Class), odds
}

// inTime keeps the drawn orchestrator o when it is worth it, else takes
// the usable untried one with the best odds that is, else sheds.
func (p *Oracle) inTime(req *Request, fleet *Fleet, o int) Choice {
	if w, _ := p.worth(req, fleet, o); w > 0 {
		return Use(o)
	}
	best, bestOdds := -1, 0.0
	for _, c := range candidates(p.buf, req, fleet) {
		if !p.usable[c] {
			continue
		}
		if w, odds := p.worth(req, fleet, c); w > 0 && odds > bestOdds {
			best, bestOdds = c, odds
		}
	}
	if best < 0 {
		return GiveUp()
	}
	return Use(best)
}

// draw picks by the allocation's shares among the untried candidates.
func (p *Oracle) draw(req *Request, fleet *Fleet) Choice {
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
