package router

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// lognormalDist feeds n draws of a lognormal with median p50 ms and shape
// sigma, from a seeded source, into a fresh LatencyDist.
func lognormalDist(n int, p50, sigma float64, c TimeoutConfig) *LatencyDist {
	rng := rand.New(rand.NewPCG(1, 2))
	d := &LatencyDist{}
	for range n {
		d.Observe(p50*math.Exp(sigma*rng.NormFloat64()), c)
	}
	return d
}

func TestLatencyDistQuantile(t *testing.T) {
	c := DefaultTimeoutConfig()
	c.Window = 100_000 // a plain mean over the draws
	for _, tt := range []struct {
		name       string
		p50, sigma float64
		q          float64
	}{
		{"median", 700, 0.4, 0.5},
		{"p99 of a wide one", 1000, 0.6, 0.99},
		{"p99.9 of a narrow one", 300, 0.1, 0.999},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := lognormalDist(20_000, tt.p50, tt.sigma, c)
			got, ok := d.Quantile(tt.q)
			z := map[float64]float64{0.5: 0, 0.99: 2.3263478740, 0.999: 3.0902323062}[tt.q]
			want := tt.p50 * math.Exp(z*tt.sigma)
			if !ok || math.Abs(got/want-1) > 0.03 {
				t.Errorf("got q%.3f = %.1f ms (%v), want %.1f ± 3%%", tt.q, got, ok, want)
			}
		})
	}
	if _, ok := (&LatencyDist{}).Quantile(0.5); ok {
		t.Error("an empty estimate gave a quantile")
	}
}

// TestLatencyDistTracksShift: the EWMA forgets an old regime within a few
// windows, so a slower (or mended) orchestrator's timeout follows it.
func TestLatencyDistTracksShift(t *testing.T) {
	c := DefaultTimeoutConfig()
	d := lognormalDist(1000, 500, 0.3, c)
	before, _ := d.Quantile(0.5)
	for range 5 * c.Window {
		d.Observe(2000, c)
	}
	after, _ := d.Quantile(0.5)
	if math.Abs(before/500-1) > 0.1 || math.Abs(after/2000-1) > 0.05 {
		t.Errorf("got median %.0f ms then %.0f ms, want about 500 then about 2000", before, after)
	}
}

func TestTimeout(t *testing.T) {
	ms := time.Millisecond
	c := DefaultTimeoutConfig()
	warm := lognormalDist(5000, 400, 0.3, c)
	q, _ := warm.Quantile(c.Quantile)
	want := time.Duration(math.Ceil(c.Margin * q * float64(ms)))
	fast := &LatencyDist{}
	for range 50 {
		fast.Observe(10, c)
	}
	off := c
	off.Disabled = true
	for _, tt := range []struct {
		name      string
		cfg       TimeoutConfig
		d         *LatencyDist
		remaining time.Duration
		want      time.Duration
	}{
		{"margin × quantile", c, warm, 10 * time.Second, want},
		{"cold: too few samples", c, lognormalDist(c.MinSamples-1, 400, 0.3, c), 10 * time.Second, 0},
		{"no estimate", c, nil, 10 * time.Second, 0},
		{"the deadline comes first", c, warm, want - ms, 0},
		{"floored at min", c, fast, 10 * time.Second, c.Min},
		{"disabled", off, warm, 10 * time.Second, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cfg.Timeout(tt.d, tt.remaining); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	if want < 400*ms*3 || want > 400*ms*5 {
		t.Errorf("warm timeout %v: want 1.5 × p99.9 of a 400 ms median σ 0.3 lognormal (≈ 1.5 s)", want)
	}
}

func TestTimeoutConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		mod  func(*TimeoutConfig)
		ok   bool
	}{
		{"default", func(*TimeoutConfig) {}, true},
		{"quantile 1", func(c *TimeoutConfig) { c.Quantile = 1 }, false},
		{"margin below 1", func(c *TimeoutConfig) { c.Margin = 0.9 }, false},
		{"negative min", func(c *TimeoutConfig) { c.Min = -1 }, false},
		{"no window", func(c *TimeoutConfig) { c.Window = 0 }, false},
		{"disabled ignores the rest", func(c *TimeoutConfig) { c.Disabled, c.Margin = true, 0 }, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultTimeoutConfig()
			tt.mod(&c)
			if err := c.Validate(); (err == nil) != tt.ok {
				t.Errorf("got %v, want ok %v", err, tt.ok)
			}
		})
	}
}
