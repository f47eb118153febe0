package fleet_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/router"
	"github.com/loopgate/loopgate/sim/fleet"
	"github.com/loopgate/loopgate/sim/load"
	"github.com/loopgate/loopgate/sim/scenario"
)

// overloadScenario: three orchestrators of 2 servers (+2 queue places) at
// ≈ 0.22 s a request serve ≈ 27 requests/s; the client sends 54/s, twice
// that, for 8 s.
const overloadScenario = `
name: overload-http
seed: 9
duration: 8s
regions: [FRA]
rtt_ms: {same_region: 2}
classes:
  - {id: t2i, capability: text-to-image, model: stabilityai/sdxl-turbo, units: 1048576, slo_ms: 1500, timeout_ms: 3000, value: 0.1}
clients:
  - {id: acme, region: FRA, rate: 54, mix: {t2i: 1.0}}
orchestrators:
  - {id: o1, region: FRA, capacity: 2, queue: 2, classes: {t2i: {price: 2.0e-9, p50_ms: 200, p99_ms: 500}}}
  - {id: o2, region: FRA, capacity: 2, queue: 2, classes: {t2i: {price: 2.0e-9, p50_ms: 200, p99_ms: 500}}}
  - {id: o3, region: FRA, capacity: 2, queue: 2, classes: {t2i: {price: 2.0e-9, p50_ms: 200, p99_ms: 500}}}
`

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode) // gin's own global; keeps route listings out of test output
	os.Exit(m.Run())
}

// recorder keeps what the router answered each request.
type recorder struct {
	mu      sync.Mutex
	byCode  map[int]int
	no503RA int // 503 without Retry-After
	over    int // answered after the class's timeout
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(c int) {
	if w.code == 0 {
		w.code = c
	}
	w.ResponseWriter.WriteHeader(c)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (rec *recorder) wrap(h http.Handler, deadline time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h.ServeHTTP(sw, r)
		rec.mu.Lock()
		defer rec.mu.Unlock()
		rec.byCode[sw.code]++
		if sw.code == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
			rec.no503RA++
		}
		if time.Since(start) > deadline {
			rec.over++
		}
	})
}

type nopPublisher struct {
	mu   sync.Mutex
	outs []event.Outcome
}

func (p *nopPublisher) Publish(_, v []byte) error {
	o, err := event.DecodeOutcome(v)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.outs = append(p.outs, o)
	p.mu.Unlock()
	return nil
}

// TestRouterUnderOverload runs the router over real HTTP between the
// simulated fleet and load at twice the fleet's capacity, with a policy
// limiting each orchestrator to 3 in flight: every request is answered
// within its deadline, with a success or a 503 carrying Retry-After and a
// reason; no orchestrator ever holds more than its limit (its own
// counter); /orchestrators and /policy show the limits, the admission
// rate and their reasons.
func TestRouterUnderOverload(t *testing.T) {
	if testing.Short() {
		t.Skip("8 s of wall-clock load")
	}
	sc, err := scenario.Parse([]byte(overloadScenario))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f, err := fleet.New(sc, fleet.DefaultConfig(), deps.Deps{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(ctx); err != nil {
		t.Fatal(err)
	}
	fleetDone := make(chan error, 1)
	go func() { fleetDone <- f.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-fleetDone; err != nil {
			t.Errorf("fleet Run: %v", err)
		}
	}()

	const key = "sk-acme-overload-0123"
	sum := sha256.Sum256([]byte(key))
	cfg := router.DefaultConfig()
	cfg.RequestTimeout, cfg.AttemptTimeout = 3*time.Second, 3*time.Second
	cfg.APIKeys = []router.APIKeyConfig{{ID: "acme", SHA256: hex.EncodeToString(sum[:]), Customer: "acme", ClientRegion: "FRA"}}
	const limit = 3
	pol := event.Policy{Schema: event.SchemaVersion, Version: 1, CreatedMs: time.Now().UnixMilli(), Lambda: 0.5}
	entry := event.ClassPolicy{Capability: event.CapTextToImage, Model: "stabilityai/sdxl-turbo", Value: 0.1, SLOMs: 1500,
		AdmitPerS: 45, AdmitReason: "test: predicted demand over capacity"}
	for _, o := range f.Orchestrators() {
		oc := o.Orchestrator
		oc.MaxInFlight = 0 // the policy's limit is the one in force
		cfg.Orchestrators = append(cfg.Orchestrators, oc)
		pol.Limits = append(pol.Limits, event.Limit{Orchestrator: oc.ID, MaxInFlight: limit, Reason: "test: 2 servers + 1"})
		entry.Shares = append(entry.Shares, event.Share{Orchestrator: oc.ID, Share: 1.0 / 3})
	}
	entry.Shares[2].Share = 1 - entry.Shares[0].Share - entry.Shares[1].Share
	pol.Classes = []event.ClassPolicy{entry}
	pub := &nopPublisher{}
	rt, err := router.New(cfg, pub, deps.Deps{Registerer: prometheus.NewRegistry(), Rand: rand.New(rand.NewPCG(9, 9))})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	if err := rt.SetPolicy(pol); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{byCode: map[int]int{}}
	deadline := 3 * time.Second
	srv := httptest.NewServer(rec.wrap(rt.Handler(), deadline))
	defer srv.Close()

	lcfg := load.DefaultConfig()
	lcfg.Target = srv.URL
	lcfg.APIKeys = map[string]string{"acme": key}
	lcfg.Origin = f.Origin()
	gen, err := load.New(sc, lcfg, deps.Deps{Registerer: prometheus.NewRegistry(), Rand: rand.New(rand.NewPCG(9, 1))})
	if err != nil {
		t.Fatal(err)
	}
	s, err := gen.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}

	if s.Total.TransportErrors != 0 || s.Total.Sent < 300 {
		t.Fatalf("load: got %+v, want ≥ 300 sent and every one answered (no client timeout)", s.Total)
	}
	rec.mu.Lock()
	codes, no503RA, over := rec.byCode, rec.no503RA, rec.over
	rec.mu.Unlock()
	for c, n := range codes {
		if c != http.StatusOK && c != http.StatusServiceUnavailable {
			t.Errorf("got %d answers with status %d, want only 200 and 503", n, c)
		}
	}
	if codes[http.StatusOK] == 0 || codes[http.StatusServiceUnavailable] == 0 {
		t.Errorf("got %v, want both successes and shedding at 2× capacity", codes)
	}
	if no503RA != 0 || over != 0 {
		t.Errorf("got %d 503s without Retry-After and %d answers past the %v deadline, want none", no503RA, over, deadline)
	}
	for _, o := range f.Orchestrators() {
		if got := f.MaxHeld(o.ID); got > limit || got == 0 {
			t.Errorf("%s held at most %d at once, want 1..%d (the router's limit)", o.ID, got, limit)
		}
	}
	pub.mu.Lock()
	shed, ok := 0, 0
	for _, o := range pub.outs {
		switch o.Status {
		case event.StatusShed:
			shed++
			if o.HTTPStatus != 503 || o.ErrorClass == "" {
				t.Errorf("shed outcome %+v: want 503 and a reason", o)
			}
		case event.StatusOK:
			ok++
		}
	}
	pub.mu.Unlock()
	if shed == 0 || ok == 0 || int64(shed+ok) > s.Total.Sent {
		t.Errorf("outcomes: %d ok, %d shed of %d sent", ok, shed, s.Total.Sent)
	}
	t.Logf("sent %d: %v; outcomes %d ok, %d shed; max held %d/%d/%d", s.Total.Sent, codes, ok, shed,
		f.MaxHeld("o1"), f.MaxHeld("o2"), f.MaxHeld("o3"))

	// The admin views show the limits, the admission rate and the reasons.
	adm := httptest.NewServer(rt.AdminHandler())
	defer adm.Close()
	var orchs []router.OrchestratorStatus
	getJSON(t, adm.URL+"/orchestrators", &orchs)
	for _, o := range orchs {
		if o.MaxInFlight != limit || o.Limit < 1 || o.Limit > limit || !strings.Contains(o.LimitReason, "2 servers") {
			t.Errorf("/orchestrators %s: got max %d, limit %d, reason %q", o.ID, o.MaxInFlight, o.Limit, o.LimitReason)
		}
	}
	var pv router.PolicyView
	getJSON(t, adm.URL+"/policy", &pv)
	if len(pv.Limits) != 3 || pv.Limits[0].Reason == "" {
		t.Errorf("/policy limits: got %+v", pv.Limits)
	}
	if r := pv.Shaping.AdmissionRates; len(r) != 1 || r[0].AdmitPerS != 45 || !strings.Contains(r[0].Reason, "predicted demand") {
		t.Errorf("/policy admission rates: got %+v", r)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
