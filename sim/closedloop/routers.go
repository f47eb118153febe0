package closedloop

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/loopgate/loopgate/sim"
)

// Routers is loopgate deployed as several routers behind a load balancer
// (Config.Routers > 1): one slow loop — one warehouse, one optimizer, one
// policy that every router applies at the same instant, as routers
// following the same policy log do — and a fast loop per router.
//
// Request i goes to router i mod N, as a round-robin load balancer in
// front of the routers sends it. Each router's fast loop is its own: the
// latency and failure trackers, local ejections, the adaptive in-flight
// limits, the edge queue, admission buckets, the retry budget and the
// scenario's gateway section. A router counts only its own attempts in
// flight (with one router the fleet's count is the same number), so with
// N routers each sees about 1/N of every orchestrator's load: a limit
// published for an orchestrator is enforced by every router on its own,
// and shares are drawn by each router independently, so they hold in
// expectation over the routers, not per request.
type Routers struct {
	routers []*Policy // routers[0] is the leader: it owns the slow loop
}

// NewRouters builds cfg.Routers routers sharing one slow loop for one run
// of env's scenario. The leader is built from env as New builds a single
// policy; each follower draws from its own stream seeded from env.Rand.
func NewRouters(ctx context.Context, cfg Config, env sim.Env) (*Routers, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := cfg.Routers
	leader, err := newFast(cfg, env)
	if err != nil {
		return nil, err
	}
	m := &Routers{routers: []*Policy{leader}}
	for i := 1; i < n; i++ {
		fenv := env
		fenv.Rand = rand.New(rand.NewPCG(env.Rand.Uint64(), env.Rand.Uint64()))
		f, err := newFast(cfg, fenv)
		if err != nil {
			return nil, err
		}
		f.leader = leader
		leader.followers = append(leader.followers, f)
		m.routers = append(m.routers, f)
	}
	for _, r := range m.routers {
		r.own = make([]int, len(env.Scenario.Orchestrators))
	}
	if err := leader.openSlow(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *Routers) of(request int) *Policy { return m.routers[request%len(m.routers)] }

// Limits implements sim.Policy.
func (m *Routers) Limits(now time.Duration, req *sim.Request) sim.Limits {
	return m.of(req.ID).Limits(now, req)
}

// Pick implements sim.Policy: the request's router decides.
func (m *Routers) Pick(now time.Duration, req *sim.Request, fleet *sim.Fleet) sim.Choice {
	return m.of(req.ID).Pick(now, req, fleet)
}

// Observe implements sim.Policy: the router that sent the attempt learns.
func (m *Routers) Observe(now time.Duration, a *sim.Attempt) { m.of(a.Request).Observe(now, a) }

// Advance implements sim.Clocked: each follower ends its stale requests
// into the leader's buffer, then the leader runs the slow loop.
func (m *Routers) Advance(ctx context.Context, now time.Duration) error {
	leader := m.routers[0]
	for _, f := range m.routers[1:] {
		f.now = now
		if f.err != nil {
			return f.err
		}
		if now >= leader.nextFlush {
			f.endStale(now)
		}
	}
	return leader.Advance(ctx, now)
}

// Stats reports the slow loop's counts (the leader's); retries, sheds and
// hand-offs are summed over the routers.
func (m *Routers) Stats() Stats {
	st := m.routers[0].Stats()
	for _, f := range m.routers[1:] {
		fs := f.Stats()
		st.Retries += fs.Retries
		st.RetriesRefused += fs.RetriesRefused
		st.Handoffs += fs.Handoffs
		for k, v := range fs.Shed {
			if st.Shed == nil {
				st.Shed = map[string]int{}
			}
			st.Shed[k] += v
		}
	}
	return st
}

// Close closes the leader's warehouse; followers hold nothing to close.
func (m *Routers) Close() error {
	var errs []error
	for _, r := range m.routers {
		errs = append(errs, r.Close())
	}
	return errors.Join(errs...)
}

// inFlight is orchestrator o's attempts in flight as this router counts
// them: its own when it is one of several, else the fleet's (the same).
func (p *Policy) inFlight(o int) int {
	if p.own != nil {
		return p.own[o]
	}
	return p.fleet.InFlight(o)
}

// use is the Choice of orchestrator o, counted in this router's own in
// flight when it keeps its own count.
func (p *Policy) use(o int) sim.Choice {
	if p.own != nil {
		p.own[o]++
	}
	return sim.Use(o)
}

var (
	_ sim.Policy  = (*Routers)(nil)
	_ sim.Clocked = (*Routers)(nil)
)
