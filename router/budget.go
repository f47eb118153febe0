package router

import (
	"sync"
	"time"
)

const budgetSlots = 10

// retryBudget bounds retries across all requests: a retry is allowed if,
// counting it,
//
//	retries(window) ≤ ratio × requests(window) + minPerSecond × window
//
// counted in budgetSlots slots that age out one by one, so the budget is a
// token bucket whose deposits (ratio per request) expire after the window.
// It keeps a retry storm from multiplying load on a fleet that is already
// failing, while a quiet router (minPerSecond) can still retry.
type retryBudget struct {
	mu       sync.Mutex
	cfg      RetryBudgetConfig
	slot     time.Duration
	requests [budgetSlots]float64
	retries  [budgetSlots]float64
	epoch    int64 // index of the newest slot: Unix ns / slot
}

func newRetryBudget(cfg RetryBudgetConfig) *retryBudget {
	return &retryBudget{cfg: cfg, slot: max(cfg.Window/budgetSlots, time.Nanosecond)}
}

// setConfig applies a reloaded configuration; counts are kept.
func (b *retryBudget) setConfig(cfg RetryBudgetConfig) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if slot := max(cfg.Window/budgetSlots, time.Nanosecond); slot != b.slot {
		b.requests, b.retries, b.epoch = [budgetSlots]float64{}, [budgetSlots]float64{}, 0
		b.slot = slot
	}
	b.cfg = cfg
}

// advance moves the window to now, clearing slots that aged out. mu held.
func (b *retryBudget) advance(now time.Time) int {
	e := now.UnixNano() / int64(b.slot)
	if e > b.epoch {
		gap := e - b.epoch
		if gap > budgetSlots {
			gap = budgetSlots
		}
		for i := int64(1); i <= gap; i++ {
			idx := (b.epoch + i) % budgetSlots
			b.requests[idx], b.retries[idx] = 0, 0
		}
		b.epoch = e
	}
	return int(b.epoch % budgetSlots)
}

// request records one client request.
func (b *retryBudget) request(now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.requests[b.advance(now)]++
}

// tryRetry spends one retry if the budget allows it.
func (b *retryBudget) tryRetry(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	idx := b.advance(now)
	var reqs, rets float64
	for i := range budgetSlots {
		reqs += b.requests[i]
		rets += b.retries[i]
	}
	allowed := b.cfg.Ratio*reqs + b.cfg.MinPerSecond*b.cfg.Window.Seconds()
	if rets+1 > allowed {
		return false
	}
	b.retries[idx]++
	return true
}

// RetryBudget is the router's retry budget for code that routes outside
// the HTTP path (the simulator's loopgate policy): the same counting, so
// a bench run refuses exactly the retries the router would.
//
//	b := router.NewRetryBudget(cfg.RetryBudget)
//	b.Request(now)          // once per client request
//	if b.TryRetry(now) { … } // before every retry
type RetryBudget struct{ b *retryBudget }

// NewRetryBudget returns an empty budget with cfg.
func NewRetryBudget(cfg RetryBudgetConfig) *RetryBudget {
	return &RetryBudget{b: newRetryBudget(cfg)}
}

// Request records one client request at now.
func (r *RetryBudget) Request(now time.Time) { r.b.request(now) }

// TryRetry spends one retry at now if the budget allows it, and reports
// whether it did.
func (r *RetryBudget) TryRetry(now time.Time) bool { return r.b.tryRetry(now) }
