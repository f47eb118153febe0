package router

import (
	"testing"
	"time"
)

// TestAttemptTimeouts: a cold orchestrator takes its class's estimate, a
// warm one its own; a derived timeout never lengthens the ceiling; the
// deadline and Disabled turn it off.
func TestAttemptTimeouts(t *testing.T) {
	cfg := DefaultTimeoutConfig()
	cfg.MinSamples, cfg.Min = 3, time.Millisecond
	k := classKey{"text-to-image", "m"}
	at := newAttemptTimeouts()
	for range 5 {
		at.observe(cfg, "slow", k, 400*time.Millisecond)
	}
	const ceiling, remaining = time.Minute, 2 * time.Minute
	own := at.timeout(cfg, "slow", k, remaining, ceiling)
	if want := time.Duration(1.5 * 400 * float64(time.Millisecond)); own < want-time.Millisecond || own > want+time.Millisecond {
		t.Errorf("warm orchestrator: got %v, want %v (1.5 × a constant 400 ms)", own, want)
	}
	if got := at.timeout(cfg, "cold", k, remaining, ceiling); got != own {
		t.Errorf("cold orchestrator: got %v, want the class's %v", got, own)
	}
	for range 5 {
		at.observe(cfg, "fast", k, 20*time.Millisecond)
	}
	if got := at.timeout(cfg, "fast", k, remaining, ceiling); got >= own {
		t.Errorf("fast orchestrator: got %v, want its own, below the slow one's %v", got, own)
	}
	for _, tc := range []struct {
		name               string
		cfg                TimeoutConfig
		remaining, ceiling time.Duration
		want               time.Duration
	}{
		{"ceiling below", cfg, remaining, 100 * time.Millisecond, 100 * time.Millisecond},
		{"past the deadline", cfg, 500 * time.Millisecond, ceiling, ceiling},
		{"disabled", TimeoutConfig{Disabled: true}, remaining, ceiling, ceiling},
		{"other class", cfg, remaining, ceiling, ceiling},
	} {
		key := k
		if tc.name == "other class" {
			key = classKey{"llm", "m"}
		}
		if got := at.timeout(tc.cfg, "slow", key, tc.remaining, tc.ceiling); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}
