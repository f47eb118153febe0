package router

import (
	"sync"
	"time"
)

// attemptTimeouts derives each attempt's own timeout (TimeoutConfig) from
// the time to first byte orchestrators have shown: one LatencyDist per
// orchestrator × class and one per class, which sets the timeout on an
// orchestrator not yet seen in the class. It is the closed loop's rule
// (sim/closedloop), made safe for concurrent requests. The configured
// attempt_timeout stays the ceiling: a derived timeout only shortens it.
type attemptTimeouts struct {
	mu      sync.Mutex
	byOrch  map[orchClass]*LatencyDist
	byClass map[classKey]*LatencyDist
}

type orchClass struct {
	orch  string
	class classKey
}

func newAttemptTimeouts() *attemptTimeouts {
	return &attemptTimeouts{byOrch: map[orchClass]*LatencyDist{}, byClass: map[classKey]*LatencyDist{}}
}

// timeout is the attempt timeout on orchestrator orch for class: the
// derived one when cfg sets one shorter than ceiling, else ceiling.
// remaining is the time left before the request's deadline.
func (t *attemptTimeouts) timeout(cfg TimeoutConfig, orch string, class classKey, remaining, ceiling time.Duration) time.Duration {
	if cfg.Disabled {
		return ceiling
	}
	t.mu.Lock()
	derived := cfg.TimeoutFor(t.byOrch[orchClass{orch, class}], t.byClass[class], remaining)
	t.mu.Unlock()
	if derived > 0 && derived < ceiling {
		return derived
	}
	return ceiling
}

// observe folds a successful attempt's time to first byte in.
func (t *attemptTimeouts) observe(cfg TimeoutConfig, orch string, class classKey, ttfb time.Duration) {
	if cfg.Disabled {
		return
	}
	ms := float64(ttfb) / float64(time.Millisecond)
	k := orchClass{orch, class}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byOrch[k] == nil {
		t.byOrch[k] = &LatencyDist{}
	}
	if t.byClass[class] == nil {
		t.byClass[class] = &LatencyDist{}
	}
	t.byOrch[k].Observe(ms, cfg)
	t.byClass[class].Observe(ms, cfg)
}
