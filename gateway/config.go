package gateway

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strings"
	"time"

	"github.com/loopgate/loopgate/event"
)

// Config is the business side of the gateway: customers, their tiers and
// price books, how many routers share the limits, and which networks may
// call. Keys are not listed here: they are the router's `api_keys:` (and
// the keys made through the admin API), handed to New and SetKeys.
type Config struct {
	// Routers is how many routers share every limit: each enforces
	// limit/Routers of a rate, a burst, a concurrency and a units/minute
	// limit locally (see the package documentation). Default 1.
	Routers int `yaml:"routers"`
	// SyncInterval is how often the spend of the other routers is read
	// from the warehouse (Run). Default 1s.
	SyncInterval time.Duration `yaml:"sync_interval"`
	// Tiers are the price books, by name.
	Tiers map[string]Tier `yaml:"tiers"`
	// DefaultTier applies to keys whose customer is not listed or names
	// no tier. Default "" (no tier: the router's own customer prices).
	DefaultTier string `yaml:"default_tier"`
	// Customers with their tier, limits and budgets.
	Customers []Customer `yaml:"customers"`
	// AllowCIDRs, when not empty, are the only client networks any key is
	// accepted from. Default empty: every network.
	AllowCIDRs []string `yaml:"allow_cidrs"`
	// TrustedProxies are the networks whose X-Forwarded-For header is
	// believed: the client address is the rightmost X-Forwarded-For entry
	// that is not itself a trusted proxy. Default empty: the header is
	// ignored and the peer address is the client's.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// KeyAPI serves the admin API for keys (create, revoke, rotate: Keys)
	// on the router's admin port, keeping API-made keys in the warehouse's
	// api_keys table. `loopgate dev` always serves it. Default false.
	KeyAPI bool `yaml:"key_api"`
	// KeySyncInterval is how often a router reads the API-made keys, so a
	// key made or revoked on one router takes effect on the others within
	// it. Default 5s.
	KeySyncInterval time.Duration `yaml:"key_sync_interval"`
	// WarnAt are the fractions of a budget whose crossing is reported (a
	// metric and an audit event). Default [0.8, 1].
	WarnAt []float64 `yaml:"warn_at"`
}

// Tier is a price book: what a customer pays per unit of each class.
type Tier struct {
	// Prices are fixed USD per unit, by "capability/model" or by
	// "capability" for all its models; the longer key wins.
	Prices map[string]float64 `yaml:"prices"`
	// Markup applies to classes without a fixed price: charge = cost ×
	// (1 + Markup), the cost being what the orchestrators were paid. 0 =
	// the router's own customer price for the class.
	Markup float64 `yaml:"markup"`
}

// Customer is whom a key's requests are billed to.
type Customer struct {
	// ID is the customer name keys refer to. Required, unique.
	ID string `yaml:"id"`
	// Tier names the price book. "" = DefaultTier.
	Tier string `yaml:"tier"`
	// Limits over all of the customer's keys together.
	Limits event.Limits `yaml:"limits"`
	// Budgets over all of the customer's keys together.
	Budgets []event.Budget `yaml:"budgets"`
}

// DefaultConfig returns the documented defaults: one router, no
// customers, no tiers, every network allowed.
func DefaultConfig() Config {
	return Config{Routers: 1, SyncInterval: time.Second, KeySyncInterval: 5 * time.Second, WarnAt: []float64{0.8, 1}}
}

// Validate reports every setting that cannot work.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("gateway: "+format, args...)) }
	if c.Routers < 1 || c.Routers > 1024 {
		bad("routers %d not in 1..1024", c.Routers)
	}
	if c.SyncInterval <= 0 || c.KeySyncInterval <= 0 {
		bad("sync_interval %v and key_sync_interval %v must be positive", c.SyncInterval, c.KeySyncInterval)
	}
	for _, w := range c.WarnAt {
		if !(w > 0 && w <= 1) {
			bad("warn_at %v not in (0, 1]", w)
		}
	}
	for name, t := range c.Tiers {
		if !finiteNonNeg(t.Markup) {
			bad("tiers.%s.markup %v is not a finite non-negative fraction", name, t.Markup)
		}
		for class, p := range t.Prices {
			capability, _, _ := strings.Cut(class, "/")
			if !event.KnownCapability(capability) {
				bad("tiers.%s.prices[%q]: unknown capability %q", name, class, capability)
			}
			if !finiteNonNeg(p) {
				bad("tiers.%s.prices[%q] %v is not a finite non-negative price", name, class, p)
			}
		}
	}
	if _, ok := c.Tiers[c.DefaultTier]; c.DefaultTier != "" && !ok {
		bad("default_tier %q is not in tiers", c.DefaultTier)
	}
	seen := map[string]bool{}
	for i, cu := range c.Customers {
		at := fmt.Sprintf("customers[%d]", i)
		if cu.ID == "" || len(cu.ID) > 256 || seen[cu.ID] {
			bad("%s.id %q must be 1..256 bytes and unique", at, cu.ID)
		}
		seen[cu.ID] = true
		if _, ok := c.Tiers[cu.Tier]; cu.Tier != "" && !ok {
			bad("%s.tier %q is not in tiers", at, cu.Tier)
		}
		if err := ValidateLimits(cu.Limits); err != nil {
			bad("%s.limits: %v", at, err)
		}
		if err := ValidateBudgets(cu.Budgets); err != nil {
			bad("%s.budgets: %v", at, err)
		}
	}
	if _, err := parsePrefixes(c.AllowCIDRs); err != nil {
		bad("allow_cidrs: %v", err)
	}
	if _, err := parsePrefixes(c.TrustedProxies); err != nil {
		bad("trusted_proxies: %v", err)
	}
	return errors.Join(errs...)
}

// ValidateKey reports what is wrong with the gateway's side of a key: its
// limits, budgets and networks (the router checks the rest).
func ValidateKey(k event.APIKey) error {
	var errs []error
	if err := ValidateLimits(k.Limits); err != nil {
		errs = append(errs, fmt.Errorf("limits: %w", err))
	}
	if err := ValidateBudgets(k.Budgets); err != nil {
		errs = append(errs, fmt.Errorf("budgets: %w", err))
	}
	if _, err := parsePrefixes(k.AllowCIDRs); err != nil {
		errs = append(errs, fmt.Errorf("allow_cidrs: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("key %q: %w", k.ID, err)
	}
	return nil
}

// ValidateLimits reports a limit that cannot work.
func ValidateLimits(l event.Limits) error {
	var errs []error
	if !finiteNonNeg(l.RequestsPerSecond) {
		errs = append(errs, fmt.Errorf("requests_per_second %v is not finite and non-negative", l.RequestsPerSecond))
	}
	if l.Burst < 0 || l.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("burst %d and concurrency %d must be non-negative", l.Burst, l.Concurrency))
	}
	if l.Burst > 0 && l.RequestsPerSecond == 0 {
		errs = append(errs, errors.New("burst without requests_per_second"))
	}
	for k, v := range l.UnitsPerMinute {
		if !k.Valid() || k == event.UnitRequests {
			errs = append(errs, fmt.Errorf("units_per_minute: unknown unit kind %q (pixels, tokens, ms, characters)", k))
		}
		if v <= 0 {
			errs = append(errs, fmt.Errorf("units_per_minute[%s] %d must be positive", k, v))
		}
	}
	return errors.Join(errs...)
}

// ValidateBudgets reports a budget that cannot work.
func ValidateBudgets(bs []event.Budget) error {
	var errs []error
	seen := map[[2]string]bool{}
	for i, b := range bs {
		if !b.Period.Valid() {
			errs = append(errs, fmt.Errorf("[%d].period %q: want hour, day or month", i, b.Period))
		}
		if !(b.USD > 0) || math.IsInf(b.USD, 0) {
			errs = append(errs, fmt.Errorf("[%d].usd %v must be positive", i, b.USD))
		}
		if b.Of != "" && b.Of != event.BudgetCharge && b.Of != event.BudgetCost {
			errs = append(errs, fmt.Errorf("[%d].of %q: want charge or cost", i, b.Of))
		}
		k := [2]string{string(b.Period), string(budgetOf(b))}
		if seen[k] {
			errs = append(errs, fmt.Errorf("[%d]: a second %s budget of %s", i, b.Period, budgetOf(b)))
		}
		seen[k] = true
	}
	return errors.Join(errs...)
}

func budgetOf(b event.Budget) event.BudgetOf {
	if b.Of == "" {
		return event.BudgetCharge
	}
	return b.Of
}

func parsePrefixes(ss []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(ss))
	for _, s := range ss {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			a, aerr := netip.ParseAddr(strings.TrimSpace(s))
			if aerr != nil {
				return nil, fmt.Errorf("%q is neither a CIDR prefix nor an address", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func finiteNonNeg(v float64) bool { return v >= 0 && !math.IsInf(v, 0) }
