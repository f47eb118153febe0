package gateway

import (
	"math"
	"net/http"
	"time"

	"golang.org/x/time/rate"

	"github.com/loopgate/loopgate/event"
)

// scope is the limit state of one key or one customer on this router.
// Guarded by Gateway.mu.
type scope struct {
	kind, id string // "key" or "customer", and its id

	limits   event.Limits // as configured, all routers together
	limiter  *rate.Limiter
	inFlight int
	units    map[event.UnitKind]*minuteWindow
	spend    map[budgetKey]*spendState
	budgets  []event.Budget // as last admitted with
}

// local is this router's share of a limit shared by n routers.
func local(v float64, n int) float64 { return v / float64(n) }

// localInt is this router's share of an integer limit: ⌊v/n⌋, at least 1,
// so the routers together never admit more than v when v ≥ n.
func localInt(v int64, n int) int64 { return max(1, v/int64(n)) }

func burstOf(l event.Limits) int {
	if l.Burst > 0 {
		return l.Burst
	}
	return max(1, int(math.Ceil(l.RequestsPerSecond)))
}

// configure applies (possibly changed) limits; counts are kept.
func (s *scope) configure(l event.Limits, n int, now time.Time) {
	same := s.limits.RequestsPerSecond == l.RequestsPerSecond && s.limits.Burst == l.Burst
	s.limits = l
	if l.RequestsPerSecond <= 0 {
		s.limiter = nil
	} else if s.limiter == nil || !same {
		b := int(localInt(int64(burstOf(l)), n))
		s.limiter = rate.NewLimiter(rate.Limit(local(l.RequestsPerSecond, n)), b)
		s.limiter.SetBurstAt(now, b)
	}
}

// check reports the first of the scope's limits the request would exceed,
// without taking anything: a refused request consumes no token, slot or
// unit of any limit.
func (s *scope) check(now time.Time, kind event.UnitKind, units int64, n int) *Refusal {
	l := s.limits
	if s.limiter != nil && s.limiter.TokensAt(now) < 1 {
		wait := time.Duration((1 - s.limiter.TokensAt(now)) / float64(s.limiter.Limit()) * float64(time.Second))
		r := &Refusal{Status: http.StatusTooManyRequests, Code: CodeRateLimited, Scope: s.kind, ScopeID: s.id,
			Limit: "requests_per_second", Value: l.RequestsPerSecond, Local: float64(s.limiter.Limit()),
			ResetAt: now.Add(wait), RetryAfter: wait}
		return r.describe("rate limit")
	}
	if l.Concurrency > 0 && int64(s.inFlight)+1 > localInt(int64(l.Concurrency), n) {
		r := &Refusal{Status: http.StatusTooManyRequests, Code: CodeConcurrencyLimited, Scope: s.kind, ScopeID: s.id,
			Limit: "concurrency", Value: float64(l.Concurrency), Local: float64(localInt(int64(l.Concurrency), n)),
			RetryAfter: time.Second}
		return r.describe("concurrency limit")
	}
	if max, ok := l.UnitsPerMinute[kind]; ok && units > 0 {
		lim := localInt(max, n)
		w := s.window(kind)
		if used := w.sum(now); used+units > lim {
			reset := w.freeAt(now, used+units-lim)
			r := &Refusal{Status: http.StatusTooManyRequests, Code: CodeUnitsLimited, Scope: s.kind, ScopeID: s.id,
				Limit: "units_per_minute." + string(kind), Value: float64(max), Local: float64(lim)}
			if units <= lim {
				r.ResetAt, r.RetryAfter = reset, reset.Sub(now)
			}
			return r.describe("units limit")
		}
	}
	return nil
}

// take admits the request into the scope's counts.
func (s *scope) take(now time.Time, kind event.UnitKind, units int64) {
	if s.limiter != nil {
		s.limiter.AllowN(now, 1)
	}
	s.inFlight++
	if _, ok := s.limits.UnitsPerMinute[kind]; ok && units > 0 {
		s.window(kind).add(now, units)
	}
}

func (s *scope) window(kind event.UnitKind) *minuteWindow {
	if s.units == nil {
		s.units = map[event.UnitKind]*minuteWindow{}
	}
	w := s.units[kind]
	if w == nil {
		w = &minuteWindow{}
		s.units[kind] = w
	}
	return w
}

// minuteWindow counts units over the last minute in one-second slots: a
// sliding window whose oldest second drops out as a new one begins.
type minuteWindow struct {
	slots [60]int64
	epoch int64 // Unix second of the newest slot
}

func (w *minuteWindow) advance(now time.Time) {
	sec := now.Unix()
	if sec <= w.epoch {
		return
	}
	gap := min(sec-w.epoch, 60)
	for i := int64(1); i <= gap; i++ {
		w.slots[(w.epoch+i)%60] = 0
	}
	w.epoch = sec
}

func (w *minuteWindow) sum(now time.Time) int64 {
	w.advance(now)
	var s int64
	for _, v := range w.slots {
		s += v
	}
	return s
}

func (w *minuteWindow) add(now time.Time, units int64) {
	w.advance(now)
	w.slots[w.epoch%60] += units
}

// freeAt is when at least need units will have dropped out of the window.
func (w *minuteWindow) freeAt(now time.Time, need int64) time.Time {
	w.advance(now)
	var freed int64
	for i := int64(0); i < 60; i++ {
		sec := w.epoch - 59 + i // the oldest slot first
		freed += w.slots[(sec%60+60)%60]
		if freed >= need {
			return time.Unix(sec+60, 0)
		}
	}
	return time.Unix(w.epoch+60, 0)
}
