package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
)

// SpendSource reads what every router's requests spent, from the
// warehouse (warehouse.Store.Spend is one): rows per key, customer and
// hour since since, with this router's own requests that started at or
// after ownSinceMs (those it counts itself) in rows of their own (Own).
type SpendSource interface {
	Spend(ctx context.Context, since time.Time, gatewayID string, ownSinceMs int64) ([]event.Spend, error)
}

// Auditor records the budget warnings (cmd adapts the warehouse's audit
// table to it). Audit returns nil only when the record is durable.
type Auditor interface {
	Audit(ctx context.Context, action, detail string) error
}

// Log keys, defined once.
const (
	logKeyErr     = "err"
	logKeyScope   = "scope"
	logKeyID      = "id"
	logKeyBudget  = "budget"
	logKeyLevel   = "level"
	logKeyDropped = "dropped"
)

// maxPendingWarnings bounds the warnings waiting for Run to audit them.
const maxPendingWarnings = 1024

// Gateway admits requests by the business rules: networks, limits and
// budgets of the key and of its customer, and prices them by the
// customer's tier. It owns no goroutine; Run, when the caller runs it,
// shares spend between routers and writes the audit records of warnings.
// Every method is safe for concurrent use.
type Gateway struct {
	log       *slog.Logger
	now       func() time.Time
	m         *metrics
	gatewayID string
	startedMs int64
	spendSrc  SpendSource // nil: this router's spend only
	auditor   Auditor     // nil: warnings are metrics and logs only

	mu        sync.Mutex
	cfg       Config
	customers map[string]*Customer
	allow     []netip.Prefix
	trusted   []netip.Prefix
	scopes    map[scopeKey]*scope
	pending   []warning
	dropped   int
}

// warning is a budget crossing one of Config.WarnAt, to be audited.
type warning struct {
	at                   time.Time
	scope, id, budget    string
	level, spent, amount float64
}

// Option sets an optional collaborator of New.
type Option func(*Gateway)

// WithSpendSource makes Run read the other routers' spend from src.
func WithSpendSource(src SpendSource) Option { return func(g *Gateway) { g.spendSrc = src } }

// WithAuditor makes Run write every budget warning to a.
func WithAuditor(a Auditor) Option { return func(g *Gateway) { g.auditor = a } }

// New validates cfg and returns a Gateway for the router named gatewayID
// (its outcomes' gateway_id, unique among the routers sharing limits).
func New(cfg Config, gatewayID string, d deps.Deps, opts ...Option) (*Gateway, error) {
	m, err := newMetrics(d.Registerer)
	if err != nil {
		return nil, err
	}
	g := &Gateway{log: d.Log(), now: d.Now, m: m, gatewayID: gatewayID, scopes: map[scopeKey]*scope{}}
	for _, o := range opts {
		o(g)
	}
	if err := g.SetConfig(cfg); err != nil {
		return nil, err
	}
	g.startedMs = g.now().UnixMilli()
	return g, nil
}

// SetConfig validates cfg and swaps it in; counts and spend are kept.
func (g *Gateway) SetConfig(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	allow, _ := parsePrefixes(cfg.AllowCIDRs)
	trusted, _ := parsePrefixes(cfg.TrustedProxies)
	cs := make(map[string]*Customer, len(cfg.Customers))
	for i := range cfg.Customers {
		cs[cfg.Customers[i].ID] = &cfg.Customers[i]
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.cfg, g.customers, g.allow, g.trusted = cfg, cs, allow, trusted
	return nil
}

// scopeKey names a scope: kind "key" or "customer", and its id.
type scopeKey struct{ kind, id string }

func (g *Gateway) scope(kind, id string, l event.Limits, now time.Time) *scope {
	k := scopeKey{kind, id}
	s := g.scopes[k]
	if s == nil {
		s = &scope{kind: kind, id: id}
		g.scopes[k] = s
	}
	s.configure(l, g.cfg.Routers, now)
	return s
}

// Admit decides whether the request o describes may go on: o holds, before
// any attempt, its key id, customer, class, units (an estimate for audio
// without a WAV header) and start. costPerUnit is the most an orchestrator
// the request may be routed to charges per unit, listPrice the router's
// own customer price per unit for the class; they give the estimate a
// budget is checked with. On admission Admit returns done, which the
// caller must call exactly once with the request's outcome: it sets the
// outcome's charge (by the customer's price book) and margin, corrects
// the spend from estimate to actual and releases the concurrency slots.
// Otherwise it returns a *Refusal.
func (g *Gateway) Admit(req *http.Request, key *event.APIKey, o *event.Outcome, costPerUnit, listPrice float64) (func(*event.Outcome), error) {
	now := g.now()
	g.mu.Lock()
	defer g.mu.Unlock()
	if r := g.checkAddr(req, key); r != nil {
		g.m.refused.WithLabelValues(r.Code, r.Scope).Inc()
		return nil, r
	}
	tier := g.tierOf(key.Customer, key.Tier)
	est := estimate{cost: costPerUnit * float64(o.Units)}
	est.charge = g.chargeFor(tier, o.Capability, o.Model, o.Units, est.cost, listPrice*float64(o.Units))

	scopes := [2]*scope{g.scope("key", key.ID, key.Limits, now)}
	budgets := [2][]event.Budget{key.Budgets}
	if c := g.customers[key.Customer]; c != nil {
		scopes[1], budgets[1] = g.scope("customer", c.ID, c.Limits, now), c.Budgets
	}
	// Every limit is checked before any is taken: a refused request
	// consumes nothing, so it is refused once, for one reason.
	for i, s := range scopes {
		if s == nil {
			continue
		}
		r := s.check(now, o.UnitKind, o.Units, g.cfg.Routers)
		if r == nil {
			r = s.checkBudgets(budgets[i], now, est, g.cfg.Routers, g.cfg.SyncInterval)
		}
		if r != nil {
			g.m.refused.WithLabelValues(r.Code, r.Scope).Inc()
			return nil, r
		}
	}
	type hold struct {
		sp  *spendState
		est float64
		b   event.Budget
		s   *scope
	}
	var holds []hold
	for i, s := range scopes {
		if s == nil {
			continue
		}
		s.take(now, o.UnitKind, o.Units)
		s.budgets = budgets[i]
		for _, b := range budgets[i] {
			sp := s.budget(b, now)
			e := est.of(budgetOf(b))
			sp.reserved += e
			holds = append(holds, hold{sp, e, b, s})
		}
	}
	g.m.admitted.Inc()
	var once sync.Once
	done := func(out *event.Outcome) {
		once.Do(func() {
			g.mu.Lock()
			defer g.mu.Unlock()
			g.price(out, tier)
			now := g.now()
			for _, s := range scopes {
				if s != nil {
					s.inFlight--
				}
			}
			for _, h := range holds {
				h.sp.reserved -= h.est
				if h.sp.reserved < 1e-12 {
					h.sp.reserved = max(h.sp.reserved, 0)
				}
				if cur := h.s.budget(h.b, now); cur != h.sp {
					continue // the period ended: the request belonged to the old one
				}
				if budgetOf(h.b) == event.BudgetCost {
					h.sp.own += out.Cost
				} else {
					h.sp.own += out.Charge
				}
				g.observe(h.s, h.b, h.sp, now)
			}
		})
	}
	return done, nil
}

// Price sets o's charge by the price book of its customer's tier and its
// margin (charge − cost), for outcomes that were not admitted through
// Admit (the router's refusals, a crash's interrupted requests).
func (g *Gateway) Price(o *event.Outcome) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.price(o, g.tierOf(o.Customer, ""))
}

// price sets the outcome's charge and margin. mu held.
func (g *Gateway) price(o *event.Outcome, tier *Tier) {
	if o.Status == event.StatusOK {
		o.Charge = g.chargeFor(tier, o.Capability, o.Model, o.Units, o.Cost, o.Charge)
	} else {
		o.Charge = 0
	}
	o.Margin = o.Charge - o.Cost
}

// chargeFor is the charge of units of a class: the tier's fixed price,
// else its markup on cost, else list (the router's own price). mu held.
func (g *Gateway) chargeFor(tier *Tier, capability, model string, units int64, cost, list float64) float64 {
	if tier == nil {
		return list
	}
	if p, ok := tier.Prices[capability+"/"+model]; ok {
		return p * float64(units)
	}
	if p, ok := tier.Prices[capability]; ok {
		return p * float64(units)
	}
	if tier.Markup > 0 {
		return cost * (1 + tier.Markup)
	}
	return list
}

// tierOf is the price book of a customer: its own tier, else the key's
// (event.APIKey.Tier), else DefaultTier; a name that is not a price book
// falls through to the next. mu held.
func (g *Gateway) tierOf(customer, keyTier string) *Tier {
	name := g.cfg.DefaultTier
	if _, ok := g.cfg.Tiers[keyTier]; ok {
		name = keyTier
	}
	if c := g.customers[customer]; c != nil && c.Tier != "" {
		name = c.Tier
	}
	if t, ok := g.cfg.Tiers[name]; ok {
		return &t
	}
	return nil
}

// checkAddr applies the global and the key's allowlists. mu held.
func (g *Gateway) checkAddr(req *http.Request, key *event.APIKey) *Refusal {
	if len(g.allow) == 0 && len(key.AllowCIDRs) == 0 {
		return nil
	}
	addr, ok := clientAddr(req, g.trusted)
	refuse := func(scope, id string) *Refusal {
		r := &Refusal{Status: http.StatusForbidden, Code: CodeIPNotAllowed, Scope: scope, ScopeID: id, Limit: "allow_cidrs"}
		r.describe("address " + addr.String() + " not allowed")
		return r
	}
	if len(g.allow) > 0 && (!ok || !contains(g.allow, addr)) {
		return refuse("global", "")
	}
	if len(key.AllowCIDRs) > 0 {
		ps, err := parsePrefixes(key.AllowCIDRs)
		if err != nil || !ok || !contains(ps, addr) {
			return refuse("key", key.ID)
		}
	}
	return nil
}

// observe updates a budget's gauge and reports the warning levels its
// spend crossed. mu held.
func (g *Gateway) observe(s *scope, b event.Budget, sp *spendState, now time.Time) {
	if sp.name == "" {
		sp.name = string(b.Period) + "." + string(budgetOf(b))
	}
	name := sp.name
	spent := sp.own + sp.others
	g.m.budgetUsed.WithLabelValues(s.kind, s.id, name).Set(spent / b.USD)
	for sp.warned < len(g.cfg.WarnAt) && spent >= g.cfg.WarnAt[sp.warned]*b.USD {
		level := g.cfg.WarnAt[sp.warned]
		sp.warned++
		g.m.warnings.WithLabelValues(s.kind, strconv.FormatFloat(level, 'f', -1, 64)).Inc()
		g.log.Warn("budget warning", logKeyScope, s.kind, logKeyID, s.id, logKeyBudget, name, logKeyLevel, level)
		if g.auditor == nil {
			continue
		}
		if len(g.pending) >= maxPendingWarnings {
			g.pending, g.dropped = g.pending[1:], g.dropped+1
		}
		g.pending = append(g.pending, warning{at: now, scope: s.kind, id: s.id, budget: name, level: level, spent: spent, amount: b.USD})
	}
}

// Run shares spend between routers and audits budget warnings until ctx
// ends: every SyncInterval it reads the other routers' spend
// (WithSpendSource) and writes the pending warnings (WithAuditor). It
// returns nil on cancellation; a failed read or write is logged, counted
// and tried again at the next tick.
func (g *Gateway) Run(ctx context.Context) error {
	g.mu.Lock()
	every := g.cfg.SyncInterval
	g.mu.Unlock()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := g.Sync(ctx); err != nil && ctx.Err() == nil {
			g.log.Warn("spend not shared", logKeyErr, err)
		}
		g.flushWarnings(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sync reads the other routers' spend once and applies it.
func (g *Gateway) Sync(ctx context.Context) error {
	if g.spendSrc == nil {
		return nil
	}
	now := g.now()
	g.mu.Lock()
	since := now
	for _, s := range g.scopes {
		for k := range s.spend {
			since = minTime(since, periodStart(k.period, now))
		}
	}
	g.mu.Unlock()
	rows, err := g.spendSrc.Spend(ctx, since, g.gatewayID, g.startedMs)
	if err != nil {
		g.m.syncs.WithLabelValues("error").Inc()
		return fmt.Errorf("read spend since %v: %w", since, err)
	}
	g.m.syncs.WithLabelValues("ok").Inc()
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, s := range g.scopes {
		for k, sp := range s.spend {
			if !sp.start.Equal(periodStart(k.period, now)) {
				continue
			}
			var others, seen float64
			for _, r := range rows {
				if r.HourMs < sp.start.UnixMilli() || (s.kind == "key" && r.APIKeyID != s.id) || (s.kind == "customer" && r.Customer != s.id) {
					continue
				}
				v := r.Charge
				if k.of == event.BudgetCost {
					v = r.Cost
				}
				if r.Own {
					seen += v
				} else {
					others += v
				}
			}
			sp.others, sp.ownSeen = others, seen
			g.observe(s, event.Budget{Period: k.period, Of: k.of, USD: g.budgetAmount(s, k)}, sp, now)
		}
	}
	return nil
}

// budgetAmount finds the configured amount of a scope's budget. mu held.
func (g *Gateway) budgetAmount(s *scope, k budgetKey) float64 {
	for _, b := range s.budgets {
		if b.Period == k.period && budgetOf(b) == k.of {
			return b.USD
		}
	}
	return 0
}

func (g *Gateway) flushWarnings(ctx context.Context) {
	if g.auditor == nil {
		return
	}
	g.mu.Lock()
	ws, dropped := g.pending, g.dropped
	g.pending, g.dropped = nil, 0
	g.mu.Unlock()
	if dropped > 0 {
		g.log.Warn("budget warnings not audited: too many pending", logKeyDropped, dropped)
	}
	for i, w := range ws {
		detail, _ := json.Marshal(map[string]any{"scope": w.scope, "id": w.id, "budget": w.budget, "level": w.level, "spent_usd": w.spent, "budget_usd": w.amount, "time_ms": w.at.UnixMilli()})
		if err := g.auditor.Audit(ctx, "budget.warning", string(detail)); err != nil {
			g.log.Warn("budget warning not audited", logKeyErr, err)
			g.mu.Lock()
			g.pending = append(ws[i:], g.pending...)
			g.mu.Unlock()
			return
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// ErrRefused is matched by every *Refusal (errors.Is).
var ErrRefused = errors.New("refused by the gateway")

// Is makes errors.Is(r, ErrRefused) true.
func (r *Refusal) Is(target error) bool { return target == ErrRefused }
