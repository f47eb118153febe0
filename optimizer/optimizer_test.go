package optimizer

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
)

func TestEqualOrchestratorsShareEqually(t *testing.T) {
	tests := []struct {
		name     string
		attempts int64 // per orchestrator in the 60 s window
	}{
		{"light load", 30},
		{"half load", 300},
		{"heavy load", 420},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Catalog = catalogOf(3*time.Second, 0.02, orchSpec{"a", 2e-9, 8}, orchSpec{"b", 2e-9, 8}, orchSpec{"c", 2e-9, 8})
			h := newHarness(t, cfg)
			h.stats.set(
				stat("a", tt.attempts, tt.attempts, 800, 2000),
				stat("b", tt.attempts, tt.attempts, 800, 2000),
				stat("c", tt.attempts, tt.attempts, 800, 2000),
			)
			p := h.step(t)
			checkPolicy(t, p)
			for id, s := range sharesOf(t, p, "FRA") {
				if math.Abs(s.Share-1.0/3) > 0.05 {
					t.Errorf("share of %s: got %.4f, want 1/3 ± 0.05 (%s)", id, s.Share, s.Reason)
				}
			}
		})
	}
}

// failingFleet is a, b healthy and c failing 60% of 100 attempts.
func failingFleet() (Config, []Stat) {
	cfg := DefaultConfig()
	cfg.Catalog = catalogOf(3*time.Second, 0.02, orchSpec{"a", 2e-9, 8}, orchSpec{"b", 2e-9, 8}, orchSpec{"c", 2e-9, 8})
	return cfg, []Stat{
		stat("a", 200, 198, 800, 2000),
		stat("b", 200, 198, 800, 2000),
		stat("c", 100, 40, 800, 2000),
	}
}

func TestFailingOrchestratorIsEjected(t *testing.T) {
	cfg, stats := failingFleet()
	h := newHarness(t, cfg)
	h.stats.set(stats...)
	p := h.step(t)
	checkPolicy(t, p)

	if len(p.Ejections) != 1 || p.Ejections[0].Orchestrator != "c" {
		t.Fatalf("got ejections %+v, want c alone", p.Ejections)
	}
	ej := p.Ejections[0]
	if want := "failure rate 0.60 over 100 attempts in 1m0s"; !strings.Contains(ej.Reason, want) {
		t.Errorf("got reason %q, want it to contain %q", ej.Reason, want)
	}
	if want := t0.Add(cfg.Ejection.Cooldown).UnixMilli(); ej.UntilMs != want {
		t.Errorf("got until %d, want %d (now + cooldown)", ej.UntilMs, want)
	}
	for _, region := range []string{"FRA", ""} {
		s := sharesOf(t, p, region)
		if s["c"].Share != 0 || s["c"].Reason != "ejected" {
			t.Errorf("region %q: got c %+v, want share 0 with the ejection reason", region, s["c"])
		}
		if got := s["a"].Share + s["b"].Share; math.Abs(got-1) > 1e-9 {
			t.Errorf("region %q: got a+b = %v, want 1", region, got)
		}
	}
	if got := value(t, h.opt.m.ejected); got != 1 {
		t.Errorf("got ejected gauge %v, want 1", got)
	}
}

func TestEjectedOrchestratorReturnsAfterCooldown(t *testing.T) {
	cfg, stats := failingFleet()
	h := newHarness(t, cfg)
	h.stats.set(stats...)
	if p := h.step(t); len(p.Ejections) != 1 {
		t.Fatalf("got ejections %+v, want c", p.Ejections)
	}

	// During the cooldown c receives nothing and stays out.
	h.clock.advance(cfg.Ejection.Cooldown / 2)
	h.stats.set(stats[0], stats[1])
	if p := h.step(t); len(p.Ejections) != 1 || sharesOf(t, p, "FRA")["c"].Share != 0 {
		t.Fatalf("mid-cooldown: got ejections %+v, c %+v; want c still out", p.Ejections, sharesOf(t, p, "FRA")["c"])
	}

	// After it: back with (at least) the exploration share.
	h.clock.advance(cfg.Ejection.Cooldown/2 + time.Second)
	p := h.step(t)
	checkPolicy(t, p)
	if len(p.Ejections) != 0 {
		t.Fatalf("after cooldown: got ejections %+v, want none", p.Ejections)
	}
	c := sharesOf(t, p, "FRA")["c"]
	if c.Share < cfg.Exploration || !strings.HasPrefix(c.Reason, "exploration") {
		t.Fatalf("after cooldown: got c %+v, want share ≥ %v for exploration", c, cfg.Exploration)
	}

	// Exploration brings evidence that it recovered: its share grows (at
	// once, or ShareStep of the way a round when the gain is small).
	h.stats.set(stats[0], stats[1], stat("c", 200, 198, 800, 2000))
	prev := c.Share
	for round := 1; round <= 3; round++ {
		h.clock.advance(cfg.Period)
		p = h.step(t)
		got := sharesOf(t, p, "FRA")["c"].Share
		if got < prev || (round == 1 && got <= prev) {
			t.Fatalf("recovered, round %d: got c share %.4f, want it to grow from %.4f", round, got, prev)
		}
		prev = got
	}
	if prev < 0.25 {
		t.Fatalf("recovered: got c share %.4f after 3 rounds, want ≥ 0.25", prev)
	}
}

func TestLambdaTradesCostForLatency(t *testing.T) {
	// cheap costs $0.001 a request but meets the 3 s SLO ~60% of the time;
	// fast costs $0.003 and nearly always meets it.
	tests := []struct {
		lambda float64
		value  float64 // USD per miss
		want   string
	}{
		{0, 0.02, "cheap"},
		{0.1, 0.02, "cheap"},
		{0.5, 0.02, "fast"},
		{0.5, 0.001, "cheap"},
		{1, 0.001, "fast"},
		{1, 0.02, "fast"},
	}
	for _, tt := range tests {
		cfg := DefaultConfig()
		cfg.Lambda = tt.lambda
		cfg.Catalog = catalogOf(3*time.Second, tt.value, orchSpec{"cheap", 1e-9, 200}, orchSpec{"fast", 3e-9, 200})
		h := newHarness(t, cfg)
		h.stats.set(stat("cheap", 300, 300, 2700, 6500), stat("fast", 300, 300, 500, 1200))
		p := h.step(t)
		checkPolicy(t, p)
		if got := sharesOf(t, p, "FRA")[tt.want].Share; got < 0.9 {
			t.Errorf("λ=%v value=%v: got %s share %.4f, want ≥ 0.9 (%+v)", tt.lambda, tt.value, tt.want, got, sharesOf(t, p, "FRA"))
		}
	}
}

func TestSetLambdaAppliesNextRound(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Lambda = 0
	cfg.Catalog = catalogOf(3*time.Second, 0.02, orchSpec{"cheap", 1e-9, 200}, orchSpec{"fast", 3e-9, 200})
	h := newHarness(t, cfg)
	h.stats.set(stat("cheap", 300, 300, 2700, 6500), stat("fast", 300, 300, 500, 1200))
	if got := sharesOf(t, h.step(t), "FRA")["cheap"].Share; got < 0.9 {
		t.Fatalf("λ=0: got cheap share %.4f, want ≥ 0.9", got)
	}
	for _, bad := range []float64{-0.1, 1.5, math.NaN()} {
		if err := h.opt.SetLambda(bad); err == nil {
			t.Errorf("SetLambda(%v): got nil error, want a rejection", bad)
		}
	}
	if err := h.opt.SetLambda(1); err != nil {
		t.Fatal(err)
	}
	p := h.step(t)
	if p.Lambda != 1 || h.opt.Lambda() != 1 {
		t.Errorf("got policy λ %v and Lambda() %v, want 1", p.Lambda, h.opt.Lambda())
	}
	if got := sharesOf(t, p, "FRA")["fast"].Share; got < 0.9 {
		t.Errorf("λ=1: got fast share %.4f, want ≥ 0.9", got)
	}
}

func TestCapacityRespected(t *testing.T) {
	// best is cheaper and faster than big, but small. Without the queueing
	// model only the hard cap stops it; with it, its own queue does sooner.
	tests := []struct {
		name       string
		smallSlots int
		attempts   int64 // per orchestrator in the window
		queueing   bool
	}{
		{"small best orchestrator", 2, 300, false},
		{"tiny best orchestrator", 1, 300, false},
		{"both near full", 6, 800, false},
		{"small best orchestrator, queueing", 2, 300, true},
		{"both near full, queueing", 6, 800, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Solver.Queueing = tt.queueing
			cfg.Catalog = catalogOf(3*time.Second, 0.02, orchSpec{"best", 1e-9, tt.smallSlots}, orchSpec{"big", 2e-9, 40})
			stats := []Stat{stat("best", tt.attempts, tt.attempts, 400, 900), stat("big", tt.attempts, tt.attempts, 1200, 2800)}
			st := newState()
			r := newRound(&cfg, &cfg.Catalog, stats, &st, t0, cfg.Lambda)
			pl := r.plan(&cfg)
			for i, o := range r.orchs {
				if rho := pl.sol.rho[i]; rho > cfg.Capacity.Utilisation+1e-6 {
					t.Errorf("%s: got planned utilisation %.4f, want ≤ %v", o.cfg.ID, rho, cfg.Capacity.Utilisation)
				}
			}
			if rho := pl.sol.rho[0]; !tt.queueing && rho < cfg.Capacity.Utilisation-1e-3 {
				t.Errorf("best: got utilisation %.4f, want it filled to the cap %v", rho, cfg.Capacity.Utilisation)
			}
			if pl.unserved > 1e-9 {
				t.Errorf("got %v req/s unserved, want 0", pl.unserved)
			}
		})
	}
}

func TestOverloadSpreadsOverflowByCapacity(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Catalog = catalogOf(3*time.Second, 0.02, orchSpec{"a", 1e-9, 4}, orchSpec{"b", 1e-9, 12})
	h := newHarness(t, cfg)
	// 40 req/s of ~1 s work against 16 slots.
	h.stats.set(stat("a", 1200, 1200, 900, 2000), stat("b", 1200, 1200, 900, 2000))
	p := h.step(t)
	checkPolicy(t, p)
	s := sharesOf(t, p, "FRA")
	if s["b"].Share < 2*s["a"].Share {
		t.Errorf("got a %.3f b %.3f, want b (3× the slots) well above a", s["a"].Share, s["b"].Share)
	}
	if got := value(t, h.opt.m.unserved); got <= 0 {
		t.Errorf("got unserved ratio %v, want > 0", got)
	}
}

func TestPriorNeedsEvidence(t *testing.T) {
	cfg := DefaultConfig()
	p := cfg.Prior
	lucky := obs{judged: 3, succ: 3}
	proven := obs{judged: 1000, succ: 950}
	fresh := obs{}
	if l, pr := lucky.success(p.SuccessMean, p.SuccessWeight), proven.success(p.SuccessMean, p.SuccessWeight); l >= pr {
		t.Errorf("got 3/3 → %.4f ≥ 950/1000 → %.4f, want the proven one ahead", l, pr)
	}
	if f := fresh.success(p.SuccessMean, p.SuccessWeight); f != p.SuccessMean {
		t.Errorf("got a newcomer's success %v, want the prior mean %v", f, p.SuccessMean)
	}

	// And in the allocation, at λ = 1 where only reliability and speed count.
	cfg.Lambda = 1
	cfg.Catalog = catalogOf(3*time.Second, 0.02, orchSpec{"proven", 2e-9, 100}, orchSpec{"lucky", 2e-9, 100})
	h := newHarness(t, cfg)
	h.stats.set(stat("proven", 1000, 950, 800, 2000), stat("lucky", 3, 3, 800, 2000))
	s := sharesOf(t, h.step(t), "FRA")
	if s["lucky"].Share >= s["proven"].Share {
		t.Errorf("got lucky %.4f ≥ proven %.4f, want the proven one ahead", s["lucky"].Share, s["proven"].Share)
	}
}

func TestVersionsStrictlyIncrease(t *testing.T) {
	cfg, stats := failingFleet()
	tests := []struct {
		name  string
		last  VersionSource
		first uint64
	}{
		{"from the clock", nil, uint64(t0.UnixMilli()) + 1},
		{"above the last published", func(context.Context) (uint64, error) { return uint64(t0.UnixMilli()) + 500, nil }, uint64(t0.UnixMilli()) + 501},
		{"below the clock", func(context.Context) (uint64, error) { return 7, nil }, uint64(t0.UnixMilli()) + 1},
		{"source fails", func(context.Context) (uint64, error) { return 0, errors.New("warehouse down") }, uint64(t0.UnixMilli()) + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []Option
			if tt.last != nil {
				opts = append(opts, WithLastVersion(tt.last))
			}
			h := newHarness(t, cfg, opts...)
			h.stats.set(stats...)
			var prev uint64
			for i := 0; i < 4; i++ {
				p := h.step(t)
				checkPolicy(t, p)
				if i == 0 && p.Version != tt.first {
					t.Errorf("got first version %d, want %d", p.Version, tt.first)
				}
				if p.Version <= prev {
					t.Errorf("round %d: got version %d after %d, want strictly increasing", i, p.Version, prev)
				}
				if p.CreatedMs != h.clock.now().UnixMilli() || p.Producer != cfg.Producer || p.WindowS != 60 {
					t.Errorf("got created %d producer %q window %d, want the clock's %d, %q, 60", p.CreatedMs, p.Producer, p.WindowS, h.clock.now().UnixMilli(), cfg.Producer)
				}
				prev = p.Version
				if i%2 == 1 {
					h.clock.advance(time.Millisecond) // and sometimes the clock does not move
				}
			}
			if got := value(t, h.opt.m.version); got != float64(prev) {
				t.Errorf("got version gauge %v, want %d", got, prev)
			}
		})
	}
}

func TestPublishFailureIsRetriedWithANewerPolicy(t *testing.T) {
	cfg, stats := failingFleet()
	h := newHarness(t, cfg)
	h.stats.set(stats...)
	h.pub.err = errors.New("kafka unavailable")
	p1, err := h.opt.Step(context.Background())
	if err == nil || !strings.Contains(err.Error(), "kafka unavailable") {
		t.Fatalf("got %v, want the publish error", err)
	}
	if got := value(t, h.opt.m.publishErrors); got != 1 {
		t.Errorf("got publish errors %v, want 1", got)
	}
	h.pub.err = nil
	p2 := h.step(t)
	if p2.Version <= p1.Version {
		t.Errorf("got version %d after failed %d, want a newer one", p2.Version, p1.Version)
	}
	if h.pub.count() != 1 {
		t.Errorf("got %d published, want 1", h.pub.count())
	}
	if got := value(t, h.opt.m.runs.WithLabelValues(resultOK)); got != 1 {
		t.Errorf("got ok runs %v, want 1", got)
	}
}

func TestStatsErrorPublishesNothing(t *testing.T) {
	cfg, _ := failingFleet()
	h := newHarness(t, cfg)
	h.stats.err = errors.New("clickhouse down")
	if _, err := h.opt.Step(context.Background()); err == nil {
		t.Fatal("got nil error, want the stats error")
	}
	if h.pub.count() != 0 {
		t.Errorf("got %d published, want 0", h.pub.count())
	}
	if got := value(t, h.opt.m.runs.WithLabelValues(resultStatsError)); got != 1 {
		t.Errorf("got stats_error runs %v, want 1", got)
	}
}

func TestStepReadsTheWindowEndingNow(t *testing.T) {
	cfg, stats := failingFleet()
	h := newHarness(t, cfg)
	h.stats.set(stats...)
	h.clock.advance(42 * time.Second)
	h.step(t)
	w := h.stats.windows[0]
	if want := [2]time.Time{t0.Add(42*time.Second - cfg.Window), t0.Add(42 * time.Second)}; w != want {
		t.Errorf("got window %v, want %v", w, want)
	}
	// A reader that summed whole minutes says how long they span.
	for i := range stats {
		stats[i].Seconds = 120
	}
	h.stats.set(stats...)
	if p := h.step(t); p.WindowS != 120 {
		t.Errorf("got window_s %d, want the reader's 120", p.WindowS)
	}
}

func TestNoTrafficStillGivesAPolicy(t *testing.T) {
	cfg, _ := failingFleet()
	h := newHarness(t, cfg)
	p := h.step(t)
	checkPolicy(t, p)
	s := sharesOf(t, p, "")
	if len(s) != 3 {
		t.Fatalf("got %d shares, want 3", len(s))
	}
	for id, sh := range s {
		if sh.Share < cfg.Exploration {
			t.Errorf("%s: got %v, want ≥ exploration %v", id, sh.Share, cfg.Exploration)
		}
	}
}

func TestManyOrchestratorsCapExploration(t *testing.T) {
	cfg := DefaultConfig()
	var specs []orchSpec
	for i := 0; i < 40; i++ {
		specs = append(specs, orchSpec{id: string(rune('A' + i)), price: 2e-9, slots: 8})
	}
	cfg.Catalog = catalogOf(3*time.Second, 0.02, specs...)
	h := newHarness(t, cfg)
	h.stats.set(stat("A", 100, 100, 500, 1000))
	p := h.step(t)
	checkPolicy(t, p)
	want := cfg.MaxExploration / 40
	for id, s := range sharesOf(t, p, "FRA") {
		if s.Share < want-1e-6 {
			t.Errorf("%s: got %v, want ≥ %v", id, s.Share, want)
		}
	}
}

func TestRunPublishesUntilCancelled(t *testing.T) {
	cfg, stats := failingFleet()
	cfg.Period = 5 * time.Millisecond
	h := newHarness(t, cfg)
	h.stats.set(stats...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.opt.Run(ctx) }()
	advisor := h.opt.AdvisorHandler()
	deadline := time.After(10 * time.Second)
	for i := 0; h.pub.count() < 3; i++ {
		select {
		case <-deadline:
			t.Fatal("got fewer than 3 policies in 10s")
		case <-time.After(time.Millisecond):
		}
		// The knob and the advisor are used while rounds run.
		if err := h.opt.SetLambda(float64(i%10) / 10); err != nil {
			t.Fatal(err)
		}
		var hook []webhookEntry
		get(t, advisor, WebhookPath, &hook)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: got %v, want nil on cancel", err)
	}
}

func TestSetCatalogAppliesNextRound(t *testing.T) {
	cfg, stats := failingFleet()
	h := newHarness(t, cfg)
	h.stats.set(stats...)
	h.step(t)
	if err := h.opt.SetCatalog(Catalog{Orchestrators: []Orchestrator{{ID: "x"}, {ID: "x"}}}); err == nil {
		t.Fatal("got nil error for duplicate ids, want a rejection")
	}
	next := catalogOf(3*time.Second, 0.02, orchSpec{"a", 2e-9, 8}, orchSpec{"d", 2e-9, 8})
	if err := h.opt.SetCatalog(next); err != nil {
		t.Fatal(err)
	}
	p := h.step(t)
	checkPolicy(t, p)
	s := sharesOf(t, p, "FRA")
	if _, ok := s["d"]; !ok || len(s) != 2 {
		t.Errorf("got shares %+v, want a and d", s)
	}
	if len(p.Ejections) != 0 {
		t.Errorf("got ejections %+v, want none: c left the catalog", p.Ejections)
	}
	if n := series(h.opt.m.share); n != 2 {
		t.Errorf("got %d share series, want 2 (bounded by the catalog)", n)
	}
}

func TestPoliciesOfAMixedFleetValidate(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Catalog = Catalog{
		Orchestrators: []Orchestrator{
			{ID: "o1", URL: "https://o1:8935", Classes: []ClassPrice{{Capability: "llm", Model: "llama", PricePerUnit: 5e-6}, {Capability: capT2I, Model: modelT2I}}},
			{ID: "o2", URL: "https://o2:8935", MaxInFlight: 2, Classes: []ClassPrice{{Capability: "llm", Model: "llama", PricePerUnit: 4e-6}}},
			{ID: "o3", Classes: []ClassPrice{{Capability: capT2I, Model: modelT2I, PricePerUnit: 3e-9}, {Capability: "upscale"}}},
		},
		Classes: []Class{{Capability: "llm", Model: "llama", SLO: 2 * time.Second, Units: 256}},
	}
	h := newHarness(t, cfg)
	h.stats.set(
		Stat{Orchestrator: "o1", Capability: "llm", Model: "llama", ClientRegion: "LAX", Attempts: 100, Successes: 90, Timeouts: 10, LatencyP50Ms: 600, LatencyP90Ms: 1100, LatencyP99Ms: 1900},
		Stat{Orchestrator: "o2", Capability: "llm", Model: "llama", ClientRegion: "LAX", Attempts: 100, Successes: 99, Busy: 1, LatencyP50Ms: 500},
		Stat{Orchestrator: "o1", Capability: capT2I, Model: modelT2I, ClientRegion: "", Attempts: 10, Successes: 10, LatencyP50Ms: 900, BilledAttempts: 10, BilledCost: 0.03},
		Stat{Orchestrator: "o3", Capability: capT2I, Model: modelT2I, ClientRegion: "SIN", Attempts: 10, Successes: 2, ClientErrors: 8},
		Stat{Orchestrator: "unknown", Capability: capT2I, Model: modelT2I, ClientRegion: "SIN", Attempts: 5, Successes: 5},
		Stat{Orchestrator: "o1", Capability: "no-such-class", Attempts: 5},
	)
	p := h.step(t)
	checkPolicy(t, p)
	got := map[string]int{}
	for _, c := range p.Classes {
		got[c.Capability+"/"+c.Model+"@"+c.ClientRegion] = len(c.Shares)
	}
	want := map[string]int{"llm/llama@": 2, "llm/llama@LAX": 2, "text-to-image/sdxl@": 2, "text-to-image/sdxl@SIN": 2, "upscale/@": 1}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("entry %s: got %d shares, want %d (entries %v)", k, got[k], n, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got entries %v, want %v", got, want)
	}
}

func TestNewRejectsBadInput(t *testing.T) {
	cfg := DefaultConfig()
	if _, err := New(cfg, nil, &fakePub{}, deps.Deps{}); err == nil {
		t.Error("got nil error without a stats reader")
	}
	cfg.Window = 0
	if _, err := New(cfg, &fakeStats{}, &fakePub{}, deps.Deps{}); err == nil {
		t.Error("got nil error for a zero window")
	}
}

var _ Publisher = (*fakePub)(nil)
var _ StatsReader = (*fakeStats)(nil)
var _ = event.SchemaVersion

// TestClassLambdaOverridesGlobal: a class with a λ of its own is weighed
// with it whatever the global λ, until it is cleared.
func TestClassLambdaOverridesGlobal(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Lambda = 0
	cfg.ClassLambdas = []ClassLambda{{Capability: capT2I, Model: modelT2I, Lambda: 1}}
	cfg.Catalog = catalogOf(3*time.Second, 0.02, orchSpec{"cheap", 1e-9, 200}, orchSpec{"fast", 3e-9, 200})
	h := newHarness(t, cfg)
	h.stats.set(stat("cheap", 300, 300, 2700, 6500), stat("fast", 300, 300, 500, 1200))
	if got := sharesOf(t, h.step(t), "FRA")["fast"].Share; got < 0.9 {
		t.Fatalf("global λ 0, class λ 1: got fast share %.4f, want ≥ 0.9", got)
	}
	if err := h.opt.SetClassLambda(capT2I, modelT2I, 0, true); err != nil {
		t.Fatal(err)
	}
	if got := sharesOf(t, h.step(t), "FRA")["cheap"].Share; got < 0.9 {
		t.Errorf("class λ cleared, global λ 0: got cheap share %.4f, want ≥ 0.9", got)
	}
	if err := h.opt.SetClassLambda(capT2I, modelT2I, 0.9, false); err != nil {
		t.Fatal(err)
	}
	if got := h.opt.ClassLambdas(); len(got) != 1 || got[0].Lambda != 0.9 {
		t.Errorf("ClassLambdas: got %+v, want t2i at 0.9", got)
	}
	for _, bad := range []struct {
		cap, model string
		l          float64
	}{{"", modelT2I, 0.5}, {capT2I, modelT2I, 2}} {
		if err := h.opt.SetClassLambda(bad.cap, bad.model, bad.l, false); err == nil {
			t.Errorf("SetClassLambda(%q, %q, %v): got nil error", bad.cap, bad.model, bad.l)
		}
	}
	cfg.ClassLambdas = append(cfg.ClassLambdas, ClassLambda{Capability: capT2I, Model: modelT2I, Lambda: 0.2})
	if err := cfg.Validate(); err == nil {
		t.Error("a class listed twice in class_lambdas: got nil error")
	}
}
