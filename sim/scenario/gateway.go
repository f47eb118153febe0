package scenario

import (
	"fmt"
	"math"
	"strings"

	"github.com/loopgate/loopgate/event"
)

// Gateway is a scenario's business rules: customers with their tier,
// limits and budgets, price books, and one API key per client with its
// own. The bench applies them through package gateway, as the router
// does, in front of every policy alike (sim/closedloop: the loopgate
// policy itself, and Gated for the others). Nil: no gateway (every
// request is admitted, nothing is charged).
type Gateway struct {
	// Routers is how many routers share the limits (1/Routers each). Default 1.
	Routers int `yaml:"routers"`
	// Tiers are price books by name: prices per unit by "capability" or
	// "capability/model" (fixed USD), else markup on cost.
	Tiers map[string]GatewayTier `yaml:"tiers"`
	// DefaultTier prices the customers that name none.
	DefaultTier string `yaml:"default_tier"`
	// Customers with their tier, limits and budgets.
	Customers []GatewayCustomer `yaml:"customers"`
	// Keys: the API key of each client (by client id). A client without
	// an entry has a key of its own id for customer of its own id, with
	// no limits.
	Keys []GatewayKey `yaml:"keys"`
}

// GatewayTier is one price book.
type GatewayTier struct {
	Markup float64            `yaml:"markup"`
	Prices map[string]float64 `yaml:"prices"`
}

// GatewayCustomer is whom a client's requests are billed to.
type GatewayCustomer struct {
	ID      string         `yaml:"id"`
	Tier    string         `yaml:"tier"`
	Limits  event.Limits   `yaml:"limits"`
	Budgets []event.Budget `yaml:"budgets"`
}

// GatewayKey is the API key a client sends.
type GatewayKey struct {
	Client          string         `yaml:"client"`
	Customer        string         `yaml:"customer"` // default: the client's id
	Capabilities    []string       `yaml:"capabilities"`
	Models          []string       `yaml:"models"`
	MaxPricePerUnit float64        `yaml:"max_price_per_unit"`
	Limits          event.Limits   `yaml:"limits"`
	Budgets         []event.Budget `yaml:"budgets"`
}

// KeyOf is the key client sends: its entry in Keys, else a key of its own
// id with customer the client's id.
func (g *Gateway) KeyOf(client string) GatewayKey {
	if g != nil {
		for _, k := range g.Keys {
			if k.Client == client {
				if k.Customer == "" {
					k.Customer = client
				}
				return k
			}
		}
	}
	return GatewayKey{Client: client, Customer: client}
}

// validate checks what the format can: references and amounts (package
// gateway checks the rest when the policy applies it).
func (g *Gateway) validate(s *Scenario) []error {
	if g == nil {
		return nil
	}
	var errs []error
	if g.Routers < 0 || g.Routers > 1024 {
		errs = append(errs, fieldErr("gateway.routers", "got %d, want 0..1024", g.Routers))
	}
	for name, t := range g.Tiers {
		if !(t.Markup >= 0) || math.IsInf(t.Markup, 0) {
			errs = append(errs, fieldErr("gateway.tiers."+name+".markup", "got %v, want ≥ 0", t.Markup))
		}
		for class, p := range t.Prices {
			capability, _, _ := strings.Cut(class, "/")
			if !event.KnownCapability(capability) || !(p >= 0) || math.IsInf(p, 0) {
				errs = append(errs, fieldErr("gateway.tiers."+name+".prices."+class, "want a known capability[/model] and a price ≥ 0"))
			}
		}
	}
	tier := func(path, name string) {
		if _, ok := g.Tiers[name]; name != "" && !ok {
			errs = append(errs, fieldErr(path, "unknown tier %q", name))
		}
	}
	tier("gateway.default_tier", g.DefaultTier)
	budgets := func(path string, bs []event.Budget) {
		for i, b := range bs {
			if !b.Period.Valid() || !(b.USD > 0) || (b.Of != "" && b.Of != event.BudgetCharge && b.Of != event.BudgetCost) {
				errs = append(errs, fieldErr(fmt.Sprintf("%s[%d]", path, i), "want period hour|day|month, usd > 0, of charge|cost"))
			}
		}
	}
	seen := map[string]bool{}
	for i, c := range g.Customers {
		at := fmt.Sprintf("gateway.customers[%d]", i)
		if c.ID == "" || seen[c.ID] {
			errs = append(errs, fieldErr(at+".id", "want a unique, non-empty id"))
		}
		seen[c.ID] = true
		tier(at+".tier", c.Tier)
		budgets(at+".budgets", c.Budgets)
	}
	clients := map[string]bool{}
	for _, c := range s.Clients {
		clients[c.ID] = true
	}
	keyed := map[string]bool{}
	for i, k := range g.Keys {
		at := fmt.Sprintf("gateway.keys[%d]", i)
		if !clients[k.Client] || keyed[k.Client] {
			errs = append(errs, fieldErr(at+".client", "%q is not a client or has a key already", k.Client))
		}
		keyed[k.Client] = true
		budgets(at+".budgets", k.Budgets)
	}
	return errs
}
