package optimizer

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/loopgate/loopgate/event"
)

// tradeOff is a fleet where cost and latency pull apart: "cheap" is slow
// (often late for the 2 s SLO), "fast" costs three times as much.
func tradeOff(t *testing.T) *harness {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Catalog = catalogOf(2*time.Second, 0.02, orchSpec{"cheap", 1e-9, 16}, orchSpec{"fast", 3e-9, 16})
	h := newHarness(t, cfg)
	h.stats.set(stat("cheap", 600, 594, 1500, 4000), stat("fast", 600, 597, 500, 1200))
	return h
}

func TestSweepLambdas(t *testing.T) {
	tests := []struct {
		name    string
		cfg     FrontierConfig
		current float64
		want    []float64
	}{
		{"off", FrontierConfig{Points: 0, MinLambda: 0.01}, 0.3, []float64{0.3}},
		{"three points", FrontierConfig{Points: 3, MinLambda: 0.01}, 0.5, []float64{0, 0.01, 0.1, 0.5, 1}},
		{"current on the grid", FrontierConfig{Points: 3, MinLambda: 0.01}, 0.1, []float64{0, 0.01, 0.1, 1}},
		{"current 0", FrontierConfig{Points: 2, MinLambda: 0.1}, 0, []float64{0, 0.1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sweepLambdas(&tt.cfg, tt.current); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	def := DefaultConfig().Frontier
	got := sweepLambdas(&def, 0.5)
	if len(got) != 12 || got[0] != 0 || got[len(got)-1] != 1 || !slices.Contains(got, 0.5) {
		t.Errorf("got default sweep %v, want 12 points from 0 to 1 with 0.5", got)
	}
}

func TestFrontierBeforeFirstRound(t *testing.T) {
	h := tradeOff(t)
	f := h.opt.Frontier()
	if f.Version != 0 || f.Points == nil || len(f.Points) != 0 {
		t.Errorf("got %+v, want version 0 and an empty, non-nil points list", f)
	}
	if _, err := h.opt.Preview(0.5); !errors.Is(err, ErrNoRound) {
		t.Errorf("got %v, want ErrNoRound", err)
	}
}

func TestFrontierIsStoredWithThePolicy(t *testing.T) {
	h := tradeOff(t)
	p := h.step(t)
	checkPolicy(t, p)
	f := h.opt.Frontier()
	if f.Version != p.Version || f.Lambda != p.Lambda || f.ComputedMs != p.CreatedMs {
		t.Errorf("got version %d λ %v computed %d, want the policy's %d, %v, %d", f.Version, f.Lambda, f.ComputedMs, p.Version, p.Lambda, p.CreatedMs)
	}
	if !reflect.DeepEqual(f.Points, p.Frontier) {
		t.Errorf("got policy frontier %+v, want the served one %+v", p.Frontier, f.Points)
	}
	if len(f.Points) != 12 {
		t.Fatalf("got %d points, want 12", len(f.Points))
	}
	lo, hi := f.Points[0], f.Points[len(f.Points)-1]
	if lo.Lambda != 0 || hi.Lambda != 1 {
		t.Fatalf("got λ from %v to %v, want 0 to 1", lo.Lambda, hi.Lambda)
	}
	if _, ok := f.At(0.5); !ok {
		t.Errorf("got no point at the current λ 0.5")
	}
	// The trade-off the knob promises: λ = 0 is cheaper, λ = 1 meets the
	// SLO more often and faster.
	if !(lo.CostPerRequest < hi.CostPerRequest) {
		t.Errorf("got cost %v at λ=0 and %v at λ=1, want λ=0 cheaper", lo.CostPerRequest, hi.CostPerRequest)
	}
	if !(lo.SLOAttainment < hi.SLOAttainment) || !(lo.P95Ms > hi.P95Ms) {
		t.Errorf("got SLO %v / p95 %v at λ=0 and %v / %v at λ=1, want λ=1 better on both", lo.SLOAttainment, lo.P95Ms, hi.SLOAttainment, hi.P95Ms)
	}
	for i, pt := range f.Points {
		if pt.CostPerRequest < 1e-3 || pt.CostPerRequest > 4e-3 {
			t.Errorf("point %d: got cost %v, want between the two prices × units", i, pt.CostPerRequest)
		}
	}
}

func TestPreview(t *testing.T) {
	h := tradeOff(t)
	h.step(t)
	before := h.opt.Frontier()
	published := h.pub.count()

	cur, err := h.opt.Preview(0.5)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := before.At(0.5)
	if cur.CostPerRequest != want.CostPerRequest || cur.SLOAttainment != want.SLOAttainment || cur.P95Ms != want.P95Ms || len(cur.Moves) != 0 {
		t.Errorf("got preview at the current λ %+v, want the frontier's point %+v and no moves", cur, want)
	}

	cheap, err := h.opt.Preview(0)
	if err != nil {
		t.Fatal(err)
	}
	if cheap.Current != want {
		t.Errorf("got current %+v, want %+v", cheap.Current, want)
	}
	moved := map[string]Move{}
	for _, m := range cheap.Moves {
		moved[m.Orchestrator] = m
		if m.Capability != capT2I || m.Model != modelT2I || m.ClientRegion != "FRA" || math.Abs(m.To-m.From) <= 0.01 {
			t.Errorf("got move %+v, want one of the FRA test class moving by more than 0.01", m)
		}
	}
	if m, ok := moved["cheap"]; !ok || !(m.To > m.From) {
		t.Errorf("got moves %+v, want cheap's share to grow at λ=0", cheap.Moves)
	}
	if !(cheap.CostPerRequest < cur.CostPerRequest) {
		t.Errorf("got preview cost %v at λ=0, want below %v at 0.5", cheap.CostPerRequest, cur.CostPerRequest)
	}
	// A previewed λ on the sweep is the frontier's own point: the console
	// draws the previewed point on the curve.
	for _, pt := range before.Points {
		pv, err := h.opt.Preview(pt.Lambda)
		if err != nil {
			t.Fatal(err)
		}
		if pv.CostPerRequest != pt.CostPerRequest || pv.SLOAttainment != pt.SLOAttainment || pv.P95Ms != pt.P95Ms {
			t.Errorf("preview at swept λ %v: got %+v, want the frontier's point %+v", pt.Lambda, pv, pt)
		}
	}

	for _, bad := range []float64{-0.1, 1.5, math.NaN()} {
		if _, err := h.opt.Preview(bad); err == nil {
			t.Errorf("Preview(%v): got nil error, want a refusal", bad)
		}
	}
	if got := h.pub.count(); got != published {
		t.Errorf("got %d policies published after previews, want %d", got, published)
	}
	if after := h.opt.Frontier(); !reflect.DeepEqual(after, before) {
		t.Errorf("got frontier %+v after previews, want it unchanged %+v", after, before)
	}
}

// TestPreviewDuringSteps runs previews while rounds run; with -race it
// checks that previews only read the round they preview.
func TestPreviewDuringSteps(t *testing.T) {
	h := tradeOff(t)
	h.step(t)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 5 {
				if _, err := h.opt.Preview(float64(i*5+j) / 20); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for range 3 {
		h.clock.advance(5 * time.Second)
		h.step(t)
	}
	wg.Wait()
}

func TestPredictionModel(t *testing.T) {
	// One orchestrator, no queueing: every figure has a closed form.
	cfg := DefaultConfig()
	cfg.Solver.Queueing = false
	cfg.Exploration = 0
	cfg.Catalog = catalogOf(2*time.Second, 0.02, orchSpec{"solo", 2e-9, 8})
	st := stat("solo", 1000, 990, 800, 2000)
	st.BilledAttempts = 990 // successes billed, failures not
	r := newRound(&cfg, &cfg.Catalog, []Stat{st}, &state{ejected: map[string]ejection{}, learned: map[string]learnedCap{}}, t0, 0.5)
	pl := r.plan(&cfg)
	pr := pl.pr
	est := pr.est[pr.p.rows[0].arcs[0]]
	pt := pr.predict(pr.p, &pr.sol, 0.5)

	beta := (990 + est.p*cfg.Prior.SuccessWeight) / (1000 + cfg.Prior.SuccessWeight)
	tests := []struct {
		name      string
		got, want float64
	}{
		{"cost per request", pt.CostPerRequest, 2e-9 * unitsT2I * beta * (2 - est.p)},
		// A fast failure's retry gets its own chance at the SLO.
		{"SLO attainment", pt.SLOAttainment, est.p * est.lat.cdf(2) * (1 + (1-est.p)*(1-math.Max(0, (beta-est.p)/(1-est.p))))},
		{"p95 ms", pt.P95Ms, math.Exp(est.lat.mu+z95*est.lat.sigma) * 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if math.Abs(tt.got-tt.want) > 1e-3*tt.want {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

func TestWithWaiting(t *testing.T) {
	s := lognormal{mu: math.Log(0.8), sigma: 0.4}
	if got := withWaiting(s, 4, 0); got != s {
		t.Errorf("at load 0: got %+v, want the service latency %+v", got, s)
	}
	// The mean of W + S: E[S] + C(n, a)/θ, Erlang C's mean wait.
	rho := 0.8
	got := withWaiting(s, 4, rho)
	want := s.mean() + erlangC(4, rho*4)/(4*(1-rho)/s.mean())
	if math.Abs(got.mean()-want) > 1e-9 {
		t.Errorf("at load %v: got mean %v, want %v", rho, got.mean(), want)
	}
	if !(got.sigma > 0) {
		t.Errorf("got σ %v, want positive", got.sigma)
	}
}

func TestFrontierHandlers(t *testing.T) {
	h := tradeOff(t)
	front, prev := h.opt.FrontierHandler(), h.opt.PreviewHandler()
	get := func(hd http.Handler, target string) (int, map[string]any) {
		t.Helper()
		rec := httptest.NewRecorder()
		hd.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: got Content-Type %q, want application/json", target, ct)
		}
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("%s: got %q, want JSON: %v", target, rec.Body, err)
		}
		return rec.Code, body
	}
	if code, _ := get(prev, "/frontier/preview?lambda=0.2"); code != http.StatusServiceUnavailable {
		t.Errorf("preview before a round: got %d, want 503", code)
	}
	h.step(t)
	code, body := get(front, "/frontier")
	if code != http.StatusOK {
		t.Fatalf("GET /frontier: got %d, want 200", code)
	}
	for _, k := range []string{"version", "lambda", "points", "computed_ms"} {
		if _, ok := body[k]; !ok {
			t.Errorf("GET /frontier: got keys %v, want %q", keys(body), k)
		}
	}
	pts, _ := body["points"].([]any)
	if len(pts) == 0 {
		t.Fatalf("GET /frontier: got no points")
	}
	p0, _ := pts[0].(map[string]any)
	for _, k := range []string{"lambda", "cost_per_request", "slo_attainment", "p95_ms"} {
		if _, ok := p0[k]; !ok {
			t.Errorf("GET /frontier point: got keys %v, want %q", keys(p0), k)
		}
	}

	code, body = get(prev, "/frontier/preview?lambda=0")
	if code != http.StatusOK {
		t.Fatalf("preview: got %d, want 200", code)
	}
	for _, k := range []string{"lambda", "cost_per_request", "slo_attainment", "p95_ms", "current", "moves"} {
		if _, ok := body[k]; !ok {
			t.Errorf("preview: got keys %v, want %q", keys(body), k)
		}
	}
	moves, _ := body["moves"].([]any)
	if len(moves) == 0 {
		t.Fatal("preview at λ=0: got no moves")
	}
	m0, _ := moves[0].(map[string]any)
	for _, k := range []string{"capability", "model", "client_region", "orchestrator", "from", "to"} {
		if _, ok := m0[k]; !ok {
			t.Errorf("preview move: got keys %v, want %q", keys(m0), k)
		}
	}

	for _, q := range []string{"", "?lambda=", "?lambda=x", "?lambda=-1", "?lambda=1.01", "?lambda=NaN"} {
		code, body := get(prev, "/frontier/preview"+q)
		e, _ := body["error"].(map[string]any)
		if code != http.StatusBadRequest || e["message"] == nil {
			t.Errorf("preview%s: got %d %v, want 400 with an error message", q, code, body)
		}
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// BenchmarkPreview is one preview on the round of BenchmarkStep's largest
// fleet: a full solve at another λ, warm-started.
func BenchmarkPreview(b *testing.B) {
	cfg, stats := benchFleet(100, 10, 4, 10, 0.6)
	h := newHarness(b, cfg)
	h.stats.set(stats...)
	h.step(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := h.opt.Preview(0.2); err != nil {
			b.Fatal(err)
		}
	}
}

func TestBends(t *testing.T) {
	// The policies in force gave cheap 0.8 and fast 0.2 (floors aside);
	// the router sent 300 and 300 attempts: it bends toward fast.
	cfg := DefaultConfig()
	cfg.Catalog = catalogOf(2*time.Second, 0.02, orchSpec{"cheap", 1e-9, 16}, orchSpec{"fast", 3e-9, 16})
	stats := []Stat{stat("cheap", 300, 297, 1500, 4000), stat("fast", 300, 299, 500, 1200)}
	st := newState()
	planned := event.Policy{Classes: []event.ClassPolicy{{Capability: capT2I, Model: modelT2I, ClientRegion: "FRA",
		Shares: []event.Share{{Orchestrator: "cheap", Share: 0.8}, {Orchestrator: "fast", Share: 0.2}}}}}
	tests := []struct {
		name    string
		history []time.Duration // ages of the remembered policies
		want    map[string]float64
	}{
		{"no history: no bend", nil, map[string]float64{"cheap": 1, "fast": 1}},
		{"in the window", []time.Duration{50 * time.Second, 5 * time.Second}, map[string]float64{"cheap": 301.0 / 481, "fast": 301.0 / 121}},
		{"older than the window: forgotten", []time.Duration{2 * time.Minute}, map[string]float64{"cheap": 1, "fast": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st.history = nil
			for _, age := range tt.history {
				st.remember(&planned, t0.Add(-age), 10*time.Minute)
			}
			r := newRound(&cfg, &cfg.Catalog, stats, &st, t0, 0.5)
			pr := r.plan(&cfg).pr
			got := map[string]float64{}
			for a, b := range st.bends(pr, t0, cfg.Window) {
				if !pr.rows[pr.p.arcs[a].row].pseudo {
					got[r.orchs[pr.p.arcs[a].orch].cfg.ID] = b
				}
			}
			for id, w := range tt.want {
				if math.Abs(got[id]-w) > 1e-12 {
					t.Errorf("%s: got bend %v, want %v", id, got[id], w)
				}
			}
		})
	}
}
