package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/internal/testenv"
	"github.com/loopgate/loopgate/sim/scenario"
)

func TestRequestRouting(t *testing.T) {
	sc := parseScenario(t, baseScenario+`
orchestrators:
  - {id: a, region: FRA, capacity: 8, queue: 0, classes: {t2i: {price: 2.0e-9, p50_ms: 1, p99_ms: 1}, i2i: {price: 3.0e-9, p50_ms: 1, p99_ms: 1}}}
  - {id: b, region: FRA, capacity: 8, queue: 0, classes: {llm: {price: 1.0e-6, p50_ms: 1, p99_ms: 1}}}
`)
	f, _ := startFleet(t, sc, DefaultConfig())
	addrs := f.Addrs()
	client := newClient(5 * time.Second)

	var mp bytes.Buffer
	mw := multipart.NewWriter(&mp)
	_ = mw.WriteField("model_id", "stabilityai/sdxl-turbo")
	_ = mw.WriteField("prompt", "a cat")
	fw, _ := mw.CreateFormFile("image", "image.png")
	_, _ = fw.Write([]byte("\x89PNG\r\n\x1a\nnot really"))
	_ = mw.Close()

	tests := []struct {
		name        string
		orch, path  string
		method      string
		contentType string
		body        string
		wantStatus  int
		wantInBody  string
	}{
		{"text-to-image", "a", "/text-to-image", "POST", "application/json", `{"model_id":"stabilityai/sdxl-turbo","prompt":"a cat"}`, 200, `"images"`},
		{"text-to-image without model: one model on the path", "a", "/text-to-image", "POST", "application/json", `{"prompt":"a cat"}`, 200, `"nsfw":false`},
		{"image-to-image multipart", "a", "/image-to-image", "POST", mw.FormDataContentType(), mp.String(), 200, `"images"`},
		{"llm with OpenAI model field", "b", "/llm", "POST", "application/json", `{"model":"meta-llama/Meta-Llama-3.1-8B-Instruct","messages":[]}`, 200, `"choices"`},
		{"llm streamed", "b", "/llm", "POST", "application/json", `{"model_id":"meta-llama/Meta-Llama-3.1-8B-Instruct","stream":true}`, 200, "data: [DONE]"},
		{"class not served", "a", "/llm", "POST", "application/json", `{"model_id":"meta-llama/Meta-Llama-3.1-8B-Instruct"}`, 400, "does not serve"},
		{"unknown model", "a", "/text-to-image", "POST", "application/json", `{"model_id":"nope/nope"}`, 400, "nope/nope"},
		{"invalid JSON", "a", "/text-to-image", "POST", "application/json", `{"model_id":`, 400, "invalid JSON"},
		{"unknown path", "a", "/nope", "POST", "application/json", `{}`, 404, "no such path"},
		{"not POST", "a", "/text-to-image", "GET", "", ``, 405, "POST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, addrs[tt.orch]+tt.path, strings.NewReader(tt.body))
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("got error %v, want status %d", err, tt.wantStatus)
			}
			defer resp.Body.Close()
			var b bytes.Buffer
			_, _ = b.ReadFrom(resp.Body)
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("got status %d (%s), want %d", resp.StatusCode, b.String(), tt.wantStatus)
			}
			if !strings.Contains(b.String(), tt.wantInBody) {
				t.Errorf("got body %s, want it to contain %q", b.String(), tt.wantInBody)
			}
			if resp.StatusCode >= 400 {
				errorMessage(t, b.Bytes())
			}
		})
	}
}

func TestCapacityQueueThen503(t *testing.T) {
	sc := parseScenario(t, baseScenario+`
orchestrators:
  - {id: a, region: FRA, capacity: 1, queue: 1, classes: {t2i: {price: 2.0e-9, p50_ms: 600, p99_ms: 600}}}
`)
	f, reg := startFleet(t, sc, DefaultConfig())
	url := f.Addrs()["a"] + "/text-to-image"
	client := newClient(10 * time.Second)
	gauge := func(state string) func() bool {
		return func() bool {
			return metricValue(t, reg, "loopgate_fleet_requests_in_progress", map[string]string{"orchestrator": "a", "state": state}) == 1
		}
	}
	results := make([]result, 2)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); results[0] = post(client, url, t2iBody()) }()
	testenv.Eventually(t, 2*time.Second, "first request in service", gauge(stateServing))
	go func() { defer wg.Done(); results[1] = post(client, url, t2iBody()) }()
	testenv.Eventually(t, 2*time.Second, "second request queued", gauge(stateQueued))
	third := post(client, url, t2iBody())
	wg.Wait()

	if third.err != nil || third.status != http.StatusServiceUnavailable {
		t.Fatalf("third request: got %d %v, want 503", third.status, third.err)
	}
	if third.latency > 400*time.Millisecond {
		t.Errorf("third request: got its 503 after %v, want it at once (< 400ms, well before a 600ms service)", third.latency)
	}
	for i, r := range results {
		if r.err != nil || r.status != http.StatusOK {
			t.Fatalf("request %d: got %d %v, want 200", i, r.status, r.err)
		}
	}
	// The queued one waited for the first to finish, then was served.
	if results[1].latency < 600*time.Millisecond+results[0].latency/2 {
		t.Errorf("queued request: got latency %v, want the first's rest (of %v) + 600ms service", results[1].latency, results[0].latency)
	}
	for outcome, want := range map[string]float64{OutcomeServed: 2, OutcomeRejected: 1} {
		if got := metricValue(t, reg, "loopgate_fleet_requests_total", map[string]string{"orchestrator": "a", "outcome": outcome}); got != want {
			t.Errorf("requests_total{outcome=%s}: got %v, want %v", outcome, got, want)
		}
	}
}

func TestAbandonedRequestLeavesTheQueue(t *testing.T) {
	sc := parseScenario(t, baseScenario+`
orchestrators:
  - {id: a, region: FRA, capacity: 1, queue: 1, classes: {t2i: {price: 1, p50_ms: 500, p99_ms: 500}}}
`)
	f, reg := startFleet(t, sc, DefaultConfig())
	url := f.Addrs()["a"] + "/text-to-image"
	inProgress := func(state string) float64 {
		return metricValue(t, reg, "loopgate_fleet_requests_in_progress", map[string]string{"orchestrator": "a", "state": state})
	}
	first := make(chan result, 1)
	go func() { first <- post(newClient(10*time.Second), url, t2iBody()) }()
	testenv.Eventually(t, 2*time.Second, "first request in service", func() bool { return inProgress(stateServing) == 1 })
	// The second waits in the queue and gives up.
	if r := post(newClient(100*time.Millisecond), url, t2iBody()); !isTimeout(r.err) {
		t.Fatalf("queued request: got %d %v, want a client timeout", r.status, r.err)
	}
	testenv.Eventually(t, 2*time.Second, "abandoned request out of the queue", func() bool {
		return inProgress(stateQueued) == 0 &&
			metricValue(t, reg, "loopgate_fleet_requests_total", map[string]string{"orchestrator": "a", "outcome": OutcomeAbandoned}) == 1
	})
	// Its place is free: the third is queued, not rejected, and served.
	if r := post(newClient(10*time.Second), url, t2iBody()); r.err != nil || r.status != http.StatusOK {
		t.Errorf("third request: got %d %v, want 200", r.status, r.err)
	}
	if r := <-first; r.err != nil || r.status != http.StatusOK {
		t.Errorf("first request: got %d %v, want 200", r.status, r.err)
	}
}

func TestFailures(t *testing.T) {
	tests := []struct {
		name        string
		orch        string
		n           int
		wantMinRate float64
		wantMaxRate float64
		minLatency  time.Duration // of a 500
		maxLatency  time.Duration
	}{
		{"fast: 500 at once", `{id: a, region: FRA, capacity: 4, fail: 1, fail_mode: fast, classes: {t2i: {price: 1, p50_ms: 3000, p99_ms: 3000}}}`, 3, 1, 1, 0, time.Second},
		{"slow: 500 after the service time", `{id: a, region: FRA, capacity: 4, fail: 1, fail_mode: slow, classes: {t2i: {price: 1, p50_ms: 150, p99_ms: 150}}}`, 3, 1, 1, 150 * time.Millisecond, 5 * time.Second},
		{"rate 0.3", `{id: a, region: FRA, capacity: 16, fail: 0.3, classes: {t2i: {price: 1, p50_ms: 1, p99_ms: 1}}}`, 300, 0.2, 0.4, 0, 5 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := parseScenario(t, baseScenario+"orchestrators:\n  - "+tt.orch+"\n")
			f, reg := startFleet(t, sc, DefaultConfig())
			url := f.Addrs()["a"] + "/text-to-image"
			client := newClient(10 * time.Second)
			failed := 0
			for range tt.n {
				r := post(client, url, t2iBody())
				switch {
				case r.err != nil:
					t.Fatalf("got error %v, want a status", r.err)
				case r.status == http.StatusInternalServerError:
					failed++
					errorMessage(t, r.body)
					if r.latency < tt.minLatency || r.latency > tt.maxLatency {
						t.Errorf("500 after %v, want within [%v, %v]", r.latency, tt.minLatency, tt.maxLatency)
					}
				case r.status != http.StatusOK:
					t.Fatalf("got status %d, want 200 or 500", r.status)
				}
			}
			rate := float64(failed) / float64(tt.n)
			if rate < tt.wantMinRate || rate > tt.wantMaxRate {
				t.Errorf("failure rate: got %.3f, want in [%v, %v]", rate, tt.wantMinRate, tt.wantMaxRate)
			}
			if got := metricValue(t, reg, "loopgate_fleet_requests_total", map[string]string{"orchestrator": "a", "outcome": OutcomeFailed}); int(got) != failed {
				t.Errorf("requests_total{outcome=failed}: got %v, want %d", got, failed)
			}
		})
	}
}

func TestDownRefusesThenBackOnSamePort(t *testing.T) {
	sc := parseScenario(t, baseScenario+`
orchestrators:
  - {id: a, region: FRA, capacity: 4, classes: {t2i: {price: 1, p50_ms: 1000, p99_ms: 1000}}}
`)
	f, reg := startFleet(t, sc, DefaultConfig())
	base := f.Addrs()["a"]
	url := base + "/text-to-image"
	client := newClient(10 * time.Second)
	ctx := context.Background()

	// A request in service when the orchestrator goes down is reset.
	held := make(chan result, 1)
	go func() { held <- post(client, url, t2iBody()) }()
	testenv.Eventually(t, 2*time.Second, "request in service", func() bool {
		return metricValue(t, reg, "loopgate_fleet_requests_in_progress", map[string]string{"orchestrator": "a", "state": stateServing}) == 1
	})
	if err := f.Set(ctx, "a", scenario.Patch{Down: ptr(true)}); err != nil {
		t.Fatalf("Set down: %v", err)
	}
	if r := <-held; r.err == nil {
		t.Errorf("request in service at down: got status %d, want a transport error", r.status)
	} else if r.latency > 900*time.Millisecond {
		t.Errorf("request in service at down: ended after %v, want before its 1s service time", r.latency)
	}
	if got := metricValue(t, reg, "loopgate_fleet_up", map[string]string{"orchestrator": "a"}); got != 0 {
		t.Errorf("fleet_up: got %v, want 0", got)
	}

	r := post(client, url, t2iBody())
	if !errors.Is(r.err, syscall.ECONNREFUSED) {
		t.Fatalf("while down: got %d %v, want connection refused", r.status, r.err)
	}
	if r.latency > 500*time.Millisecond {
		t.Errorf("refusal took %v, want it at once", r.latency)
	}

	if err := f.Set(ctx, "a", scenario.Patch{Down: ptr(false)}); err != nil {
		t.Fatalf("Set up: %v", err)
	}
	if got := f.Addrs()["a"]; got != base {
		t.Errorf("after down and up: got URL %s, want the same %s", got, base)
	}
	if r := post(client, url, t2iBody()); r.err != nil || r.status != http.StatusOK {
		t.Fatalf("back up: got %d %v, want 200", r.status, r.err)
	}
}

func TestHang(t *testing.T) {
	sc := parseScenario(t, baseScenario+`
orchestrators:
  - {id: a, region: FRA, capacity: 1, queue: 0, classes: {t2i: {price: 1, p50_ms: 2000, p99_ms: 2000}}}
`)
	f, reg := startFleet(t, sc, DefaultConfig())
	url := f.Addrs()["a"] + "/text-to-image"
	ctx := context.Background()
	inProgress := func(state string) float64 {
		return metricValue(t, reg, "loopgate_fleet_requests_in_progress", map[string]string{"orchestrator": "a", "state": state})
	}

	// A request in service when the hang starts is held, and frees its server.
	inService := make(chan result, 1)
	go func() { inService <- post(newClient(30*time.Second), url, t2iBody()) }()
	testenv.Eventually(t, 2*time.Second, "request in service", func() bool { return inProgress(stateServing) == 1 })
	if err := f.Set(ctx, "a", scenario.Patch{Hang: ptr(true)}); err != nil {
		t.Fatalf("Set hang: %v", err)
	}
	testenv.Eventually(t, 2*time.Second, "request in service held", func() bool {
		return inProgress(stateServing) == 0 && inProgress(stateHung) == 1
	})

	// New requests are accepted and never answered: only the client's timeout ends them.
	r := post(newClient(200*time.Millisecond), url, t2iBody())
	if r.err == nil || !isTimeout(r.err) {
		t.Fatalf("while hanging: got %d %v, want a client timeout", r.status, r.err)
	}
	if r.latency < 200*time.Millisecond {
		t.Errorf("timeout after %v, want ≥ 200ms", r.latency)
	}
	testenv.Eventually(t, 2*time.Second, "timed-out request released", func() bool {
		return metricValue(t, reg, "loopgate_fleet_requests_total", map[string]string{"orchestrator": "a", "outcome": OutcomeHung}) == 1
	})

	// The end of the hang closes the held request without an answer, and
	// the orchestrator serves again with its server free.
	if err := f.Set(ctx, "a", scenario.Patch{Hang: ptr(false), Classes: map[string]*scenario.OfferPatch{"t2i": {P50: ptr(time.Millisecond), P99: ptr(time.Millisecond)}}}); err != nil {
		t.Fatalf("Set unhang: %v", err)
	}
	if r := <-inService; r.err == nil {
		t.Errorf("held request at the end of the hang: got status %d, want a transport error", r.status)
	}
	if r := post(newClient(5*time.Second), url, t2iBody()); r.err != nil || r.status != http.StatusOK {
		t.Fatalf("after the hang: got %d %v, want 200", r.status, r.err)
	}
}

func TestStopEndsHeldRequests(t *testing.T) {
	sc := parseScenario(t, baseScenario+`
orchestrators:
  - {id: a, region: FRA, capacity: 1, queue: 4, hang: true, classes: {t2i: {price: 1, p50_ms: 1, p99_ms: 1}}}
  - {id: b, region: FRA, capacity: 1, queue: 4, classes: {t2i: {price: 1, p50_ms: 60000, p99_ms: 60000}}}
`)
	baseline := runtime.NumGoroutine()
	reg := promRegistry()
	f, err := New(sc, DefaultConfig(), deps.Deps{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	testenv.Eventually(t, 2*time.Second, "fleet listening", func() bool { return len(f.Addrs()) == 2 })
	client := newClient(time.Minute)
	results := make(chan result, 6)
	for _, id := range []string{"a", "a", "a", "b", "b", "b"} {
		go func() { results <- post(client, f.Addrs()[id]+"/text-to-image", t2iBody()) }()
	}
	testenv.Eventually(t, 2*time.Second, "six requests held", func() bool {
		v := func(o, s string) float64 {
			return metricValue(t, reg, "loopgate_fleet_requests_in_progress", map[string]string{"orchestrator": o, "state": s})
		}
		return v("a", stateHung) == 3 && v("b", stateServing) == 1 && v("b", stateQueued) == 2
	})
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: got %v, want nil", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Run did not return within 3s with requests held")
	}
	for range 6 {
		if r := <-results; r.err == nil {
			t.Errorf("held request at stop: got status %d, want a transport error", r.status)
		}
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("stop took %v", d)
	}
	client.CloseIdleConnections()
	testenv.Eventually(t, 2*time.Second, "goroutines back to the baseline", func() bool { return runtime.NumGoroutine() <= baseline+1 })
}

func TestTimeline(t *testing.T) {
	// Speed 10: the entries at 1s, 2s and 3s run 100, 200 and 300 ms after Start.
	sc := parseScenario(t, baseScenario+`
orchestrators:
  - {id: a, region: FRA, capacity: 4, classes: {t2i: {price: 1, p50_ms: 1, p99_ms: 1}}}
  - {id: b, region: FRA, capacity: 4, classes: {t2i: {price: 1, p50_ms: 1, p99_ms: 1}}}
timeline:
  - {at: 0s, orchestrator: b, set: {down: true}}
  - {at: 1s, orchestrator: a, set: {fail: 1.0}}
  - {at: 2s, orchestrator: a, set: {down: true}}
  - {at: 3s, orchestrator: a, set: {down: false, classes: {t2i: {price: 2}}}}
  - {at: 3s, orchestrator: b, set: {down: false}}
`)
	cfg := DefaultConfig()
	cfg.Speed = 10
	f, _ := startFleet(t, sc, cfg)
	client := newClient(5 * time.Second)
	if _, ok := f.Addrs()["b"]; !ok {
		t.Fatal("orchestrator b, down from 0s: want a URL anyway")
	}
	if r := post(client, f.Addrs()["b"]+"/text-to-image", t2iBody()); !errors.Is(r.err, syscall.ECONNREFUSED) {
		t.Errorf("b at 0s: got %d %v, want connection refused", r.status, r.err)
	}
	if d := time.Since(f.Origin()); d > 80*time.Millisecond {
		t.Skipf("test started %v after Start; too slow a machine for the 100ms step", d)
	}
	if st, _ := f.State("a"); st.Fail != 0 {
		t.Errorf("a before 1s: got fail %v, want 0", st.Fail)
	}
	testenv.Eventually(t, 3*time.Second, "a failing (1s)", func() bool { st, _ := f.State("a"); return st.Fail == 1 })
	testenv.Eventually(t, 3*time.Second, "a down (2s)", func() bool { st, _ := f.State("a"); return st.Down })
	testenv.Eventually(t, 3*time.Second, "a and b up (3s)", func() bool {
		a, _ := f.State("a")
		b, _ := f.State("b")
		return !a.Down && !b.Down
	})
	if r := post(client, f.Addrs()["a"]+"/text-to-image", t2iBody()); r.status != http.StatusInternalServerError {
		t.Errorf("a after 3s: got %d %v, want 500 (fail 1.0)", r.status, r.err)
	}
	if r := post(client, f.Addrs()["b"]+"/text-to-image", t2iBody()); r.status != http.StatusOK {
		t.Errorf("b after 3s: got %d %v, want 200", r.status, r.err)
	}
	for _, o := range f.Orchestrators() {
		if o.ID == "a" && priceOf(o, "text-to-image", "stabilityai/sdxl-turbo") != 2 {
			t.Errorf("a after 3s: got prices %v, want text-to-image at 2", o.Classes)
		}
	}
}

// TestServiceTimeMedian checks the service times an orchestrator draws,
// not the wall clock (a loaded machine stretches every request): over many
// draws from a seeded normal, the median is p50 divided by the fleet's
// speed, and the spread follows p99/p50 (σ = ln(p99/p50) / 2.326; with
// p99 = 4 × p50, p90 is 2.15 × p50).
func TestServiceTimeMedian(t *testing.T) {
	tests := []struct {
		name       string
		p50, p99   string
		speed      float64
		wantMedian time.Duration
	}{
		{"p50 5ms", "5", "20", 1, 5 * time.Millisecond},
		{"p50 10ms at speed 2", "10", "40", 2, 5 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := parseScenario(t, baseScenario+`
orchestrators:
  - {id: a, region: FRA, capacity: 64, classes: {t2i: {price: 1, p50_ms: `+tt.p50+`, p99_ms: `+tt.p99+`}}}
`)
			cfg := DefaultConfig()
			cfg.Speed = tt.speed
			f := &Fleet{cfg: cfg}
			var off scenario.Offer
			for _, o := range sc.Orchestrators[0].Classes {
				off = o
			}
			rng := rand.New(rand.NewPCG(1, 2))
			const n = 20000
			draws := make([]time.Duration, n)
			for i := range draws {
				draws[i] = f.scale(serviceTime(off, rng.NormFloat64()))
			}
			slices.Sort(draws)
			med, p90 := draws[n/2], draws[n*9/10]
			if lo, hi := tt.wantMedian*97/100, tt.wantMedian*103/100; med < lo || med > hi {
				t.Errorf("median service time: got %v, want %v within 3 %%", med, tt.wantMedian)
			}
			want := math.Exp(1.2816 * off.Sigma()) // z of the 90th percentile
			if r := float64(p90) / float64(med); math.Abs(r/want-1) > 0.05 {
				t.Errorf("p90 / median: got %.2f, want %.2f within 5 %%", r, want)
			}
		})
	}
}

func TestRTTFrom(t *testing.T) {
	sc := parseScenario(t, baseScenario+`
orchestrators:
  - {id: lax, region: LAX, capacity: 4, classes: {t2i: {price: 1, p50_ms: 1, p99_ms: 1}}}
`)
	cfg := DefaultConfig()
	cfg.RTTFrom = "FRA"
	f, _ := startFleet(t, sc, cfg)
	r := post(newClient(5*time.Second), f.Addrs()["lax"]+"/text-to-image", t2iBody())
	if r.err != nil || r.status != 200 {
		t.Fatalf("got %d %v, want 200", r.status, r.err)
	}
	if r.latency < 150*time.Millisecond {
		t.Errorf("FRA to LAX: got latency %v, want ≥ the 150ms round trip", r.latency)
	}

	cfg.RTTFrom = "SIN"
	if _, err := New(sc, cfg, deps.Deps{}); err == nil {
		t.Error("RTTFrom SIN, not a scenario region: got no error")
	}
}

func TestOrchestrators(t *testing.T) {
	sc := parseScenario(t, baseScenario+`
orchestrators:
  - {id: a, region: FRA, address: "0xabc", stake: 10, capacity: 4, queue: 2, classes: {t2i: {price: 2.0e-9, p50_ms: 700, p99_ms: 1900}, i2i: {price: 3.0e-9, p50_ms: 1, p99_ms: 1}}}
  - {id: b, region: LAX, capacity: 2, classes: {llm: {price: 1.0e-6, p50_ms: 1, p99_ms: 1}}}
`)
	f, _ := startFleet(t, sc, DefaultConfig())
	infos := f.Orchestrators()
	if len(infos) != 2 || infos[0].ID != "a" || infos[1].ID != "b" {
		t.Fatalf("got %+v, want a then b", infos)
	}
	addrs := f.Addrs()
	for _, o := range infos {
		if o.URL == "" || o.URL != addrs[o.ID] || !strings.HasPrefix(o.URL, "http://127.0.0.1:") {
			t.Errorf("%s: got URL %q, want Addrs' %q on 127.0.0.1", o.ID, o.URL, addrs[o.ID])
		}
	}
	a := infos[0]
	if a.Region != "FRA" || a.Address != "0xabc" || a.Stake != 10 || a.Capacity != 4 || a.Queue != 2 {
		t.Errorf("a: got %+v", a)
	}
	want := map[ClassKey]float64{
		{"text-to-image", "stabilityai/sdxl-turbo"}:  2.0e-9,
		{"image-to-image", "stabilityai/sdxl-turbo"}: 3.0e-9,
	}
	if len(a.Classes) != len(want) {
		t.Fatalf("a prices: got %v, want %v", a.Classes, want)
	}
	for k, p := range want {
		if got := priceOf(a, k.Capability, k.Model); got != p {
			t.Errorf("a price of %v: got %v, want %v", k, got, p)
		}
	}
	if a.MaxInFlight != 4 {
		t.Errorf("a advertises %d at once, want its capacity 4 (the queue of 2 is not servers)", a.MaxInFlight)
	}
	if a.Offers[1].ClassID != "t2i" || a.Offers[1].P50 != 700*time.Millisecond {
		t.Errorf("a offers: got %+v, want i2i then t2i with p50 700ms", a.Offers)
	}
	b, _ := json.Marshal(infos)
	if !strings.Contains(string(b), "meta-llama") {
		t.Errorf("json: got %s", b)
	}
}

func TestSetRejectsBadChanges(t *testing.T) {
	sc := parseScenario(t, baseScenario+`
orchestrators:
  - {id: a, region: FRA, capacity: 4, classes: {t2i: {price: 1, p50_ms: 1, p99_ms: 1}}}
`)
	f, err := New(sc, DefaultConfig(), deps.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		id   string
		p    scenario.Patch
	}{
		{"unknown orchestrator", "zz", scenario.Patch{Fail: ptr(0.1)}},
		{"capacity 0", "a", scenario.Patch{Capacity: ptr(0)}},
		{"fail above 1", "a", scenario.Patch{Fail: ptr(1.5)}},
		{"client field", "a", scenario.Patch{Rate: ptr(3.0)}},
		{"unknown class", "a", scenario.Patch{Classes: map[string]*scenario.OfferPatch{"zz": {Price: ptr(1.0), P50: ptr(time.Millisecond), P99: ptr(time.Millisecond)}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := f.Set(context.Background(), tt.id, tt.p); err == nil {
				t.Error("got nil, want an error")
			}
		})
	}
	if st, _ := f.State("a"); st.Capacity != 4 || st.Fail != 0 {
		t.Errorf("after rejected changes: got %+v, want the initial state", st)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		ok     bool
	}{
		{"default", func(*Config) {}, true},
		{"speed 0", func(c *Config) { c.Speed = 0 }, false},
		{"bad host", func(c *Config) { c.Host = "not a host" }, false},
		{"port out of range", func(c *Config) { c.Ports = map[string]int{"a": 70000} }, false},
		{"base port", func(c *Config) { c.BasePort = 20000 }, true},
		{"no body", func(c *Config) { c.MaxBodyBytes = 0 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mutate(&c)
			if err := c.Validate(); (err == nil) != tt.ok {
				t.Errorf("got %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// priceOf is o's advertised price for a wire class, -1 if it serves none.
func priceOf(o OrchestratorInfo, capability, model string) float64 {
	for _, c := range o.Classes {
		if c.Capability == capability && c.Model == model {
			return c.PricePerUnit
		}
	}
	return -1
}
