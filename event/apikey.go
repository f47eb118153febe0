package event

import (
	"encoding/json"
	"fmt"
)

// The customer vocabulary: an API key with its scope, limits and budgets.
// It is defined here once because it is both configuration (the router's
// `api_keys:` entries) and a record shared between routers (keys created
// through the admin API, stored in the warehouse's api_keys table): the
// router authenticates and scopes with it, package gateway limits and
// budgets with it.

// APIKey is one accepted API key. The key itself is never stored: only its
// SHA-256. Every field but ID and SHA256 is optional, and a zero value
// means "no restriction" (an existing config with id, sha256, customer and
// client_region stays valid).
type APIKey struct {
	// ID identifies the key in outcomes and logs. Required, unique.
	ID string `yaml:"id" json:"id"`
	// SHA256 is the hex SHA-256 of the key (e.g. `printf %s "$KEY" | sha256sum`). Required.
	SHA256 string `yaml:"sha256" json:"sha256"`
	// Customer billed for the key's requests; its tier, price book, limits
	// and budgets apply on top of the key's own.
	Customer string `yaml:"customer" json:"customer,omitempty"`
	// ClientRegion of the key's traffic, for region-specific policy shares.
	ClientRegion string `yaml:"client_region" json:"client_region,omitempty"`
	// Tier of the key's customer (e.g. "free", "paid"): the router's
	// Shaping.TierPriority raises its class's priority at the edge, and
	// package gateway prices by it when the customer names no tier.
	// Default none.
	Tier string `yaml:"tier,omitempty" json:"tier,omitempty"`

	// Capabilities the key may call (e.g. "llm"); empty = all.
	Capabilities []string `yaml:"capabilities,omitempty" json:"capabilities,omitempty"`
	// Models the key may ask for; empty = all.
	Models []string `yaml:"models,omitempty" json:"models,omitempty"`
	// MaxPricePerUnit (OpenRouter's max_price): orchestrators charging more
	// per unit are never chosen for this key's requests. 0 = no cap.
	MaxPricePerUnit float64 `yaml:"max_price_per_unit,omitempty" json:"max_price_per_unit,omitempty"`
	// AllowCIDRs, when not empty, are the only client networks the key is
	// accepted from (e.g. "203.0.113.0/24", "2001:db8::/32").
	AllowCIDRs []string `yaml:"allow_cidrs,omitempty" json:"allow_cidrs,omitempty"`
	// Limits of the key alone (its customer's limits apply too).
	Limits Limits `yaml:"limits,omitempty" json:"limits,omitempty"`
	// Budgets of the key alone (its customer's budgets apply too).
	Budgets []Budget `yaml:"budgets,omitempty" json:"budgets,omitempty"`

	// CreatedMs and RevokedMs (Unix ms) are set on keys made through the
	// admin API; a revoked key is refused. 0 = not set.
	CreatedMs int64 `yaml:"-" json:"created_ms,omitempty"`
	RevokedMs int64 `yaml:"-" json:"revoked_ms,omitempty"`
}

// Limits bound the traffic of a key or a customer. Zero fields are no limit.
type Limits struct {
	// RequestsPerSecond is the sustained rate of a token bucket. 0 = none.
	RequestsPerSecond float64 `yaml:"requests_per_second,omitempty" json:"requests_per_second,omitempty"`
	// Burst is the bucket's depth; 0 = max(1, ceil(RequestsPerSecond)).
	Burst int `yaml:"burst,omitempty" json:"burst,omitempty"`
	// Concurrency caps the requests in flight at once. 0 = none.
	Concurrency int `yaml:"concurrency,omitempty" json:"concurrency,omitempty"`
	// UnitsPerMinute caps the units admitted per minute, per unit kind
	// (pixels, tokens, ms, characters), over a sliding minute. Absent = none.
	UnitsPerMinute map[UnitKind]int64 `yaml:"units_per_minute,omitempty" json:"units_per_minute,omitempty"`
}

// IsZero reports whether l sets no limit.
func (l Limits) IsZero() bool {
	return l.RequestsPerSecond == 0 && l.Burst == 0 && l.Concurrency == 0 && len(l.UnitsPerMinute) == 0
}

// BudgetPeriod is the calendar period a budget is counted over, in UTC.
type BudgetPeriod string

// Budget periods.
const (
	PeriodHour  BudgetPeriod = "hour"
	PeriodDay   BudgetPeriod = "day"
	PeriodMonth BudgetPeriod = "month"
)

// Valid reports whether p is a known period.
func (p BudgetPeriod) Valid() bool { return p == PeriodHour || p == PeriodDay || p == PeriodMonth }

// BudgetOf says what a budget counts.
type BudgetOf string

// What a budget counts.
const (
	BudgetCharge BudgetOf = "charge" // what the customer is billed (the default)
	BudgetCost   BudgetOf = "cost"   // what orchestrators are paid
)

// Budget caps the spend of a key or a customer over each period.
type Budget struct {
	// Period: hour, day or month (UTC calendar periods). Required.
	Period BudgetPeriod `yaml:"period" json:"period"`
	// USD the spend may reach. Required, positive.
	USD float64 `yaml:"usd" json:"usd"`
	// Of: charge (default) or cost.
	Of BudgetOf `yaml:"of,omitempty" json:"of,omitempty"`
}

// Spend is what one key of one customer spent in one hour (UTC), as the
// warehouse sums it from outcomes: the routers share budgets through it.
type Spend struct {
	APIKeyID string
	Customer string
	HourMs   int64 // start of the hour, Unix ms
	Cost     float64
	Charge   float64
	// Own marks the requests of the router that asked, since it started:
	// it counts them itself and only learns here that they are visible.
	Own bool
}

// MaxAPIKeySize bounds an encoded key record.
const MaxAPIKeySize = 64 << 10

// EncodeAPIKey returns the JSON record of k, as the key store keeps it
// (the SHA-256 of the secret, never the secret).
func EncodeAPIKey(k APIKey) ([]byte, error) {
	if err := k.validRecord(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(k)
	if err != nil {
		return nil, fmt.Errorf("encode api key %s: %w", k.ID, err)
	}
	return b, nil
}

// DecodeAPIKey parses one key record and checks its identity fields; the
// router and package gateway validate the rest when they take it.
func DecodeAPIKey(b []byte) (APIKey, error) {
	if len(b) > MaxAPIKeySize {
		return APIKey{}, fmt.Errorf("api key record of %d bytes: %w", len(b), ErrTooLarge)
	}
	var k APIKey
	if err := json.Unmarshal(b, &k); err != nil {
		return APIKey{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if err := k.validRecord(); err != nil {
		return APIKey{}, err
	}
	return k, nil
}

func (k APIKey) validRecord() error {
	if k.ID == "" || len(k.ID) > 256 {
		return invalid("id", "%q must be 1..256 bytes", k.ID)
	}
	if len(k.SHA256) != 64 {
		return invalid("sha256", "must be 64 hex digits")
	}
	for _, c := range k.SHA256 {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return invalid("sha256", "must be 64 hex digits")
		}
	}
	if k.CreatedMs < 0 || k.RevokedMs < 0 {
		return invalid("created_ms", "negative time")
	}
	return nil
}
