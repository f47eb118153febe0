package router

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loopgate/loopgate/event"
)

// edge is the router's edge queue: an EdgeQueue under a mutex, each waiter
// parked on its own channel until a slot is handed to it.
type edge struct {
	mu sync.Mutex
	q  *EdgeQueue[*waiter]
	n  atomic.Int64 // q.Len(), read without the lock on every release
}

// waiter is a request parked in the edge queue.
type waiter struct {
	key    classKey
	table  *classTable
	region string
	// tried are the orchestrators a waiting retry already failed on: a
	// slot freed on one of them goes to another waiter.
	tried []*orchEntry
	got   chan handoff // buffered: one send, by a release or an eviction
}

// takes reports whether w may take a slot on the orchestrator whose state
// is st: its class has it and it has not tried it already.
func (w *waiter) takes(st *orchState) bool {
	if _, in := w.table.pos[st]; !in {
		return false
	}
	for _, o := range w.tried {
		if o.state == st {
			return false
		}
	}
	return true
}

// handoff is what a waiter is woken with: a slot, or the news it is shed.
type handoff struct {
	p    pick
	shed string // non-empty: evicted from a full queue
}

// admit applies the admission rate of the request's class and region. A
// key whose tier has a priority above 1 is exempt. It answers the request
// (shed) and reports false when it may not go on.
func (r *Router) admit(x *exchange, w http.ResponseWriter) bool {
	if x.s.ix == nil || x.s.cfg.Shaping.tierPriority(x.key) > 1 {
		return true
	}
	entry := x.s.ix.Entry(x.ci.spec.name, x.info.model, x.region)
	ok, wait, why := r.admission.Allow(entry, r.now())
	if !ok {
		r.shed(x, w, ShedAdmission, why, wait)
	}
	return ok
}

// shed answers a request refused at the edge: 503, Retry-After, a JSON
// error saying why, and an outcome with status shed.
func (r *Router) shed(x *exchange, w http.ResponseWriter, reason, msg string, retryAfter time.Duration) {
	r.m.shed.WithLabelValues(reason).Inc()
	x.final, x.errorClass = event.StatusShed, reason
	secs := max(1, int(math.Ceil(retryAfter.Seconds())))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	r.writeErr(x, w, http.StatusServiceUnavailable, msg)
}

// QueueTerms are a request's rank and latest start in the edge queue,
// and its class's drain rate (see the package documentation):
//
//	priority = entry.Value (1 when 0 or no entry) × tierPriority
//	startBy  = arrival + budget − L_best   budget = entry.SLOMs, else timeout;
//	                                       L_best = the least of latencyMs > 0
//	drain    = DrainRate(limits, latencyMs)
//
// The latencies are peak EWMAs, near a high quantile: a request is kept
// only if it can start early enough to meet its SLO at that latency, and
// the drain it waits for is the pessimistic one. (Half the peak — about
// the mean — kept more requests that then missed: on the bursty scenario
// SLO attainment fell from 0.817 to 0.793 over its first 150 s.)
//
// limits and latencyMs are the class's members' limits in force and
// latency estimates (0 = none). The router and the simulator's closed loop
// both rank through it.
func QueueTerms(arrival time.Time, entry *event.ClassPolicy, timeout time.Duration, tierPriority float64, limits []int, latencyMs []float64) (prio float64, startBy time.Time, drainPerS float64) {
	value, budget := 1.0, timeout
	if entry != nil {
		if entry.Value > 0 {
			value = entry.Value
		}
		if entry.SLOMs > 0 {
			budget = time.Duration(entry.SLOMs) * time.Millisecond
		}
	}
	best := 0.0
	for _, l := range latencyMs {
		if l > 0 && (best == 0 || l < best) {
			best = l
		}
	}
	startBy = arrival.Add(budget - time.Duration(best*float64(time.Millisecond)))
	return value * tierPriority, startBy, DrainRate(limits, latencyMs)
}

// queueTerms is QueueTerms for x, from its class's members now.
func (r *Router) queueTerms(x *exchange, now time.Time) (prio float64, startBy time.Time, drainPerS float64) {
	var entry *event.ClassPolicy
	if x.s.ix != nil {
		entry = x.s.ix.Entry(x.ci.spec.name, x.info.model, x.region)
	}
	stale := x.s.cfg.Selection.LatencyStale
	limits := make([]int, len(x.table.members))
	lats := make([]float64, len(x.table.members))
	for i := range x.table.members {
		m := &x.table.members[i]
		if lat, fresh := m.st.latencyView(now, stale); fresh > 0 {
			lats[i] = lat
		}
		limits[i] = m.st.effLimit(m.limit)
	}
	return QueueTerms(x.start, entry, x.ci.cfg.RequestTimeout, x.s.cfg.Shaping.tierPriority(x.key), limits, lats)
}

// wait parks a first attempt or a retry in the edge queue until a slot is
// handed to it (a slot free at once is taken outside tried). It answers
// the request and reports false when it is shed or the request ends
// meanwhile.
func (r *Router) wait(ctx context.Context, x *exchange, w http.ResponseWriter, tried []*orchEntry) (pick, bool) {
	now := r.now()
	prio, startBy, drain := r.queueTerms(x, now)
	wt := &waiter{key: x.table.key, table: x.table, region: x.region, tried: tried, got: make(chan handoff, 1)}
	e := &QueueEntry[*waiter]{Priority: prio, StartBy: startBy, Key: wt.key.String(), Item: wt}
	r.edge.mu.Lock()
	evicted, why, ok := r.edge.q.Push(e, now, drain)
	r.edge.n.Store(int64(r.edge.q.Len()))
	r.edge.mu.Unlock()
	r.m.queueLength.Set(float64(r.edge.n.Load()))
	if evicted != nil {
		evicted.Item.got <- handoff{shed: ShedQueueFull}
	}
	if !ok {
		r.shed(x, w, why, r.shedMessage(x, why, startBy, now), time.Second)
		return pick{}, false
	}
	// A slot may have freed between the failed decision and the push.
	if p, _, ok := r.choose(x.s, x.table, x.region, tried); ok {
		if r.leave(e) {
			r.m.queueWait.Observe(0)
			return p, true
		}
		r.releaseSlot(p.m.o) // a release handed us one meanwhile: keep that one
	}
	timer := time.NewTimer(max(0, startBy.Sub(r.now())))
	defer timer.Stop()
	var h handoff
	select {
	case h = <-wt.got:
	case <-timer.C:
		if r.leave(e) {
			r.m.queueWait.Observe(r.now().Sub(now).Seconds())
			r.shed(x, w, ShedDeadline, r.shedMessage(x, ShedDeadline, startBy, now), time.Second)
			return pick{}, false
		}
		h = <-wt.got
	case <-ctx.Done():
		if !r.leave(e) {
			if h = <-wt.got; h.shed == "" {
				r.releaseSlot(h.p.m.o)
			}
		}
		r.answerFailure(ctx, x, w, nil)
		return pick{}, false
	}
	r.m.queueWait.Observe(r.now().Sub(now).Seconds())
	if h.shed != "" {
		r.shed(x, w, h.shed, r.shedMessage(x, h.shed, startBy, now), time.Second)
		return pick{}, false
	}
	return h.p, true
}

// leave takes e out of the queue; false means a release or an eviction
// took it first (its handoff is on the way).
func (r *Router) leave(e *QueueEntry[*waiter]) bool {
	r.edge.mu.Lock()
	defer r.edge.mu.Unlock()
	ok := r.edge.q.Remove(e, r.now())
	r.edge.n.Store(int64(r.edge.q.Len()))
	r.m.queueLength.Set(float64(r.edge.q.Len()))
	return ok
}

func (r *Router) shedMessage(x *exchange, reason string, startBy, now time.Time) string {
	what := x.table.describe(x)
	switch reason {
	case ShedQueueFull:
		return fmt.Sprintf("shed: every orchestrator for %s is at its concurrency limit and the edge queue is full of higher-priority requests", what)
	default:
		return fmt.Sprintf("shed: every orchestrator for %s is at its concurrency limit and the request cannot start within its SLO (latest start %s from arrival)",
			what, startBy.Sub(x.start).Round(time.Millisecond))
	}
}

// releaseSlot ends an attempt's hold on orchestrator o: the slot goes to
// the best-ranked waiter of a class o serves, or back to o.
func (r *Router) releaseSlot(o *orchEntry) {
	if r.edge.n.Load() > 0 && r.handOff(o) {
		return
	}
	o.state.release()
}

// handOff gives o's freed slot to a waiter. It does not when o may not
// take one now: ejected (by policy or locally) or over a limit lowered
// meanwhile.
func (r *Router) handOff(o *orchEntry) bool {
	now := r.now()
	nowMs := now.UnixMilli()
	st := o.state
	if o.policyEjected(nowMs) {
		return false
	}
	if ej, _ := st.ejected(nowMs); ej {
		return false
	}
	if l := st.effLimit(o.limit); l > 0 && st.inFlight.Load() > int64(l) {
		return false
	}
	wt, ok := r.takeWaiter(st)
	if !ok {
		return false
	}
	i := wt.table.pos[st]
	m := wt.table.members[i]
	share := 1 / float64(len(wt.table.members))
	if sh := wt.table.shares(wt.region); sh != nil {
		share = sh[i]
	}
	lat, _ := st.latencyView(now, time.Minute)
	// The slot is handed, not drawn: the choice had one candidate.
	ch := Choice{Index: i, Propensity: 1, Score: event.Score{
		Share: share, LatencyMs: lat, InFlight: int(st.inFlight.Load()) - 1, Penalty: 1, Weight: 1,
	}}
	wt.got <- handoff{p: pick{m: m, choice: ch}}
	return true
}

// takeWaiter takes the first waiter of a class orchestrator st serves out
// of the edge queue, and updates the queue's length.
func (r *Router) takeWaiter(st *orchState) (*waiter, bool) {
	r.edge.mu.Lock()
	e, ok := r.edge.q.Take(func(w *waiter) bool { return w.takes(st) }, r.now())
	r.edge.n.Store(int64(r.edge.q.Len()))
	r.edge.mu.Unlock()
	if !ok {
		return nil, false
	}
	r.m.queueLength.Set(float64(r.edge.n.Load()))
	return e.Item, true
}

// handTo gives pick p, drawn by a newcomer, to the first waiter of a class
// its orchestrator serves; false when there is none (p stays the newcomer's).
func (r *Router) handTo(p pick) bool {
	st := p.m.o.state
	wt, ok := r.takeWaiter(st)
	if !ok {
		return false
	}
	i := wt.table.pos[st]
	ch := p.choice
	ch.Index, ch.Propensity = i, 1 // drawn for another request: for this one, a hand-off
	wt.got <- handoff{p: pick{m: wt.table.members[i], choice: ch}}
	return true
}

// signalOf is what an attempt's result tells the adaptive limit.
func signalOf(res event.AttemptResult) Signal {
	switch res {
	case event.AttemptOK:
		return SignalSuccess
	case event.AttemptBusy, event.AttemptTimeout:
		return SignalDrop
	}
	return SignalIgnore
}

// SignalOf is signalOf for the simulator's closed loop.
func SignalOf(res event.AttemptResult) Signal { return signalOf(res) }
