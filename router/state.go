package router

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// orchState is the fast-loop state of one orchestrator: what this router
// has seen of it. It survives Reload for orchestrators that stay. Readers
// (the selector) use atomics only; writers serialise on mu.
type orchState struct {
	inFlight       atomic.Int64
	latency        atomic.Uint64 // float64 bits, ms: peak-EWMA estimate
	latencyAtNs    atomic.Int64  // Unix ns of the last observation; 0 = never
	failures       atomic.Int64  // consecutive
	ejectedUntilMs atomic.Int64  // local ejection end, Unix ms; 0 = none

	mu         sync.Mutex
	ejectLevel int // ejections since the last success; guarded by mu

	// lim adapts the in-flight limit under the configured or published
	// one (limit.go); nil in states made outside buildSnapshot.
	lim *Limiter
}

// effLimit is the in-flight limit in force: the adaptive limit when there
// is one, else static (the configured and published limits combined).
func (s *orchState) effLimit(static int) int {
	if s.lim != nil {
		if a := s.lim.Limit(); a > 0 && (static == 0 || a < static) {
			return a
		}
	}
	return static
}

// tryAcquire takes an in-flight slot if the orchestrator is under limit (0 = no limit).
func (s *orchState) tryAcquire(limit int) bool {
	for {
		cur := s.inFlight.Load()
		if limit > 0 && cur >= int64(limit) {
			return false
		}
		if s.inFlight.CompareAndSwap(cur, cur+1) {
			return true
		}
	}
}

func (s *orchState) release() { s.inFlight.Add(-1) }

// observeLatency folds one latency sample into the peak-EWMA estimate: a
// sample above the estimate replaces it at once (peak), a lower one pulls it
// down with weight 1 − e^(−Δt/τ), Δt being the time since the last sample.
func (s *orchState) observeLatency(now time.Time, ms float64, tau time.Duration) {
	if !(ms >= 0) || math.IsInf(ms, 0) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	at := s.latencyAtNs.Load()
	prev := math.Float64frombits(s.latency.Load())
	next := ms
	if at != 0 && ms < prev {
		dt := float64(now.UnixNano() - at)
		if dt < 0 {
			dt = 0
		}
		w := math.Exp(-dt / float64(tau))
		next = prev*w + ms*(1-w)
	}
	s.latency.Store(math.Float64bits(next))
	s.latencyAtNs.Store(now.UnixNano())
}

// latencyView returns the estimate and its freshness S/(S+age) in [0, 1]:
// an estimate nobody refreshed fades to neutral, so an orchestrator that
// was slow once gets traffic again to show it recovered.
func (s *orchState) latencyView(now time.Time, stale time.Duration) (ms, freshness float64) {
	at := s.latencyAtNs.Load()
	if at == 0 {
		return 0, 0
	}
	age := float64(now.UnixNano() - at)
	if age < 0 {
		age = 0
	}
	st := float64(stale)
	return math.Float64frombits(s.latency.Load()), st / (st + age)
}

// succeeded resets the failure streak and the ejection backoff.
func (s *orchState) succeeded() {
	if s.failures.Load() == 0 {
		return // common case: no lock
	}
	s.mu.Lock()
	s.failures.Store(0)
	s.ejectLevel = 0
	s.mu.Unlock()
}

// failed counts a failure. At ejectAfter consecutive failures, and when not
// already ejected, the orchestrator is ejected for base·2^(level−1), capped
// at max. The streak is kept when an ejection ends, so the first failure
// after it ejects again, for twice as long: the end of an ejection is a
// probe. It returns the ejection end when this failure ejected it.
func (s *orchState) failed(now time.Time, sc SelectionConfig) (until time.Time, ejected bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.failures.Add(1)
	nowMs := now.UnixMilli()
	if n < int64(sc.EjectAfter) || s.ejectedUntilMs.Load() > nowMs {
		return time.Time{}, false
	}
	s.ejectLevel++
	d := sc.EjectBase
	for i := 1; i < s.ejectLevel && d < sc.EjectMax; i++ {
		d *= 2
	}
	d = min(d, sc.EjectMax)
	until = now.Add(d)
	s.ejectedUntilMs.Store(until.UnixMilli())
	return until, true
}

// ejected reports whether the orchestrator is locally ejected at now, and until when.
func (s *orchState) ejected(nowMs int64) (bool, int64) {
	u := s.ejectedUntilMs.Load()
	return u > nowMs, u
}

// Tracker is the router's fast-loop state of one orchestrator — peak-EWMA
// latency with freshness, and consecutive-failure ejection with doubling
// backoff — exported so the simulator's loopgate policy runs this code
// rather than a copy of it. Safe for concurrent use.
type Tracker struct{ s orchState }

// ObserveLatency folds one latency sample (ms) into the peak EWMA.
func (t *Tracker) ObserveLatency(now time.Time, ms float64, tau time.Duration) {
	t.s.observeLatency(now, ms, tau)
}

// LatencyView returns the estimate and its freshness in [0, 1].
func (t *Tracker) LatencyView(now time.Time, stale time.Duration) (ms, freshness float64) {
	return t.s.latencyView(now, stale)
}

// Succeeded resets the failure streak and the ejection backoff.
func (t *Tracker) Succeeded() { t.s.succeeded() }

// Failed counts a failure and reports the ejection end if it ejected.
func (t *Tracker) Failed(now time.Time, sc SelectionConfig) (until time.Time, ejected bool) {
	return t.s.failed(now, sc)
}

// CandidateOf is the candidate of one class member at now, or false when
// it must be skipped: the policy ejects it past now
// (policyEjectUntilMs, Unix ms), or it has limit attempts in flight
// (limit 0 = none). share is its policy share; stale is
// SelectionConfig.LatencyStale. The router's decisions and the
// simulator's closed loop both build candidates here.
func (t *Tracker) CandidateOf(now time.Time, stale time.Duration, share float64, inFlight, limit int, policyEjectUntilMs int64) (Candidate, bool) {
	return t.s.candidateOf(now, stale, share, inFlight, limit, policyEjectUntilMs)
}

func (s *orchState) candidateOf(now time.Time, stale time.Duration, share float64, inFlight, limit int, policyEjectUntilMs int64) (Candidate, bool) {
	nowMs := now.UnixMilli()
	if policyEjectUntilMs > nowMs || (limit > 0 && inFlight >= limit) {
		return Candidate{}, false
	}
	lat, fresh := s.latencyView(now, stale)
	return Candidate{
		Share: share, LatencyMs: lat, Freshness: fresh, InFlight: inFlight,
		Capacity: limit, Failures: int(s.failures.Load()), Ejected: s.ejectedUntilMs.Load() > nowMs,
	}, true
}
