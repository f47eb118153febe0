package closedloop

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/gateway"
	"github.com/loopgate/loopgate/sim"
	"github.com/loopgate/loopgate/sim/scenario"
)

// gate applies a scenario's gateway section (scenario.Gateway) with the
// router's own gateway code: every request is admitted by
// gateway.Gateway.Admit before its first attempt — a refusal is a request
// the router answers at once (429/402), so the simulator records it as
// failed — and settled with its outcome, which prices it (charge, margin)
// and counts its spend.
type gate struct {
	gw      *gateway.Gateway
	keys    []event.APIKey // by client index
	cost    []float64      // by class: the highest price per unit of an orchestrator serving it
	now     time.Duration  // the virtual time of the call in progress
	peer    *http.Request  // every simulated client calls from the same address
	spend   map[string]float64
	refused map[string]int
	held    map[int]func(*event.Outcome) // admitted requests not yet given to their outcome
}

func newGate(sc *scenario.Scenario) (*gate, error) {
	g := sc.Gateway
	if g == nil {
		return nil, nil
	}
	cfg := gateway.DefaultConfig()
	cfg.Routers = max(g.Routers, 1)
	cfg.DefaultTier = g.DefaultTier
	cfg.Tiers = map[string]gateway.Tier{}
	for name, t := range g.Tiers {
		cfg.Tiers[name] = gateway.Tier{Markup: t.Markup, Prices: t.Prices}
	}
	for _, c := range g.Customers {
		cfg.Customers = append(cfg.Customers, gateway.Customer{ID: c.ID, Tier: c.Tier, Limits: c.Limits, Budgets: c.Budgets})
	}
	t := &gate{spend: map[string]float64{}, refused: map[string]int{}, held: map[int]func(*event.Outcome){}, peer: &http.Request{RemoteAddr: "192.0.2.1:1", Header: http.Header{}}}
	gw, err := gateway.New(cfg, "bench", deps.Deps{Clock: func() time.Time { return Epoch().Add(t.now) }})
	if err != nil {
		return nil, fmt.Errorf("scenario %s: gateway: %w", sc.Name, err)
	}
	t.gw = gw
	for _, c := range sc.Clients {
		k := g.KeyOf(c.ID)
		key := event.APIKey{ID: c.ID, SHA256: "-", Customer: k.Customer, ClientRegion: c.Region, Capabilities: k.Capabilities,
			Models: k.Models, MaxPricePerUnit: k.MaxPricePerUnit, Limits: k.Limits, Budgets: k.Budgets}
		if err := gateway.ValidateKey(key); err != nil {
			return nil, fmt.Errorf("scenario %s: %w", sc.Name, err)
		}
		t.keys = append(t.keys, key)
	}
	for _, cl := range sc.Classes {
		var hi float64
		for _, o := range sc.Orchestrators {
			if off, ok := o.Classes[cl.ID]; ok {
				hi = max(hi, off.Price)
			}
		}
		t.cost = append(t.cost, hi)
	}
	return t, nil
}

// admit asks the gateway about req before its first attempt, once: a
// request asked again (parked at the edge) keeps its admission. It
// reports false for a refusal. The admission's settlement waits in held
// until the request's outcome takes it (take) or it ends without one
// (release). A nil gate admits everything.
func (t *gate) admit(now time.Duration, sc *scenario.Scenario, req *sim.Request) bool {
	if t == nil {
		return true
	}
	if _, ok := t.held[req.ID]; ok {
		return true
	}
	t.now = now
	cl := &sc.Classes[req.Class]
	kind, _ := event.UnitKindOf(cl.Capability)
	key := &t.keys[req.Client]
	o := &event.Outcome{APIKeyID: key.ID, Customer: key.Customer, Capability: cl.Capability, Model: cl.Model,
		Units: int64(cl.Units), UnitKind: kind, StartMs: Epoch().Add(now).UnixMilli()}
	done, err := t.gw.Admit(t.peer, key, o, t.cost[req.Class], 0)
	if err != nil {
		t.refused[key.ID]++
		return false
	}
	t.held[req.ID] = func(out *event.Outcome) {
		t.now = now + time.Duration(out.LatencyMs)*time.Millisecond
		out.APIKeyID, out.Customer = key.ID, key.Customer
		done(out)
		t.spend[key.ID] += out.Charge
	}
	return true
}

// take hands over the settlement of request id (nil: none).
func (t *gate) take(id int) func(*event.Outcome) {
	if t == nil {
		return nil
	}
	s := t.held[id]
	delete(t.held, id)
	return s
}

// release settles request id, which ended before any attempt.
func (t *gate) release(id int) {
	if s := t.take(id); s != nil {
		s(&event.Outcome{Status: event.StatusRejected})
	}
}

// GatewayStats is what the scenario's gateway did for each client (by key
// id, the client's id): the charge of its requests and how many it refused.
type GatewayStats struct {
	Charge  map[string]float64
	Refused map[string]int
}

// Gateway reports the gateway's charges and refusals so far; zero without
// a gateway section.
func (p *Policy) Gateway() GatewayStats {
	if p.gate == nil {
		return GatewayStats{}
	}
	return GatewayStats{Charge: p.gate.spend, Refused: p.gate.refused}
}

// Gated puts the scenario's gateway section in front of the policy ctor
// builds, with the same code the loopgate policy uses (gate): every
// request is admitted before its first attempt — a refusal is answered at
// once (429/402) and counts as a failed request, as it does for loopgate —
// and settled when it ends, which prices it and counts its spend against
// the budgets. The gateway (keys, limits, budgets) is not routing: the
// bench puts it in front of every policy, so a classic balancer is
// compared behind the same gateway as loopgate and loopgate's refusals are
// not counted against it alone. A scenario without a gateway section, and
// the loopgate policy (which applies it itself and writes the charges to
// its warehouse), get ctor's policy unchanged.
func Gated(ctor sim.Constructor) sim.Constructor {
	return func(ctx context.Context, env sim.Env) (sim.Policy, error) {
		p, err := ctor(ctx, env)
		if err != nil || env.Scenario.Gateway == nil {
			return p, err
		}
		switch p.(type) {
		case *Policy, *Routers:
			return p, nil
		}
		g, err := newGate(env.Scenario)
		if err != nil {
			if c, ok := p.(io.Closer); ok {
				c.Close()
			}
			return nil, err
		}
		return &gated{inner: p, gate: g, sc: env.Scenario}, nil
	}
}

// gated is a policy behind the scenario's gateway (Gated). It passes on
// the optional interfaces the simulator looks for when the policy it wraps
// has them.
type gated struct {
	inner sim.Policy
	gate  *gate
	sc    *scenario.Scenario
}

func (g *gated) Limits(now time.Duration, req *sim.Request) sim.Limits {
	return g.inner.Limits(now, req)
}

// Pick asks the gateway before a request's first attempt (once: a request
// parked at the edge keeps its admission), then the policy.
func (g *gated) Pick(now time.Duration, req *sim.Request, fleet *sim.Fleet) sim.Choice {
	if req.Attempts == 0 && !g.gate.admit(now, g.sc, req) {
		return sim.GiveUp()
	}
	return g.inner.Pick(now, req, fleet)
}

func (g *gated) Observe(now time.Duration, a *sim.Attempt) { g.inner.Observe(now, a) }

// Finished settles the request's admission with its outcome: status,
// cost and latency, which is what the gateway prices and counts.
func (g *gated) Finished(now time.Duration, r *sim.RequestRecord) {
	if s := g.gate.take(r.ID); s != nil {
		cl := &g.sc.Classes[r.Class]
		kind, _ := event.UnitKindOf(cl.Capability)
		st := event.StatusError
		switch {
		case r.Success:
			st = event.StatusOK
		case r.Outcome == sim.TimedOut:
			st = event.StatusTimeout
		}
		s(&event.Outcome{Status: st, Capability: cl.Capability, Model: cl.Model, Units: int64(cl.Units), UnitKind: kind,
			StartMs: Epoch().Add(r.Arrival).UnixMilli(), LatencyMs: r.Latency.Milliseconds(), Cost: r.Cost})
	}
	if o, ok := g.inner.(sim.RequestObserver); ok {
		o.Finished(now, r)
	}
}

func (g *gated) OnChange(now time.Duration, st *scenario.State) {
	if o, ok := g.inner.(sim.ChangeObserver); ok {
		o.OnChange(now, st)
	}
}

func (g *gated) Advance(ctx context.Context, now time.Duration) error {
	if c, ok := g.inner.(sim.Clocked); ok {
		return c.Advance(ctx, now)
	}
	return nil
}

func (g *gated) Close() error {
	if c, ok := g.inner.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// GatewayOf reports what the gateway in front of p did: p is a policy
// Gated built, or the loopgate policy; zero for any other.
func GatewayOf(p sim.Policy) GatewayStats {
	switch p := p.(type) {
	case *gated:
		return GatewayStats{Charge: p.gate.spend, Refused: p.gate.refused}
	case *Policy:
		return p.Gateway()
	}
	return GatewayStats{}
}
