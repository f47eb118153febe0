package router

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
)

func adminGet(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

func TestAdminHandler(t *testing.T) {
	up := newUpstream(t, okJSON(`{}`))
	cfg := testConfig(orch("a", "http://user:secret@a.invalid:8935/", t2i(1.5)), orch("b", up.srv.URL, t2i(1)))
	cfg.Orchestrators[0].MaxInFlight = 4
	tr := newTestRouter(t, cfg)
	h := tr.AdminHandler()
	if err := tr.Ready(context.Background()); err != nil {
		t.Fatalf("ready with orchestrators: got %v", err)
	}
	if code, _ := adminGet(t, h, "/policy"); code != 404 {
		t.Fatalf("policy before any: got %d, want 404", code)
	}
	nowMs := tr.clock.Now().UnixMilli()
	p := sharesPolicy(4, event.ClassPolicy{Capability: event.CapTextToImage, Model: "m1", Shares: []event.Share{{Orchestrator: "a", Share: 0.4}, {Orchestrator: "b", Share: 0.6}}},
		event.ClassPolicy{Capability: event.CapTextToImage, Model: "m1", ClientRegion: "SIN", Shares: []event.Share{{Orchestrator: "a", Share: 1}}})
	p.Ejections = []event.Ejection{{Orchestrator: "a", Reason: "slow", UntilMs: nowMs + 1000}}
	if err := tr.SetPolicy(p); err != nil {
		t.Fatal(err)
	}
	code, body := adminGet(t, h, "/policy")
	var got event.Policy
	if code != 200 || json.Unmarshal([]byte(body), &got) != nil || got.Version != 4 {
		t.Fatalf("policy: got %d %q, want version 4", code, body)
	}
	tr.postT2I(t) // b serves it: a is ejected by the policy
	eventually(t, "the outcome to be counted", func() bool { return value(t, tr.m.published) == 1 })
	code, body = adminGet(t, h, "/orchestrators")
	var st []OrchestratorStatus
	if code != 200 || json.Unmarshal([]byte(body), &st) != nil || len(st) != 2 {
		t.Fatalf("orchestrators: got %d %q", code, body)
	}
	a, b := st[0], st[1]
	if a.ID != "a" || strings.Contains(a.URL, "secret") || a.MaxInFlight != 4 || !a.PolicyEjected || a.PolicyEjectReason != "slow" || a.PolicyEjectedUntil == "" {
		t.Fatalf("a: got %+v, want redacted URL, limit 4, ejected by policy", a)
	}
	if len(a.Classes) != 1 || a.Classes[0].PricePerUnit != 1.5 || a.Classes[0].Share == nil || *a.Classes[0].Share != 0.4 || a.Classes[0].RegionShares["SIN"] != 1 {
		t.Fatalf("a's classes: got %+v", a.Classes)
	}
	if b.ID != "b" || b.InFlight != 0 || b.Ejected || b.Classes[0].RegionShares["SIN"] != 0 {
		t.Fatalf("b: got %+v", b)
	}
	// The metrics the process's admin server serves from the router's registry.
	code, body = adminGet(t, promhttp.HandlerFor(tr.reg, promhttp.HandlerOpts{}), "/metrics")
	for _, name := range []string{"loopgate_router_requests_total", "loopgate_router_policy_version 4", "loopgate_router_outcomes_published_total 1", "loopgate_router_decision_duration_seconds"} {
		if code != 200 || !strings.Contains(body, name) {
			t.Fatalf("metrics: got %d, want %q in it", code, name)
		}
	}
}

func TestReadyNeedsOrchestrators(t *testing.T) {
	r, err := New(testConfig(), &fakePublisher{}, deps.Deps{Rand: rand.New(rand.NewPCG(1, 1))})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Ready(context.Background()); !errors.Is(err, ErrNoOrchestrators) {
		t.Fatalf("got %v, want ErrNoOrchestrators with no orchestrators", err)
	}
	if code, _ := adminGet(t, r.AdminHandler(), "/metrics"); code != 404 {
		t.Fatalf("got %d for /metrics, want 404: the admin server serves metrics", code)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	tests := []struct {
		name string
		mut  func(*Config)
		want string
	}{
		{"no gateway id", func(c *Config) { c.GatewayID = "" }, "gateway_id"},
		{"zero body limit", func(c *Config) { c.MaxBodyBytes = 0 }, "max_body_bytes"},
		{"key body memory under one body", func(c *Config) { c.BodyMemoryPerKey = c.MaxBodyBytes - 1 }, "body_memory_per_key"},
		{"body memory under one key's", func(c *Config) { c.BodyMemory = c.BodyMemoryPerKey - 1 }, "body_memory"},
		{"negative server timeout", func(c *Config) { c.Server.IdleTimeout = -time.Second }, "server"},
		{"zero attempts", func(c *Config) { c.MaxAttempts = 0 }, "max_attempts"},
		{"negative ratio", func(c *Config) { c.RetryBudget.Ratio = -1 }, "retry_budget"},
		{"exploration over 1", func(c *Config) { c.Selection.Exploration = 2 }, "exploration"},
		{"penalty 0", func(c *Config) { c.Selection.FailurePenalty = 0 }, "failure_penalty"},
		{"eject range", func(c *Config) { c.Selection.EjectMax = time.Second }, "eject_base"},
		{"unknown capability", func(c *Config) { c.Capabilities["text-to-music"] = CapabilityConfig{} }, "unknown capability"},
		{"bad url", func(c *Config) { c.Orchestrators = []OrchestratorConfig{{ID: "a", URL: "ftp://x"}} }, "url"},
		{"duplicate orchestrator", func(c *Config) {
			c.Orchestrators = []OrchestratorConfig{{ID: "a", URL: "http://x"}, {ID: "a", URL: "http://y"}}
		}, "not unique"},
		{"class without model", func(c *Config) {
			c.Orchestrators = []OrchestratorConfig{{ID: "a", URL: "http://x", Classes: []ClassPrice{{Capability: event.CapLLM}}}}
		}, "model"},
		{"negative price", func(c *Config) {
			c.Orchestrators = []OrchestratorConfig{{ID: "a", URL: "http://x", Classes: []ClassPrice{{Capability: event.CapLLM, Model: "m", PricePerUnit: -1}}}}
		}, "price_per_unit"},
		{"key hash not hex", func(c *Config) { c.APIKeys = []APIKeyConfig{{ID: "k", SHA256: "secret"}} }, "sha256"},
		{"duplicate key hash", func(c *Config) {
			c.APIKeys = []APIKeyConfig{{ID: "k1", SHA256: keyHash("x")}, {ID: "k2", SHA256: keyHash("x")}}
		}, "duplicates"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mut(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error about %q", err, tt.want)
			}
		})
	}
	// A partial capability entry keeps the defaults of the fields it leaves zero.
	c := DefaultConfig()
	c.Capabilities = map[string]CapabilityConfig{event.CapLLM: {CustomerPricePerUnit: 1e-6}}
	n := c.normalized()
	if got := n.Capabilities[event.CapLLM]; got.DefaultMaxTokens != 256 || got.DefaultModel == "" || got.CustomerPricePerUnit != 1e-6 || got.AttemptTimeout != c.AttemptTimeout {
		t.Fatalf("got %+v, want defaults filled around the price", got)
	}
	if n.Capabilities[event.CapImageToVideo].RequestTimeout != 5*time.Minute {
		t.Fatal("image-to-video lost its longer default timeout")
	}
}
