package load

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/sim/scenario"
)

// scenarioYAML has three JSON classes; tests add clients and a timeline.
// Timeouts are long (100 s: 5 s of wall time at speed 20) so a busy machine
// cannot turn a slow answer into a timeout.
const scenarioYAML = `
name: load-test
seed: 5
duration: %DURATION%
regions: [FRA, MDW]
rtt_ms: {same_region: 4, FRA-MDW: 105}
classes:
  - {id: t2i, capability: text-to-image, model: stabilityai/sdxl-turbo, units: 1048576, slo_ms: 3000, timeout_ms: 100000, value: 0.02}
  - {id: llm, capability: llm, model: meta-llama/Meta-Llama-3.1-8B-Instruct, units: 256, slo_ms: 2000, timeout_ms: %LLMTIMEOUT%, value: 0.01}
  - {id: tts, capability: text-to-speech, model: parler-tts/parler-tts-large-v1, units: 120, slo_ms: 2000, timeout_ms: 100000, value: 0.01}
orchestrators:
  - {id: o, region: FRA, capacity: 4, classes: {t2i: {price: 1, p50_ms: 1, p99_ms: 1}, llm: {price: 1, p50_ms: 1, p99_ms: 1}, tts: {price: 1, p50_ms: 1, p99_ms: 1}}}
`

func makeScenario(t *testing.T, duration, llmTimeout, rest string) *scenario.Scenario {
	t.Helper()
	y := strings.NewReplacer("%DURATION%", duration, "%LLMTIMEOUT%", llmTimeout).Replace(scenarioYAML) + rest
	sc, err := scenario.Parse([]byte(y))
	if err != nil {
		t.Fatalf("parse scenario: %v", err)
	}
	return sc
}

// seen is one request as the test server received it.
type seen struct {
	at                                    time.Time
	path, auth, region, class, ctype, key string
	body                                  map[string]any
}

type recordingServer struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
}

// newServer records every request and answers with handle.
func newServer(t *testing.T, handle func(w http.ResponseWriter, r *http.Request)) *recordingServer {
	t.Helper()
	s := &recordingServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body map[string]any
		_ = json.Unmarshal(b, &body)
		s.mu.Lock()
		s.reqs = append(s.reqs, seen{
			at: time.Now(), path: r.URL.Path, auth: r.Header.Get("Authorization"),
			region: r.Header.Get(HeaderClientRegion), class: r.Header.Get(HeaderClass),
			ctype: r.Header.Get("Content-Type"), body: body,
		})
		s.mu.Unlock()
		handle(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *recordingServer) requests() []seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seen(nil), s.reqs...)
}

func ok(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, `{"images":[]}`) }

func testConfig(target string, speed float64) Config {
	cfg := DefaultConfig()
	cfg.Target = target
	cfg.Speed = speed
	return cfg
}

func run(t *testing.T, sc *scenario.Scenario, cfg Config) Summary {
	t.Helper()
	g, err := New(sc, cfg, deps.Deps{Rand: rand.New(rand.NewPCG(1, 2))})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s, err := g.Run(context.Background())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	checkConsistent(t, s)
	return s
}

// checkConsistent checks the Summary's identities.
func checkConsistent(t *testing.T, s Summary) {
	t.Helper()
	check := func(name string, c Counts) {
		if c.Sent != c.Answered+c.TransportErrors {
			t.Errorf("%s: sent %d != answered %d + transport errors %d", name, c.Sent, c.Answered, c.TransportErrors)
		}
		if c.Answered != c.Succeeded+c.Failed {
			t.Errorf("%s: answered %d != succeeded %d + failed %d", name, c.Answered, c.Succeeded, c.Failed)
		}
		if c.TimedOut+c.Cancelled > c.TransportErrors {
			t.Errorf("%s: timed out %d + cancelled %d > transport errors %d", name, c.TimedOut, c.Cancelled, c.TransportErrors)
		}
	}
	check("total", s.Total)
	var byStatus, byClass, byClient int64
	for _, n := range s.ByStatus {
		byStatus += n
	}
	for id, c := range s.ByClass {
		check("class "+id, c)
		byClass += c.Sent + c.Dropped
	}
	for id, c := range s.ByClient {
		check("client "+id, c)
		byClient += c.Sent + c.Dropped
	}
	if byStatus != s.Answered() {
		t.Errorf("by status sums to %d, answered %d", byStatus, s.Answered())
	}
	if all := s.Total.Sent + s.Total.Dropped; byClass != all || byClient != all {
		t.Errorf("arrivals: total %d, by class %d, by client %d", all, byClass, byClient)
	}
}

func within(got, want int64, tol float64) bool {
	return float64(got) >= float64(want)*(1-tol) && float64(got) <= float64(want)*(1+tol)
}

func TestRateMixKeysAndHeaders(t *testing.T) {
	// 20 scenario seconds at speed 20: one wall second.
	sc := makeScenario(t, "20s", "100000", `
clients:
  - {id: acme, region: FRA, rate: 20, mix: {t2i: 0.5, llm: 0.5}}
  - {id: globex, region: MDW, rate: 10, mix: {tts: 1.0}}
`)
	srv := newServer(t, ok)
	cfg := testConfig(srv.URL+"/", 20)
	cfg.APIKeys = map[string]string{"acme": "key-acme"}
	start := time.Now()
	s := run(t, sc, cfg)
	if d := time.Since(start); d < 900*time.Millisecond || d > 15*time.Second {
		t.Errorf("Run took %v, want about 1s (20s of scenario at speed 20)", d)
	}
	reqs := srv.requests()
	if int64(len(reqs)) != s.Total.Sent || s.Total.Succeeded != s.Total.Sent || s.ByStatus[200] != s.Total.Sent {
		t.Errorf("server saw %d, summary %+v, by status %v: want all sent and succeeded", len(reqs), s.Total, s.ByStatus)
	}
	if got := s.ByClient["acme"].Sent; !within(got, 400, 0.25) {
		t.Errorf("acme: got %d requests, want 400 ± 25%% (20/s × 20s)", got)
	}
	if got := s.ByClient["globex"].Sent; !within(got, 200, 0.25) {
		t.Errorf("globex: got %d requests, want 200 ± 25%% (10/s × 20s)", got)
	}
	if share := float64(s.ByClass["t2i"].Sent) / float64(s.ByClient["acme"].Sent); share < 0.4 || share > 0.6 {
		t.Errorf("acme's text-to-image share: got %.2f, want 0.5 ± 0.1", share)
	}
	if s.ByClass["tts"].Sent != s.ByClient["globex"].Sent {
		t.Errorf("tts: got %d, want all of globex's %d", s.ByClass["tts"].Sent, s.ByClient["globex"].Sent)
	}
	want := map[string]struct{ path, model string }{
		"t2i": {"/text-to-image", "stabilityai/sdxl-turbo"},
		"llm": {"/llm", "meta-llama/Meta-Llama-3.1-8B-Instruct"},
		"tts": {"/text-to-speech", "parler-tts/parler-tts-large-v1"},
	}
	for _, r := range reqs {
		w, known := want[r.class]
		if !known {
			t.Fatalf("request with class header %q, want one of t2i, llm, tts", r.class)
		}
		if r.path != w.path || r.body["model_id"] != w.model || r.ctype != "application/json" {
			t.Errorf("class %s: got %s model_id %v (%s), want %s model_id %s (application/json)", r.class, r.path, r.body["model_id"], r.ctype, w.path, w.model)
		}
		acme := r.class != "tts"
		switch {
		case acme && (r.auth != "Bearer key-acme" || r.region != "FRA"):
			t.Errorf("acme request: got Authorization %q region %q, want Bearer key-acme, FRA", r.auth, r.region)
		case !acme && (r.auth != "" || r.region != "MDW"):
			t.Errorf("globex request: got Authorization %q region %q, want none (no key), MDW", r.auth, r.region)
		}
	}
	if s.LatencyMs.Count != s.Total.Succeeded || s.LatencyMs.P50 <= 0 || s.LatencyMs.P99 < s.LatencyMs.P50 {
		t.Errorf("latency: got %+v", s.LatencyMs)
	}
	var b strings.Builder
	if err := s.WriteText(&b); err != nil || !strings.Contains(b.String(), "answered") {
		t.Errorf("WriteText: got %q, %v", b.String(), err)
	}
}

func TestSummaryByOutcome(t *testing.T) {
	sc := makeScenario(t, "10s", "100000", `
clients:
  - {id: acme, region: FRA, rate: 30, mix: {t2i: 0.4, llm: 0.3, tts: 0.3}}
`)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/text-to-image":
			ok(w, r)
		case "/llm":
			http.Error(w, `{"error":{"message":"no orchestrator"}}`, http.StatusServiceUnavailable)
		default: // text-to-speech: the connection breaks without an answer
			conn, _, _ := http.NewResponseController(w).Hijack()
			_ = conn.Close()
		}
	})
	s := run(t, sc, testConfig(srv.URL, 20))
	if s.Total.Sent == 0 {
		t.Fatal("nothing sent")
	}
	tests := []struct {
		name      string
		got, want int64
	}{
		{"succeeded = text-to-image", s.Total.Succeeded, s.ByClass["t2i"].Sent},
		{"503s = llm", s.ByStatus[503], s.ByClass["llm"].Sent},
		{"failed = 503s", s.Total.Failed, s.ByStatus[503]},
		{"transport errors = text-to-speech", s.Total.TransportErrors, s.ByClass["tts"].Sent},
		{"answered = server answers", s.Answered(), s.ByClass["t2i"].Sent + s.ByClass["llm"].Sent},
		{"no timeouts", s.Total.TimedOut, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %d, want %d", tt.got, tt.want)
			}
		})
	}
}

func TestTimelineAndTimeouts(t *testing.T) {
	// Speed 10: the client starts sending at 5s (0.5s wall) and stops at
	// 10s (1s wall). llm requests time out after 1000ms/10 = 100ms.
	sc := makeScenario(t, "10s", "1000", `
clients:
  - {id: acme, region: FRA, rate: 0, mix: {t2i: 1.0}}
timeline:
  - {at: 5s, client: acme, set: {rate: 40, mix: {t2i: 0.5, llm: 0.5}, region: MDW}}
`)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/llm" {
			select {
			case <-time.After(2 * time.Second):
			case <-r.Context().Done():
			}
			return
		}
		ok(w, r)
	})
	start := time.Now()
	s := run(t, sc, testConfig(srv.URL, 10))
	reqs := srv.requests()
	if len(reqs) == 0 {
		t.Fatal("nothing sent")
	}
	if first := reqs[0].at.Sub(start); first < 450*time.Millisecond {
		t.Errorf("first request %v after start, want ≥ 0.5s (rate 0 until 5s at speed 10)", first)
	}
	if got := s.Total.Sent; !within(got, 200, 0.3) {
		t.Errorf("got %d requests, want 200 ± 30%% (40/s for 5s)", got)
	}
	for _, r := range reqs {
		if r.region != "MDW" {
			t.Fatalf("got region %q, want MDW from the timeline", r.region)
		}
	}
	llm := s.ByClass["llm"]
	if llm.Sent == 0 || llm.TimedOut != llm.Sent || s.Total.TimedOut != llm.Sent {
		t.Errorf("llm: got %+v (total timed out %d), want every llm request timed out", llm, s.Total.TimedOut)
	}
	if s.ByClass["t2i"].Succeeded != s.ByClass["t2i"].Sent {
		t.Errorf("t2i: got %+v, want all succeeded", s.ByClass["t2i"])
	}
}

func TestCancelDrainsThenCancels(t *testing.T) {
	baseline := runtime.NumGoroutine()
	sc := makeScenario(t, "600s", "100000", `
clients:
  - {id: acme, region: FRA, rate: 50, mix: {t2i: 1.0}}
`)
	release := make(chan struct{})
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	cfg := testConfig(srv.URL, 1)
	cfg.DrainTimeout = 200 * time.Millisecond
	g, err := New(sc, cfg, deps.Deps{Rand: rand.New(rand.NewPCG(1, 2))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	s, err := g.Run(ctx)
	if err != nil {
		t.Fatalf("Run: got %v, want nil on cancel", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Run returned %v after start, want about 0.5s (0.3s + 0.2s drain)", d)
	}
	checkConsistent(t, s)
	if !s.Interrupted {
		t.Error("Interrupted: got false, want true")
	}
	if s.Total.Sent == 0 || s.Total.Cancelled != s.Total.Sent {
		t.Errorf("got %+v, want every request sent and then cancelled by the drain", s.Total)
	}
	if _, err := g.Run(context.Background()); err == nil {
		t.Error("second Run: got nil, want an error")
	}
	srv.CloseClientConnections()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > baseline+4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > baseline+4 {
		t.Errorf("goroutines: got %d, want about the baseline %d (the test server's own may remain)", n, baseline)
	}
}

func TestMaxInFlightDrops(t *testing.T) {
	sc := makeScenario(t, "300ms", "100000", `
clients:
  - {id: acme, region: FRA, rate: 100, mix: {t2i: 1.0}}
`)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(600 * time.Millisecond):
		case <-r.Context().Done():
		}
		ok(w, r)
	})
	cfg := testConfig(srv.URL, 1)
	cfg.MaxInFlight = 3
	s := run(t, sc, cfg)
	if s.Total.Sent != 3 || s.Total.Succeeded != 3 {
		t.Errorf("got %+v, want exactly 3 sent and succeeded (each outlives the run)", s.Total)
	}
	if s.Total.Dropped < 10 {
		t.Errorf("dropped: got %d, want the other ~27 arrivals", s.Total.Dropped)
	}
}

func TestOriginInThePast(t *testing.T) {
	sc := makeScenario(t, "10s", "100000", `
clients:
  - {id: acme, region: FRA, rate: 100, mix: {t2i: 1.0}}
`)
	srv := newServer(t, ok)
	cfg := testConfig(srv.URL, 10)
	cfg.Origin = time.Now().Add(-600 * time.Millisecond) // 6 of 10 scenario seconds gone
	s := run(t, sc, cfg)
	if got := s.Total.Sent; !within(got, 400, 0.3) {
		t.Errorf("got %d requests, want the remaining 4s × 100/s = 400 ± 30%%, not a burst of the past ones", got)
	}
}

func TestNewRejects(t *testing.T) {
	sc := makeScenario(t, "10s", "100000", `
clients:
  - {id: acme, region: FRA, rate: 1, mix: {t2i: 1.0}}
`)
	tests := []struct {
		name   string
		mutate func(*Config)
	}{
		{"no target", func(c *Config) { c.Target = "" }},
		{"target without scheme", func(c *Config) { c.Target = "127.0.0.1:8935" }},
		{"speed 0", func(c *Config) { c.Speed = 0 }},
		{"max in flight 0", func(c *Config) { c.MaxInFlight = 0 }},
		{"negative duration", func(c *Config) { c.Duration = -time.Second }},
		{"key for unknown client", func(c *Config) { c.APIKeys = map[string]string{"zz": "k"} }},
		{"unknown client", func(c *Config) { c.Clients = []string{"zz"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig("http://127.0.0.1:1", 1)
			tt.mutate(&cfg)
			if _, err := New(sc, cfg, deps.Deps{}); err == nil {
				t.Error("got nil, want an error")
			}
		})
	}
}

// TestNextArrivalOnOff draws an on/off client's arrivals for 1000 s: none
// falls in an off phase whose rate is 0, the on phases get Rate×On per
// period, and an off rate is honoured too.
func TestNextArrivalOnOff(t *testing.T) {
	for _, tc := range []struct {
		name            string
		c               scenario.Client
		wantOn, wantOff float64 // expected arrivals over the 1000 s
	}{
		{"off silent", scenario.Client{Rate: 50, On: 2 * time.Second, Off: 3 * time.Second}, 50 * 400, 0},
		{"off rate", scenario.Client{Rate: 50, On: 2 * time.Second, Off: 3 * time.Second, OffRate: 10}, 50 * 400, 10 * 600},
		{"only off", scenario.Client{Rate: 0, On: time.Second, Off: time.Second, OffRate: 20}, 0, 20 * 500},
		{"steady", scenario.Client{Rate: 30}, 30 * 1000, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, 4))
			var on, off int64
			for at := nextArrival(rng, tc.c, 0); at < 1000*time.Second; at = nextArrival(rng, tc.c, at) {
				if !tc.c.Bursty() || at%(tc.c.On+tc.c.Off) < tc.c.On {
					on++
				} else {
					off++
				}
			}
			// Poisson counts: 5 standard deviations, and exactly 0 where the rate is 0.
			for _, x := range []struct {
				phase string
				got   int64
				want  float64
			}{{"on", on, tc.wantOn}, {"off", off, tc.wantOff}} {
				if d := math.Abs(float64(x.got) - x.want); d > 5*math.Sqrt(x.want) {
					t.Errorf("%s phases: got %d arrivals, want %.0f", x.phase, x.got, x.want)
				}
			}
		})
	}
}
