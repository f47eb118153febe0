package gateway

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/internal/metrictest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	g   *Gateway
	clk *clock
	reg *prometheus.Registry
}

func newFixture(t *testing.T, cfg Config, opts ...Option) *fixture {
	t.Helper()
	clk := &clock{t: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	reg := prometheus.NewRegistry()
	g, err := New(cfg, "gw-1", deps.Deps{Registerer: reg, Clock: clk.now}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{g: g, clk: clk, reg: reg}
}

func request() *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/llm", nil)
	r.RemoteAddr = "192.0.2.10:4000"
	return r
}

func llm(units int64) *event.Outcome {
	return &event.Outcome{Capability: event.CapLLM, Model: "m", Units: units, UnitKind: event.UnitTokens, APIKeyID: "k1", Customer: "acme"}
}

// admit admits one request and reports the refusal, if any.
func (f *fixture) admit(t *testing.T, key *event.APIKey, o *event.Outcome, cost, list float64) (func(*event.Outcome), *Refusal) {
	t.Helper()
	done, err := f.g.Admit(request(), key, o, cost, list)
	if err == nil {
		return done, nil
	}
	var r *Refusal
	if !errors.As(err, &r) {
		t.Fatalf("got error %v, want a *Refusal", err)
	}
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("errors.Is(%v, ErrRefused) is false", err)
	}
	return nil, r
}

// finish ends an admitted request as ok, with the given cost.
func finish(done func(*event.Outcome), o *event.Outcome, cost, listCharge float64) event.Outcome {
	out := *o
	out.Status, out.Cost, out.Charge = event.StatusOK, cost, listCharge
	done(&out)
	return out
}

func TestRateLimit(t *testing.T) {
	f := newFixture(t, DefaultConfig())
	key := &event.APIKey{ID: "k1", Limits: event.Limits{RequestsPerSecond: 2, Burst: 3}}
	for i := range 3 {
		if _, r := f.admit(t, key, llm(1), 0, 0); r != nil {
			t.Fatalf("request %d of the burst refused: %v", i, r)
		}
	}
	_, r := f.admit(t, key, llm(1), 0, 0)
	if r == nil {
		t.Fatal("request over the burst admitted")
	}
	if r.HTTPStatus() != 429 || r.Code != CodeRateLimited || r.Limit != "requests_per_second" || r.Value != 2 || r.Scope != "key" || r.ScopeID != "k1" {
		t.Fatalf("got refusal %+v, want 429 rate_limited requests_per_second 2 of key k1", r)
	}
	if r.RetryAfter != 500*time.Millisecond || r.RetryAfterSeconds() != 1 || !r.ResetAt.Equal(f.clk.now().Add(500*time.Millisecond)) {
		t.Fatalf("got retry after %v (%ds), reset %v, want 500ms (1s) from now", r.RetryAfter, r.RetryAfterSeconds(), r.ResetAt)
	}
	body := r.APIError()
	if body.Error.Reason != CodeRateLimited || body.Error.Limit == nil || body.Error.Limit.Name != "requests_per_second" || body.Error.Limit.ResetMs != r.ResetAt.UnixMilli() || body.Error.Message == "" {
		t.Fatalf("got body %+v, want the limit named with its reset", body)
	}
	f.clk.add(500 * time.Millisecond)
	if _, r := f.admit(t, key, llm(1), 0, 0); r != nil {
		t.Fatalf("refused at the reset time: %v", r)
	}
	if got := metrictest.Value(t, f.reg, "loopgate_gateway_refused_total", "code", CodeRateLimited, "scope", "key"); got != 1 {
		t.Errorf("got %v rate refusals counted, want 1", got)
	}
}

func TestLimitsAreSharedByRouters(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Routers = 3
	f := newFixture(t, cfg)
	key := &event.APIKey{ID: "k1", Limits: event.Limits{RequestsPerSecond: 30, Burst: 30, Concurrency: 7, UnitsPerMinute: map[event.UnitKind]int64{event.UnitTokens: 3000}}}
	var dones []func(*event.Outcome)
	for range 2 { // concurrency 7/3 → 2 here
		done, r := f.admit(t, key, llm(500), 0, 0)
		if r != nil {
			t.Fatalf("refused below this router's share: %v", r)
		}
		dones = append(dones, done)
	}
	_, r := f.admit(t, key, llm(1), 0, 0)
	if r == nil || r.Code != CodeConcurrencyLimited || r.Local != 2 || r.Value != 7 {
		t.Fatalf("got %+v, want concurrency refused at 2 of 7", r)
	}
	for _, d := range dones {
		d(&event.Outcome{Status: event.StatusOK})
	}
	// units: 3000/3 = 1000 a minute here; 1000 are used.
	_, r = f.admit(t, key, llm(1), 0, 0)
	if r == nil || r.Code != CodeUnitsLimited || r.Local != 1000 || r.Limit != "units_per_minute.tokens" {
		t.Fatalf("got %+v, want units refused at 1000 of 3000", r)
	}
}

func TestConcurrencyIsReleasedByDone(t *testing.T) {
	f := newFixture(t, DefaultConfig())
	key := &event.APIKey{ID: "k1", Limits: event.Limits{Concurrency: 1}}
	done, r := f.admit(t, key, llm(1), 0, 0)
	if r != nil {
		t.Fatal(r)
	}
	if _, r := f.admit(t, key, llm(1), 0, 0); r == nil || r.Code != CodeConcurrencyLimited {
		t.Fatalf("got %v, want concurrency_limited", r)
	}
	done(&event.Outcome{Status: event.StatusError})
	done(&event.Outcome{Status: event.StatusError}) // a second call changes nothing
	if _, r := f.admit(t, key, llm(1), 0, 0); r != nil {
		t.Fatalf("refused after the request in flight ended: %v", r)
	}
	if _, r := f.admit(t, key, llm(1), 0, 0); r == nil {
		t.Fatal("a double done released two slots")
	}
}

// TestUnitsAtTheLimit: the window admits up to its limit exactly and
// refuses one unit over; a single request larger than the limit is
// refused with no reset (it can never pass).
func TestUnitsAtTheLimit(t *testing.T) {
	f := newFixture(t, DefaultConfig())
	key := &event.APIKey{ID: "k1", Limits: event.Limits{UnitsPerMinute: map[event.UnitKind]int64{event.UnitTokens: 1000}}}
	for _, u := range []int64{600, 400} {
		done, r := f.admit(t, key, llm(u), 0, 0)
		if r != nil {
			t.Fatalf("%d tokens refused with %v used of 1000", u, r)
		}
		done(&event.Outcome{Status: event.StatusOK})
		f.clk.add(10 * time.Second)
	}
	_, r := f.admit(t, key, llm(1), 0, 0)
	if r == nil || r.Code != CodeUnitsLimited {
		t.Fatalf("one token over the limit: got %v, want units_limited", r)
	}
	// The first 600 leave the window 60 s after they came.
	if want := time.Date(2026, 12, 1, 10, 1, 0, 0, time.UTC); !r.ResetAt.Equal(want) {
		t.Errorf("got reset %v, want %v", r.ResetAt, want)
	}
	f.clk.add(40 * time.Second)
	if _, r := f.admit(t, key, llm(600), 0, 0); r != nil {
		t.Fatalf("refused after the window moved: %v", r)
	}
	_, r = f.admit(t, key, llm(1001), 0, 0)
	if r == nil || !r.ResetAt.IsZero() || r.RetryAfter != 0 {
		t.Fatalf("got %+v, want a refusal without reset for a request over the whole limit", r)
	}
}

// TestBudgetAtTheLimit defines "at the limit": spend may reach the budget
// exactly; a request whose estimate takes it over by any amount is refused
// with 402, and nothing is refused twice for the same spend.
func TestBudgetAtTheLimit(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Tiers = map[string]Tier{"std": {Prices: map[string]float64{"llm": 0.001}}}
	cfg.Customers = []Customer{{ID: "acme", Tier: "std"}}
	f := newFixture(t, cfg)
	key := &event.APIKey{ID: "k1", Customer: "acme", Budgets: []event.Budget{{Period: event.PeriodDay, USD: 1}}}
	var dones []func(*event.Outcome)
	for i := range 2 { // 2 × 500 tokens × 0.001 = 1.0 USD, exactly the budget
		done, r := f.admit(t, key, llm(500), 0, 0)
		if r != nil {
			t.Fatalf("request %d refused at or below the budget: %v", i, r)
		}
		dones = append(dones, done)
	}
	_, r := f.admit(t, key, llm(1), 0, 0)
	if r == nil {
		t.Fatal("one token over the budget admitted")
	}
	end := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	if r.HTTPStatus() != 402 || r.Code != CodeBudgetExceeded || r.Limit != "budget.day.charge" || r.Value != 1 || !r.ResetAt.Equal(end) {
		t.Fatalf("got %+v, want 402 budget.day.charge 1 USD resetting at %v", r, end)
	}
	// One request fails: no charge, its reservation is given back.
	out := *llm(500)
	out.Status = event.StatusError
	dones[0](&out)
	if out.Charge != 0 || out.Margin != 0 {
		t.Fatalf("failed request charged %v margin %v", out.Charge, out.Margin)
	}
	done, r := f.admit(t, key, llm(500), 0, 0)
	if r != nil {
		t.Fatalf("refused after a reservation was returned: %v", r)
	}
	got := finish(dones[1], llm(500), 0.1, 0)
	if got.Charge != 0.5 || got.Margin != 0.4 {
		t.Fatalf("got charge %v margin %v, want 0.5 and 0.4 by the tier's price", got.Charge, got.Margin)
	}
	finish(done, llm(500), 0.1, 0)
	if _, r := f.admit(t, key, llm(1), 0, 0); r == nil || r.Code != CodeBudgetExceeded {
		t.Fatalf("got %v, want the budget still spent", r)
	}
	f.clk.add(14 * time.Hour) // the next day
	if _, r := f.admit(t, key, llm(500), 0, 0); r != nil {
		t.Fatalf("refused in a new period: %v", r)
	}
}

// TestRefusedConsumesNothing: a request the customer's limit refuses
// takes no token of the key's bucket and reserves none of its budget.
func TestRefusedConsumesNothing(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Customers = []Customer{{ID: "acme", Limits: event.Limits{Concurrency: 1}}}
	f := newFixture(t, cfg)
	key := &event.APIKey{ID: "k1", Customer: "acme", Limits: event.Limits{RequestsPerSecond: 1, Burst: 2}, Budgets: []event.Budget{{Period: event.PeriodHour, USD: 1}}}
	done, r := f.admit(t, key, llm(1), 0, 0.5)
	if r != nil {
		t.Fatal(r)
	}
	_, r = f.admit(t, key, llm(1), 0, 0.5)
	if r == nil || r.Scope != "customer" || r.Code != CodeConcurrencyLimited {
		t.Fatalf("got %v, want the customer's concurrency", r)
	}
	finish(done, llm(1), 0, 0.5)
	// The key's bucket still has its second token and the budget 0.5 USD.
	if _, r := f.admit(t, key, llm(1), 0, 0.5); r != nil {
		t.Fatalf("the refused request consumed a limit: %v", r)
	}
}

func TestPriceBook(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Tiers = map[string]Tier{
		"fixed":  {Prices: map[string]float64{"llm": 1e-5, "llm/big": 3e-5}},
		"markup": {Markup: 0.5},
	}
	cfg.DefaultTier = "markup"
	cfg.Customers = []Customer{{ID: "fixed-co", Tier: "fixed"}, {ID: "plain"}}
	f := newFixture(t, cfg)
	for _, tc := range []struct {
		name, customer, model string
		status                event.Status
		cost, list            float64
		wantCharge            float64
	}{
		{"fixed by capability", "fixed-co", "m", event.StatusOK, 0.002, 0.004, 1000 * 1e-5},
		{"fixed by class wins", "fixed-co", "big", event.StatusOK, 0.002, 0.004, 1000 * 3e-5},
		{"default tier's markup on cost", "plain", "m", event.StatusOK, 0.002, 0.004, 0.003},
		{"unknown customer: default tier", "nobody", "m", event.StatusOK, 0.002, 0.004, 0.003},
		{"failure is not charged", "fixed-co", "m", event.StatusError, 0.002, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := &event.Outcome{Capability: event.CapLLM, Model: tc.model, Units: 1000, UnitKind: event.UnitTokens, Customer: tc.customer, Status: tc.status, Cost: tc.cost, Charge: tc.list}
			f.g.Price(o)
			if !near(o.Charge, tc.wantCharge) || !near(o.Margin, tc.wantCharge-tc.cost) {
				t.Fatalf("got charge %v margin %v, want %v %v", o.Charge, o.Margin, tc.wantCharge, tc.wantCharge-tc.cost)
			}
		})
	}
	// Without any tier the router's own price stands.
	g := newFixture(t, DefaultConfig()).g
	o := &event.Outcome{Capability: event.CapLLM, Units: 10, Status: event.StatusOK, Cost: 1, Charge: 3}
	g.Price(o)
	if o.Charge != 3 || o.Margin != 2 {
		t.Fatalf("got charge %v margin %v, want the list 3 and margin 2", o.Charge, o.Margin)
	}
}

func near(a, b float64) bool { d := a - b; return d < 1e-12 && d > -1e-12 }

type fakeAuditor struct {
	mu      sync.Mutex
	actions []string
}

func (a *fakeAuditor) Audit(_ context.Context, action, detail string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.actions = append(a.actions, action+" "+detail)
	return nil
}

type fakeSpend struct {
	rows       []event.Spend
	gotGateway string
	gotOwnMs   int64
}

func (s *fakeSpend) Spend(_ context.Context, since time.Time, gw string, ownMs int64) ([]event.Spend, error) {
	s.gotGateway, s.gotOwnMs = gw, ownMs
	return s.rows, nil
}

// TestBudgetWarningsAndSharedSpend: the other routers' spend (read from
// the warehouse) counts against a budget, and crossing 80 % and 100 % is
// counted and audited once each.
func TestBudgetWarningsAndSharedSpend(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Customers = []Customer{{ID: "acme", Budgets: []event.Budget{{Period: event.PeriodMonth, USD: 10, Of: event.BudgetCost}}}}
	src := &fakeSpend{}
	aud := &fakeAuditor{}
	f := newFixture(t, cfg, WithSpendSource(src), WithAuditor(aud))
	key := &event.APIKey{ID: "k1", Customer: "acme"}
	done, r := f.admit(t, key, llm(1000), 0.001, 0) // cost estimate 1 USD
	if r != nil {
		t.Fatal(r)
	}
	finish(done, llm(1000), 1, 0)
	// Another router spent 7 USD this month, 5 last month (not counted).
	month := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	src.rows = []event.Spend{
		{APIKeyID: "k9", Customer: "acme", HourMs: month.Add(3 * time.Hour).UnixMilli(), Cost: 7},
		{APIKeyID: "k9", Customer: "acme", HourMs: month.Add(-time.Hour).UnixMilli(), Cost: 5},
		{APIKeyID: "k9", Customer: "other", HourMs: month.UnixMilli(), Cost: 50},
	}
	if err := f.g.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if src.gotGateway != "gw-1" || src.gotOwnMs != f.clk.t.UnixMilli() {
		t.Errorf("got spend read for %q own since %d", src.gotGateway, src.gotOwnMs)
	}
	if got := metrictest.Value(t, f.reg, "loopgate_gateway_budget_warnings_total", "scope", "customer", "level", "0.8"); got != 1 {
		t.Fatalf("got %v warnings at 80 %% after 8 of 10 USD, want 1", got)
	}
	// 8 spent: a 2 USD estimate reaches 10 exactly, one more cent does not fit.
	done, r = f.admit(t, key, llm(2000), 0.001, 0)
	if r != nil {
		t.Fatalf("refused at exactly the budget: %v", r)
	}
	if _, r := f.admit(t, key, llm(10), 0.001, 0); r == nil || r.Limit != "budget.month.cost" || r.Scope != "customer" {
		t.Fatalf("got %v, want budget.month.cost of customer acme", r)
	}
	finish(done, llm(2000), 2, 0)
	if got := metrictest.Value(t, f.reg, "loopgate_gateway_budget_warnings_total", "scope", "customer", "level", "1"); got != 1 {
		t.Fatalf("got %v warnings at 100 %%, want 1", got)
	}
	if err := f.g.Sync(context.Background()); err != nil { // a sync does not warn again
		t.Fatal(err)
	}
	f.g.flushWarnings(context.Background())
	if len(aud.actions) != 2 {
		t.Fatalf("got audit records %q, want the 80 %% and 100 %% warnings", aud.actions)
	}
	if got := metrictest.Value(t, f.reg, "loopgate_gateway_budget_used_ratio", "scope", "customer", "id", "acme", "budget", "month.cost"); !near(got, 1) {
		t.Errorf("got budget used %v, want 1", got)
	}
}

func TestClientAddr(t *testing.T) {
	trusted, _ := parsePrefixes([]string{"10.0.0.0/8", "192.168.1.1"})
	for _, tc := range []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"untrusted peer: header ignored", "203.0.113.5:1", []string{"198.51.100.1"}, "203.0.113.5"},
		{"trusted peer: rightmost untrusted", "10.1.1.1:1", []string{"198.51.100.1, 203.0.113.9"}, "203.0.113.9"},
		{"chain of proxies", "10.1.1.1:1", []string{"6.6.6.6, 203.0.113.9", "192.168.1.1"}, "203.0.113.9"},
		{"trusted peer without header", "10.1.1.1:1", nil, "10.1.1.1"},
		{"garbage ends the walk at the last trusted hop", "10.1.1.1:1", []string{"1.2.3.4, junk"}, "10.1.1.1"},
		{"ipv6", "[2001:db8::1]:443", nil, "2001:db8::1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := request()
			r.RemoteAddr = tc.peer
			for _, h := range tc.xff {
				r.Header.Add("X-Forwarded-For", h)
			}
			got, ok := clientAddr(r, trusted)
			if !ok || got != netip.MustParseAddr(tc.want) {
				t.Fatalf("got %v %v, want %s", got, ok, tc.want)
			}
		})
	}
}

func TestAllowlists(t *testing.T) {
	cfg := DefaultConfig()
	cfg.AllowCIDRs = []string{"192.0.2.0/24", "10.0.0.0/8"}
	cfg.TrustedProxies = []string{"10.0.0.1"}
	f := newFixture(t, cfg)
	key := &event.APIKey{ID: "k1", AllowCIDRs: []string{"192.0.2.0/28"}}
	for _, tc := range []struct {
		name, peer, xff string
		wantScope       string // "" = admitted
	}{
		{"in both", "192.0.2.10:1", "", ""},
		{"global only", "192.0.2.100:1", "", "key"},
		{"neither", "198.51.100.1:1", "", "global"},
		{"through the proxy", "10.0.0.1:1", "192.0.2.3", ""},
		{"forged header from an untrusted peer", "198.51.100.1:1", "192.0.2.3", "global"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := request()
			r.RemoteAddr = tc.peer
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			_, err := f.g.Admit(r, key, llm(1), 0, 0)
			var ref *Refusal
			switch {
			case tc.wantScope == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.wantScope != "" && (!errors.As(err, &ref) || ref.Status != 403 || ref.Code != CodeIPNotAllowed || ref.Scope != tc.wantScope):
				t.Fatalf("got %v, want 403 ip_not_allowed by the %s list", err, tc.wantScope)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
	}{
		{"routers", func(c *Config) { c.Routers = 0 }},
		{"unknown tier", func(c *Config) { c.Customers = []Customer{{ID: "a", Tier: "gold"}} }},
		{"duplicate customer", func(c *Config) { c.Customers = []Customer{{ID: "a"}, {ID: "a"}} }},
		{"bad price class", func(c *Config) { c.Tiers = map[string]Tier{"t": {Prices: map[string]float64{"nope/m": 1}}} }},
		{"negative markup", func(c *Config) { c.Tiers = map[string]Tier{"t": {Markup: -1}} }},
		{"budget period", func(c *Config) {
			c.Customers = []Customer{{ID: "a", Budgets: []event.Budget{{Period: "week", USD: 1}}}}
		}},
		{"budget amount", func(c *Config) { c.Customers = []Customer{{ID: "a", Budgets: []event.Budget{{Period: "day"}}}} }},
		{"two day budgets", func(c *Config) {
			c.Customers = []Customer{{ID: "a", Budgets: []event.Budget{{Period: "day", USD: 1}, {Period: "day", USD: 2, Of: "charge"}}}}
		}},
		{"units kind", func(c *Config) {
			c.Customers = []Customer{{ID: "a", Limits: event.Limits{UnitsPerMinute: map[event.UnitKind]int64{"bytes": 1}}}}
		}},
		{"burst without rate", func(c *Config) { c.Customers = []Customer{{ID: "a", Limits: event.Limits{Burst: 3}}} }},
		{"cidr", func(c *Config) { c.AllowCIDRs = []string{"10.0.0.0/33"} }},
		{"warn level", func(c *Config) { c.WarnAt = []float64{1.5} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			if err := c.Validate(); err == nil {
				t.Fatal("invalid config accepted")
			}
		})
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config refused: %v", err)
	}
}

// TestBudgetShareWhileUnseen: with 3 routers, what this router has spent
// but the warehouse does not show yet may not exceed a third of what the
// warehouse shows as remaining (429 budget_pending); once its spend is
// visible it may go on, and the last request that fits is admitted.
func TestBudgetShareWhileUnseen(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Routers = 3
	src := &fakeSpend{}
	f := newFixture(t, cfg, WithSpendSource(src))
	key := &event.APIKey{ID: "k1", Budgets: []event.Budget{{Period: event.PeriodDay, USD: 1}}}
	list := 0.1 / 1000 // 0.1 USD per request of 1000 tokens
	var dones []func(*event.Outcome)
	for i := range 3 { // 0.3 unseen ≤ 1/3
		done, r := f.admit(t, key, llm(1000), 0, list)
		if r != nil {
			t.Fatalf("request %d refused within this router's share: %v", i, r)
		}
		dones = append(dones, done)
	}
	_, r := f.admit(t, key, llm(1000), 0, list)
	if r == nil || r.Code != CodeBudgetPending || r.HTTPStatus() != 429 || r.Limit != "budget.day.charge" || r.RetryAfter != cfg.SyncInterval {
		t.Fatalf("got %+v, want 429 budget_pending on budget.day.charge retrying after one sync", r)
	}
	for _, d := range dones {
		finish(d, llm(1000), 0, 0.1)
	}
	// The warehouse now shows this router's 0.3 and 0.4 from another router.
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	src.rows = []event.Spend{{APIKeyID: "k1", HourMs: day, Charge: 0.3, Own: true}, {APIKeyID: "k1", HourMs: day, Charge: 0.4}}
	if err := f.g.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Remaining 0.3: a third is 0.1, one request; the next waits.
	done, r := f.admit(t, key, llm(1000), 0, list)
	if r != nil {
		t.Fatalf("refused with its spend visible: %v", r)
	}
	if _, r := f.admit(t, key, llm(1000), 0, list); r == nil || r.Code != CodeBudgetPending {
		t.Fatalf("got %v, want budget_pending", r)
	}
	finish(done, llm(1000), 0, 0.1)
	src.rows[0].Charge, src.rows[1].Charge = 0.4, 0.55
	if err := f.g.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	// 0.95 spent: 0.05 left; a 0.1 request is over the budget, a 0.05 one fits exactly.
	if _, r := f.admit(t, key, llm(1000), 0, list); r == nil || r.Code != CodeBudgetExceeded || r.HTTPStatus() != 402 {
		t.Fatalf("got %v, want 402 budget_exceeded", r)
	}
	if _, r := f.admit(t, key, llm(500), 0, list); r != nil {
		t.Fatalf("the last request that fits was refused: %v", r)
	}
}
