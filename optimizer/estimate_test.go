package optimizer

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mut  func(c *Config)
		want string // substring of the error; "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"no producer", func(c *Config) { c.Producer = "" }, "producer"},
		{"zero period", func(c *Config) { c.Period = 0 }, "period"},
		{"lambda above 1", func(c *Config) { c.Lambda = 1.5 }, "lambda"},
		{"prior mean 1", func(c *Config) { c.Prior.SuccessMean = 1 }, "success_mean"},
		{"exploration above max", func(c *Config) { c.Exploration = 0.3 }, "exploration"},
		{"cooldown shorter than window", func(c *Config) { c.Ejection.Cooldown = 30 * time.Second }, "cooldown"},
		{"utilisation 1", func(c *Config) { c.Capacity.Utilisation = 1 }, "utilisation"},
		{"no iterations", func(c *Config) { c.Solver.MaxIterations = 0 }, "max_iterations"},
		{"duplicate orchestrator", func(c *Config) {
			c.Catalog.Orchestrators = []Orchestrator{{ID: "a"}, {ID: "a"}}
		}, "not unique"},
		{"bad address", func(c *Config) {
			c.Catalog.Orchestrators = []Orchestrator{{ID: "a", Address: "0x12"}}
		}, "address"},
		{"negative price", func(c *Config) {
			c.Catalog.Orchestrators = []Orchestrator{{ID: "a", Classes: []ClassPrice{{Capability: "llm", PricePerUnit: -1}}}}
		}, "price_per_unit"},
		{"negative value", func(c *Config) { c.Catalog.Classes = []Class{{Capability: "llm", Value: -1}} }, "value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mut(&c)
			err := c.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("got %v, want valid", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("got %v, want an error about %q", err, tt.want)
			}
		})
	}
}

func TestFitLognormal(t *testing.T) {
	tests := []struct {
		name               string
		p50, p90, p95, p99 float64
		wantMedian         float64 // seconds
		wantSigma          float64 // NaN = unknown
		ok                 bool
	}{
		{"exact lognormal", 1000, 1000 * math.Exp(0.5*z90), 1000 * math.Exp(0.5*z95), 1000 * math.Exp(0.5*z99), 1, 0.5, true},
		{"p50 and p99 only", 800, 0, 0, 800 * math.Exp(0.3*z99), 0.8, 0.3, true},
		{"p50 only", 500, 0, 0, 0, 0.5, math.NaN(), true},
		{"constant", 200, 200, 200, 200, 0.2, 0, true},
		{"no median", 0, 900, 0, 1500, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, ok := fitLognormal(tt.p50, tt.p90, tt.p95, tt.p99)
			if ok != tt.ok {
				t.Fatalf("got ok %v, want %v", ok, tt.ok)
			}
			if !ok {
				return
			}
			if math.Abs(l.median()-tt.wantMedian) > 1e-9 {
				t.Errorf("got median %v, want %v", l.median(), tt.wantMedian)
			}
			if math.IsNaN(tt.wantSigma) != math.IsNaN(l.sigma) || (!math.IsNaN(tt.wantSigma) && math.Abs(l.sigma-tt.wantSigma) > 1e-9) {
				t.Errorf("got sigma %v, want %v", l.sigma, tt.wantSigma)
			}
		})
	}
}

func TestErlangC(t *testing.T) {
	tests := []struct {
		c, a, want float64
	}{
		{1, 0.5, 0.5},               // M/M/1: P(wait) = ρ
		{2, 1, 1.0 / 3},             // textbook value
		{10, 8, 0.409},              // tables: C(10, 8) ≈ 0.409
		{4, 0, 0},                   // no load
		{4, 4, 1},                   // saturated
		{2.5, 1.5, erlangC(3, 1.5)}, // fractional servers round up
	}
	for _, tt := range tests {
		if got := erlangC(tt.c, tt.a); math.Abs(got-tt.want) > 1e-3 {
			t.Errorf("erlangC(%v, %v): got %.4f, want %.4f", tt.c, tt.a, got, tt.want)
		}
	}
}

func TestOnTimeFallsWithLoad(t *testing.T) {
	s := lognormal{mu: math.Log(1), sigma: 0.4}
	prev := 2.0
	for _, rho := range []float64{0, 0.3, 0.6, 0.8, 0.9, 0.95} {
		got := onTime(s, 4, rho, 2.5)
		if got > prev+1e-12 || got < 0 || got > 1 {
			t.Errorf("ρ=%v: got %v after %v, want a probability falling with load", rho, got, prev)
		}
		prev = got
	}
	if got, want := onTime(s, 4, 0, 2.5), s.cdf(2.5); got != want {
		t.Errorf("no load: got %v, want the service CDF %v", got, want)
	}
	// The spline agrees with the direct computation between grid points.
	c := newCurve(s, 4, 2.5, true)
	for _, rho := range []float64{0.1, 0.42, 0.77, 0.93} {
		v, _ := c.at(rho)
		if want := onTime(s, 4, rho, 2.5); math.Abs(v-want) > 0.01 {
			t.Errorf("curve at %v: got %v, want %v ± 0.01", rho, v, want)
		}
	}
}

func TestLatencyShrinksTowardThePrior(t *testing.T) {
	prior := lognormal{mu: math.Log(2), sigma: 0.5}
	fast, _ := fitLognormal(500, 0, 0, 1000)
	tests := []struct {
		name      string
		successes int64
		wantNear  float64 // median, seconds
	}{
		{"no data", 0, 2},
		{"three samples barely move it", 3, 2 * math.Pow(0.25, 3.0/23)},
		{"much data wins", 10000, 0.5},
	}
	for _, tt := range tests {
		var o obs
		s := Stat{Attempts: tt.successes, Successes: tt.successes}
		o.add(&s, fast, tt.successes > 0)
		got := o.latency(prior, 20).median()
		if math.Abs(got-tt.wantNear) > 0.01 {
			t.Errorf("%s: got median %.3f s, want %.3f", tt.name, got, tt.wantNear)
		}
	}
}

func TestLearnedCapacityFromBusyAnswers(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Catalog = catalogOf(3*time.Second, 0.02, orchSpec{"a", 2e-9, 16}, orchSpec{"b", 2e-9, 16})
	busy := stat("a", 300, 200, 1000, 2000)
	busy.Errors, busy.Busy = 0, 100
	st := newState()
	r := newRound(&cfg, &cfg.Catalog, []Stat{busy, stat("b", 300, 300, 1000, 2000)}, &st, t0, cfg.Lambda)
	if !r.orchs[0].learned || r.orchs[0].slots >= 16 || r.orchs[0].slots < 1 {
		t.Fatalf("got a slots %v learned %v, want a capacity below the catalog's 16 learned from busy answers", r.orchs[0].slots, r.orchs[0].learned)
	}
	if len(r.ejections) != 0 {
		t.Errorf("got ejections %+v, want none: busy is not a failure", r.ejections)
	}
	// Remembered for Capacity.Memory, then forgotten.
	r = newRound(&cfg, &cfg.Catalog, nil, &st, t0.Add(cfg.Capacity.Memory/2), cfg.Lambda)
	if !r.orchs[0].learned {
		t.Errorf("got a slots %v, want the learned capacity kept within memory", r.orchs[0].slots)
	}
	r = newRound(&cfg, &cfg.Catalog, nil, &st, t0.Add(cfg.Capacity.Memory), cfg.Lambda)
	if r.orchs[0].learned || r.orchs[0].slots != 16 {
		t.Errorf("got a slots %v, want the catalog's 16 after memory", r.orchs[0].slots)
	}
}

func TestEjectionIsCappedByMaxFraction(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Catalog = catalogOf(3*time.Second, 0.02, orchSpec{"a", 2e-9, 8}, orchSpec{"b", 2e-9, 8}, orchSpec{"c", 2e-9, 8}, orchSpec{"d", 2e-9, 8})
	st := newState()
	stats := []Stat{stat("a", 100, 10, 800, 2000), stat("b", 100, 30, 800, 2000), stat("c", 100, 20, 800, 2000), stat("d", 100, 100, 800, 2000)}
	r := newRound(&cfg, &cfg.Catalog, stats, &st, t0, cfg.Lambda)
	var got []string
	for _, e := range r.ejections {
		got = append(got, r.orchs[e.orch].cfg.ID)
	}
	if strings.Join(got, ",") != "a,c" {
		t.Errorf("got ejected %v, want the two worst of four (a, c)", got)
	}
}

func TestRoundSharesSumToOne(t *testing.T) {
	tests := [][]float64{
		{1.0 / 3, 1.0 / 3, 1.0 / 3},
		{0.1234567891, 0.8765432109},
		{2, 2, 4}, // unnormalised
		{0.02, 0.02, 0.96},
		{0, 0},
	}
	for _, in := range tests {
		out := roundShares(in)
		sum := 0.0
		for _, s := range out {
			sum += s
			if s < 0 {
				t.Errorf("%v: got negative share in %v", in, out)
			}
		}
		want := 1.0
		if in[0] == 0 {
			want = 0
		}
		if math.Abs(sum-want) > 1e-12 {
			t.Errorf("%v: got %v summing to %v, want %v", in, out, sum, want)
		}
	}
}
