package router

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
)

// LimitConfig tunes the adaptive concurrency limit of each orchestrator
// (Limiter). The rule is Netflix concurrency-limits' Gradient2, bounded
// above by the published limit:
//
//	short   = EWMA of successful attempts' latency over ShortSamples
//	long    = the no-queueing baseline: a sample below it pulls it down with
//	          weight 1/ShortSamples, one above pulls it up with 1/LongSamples,
//	          so it settles at a low quantile and bursts of queueing barely move it
//	g       = clamp(Tolerance·long/short, 0.5, 1)
//	target  = limit·g + QueueSlots              (the queue it may build)
//	limit   = limit·(1−Smoothing) + target·Smoothing, in [MinLimit, ceiling]
//
// At an orchestrator with c servers kept full, a limit L queues L − c
// requests, so short grows as L/c and the rule settles near
// L ≈ Tolerance·(long/mean)·c + QueueSlots: a request or two waits in the
// orchestrator's queue, the rest at the router's edge, where they can be
// ordered and shed. (Gradient2 averages its baseline symmetrically, so
// under sustained or frequent load the baseline drifts up with the
// queueing it should detect; the asymmetric baseline is Vegas' minimum
// RTT, smoothed against the spread of AI jobs' service times.)
//
// and a busy answer (503) or a timeout multiplies the limit by Backoff
// (the drop signal of a loss-based controller), at most once per window
// of limit attempts, as TCP backs off once per round trip however many
// packets it lost. The limit does not grow while fewer than half its
// slots are in use (nothing was learned about more). The ceiling is the configured or published limit: the router
// never goes above it, only below.
type LimitConfig struct {
	// Disabled keeps every limit at its ceiling. Default false.
	Disabled bool `yaml:"disabled"`
	// Tolerance is how much slower than the baseline recent attempts may
	// be before the limit shrinks. Default 1.5 (Gradient2's).
	Tolerance float64 `yaml:"tolerance"`
	// QueueSlots is the queue the limit allows at the orchestrator. Default 2.
	QueueSlots float64 `yaml:"queue_slots"`
	// Smoothing weighs each new target. Default 0.2 (Gradient2's).
	Smoothing float64 `yaml:"smoothing"`
	// ShortSamples and LongSamples are the two EWMAs' spans in samples. Defaults 10 and 200.
	ShortSamples int `yaml:"short_samples"`
	LongSamples  int `yaml:"long_samples"`
	// Backoff multiplies the limit on a busy answer or a timeout. Default 0.9.
	Backoff float64 `yaml:"backoff"`
	// MinLimit is the floor. Default 1.
	MinLimit int `yaml:"min_limit"`
}

// DefaultLimitConfig returns the defaults written on LimitConfig.
func DefaultLimitConfig() LimitConfig {
	return LimitConfig{Tolerance: 1.5, QueueSlots: 2, Smoothing: 0.2, ShortSamples: 10, LongSamples: 200, Backoff: 0.9, MinLimit: 1}
}

// Validate reports settings that cannot work.
func (c LimitConfig) Validate() error {
	switch {
	case !(c.Tolerance >= 1) || math.IsInf(c.Tolerance, 0):
		return fmt.Errorf("shaping.limit.tolerance %v must be at least 1", c.Tolerance)
	case !(c.QueueSlots >= 0) || math.IsInf(c.QueueSlots, 0):
		return fmt.Errorf("shaping.limit.queue_slots %v must be finite and non-negative", c.QueueSlots)
	case !(c.Smoothing > 0 && c.Smoothing <= 1):
		return fmt.Errorf("shaping.limit.smoothing %v not in (0, 1]", c.Smoothing)
	case c.ShortSamples < 1 || c.LongSamples < c.ShortSamples:
		return fmt.Errorf("shaping.limit: short_samples %d and long_samples %d: want 1 ≤ short ≤ long", c.ShortSamples, c.LongSamples)
	case !(c.Backoff > 0 && c.Backoff <= 1):
		return fmt.Errorf("shaping.limit.backoff %v not in (0, 1]", c.Backoff)
	case c.MinLimit < 1:
		return fmt.Errorf("shaping.limit.min_limit %d must be at least 1", c.MinLimit)
	}
	return nil
}

// Signal is what an attempt's end tells the limiter.
type Signal uint8

// Limiter signals.
const (
	SignalIgnore  Signal = iota // a client error, a cancel: says nothing about load
	SignalSuccess               // a 2xx: its latency is a sample
	SignalDrop                  // a busy answer (503) or a timeout: back off
)

// Limiter is the adaptive concurrency limit of one orchestrator (see
// LimitConfig for the rule). The router keeps one per orchestrator and the
// simulator's closed loop runs the same type. Limit is lock-free; the
// other methods serialise. The zero value is not usable: NewLimiter.
type Limiter struct {
	cfg   LimitConfig
	cur   atomic.Int64 // current limit; 0 = no ceiling, no limit
	mu    sync.Mutex
	ceil  int
	est   float64 // the limit, continuous
	short float64 // ms; 0 = no sample yet
	long  float64
	// since counts attempts ended since the last back-off.
	since int
}

// NewLimiter returns a limiter without a ceiling (no limit).
func NewLimiter(cfg LimitConfig) *Limiter { return &Limiter{cfg: cfg, since: math.MaxInt32} }

// Limit is the limit in force: 0 = none (no ceiling).
func (l *Limiter) Limit() int { return int(l.cur.Load()) }

// Ceiling is the configured or published limit the limiter adapts under.
func (l *Limiter) Ceiling() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ceil
}

// SetCeiling sets the limit the limiter may not exceed (0 = none). A
// limiter without a ceiling before starts at it; one above the new
// ceiling drops to it; one below keeps its estimate.
func (l *Limiter) SetCeiling(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n < 0 {
		n = 0
	}
	if l.ceil == 0 || l.est > float64(n) || l.cfg.Disabled {
		l.est = float64(n)
	}
	l.ceil = n
	l.publish()
}

// Observe folds in one attempt's end: sig, its latency in ms (successes
// only) and the attempts in flight to the orchestrator when it ended, this
// one included.
func (l *Limiter) Observe(sig Signal, latencyMs float64, inFlight int) {
	if sig == SignalIgnore || l.cfg.Disabled {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ceil == 0 {
		return
	}
	c := &l.cfg
	l.since++
	switch sig {
	case SignalDrop:
		if l.since < max(1, int(l.est)) {
			return // backed off already for this window
		}
		l.since = 0
		l.est *= c.Backoff
	case SignalSuccess:
		if !(latencyMs > 0) || math.IsInf(latencyMs, 0) {
			return
		}
		if l.short == 0 {
			l.short, l.long = latencyMs, latencyMs
		} else {
			l.short += (latencyMs - l.short) / float64(c.ShortSamples)
			if latencyMs < l.long {
				l.long += (latencyMs - l.long) / float64(c.ShortSamples)
			} else {
				l.long += (latencyMs - l.long) / float64(c.LongSamples)
			}
		}
		g := math.Max(0.5, math.Min(1, c.Tolerance*l.long/l.short))
		target := l.est*g + c.QueueSlots
		if target > l.est && float64(inFlight) < l.est/2 {
			return // application-limited: no evidence that more fits
		}
		l.est = l.est*(1-c.Smoothing) + target*c.Smoothing
	}
	l.publish()
}

// publish clamps the estimate and stores the integer limit; mu held.
func (l *Limiter) publish() {
	if l.ceil == 0 {
		l.est = 0
		l.cur.Store(0)
		return
	}
	lo := float64(min(l.cfg.MinLimit, l.ceil))
	l.est = math.Max(lo, math.Min(float64(l.ceil), l.est))
	l.cur.Store(int64(math.Floor(l.est + 1e-9)))
}
