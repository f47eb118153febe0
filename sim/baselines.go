package sim

import (
	"context"
	"math/rand/v2"
	"time"
)

// Names of the policies Baselines provides.
const (
	PolicyRandom        = "random"
	PolicyRoundRobin    = "round-robin"
	PolicyLeastInflight = "least-inflight"
	PolicyP2CEWMA       = "p2c-ewma"
	PolicyLivepeer      = "livepeer"
	PolicyOracle        = "oracle"
)

// BaselineAttempts is how many attempts the baselines make per request: the
// first and up to two retries on other orchestrators (go-livepeer's 3).
const BaselineAttempts = 3

// Baselines returns a new registry of the policies every report compares
// (all but the product's), in no particular order; BaselineNames gives the
// report order.
func Baselines() Registry {
	return Registry{
		PolicyRandom:        func(_ context.Context, env Env) (Policy, error) { return newRandom(env), nil },
		PolicyRoundRobin:    func(_ context.Context, env Env) (Policy, error) { return newRoundRobin(env), nil },
		PolicyLeastInflight: func(_ context.Context, env Env) (Policy, error) { return newLeastInflight(env), nil },
		PolicyP2CEWMA:       func(_ context.Context, env Env) (Policy, error) { return NewP2CEWMA(env, DefaultP2CConfig()) },
		PolicyLivepeer:      func(_ context.Context, env Env) (Policy, error) { return NewLivepeer(env, DefaultLivepeerConfig()) },
		PolicyOracle:        func(_ context.Context, env Env) (Policy, error) { return NewOracle(env, DefaultOracleConfig()) },
	}
}

// BaselineNames lists the baseline policies in report order.
func BaselineNames() []string {
	return []string{PolicyRandom, PolicyRoundRobin, PolicyLeastInflight, PolicyP2CEWMA, PolicyLivepeer, PolicyOracle}
}

// candidates appends to buf the orchestrators that serve req's class and
// that req has not tried yet.
func candidates(buf []int, req *Request, fleet *Fleet) []int {
	buf = buf[:0]
	for _, o := range fleet.Eligible(req.Class) {
		if !Tried(req, o) {
			buf = append(buf, o)
		}
	}
	return buf
}

// fixedLimits is the baselines' Limits: retries, no hedging, no per-attempt
// timeout (only the client's).
func fixedLimits() Limits { return Limits{MaxAttempts: BaselineAttempts} }

// random picks uniformly among the eligible orchestrators not yet tried.
type random struct {
	rng *rand.Rand
	buf []int
}

func newRandom(env Env) *random { return &random{rng: env.Rand} }

func (p *random) Limits(time.Duration, *Request) Limits { return fixedLimits() }

func (p *random) Pick(_ time.Duration, req *Request, fleet *Fleet) Choice {
	p.buf = candidates(p.buf, req, fleet)
	if len(p.buf) == 0 {
		return GiveUp()
	}
	return Use(p.buf[p.rng.IntN(len(p.buf))])
}

func (p *random) Observe(time.Duration, *Attempt) {}

// roundRobin cycles through the orchestrators, one cursor per class,
// skipping those that do not serve the class or were tried.
type roundRobin struct {
	next []int // by class
}

func newRoundRobin(env Env) *roundRobin {
	return &roundRobin{next: make([]int, len(env.Scenario.Classes))}
}

func (p *roundRobin) Limits(time.Duration, *Request) Limits { return fixedLimits() }

func (p *roundRobin) Pick(_ time.Duration, req *Request, fleet *Fleet) Choice {
	n := fleet.Len()
	for k := 0; k < n; k++ {
		o := (p.next[req.Class] + k) % n
		if fleet.Serves(o, req.Class) && !Tried(req, o) {
			p.next[req.Class] = (o + 1) % n
			return Use(o)
		}
	}
	return GiveUp()
}

func (p *roundRobin) Observe(time.Duration, *Attempt) {}

// leastInflight picks the candidate with the fewest attempts in flight from
// this router, breaking ties at random.
type leastInflight struct {
	rng *rand.Rand
	buf []int
}

func newLeastInflight(env Env) *leastInflight { return &leastInflight{rng: env.Rand} }

func (p *leastInflight) Limits(time.Duration, *Request) Limits { return fixedLimits() }

func (p *leastInflight) Pick(_ time.Duration, req *Request, fleet *Fleet) Choice {
	p.buf = candidates(p.buf, req, fleet)
	best, ties := -1, 0
	for _, o := range p.buf {
		switch n := fleet.InFlight(o); {
		case best < 0 || n < fleet.InFlight(best):
			best, ties = o, 1
		case n == fleet.InFlight(best):
			ties++
			if p.rng.IntN(ties) == 0 { // reservoir: uniform among the ties
				best = o
			}
		}
	}
	if best < 0 {
		return GiveUp()
	}
	return Use(best)
}

func (p *leastInflight) Observe(time.Duration, *Attempt) {}
