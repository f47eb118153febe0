package optimizer

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"
)

func get(t *testing.T, h http.Handler, path string, into any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: got status %d, want 200", path, rec.Code)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("GET %s: got Content-Type %q, want application/json", path, ct)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), into); err != nil {
		t.Fatalf("GET %s: %v in %s", path, err, rec.Body.String())
	}
}

func TestAdvisorEndpoints(t *testing.T) {
	cfg, stats := failingFleet()
	cfg.AdvisorRegions = []string{"LAX"}
	cfg.Catalog.Orchestrators[1].Address = "" // b has no on-chain address
	h := newHarness(t, cfg)
	handler := h.opt.AdvisorHandler()

	// Before the first round: every orchestrator, no scores.
	var hook []map[string]any
	get(t, handler, WebhookPath, &hook)
	if len(hook) != 3 {
		t.Fatalf("before the first round: got %v, want all 3 orchestrators", hook)
	}

	h.stats.set(stats...)
	h.step(t)

	// The webhook: go-livepeer's [{"address": ..., "score": ...}], without
	// the ejected c.
	hook = nil
	get(t, handler, WebhookPath, &hook)
	want := []map[string]any{
		{"address": "https://a.example:8935", "score": 1.0},
		{"address": "https://b.example:8935", "score": 1.0},
	}
	if !reflect.DeepEqual(hook, want) {
		t.Errorf("webhook: got %v, want %v", hook, want)
	}

	// perf-stats: decodes into go-livepeer's map[address]map[region]map[string]float64.
	var perf map[string]map[string]map[string]float64
	get(t, handler, PerfStatsPath, &perf)
	addrA, addrC := cfg.Catalog.Orchestrators[0].Address, cfg.Catalog.Orchestrators[2].Address
	if len(perf) != 2 || perf[addrA] == nil || perf[addrC] == nil {
		t.Fatalf("perf-stats: got keys %v, want a's and c's addresses only (b has none)", perf)
	}
	for _, region := range []string{"FRA", "LAX"} {
		score, ok := perf[addrA][region]["score"]
		if !ok || score < 0.8 || score > 1 {
			t.Errorf("perf-stats a/%s: got %v, want a score in [0.8, 1]", region, perf[addrA][region])
		}
		if got := perf[addrC][region]["score"]; got != 0 {
			t.Errorf("perf-stats c/%s: got %v, want 0 while ejected", region, got)
		}
	}

	// Wrong method.
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, WebhookPath, nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: got %d, want 405", rec.Code)
	}
}

func TestAdvisorWebhookKeepsOnlySignificantShares(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Lambda = 0
	cfg.Catalog = catalogOf(3*time.Second, 0.02, orchSpec{"cheap", 1e-9, 200}, orchSpec{"dear", 9e-9, 200})
	h := newHarness(t, cfg)
	h.stats.set(stat("cheap", 300, 300, 900, 2000), stat("dear", 300, 300, 900, 2000))
	h.step(t)
	var hook []webhookEntry
	get(t, h.opt.AdvisorHandler(), WebhookPath, &hook)
	if len(hook) != 1 || hook[0].Address != "https://cheap.example:8935" || hook[0].Score != 1 {
		t.Errorf("got %+v, want cheap alone (dear has only the exploration share)", hook)
	}
}

func TestAdvisorPerfStatsBuiltWhenAsked(t *testing.T) {
	cfg, stats := failingFleet()
	h := newHarness(t, cfg)
	h.stats.set(stats...)
	h.step(t)
	v := h.opt.advisor.Load()
	if v.perf != nil || v.buildPerf == nil {
		t.Fatalf("after a round: got perf %v, builder set %v; want perf-stats not built until asked for", v.perf, v.buildPerf != nil)
	}
	var first, second map[string]map[string]map[string]float64
	get(t, h.opt.AdvisorHandler(), PerfStatsPath, &first)
	if v.buildPerf != nil || len(v.perf) == 0 {
		t.Fatalf("after a GET: got %d addresses, builder set %v; want it built once", len(v.perf), v.buildPerf != nil)
	}
	get(t, h.opt.AdvisorHandler(), PerfStatsPath, &second)
	if !reflect.DeepEqual(first, second) {
		t.Errorf("second GET: got %v, want the first's %v", second, first)
	}
}
