package router

import (
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
)

// fakeGate refuses when told to and records what it was asked.
type fakeGate struct {
	mu      sync.Mutex
	refuse  error
	asked   []event.Outcome
	cost    []float64
	list    []float64
	settled []event.Outcome
}

func (g *fakeGate) Admit(_ *http.Request, key *event.APIKey, o *event.Outcome, costPerUnit, listPrice float64) (func(*event.Outcome), error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.asked, g.cost, g.list = append(g.asked, *o), append(g.cost, costPerUnit), append(g.list, listPrice)
	if g.refuse != nil {
		return nil, g.refuse
	}
	return func(out *event.Outcome) {
		g.mu.Lock()
		defer g.mu.Unlock()
		out.Charge = 42
		g.settled = append(g.settled, *out)
	}, nil
}

// fakeRefusal is an error with what the router needs to answer it.
type fakeRefusal struct{}

func (fakeRefusal) Error() string          { return "over the limit" }
func (fakeRefusal) HTTPStatus() int        { return http.StatusTooManyRequests }
func (fakeRefusal) RetryAfterSeconds() int { return 3 }
func (fakeRefusal) APIError() event.APIError {
	e := event.NewAPIError("rate limit of key \"key-1\": requests_per_second 1")
	e.Error.Reason = "rate_limited"
	e.Error.Limit = &event.APILimit{Scope: "key", ID: "key-1", Name: "requests_per_second", Value: 1, ResetMs: 7}
	return e
}

func newGatedRouter(t *testing.T, cfg Config, g Gate) *testRouter {
	t.Helper()
	tr := &testRouter{pub: &fakePublisher{}, clock: newFakeClock(), reg: prometheus.NewRegistry()}
	r, err := New(cfg, tr.pub, deps.Deps{Registerer: tr.reg, Rand: rand.New(rand.NewPCG(1, 2)), Clock: tr.clock.Now}, WithGate(g))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	tr.Router = r
	tr.srv = httptest.NewServer(r.Handler())
	t.Cleanup(func() { tr.srv.Close(); _ = r.Close() })
	return tr
}

func TestGateAdmitsAndSettles(t *testing.T) {
	up := newUpstream(t, okJSON(`{"images":[]}`))
	cheap := newUpstream(t, okJSON(`{"images":[]}`))
	cfg := testConfig(orch("a", up.srv.URL, t2i(3e-9)), orch("b", cheap.srv.URL, t2i(1e-9)))
	cfg.APIKeys[0].MaxPricePerUnit = 2e-9
	g := &fakeGate{}
	tr := newGatedRouter(t, cfg, g)
	for range 5 {
		if code, b := tr.postT2I(t); code != 200 {
			t.Fatalf("got %d %s", code, b)
		}
	}
	outs := tr.pub.wait(t, 5)
	for _, o := range outs {
		if o.Charge != 42 || o.Attempts[0].Orchestrator != "b" {
			t.Fatalf("got charge %v via %s, want the gate's 42 via b (a is over the key's max price)", o.Charge, o.Attempts[0].Orchestrator)
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.asked) != 5 || len(g.settled) != 5 {
		t.Fatalf("got %d admissions %d settled, want 5 and 5", len(g.asked), len(g.settled))
	}
	a := g.asked[0]
	if a.APIKeyID != "key-1" || a.Customer != "acme" || a.Units != 512*512 || a.Capability != event.CapTextToImage || g.cost[0] != 1e-9 || g.list[0] != 2e-9 {
		t.Fatalf("gate asked with %+v cost %v list %v, want key-1/acme 512×512 px at cost 1e-9 (b only) list 2e-9", a, g.cost[0], g.list[0])
	}
}

func TestGateRefusal(t *testing.T) {
	up := newUpstream(t, okJSON(`{}`))
	g := &fakeGate{refuse: fakeRefusal{}}
	tr := newGatedRouter(t, testConfig(orch("a", up.srv.URL, t2i(1e-9))), g)
	code, h, b := tr.post(t, "/text-to-image", "application/json", []byte(`{"prompt":"x","model_id":"m1"}`), nil)
	if code != 429 || h.Get("Retry-After") != "3" || h.Get("Content-Type") != "application/json" {
		t.Fatalf("got %d Retry-After %q %s, want 429 with Retry-After 3", code, h.Get("Retry-After"), b)
	}
	var body event.APIError
	if err := json.Unmarshal(b, &body); err != nil || body.Error.Reason != "rate_limited" || body.Error.Limit == nil || body.Error.Limit.Name != "requests_per_second" {
		t.Fatalf("got body %s (%v), want the limit named", b, err)
	}
	if r, _ := up.lastRequest(); r != nil {
		t.Fatal("a refused request reached an orchestrator")
	}
	o := tr.pub.wait(t, 1)[0]
	if o.Status != event.StatusRejected || o.ErrorClass != "rate_limited" || o.HTTPStatus != 429 || len(o.Attempts) != 0 || o.Charge != 0 {
		t.Fatalf("got outcome %+v, want rejected rate_limited 429 without attempts or charge", o)
	}
	// Any other gate error is a 500, not a refusal.
	g.mu.Lock()
	g.refuse = errors.New("broken")
	g.mu.Unlock()
	if code, _ := tr.postT2I(t); code != 500 {
		t.Fatalf("got %d for a failing gate, want 500", code)
	}
}

func TestKeyScope(t *testing.T) {
	up := newUpstream(t, okJSON(`{}`))
	for _, tc := range []struct {
		name string
		edit func(*APIKeyConfig)
		want int
	}{
		{"unscoped", func(*APIKeyConfig) {}, 200},
		{"capability allowed", func(k *APIKeyConfig) { k.Capabilities = []string{event.CapTextToImage} }, 200},
		{"capability not allowed", func(k *APIKeyConfig) { k.Capabilities = []string{event.CapLLM} }, 403},
		{"model allowed", func(k *APIKeyConfig) { k.Models = []string{"m1"} }, 200},
		{"model not allowed", func(k *APIKeyConfig) { k.Models = []string{"m2"} }, 403},
		{"revoked", func(k *APIKeyConfig) { k.RevokedMs = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli() }, 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(orch("a", up.srv.URL, t2i(1e-9)))
			tc.edit(&cfg.APIKeys[0])
			tr := newTestRouter(t, cfg)
			if code, b := tr.postT2I(t); code != tc.want {
				t.Fatalf("got %d %s, want %d", code, b, tc.want)
			}
		})
	}
}

// TestSetAPIKeys: keys made through the admin API authenticate beside the
// configured ones, survive a Reload, are refused once revoked, and may not
// take a configured key's id or hash.
func TestSetAPIKeys(t *testing.T) {
	up := newUpstream(t, okJSON(`{}`))
	cfg := testConfig(orch("a", up.srv.URL, t2i(1e-9)))
	tr := newTestRouter(t, cfg)
	const secret = "lg-api-made-key"
	post := func() int {
		code, _, _ := tr.post(t, "/text-to-image", "application/json", []byte(`{"prompt":"x","model_id":"m1"}`), map[string]string{"Authorization": "Bearer " + secret})
		return code
	}
	if got := post(); got != 403 {
		t.Fatalf("got %d before the key exists, want 403", got)
	}
	made := APIKeyConfig{ID: "api-1", SHA256: keyHash(secret), Customer: "acme"}
	if err := tr.ValidateAPIKeys([]APIKeyConfig{made}); err != nil {
		t.Fatal(err)
	}
	if err := tr.SetAPIKeys([]APIKeyConfig{made}); err != nil {
		t.Fatal(err)
	}
	if got := post(); got != 200 {
		t.Fatalf("got %d with the API-made key, want 200", got)
	}
	if err := tr.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if got := post(); got != 200 {
		t.Fatalf("got %d after a reload, want the API-made key kept", got)
	}
	made.RevokedMs = 1
	if err := tr.SetAPIKeys([]APIKeyConfig{made}); err != nil {
		t.Fatal(err)
	}
	if got := post(); got != 403 {
		t.Fatalf("got %d with a revoked key, want 403", got)
	}
	for name, k := range map[string]APIKeyConfig{
		"configured id":   {ID: "key-1", SHA256: keyHash("other")},
		"configured hash": {ID: "api-2", SHA256: keyHash(testKey)},
		"bad hash":        {ID: "api-3", SHA256: "nope"},
	} {
		if err := tr.SetAPIKeys([]APIKeyConfig{k}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if code, _ := tr.postT2I(t); code != 200 {
		t.Fatalf("the configured key stopped working: %d", code)
	}
}
