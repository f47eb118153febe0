package router

import "testing"

func TestLimiter(t *testing.T) {
	type step struct {
		sig      Signal
		ms       float64
		inFlight int
		times    int
	}
	tests := []struct {
		name    string
		ceiling int
		steps   []step
		lo, hi  int // the limit after the steps, in [lo, hi]
	}{
		{name: "no ceiling, no limit", ceiling: 0, steps: []step{{SignalSuccess, 100, 5, 50}}, lo: 0, hi: 0},
		{name: "starts at the ceiling", ceiling: 12, lo: 12, hi: 12},
		{name: "steady latency keeps the ceiling", ceiling: 12, steps: []step{{SignalSuccess, 100, 12, 200}}, lo: 12, hi: 12},
		{name: "drops back off once per window", ceiling: 20, steps: []step{{SignalDrop, 0, 20, 5}}, lo: 18, hi: 18}, // one window: 20·0.9
		{name: "drops in every window", ceiling: 20, steps: []step{{SignalDrop, 0, 20, 60}}, lo: 13, hi: 13},         // at drops 1, 19, 35, 49: 20·0.9⁴
		{name: "queueing latency shrinks it", ceiling: 40, steps: []step{{SignalSuccess, 100, 40, 300}, {SignalSuccess, 400, 40, 60}}, lo: 1, hi: 20},
		{name: "recovers to the ceiling", ceiling: 40, steps: []step{{SignalDrop, 0, 40, 400}, {SignalSuccess, 100, 40, 200}}, lo: 40, hi: 40},
		{name: "no growth while application-limited", ceiling: 40, steps: []step{{SignalDrop, 0, 40, 30}, {SignalSuccess, 100, 1, 200}}, lo: 36, hi: 36}, // one back-off: 40·0.9
		{name: "floor", ceiling: 8, steps: []step{{SignalDrop, 0, 8, 1000}}, lo: 1, hi: 1},
		{name: "ignored signals", ceiling: 8, steps: []step{{SignalIgnore, 0, 8, 100}}, lo: 8, hi: 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := NewLimiter(DefaultLimitConfig())
			l.SetCeiling(tc.ceiling)
			for _, s := range tc.steps {
				for range s.times {
					l.Observe(s.sig, s.ms, s.inFlight)
				}
			}
			if got := l.Limit(); got < tc.lo || got > tc.hi {
				t.Fatalf("got limit %d, want in [%d, %d]", got, tc.lo, tc.hi)
			}
		})
	}
}

func TestLimiterCeiling(t *testing.T) {
	l := NewLimiter(DefaultLimitConfig())
	l.SetCeiling(10)
	for range 18 { // back-offs at drops 1, 10 and 18 (windows of 9 and 8)
		l.Observe(SignalDrop, 0, 10)
	}
	if got := l.Limit(); got != 7 { // 10·0.9³ = 7.29
		t.Fatalf("got %d after three windows of drops, want 7", got)
	}
	l.SetCeiling(20) // a higher published limit: the estimate stays, then grows
	if got := l.Limit(); got != 7 {
		t.Fatalf("got %d after a higher ceiling, want the estimate 7 kept", got)
	}
	l.SetCeiling(5)
	if got := l.Limit(); got != 5 {
		t.Fatalf("got %d after a lower ceiling, want 5", got)
	}
	l.SetCeiling(0)
	if got := l.Limit(); got != 0 {
		t.Fatalf("got %d without a ceiling, want 0 (none)", got)
	}
	d := DefaultLimitConfig()
	d.Disabled = true
	off := NewLimiter(d)
	off.SetCeiling(9)
	off.Observe(SignalDrop, 0, 9)
	if got := off.Limit(); got != 9 {
		t.Fatalf("disabled: got %d, want the ceiling 9", got)
	}
}

func TestLimitConfigValidate(t *testing.T) {
	if err := DefaultLimitConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for name, mut := range map[string]func(*LimitConfig){
		"tolerance": func(c *LimitConfig) { c.Tolerance = 0.5 },
		"smoothing": func(c *LimitConfig) { c.Smoothing = 0 },
		"samples":   func(c *LimitConfig) { c.LongSamples = 2 },
		"backoff":   func(c *LimitConfig) { c.Backoff = 1.5 },
		"min":       func(c *LimitConfig) { c.MinLimit = 0 },
	} {
		c := DefaultLimitConfig()
		mut(&c)
		if c.Validate() == nil {
			t.Errorf("%s: got nil error", name)
		}
	}
}
