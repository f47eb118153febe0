package router

import (
	"math"
	"slices"
	"time"

	"github.com/loopgate/loopgate/event"
)

// DefaultDrainWindow is the busy time over which the edge queue measures
// each class's drain rate (ShapingConfig.QueueDrainWindow).
const DefaultDrainWindow = 5 * time.Second

// minDrainTakes is how many hand-offs, in the decayed count, a measured
// drain rate needs before it replaces the static one.
const minDrainTakes = 4

// Reasons a request is shed (its outcome's error class, the shed metric's
// label): event's.
const (
	ShedAdmission = event.ShedAdmission
	ShedQueueFull = event.ShedQueueFull
	ShedDeadline  = event.ShedDeadline
)

// QueueEntry is one request waiting at the edge.
type QueueEntry[T any] struct {
	// Priority ranks the entry: its class's value of an SLO miss × its
	// tier's priority. Higher is served first.
	Priority float64
	// StartBy is the latest start that can still meet the request's SLO
	// (or its deadline): arrival + SLO − the expected latency of an
	// attempt. An entry still waiting then is shed.
	StartBy time.Time
	// Key names the entry's class: entries with the same key compete for
	// the same orchestrators, and the queue measures each key's drain rate.
	Key string
	// Item is the caller's request.
	Item T
	seq  uint64
}

// EdgeQueue is the bounded queue where requests wait when every eligible
// orchestrator is at its concurrency limit. The router serves it from its
// request goroutines and the simulator's closed loop from virtual time;
// both decide through these methods, so they cannot disagree. Not safe for
// concurrent use: the router holds a mutex around it.
//
// Order (Take): higher Priority first; among equals, the earlier StartBy
// (earliest deadline first); then arrival order. An entry is refused at
// Push, and so answered at once, when it cannot start in time: its
// StartBy has passed, or its predicted start — now + (entries of its Key
// ahead of it + 1) / its Key's drain rate — is after it. A full queue
// refuses an entry that does not outrank its last one, and otherwise
// evicts that last one (the caller sheds it).
//
// The drain rate is measured: the rate at which entries of the key were
// taken (handed a slot) while the key had entries waiting, each hand-off
// and each second of waiting weighted by exp(−busy time since / window).
// That is what the key's orchestrators really free for its waiters, with
// their real service times, limits and competing classes, where the static
// guess Push is given (Σ limit / latency estimate, Little's law) only
// knows latency estimates that lean high (peak EWMAs): on the bursty
// scenario it predicted waits about 1.7× too long and shed requests that
// would have met their SLO. The measurement is used only while the key
// has entries waiting (its busy period), with at least minDrainTakes
// hand-offs in its decayed count; otherwise the static guess stands in. It
// decays with busy time only, so what one burst learned still holds at the
// next once that one has begun — but never decides alone whether a
// newcomer may begin one: a rate measured while the fleet was slow (a
// fault) would refuse every newcomer, none would wait, and the
// measurement could never learn that the fleet recovered.
type EdgeQueue[T any] struct {
	max    int
	window float64 // seconds
	seq    uint64
	items  []*QueueEntry[T] // in rank order
	drain  map[string]*drainMeter
}

// drainMeter measures one key's drain rate.
type drainMeter struct {
	waiting int       // entries of the key in the queue
	since   time.Time // last update
	takes   float64   // decayed hand-offs
	busy    float64   // decayed seconds with entries waiting
}

// advance accrues the busy time from the last update to now.
func (m *drainMeter) advance(now time.Time, window float64) {
	if m.waiting > 0 {
		if dt := now.Sub(m.since).Seconds(); dt > 0 {
			d := math.Exp(-dt / window)
			m.takes *= d
			m.busy = m.busy*d + window*(1-d)
		}
	}
	if now.After(m.since) {
		m.since = now
	}
}

// rate is the measured drain rate per second, 0 when too little is known.
func (m *drainMeter) rate() float64 {
	if m.takes < minDrainTakes || !(m.busy > 0) {
		return 0
	}
	return m.takes / m.busy
}

// NewEdgeQueue returns a queue holding at most size entries (at least 1)
// that measures drain rates over drainWindow of busy time (0:
// DefaultDrainWindow).
func NewEdgeQueue[T any](size int, drainWindow time.Duration) *EdgeQueue[T] {
	if drainWindow <= 0 {
		drainWindow = DefaultDrainWindow
	}
	return &EdgeQueue[T]{max: max(size, 1), window: drainWindow.Seconds(), drain: map[string]*drainMeter{}}
}

// meter returns key's drain meter advanced to now.
func (q *EdgeQueue[T]) meter(key string, now time.Time) *drainMeter {
	m := q.drain[key]
	if m == nil {
		m = &drainMeter{since: now}
		q.drain[key] = m
	}
	m.advance(now, q.window)
	return m
}

// DrainRate is the measured drain rate of key's entries per second at
// now (0: not measured yet).
func (q *EdgeQueue[T]) DrainRate(key string, now time.Time) float64 {
	if _, ok := q.drain[key]; !ok {
		return 0
	}
	return q.meter(key, now).rate()
}

// left records that e left the queue at now, taken (handed a slot) or not.
func (q *EdgeQueue[T]) left(e *QueueEntry[T], now time.Time, taken bool) {
	m := q.meter(e.Key, now)
	m.waiting--
	if taken {
		m.takes++
	}
}

// Len is the number of entries waiting.
func (q *EdgeQueue[T]) Len() int { return len(q.items) }

// ahead reports whether a ranks before b.
func ahead[T any](a, b *QueueEntry[T]) bool {
	if a.Priority != b.Priority {
		return a.Priority > b.Priority
	}
	if !a.StartBy.Equal(b.StartBy) {
		return a.StartBy.Before(b.StartBy)
	}
	return a.seq < b.seq
}

// Push queues e at now. staticDrainPerS is the rate at which e's class's
// orchestrators free slots by the caller's estimate (0 = unknown), used
// until the queue has measured the key's own. It returns the entry evicted
// to make room (nil if none), and ok false with the reason when e itself
// is refused.
func (q *EdgeQueue[T]) Push(e *QueueEntry[T], now time.Time, staticDrainPerS float64) (evicted *QueueEntry[T], reason string, ok bool) {
	if !now.Before(e.StartBy) {
		return nil, ShedDeadline, false
	}
	q.seq++
	e.seq = q.seq
	pos := len(q.items)
	for i, w := range q.items {
		if ahead(e, w) {
			pos = i
			break
		}
	}
	if _, start := q.predict(e, pos, now, staticDrainPerS); start.After(e.StartBy) {
		return nil, ShedDeadline, false
	}
	if len(q.items) >= q.max {
		if pos == len(q.items) {
			return nil, ShedQueueFull, false
		}
		evicted = q.items[len(q.items)-1]
		q.items = q.items[:len(q.items)-1]
		q.left(evicted, now, false)
	}
	q.items = slices.Insert(q.items, pos, e)
	q.meter(e.Key, now).waiting++
	return evicted, "", true
}

// predict is the drain rate used for e, placed at pos, and its predicted
// start: now + (entries of its key ahead + 1) / rate (now when the rate is
// unknown).
func (q *EdgeQueue[T]) predict(e *QueueEntry[T], pos int, now time.Time, staticDrainPerS float64) (perS float64, start time.Time) {
	if m := q.drain[e.Key]; m != nil && m.waiting > 0 {
		perS = q.DrainRate(e.Key, now)
	}
	if perS == 0 {
		perS = staticDrainPerS
	}
	if !(perS > 0) || math.IsInf(perS, 0) {
		return 0, now
	}
	n := 0
	for _, w := range q.items[:pos] {
		if w.Key == e.Key {
			n++
		}
	}
	return perS, now.Add(time.Duration(float64(n+1) / perS * float64(time.Second)))
}

// Take removes and returns the first entry, in rank order, whose item
// eligible accepts (an orchestrator that just freed a slot serves it at
// now: a hand-off, which the drain rate counts).
func (q *EdgeQueue[T]) Take(eligible func(T) bool, now time.Time) (*QueueEntry[T], bool) {
	for i, w := range q.items {
		if eligible(w.Item) {
			q.items = slices.Delete(q.items, i, i+1)
			q.left(w, now, true)
			return w, true
		}
	}
	return nil, false
}

// Find returns the first entry, in rank order, whose item match accepts,
// leaving it queued.
func (q *EdgeQueue[T]) Find(match func(T) bool) (*QueueEntry[T], bool) {
	for _, w := range q.items {
		if match(w.Item) {
			return w, true
		}
	}
	return nil, false
}

// Remove takes e out of the queue at now without a slot (it is shed or
// gone) and reports whether it was there.
func (q *EdgeQueue[T]) Remove(e *QueueEntry[T], now time.Time) bool {
	if i := slices.Index(q.items, e); i >= 0 {
		q.items = slices.Delete(q.items, i, i+1)
		q.left(e, now, false)
		return true
	}
	return false
}

// DrainRate is the rate, per second, at which orchestrators with these
// limits and latency estimates free slots when full: Σ limit_i / latency_i
// (Little's law, latency in ms; members without an estimate or a limit
// count nothing). 0 means unknown.
func DrainRate(limits []int, latencyMs []float64) float64 {
	sum := 0.0
	for i, l := range limits {
		if l > 0 && latencyMs[i] > 0 {
			sum += float64(l) / (latencyMs[i] / 1000)
		}
	}
	return sum
}
