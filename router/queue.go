package router

import (
	"math"
	"slices"
	"time"
)

// Reasons a request is shed (its outcome's error class, the shed metric's
// label).
const (
	ShedAdmission = "admission"      // over its class's admission rate
	ShedQueueFull = "queue_full"     // the edge queue is full of requests that rank above it
	ShedDeadline  = "queue_deadline" // it cannot start in time to meet its SLO (or its deadline)
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
// StartBy has passed, or the expected wait — (entries ahead of it in its
// class + 1) / the class's drain rate, the rate at which its
// orchestrators free slots (Σ limit/latency, Little's law) — would end
// after it. A full queue refuses an entry that does not outrank its last
// one, and otherwise evicts that last one (the caller sheds it).
type EdgeQueue[T any] struct {
	max   int
	seq   uint64
	items []*QueueEntry[T] // in rank order
}

// NewEdgeQueue returns a queue holding at most size entries (at least 1).
func NewEdgeQueue[T any](size int) *EdgeQueue[T] {
	return &EdgeQueue[T]{max: max(size, 1)}
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

// Push queues e at now. drainPerS is the rate at which e's class's
// orchestrators free slots (0 = unknown: no wait prediction); competes
// reports whether a waiting item competes with e's for the same
// orchestrators (nil: all do). It returns the entry evicted to make room
// (nil if none), and ok false with the reason when e itself is refused.
func (q *EdgeQueue[T]) Push(e *QueueEntry[T], now time.Time, drainPerS float64, competes func(waiting T) bool) (evicted *QueueEntry[T], reason string, ok bool) {
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
	if drainPerS > 0 && !math.IsInf(drainPerS, 0) {
		n := 0
		for _, w := range q.items[:pos] {
			if competes == nil || competes(w.Item) {
				n++
			}
		}
		wait := time.Duration(float64(n+1) / drainPerS * float64(time.Second))
		if now.Add(wait).After(e.StartBy) {
			return nil, ShedDeadline, false
		}
	}
	if len(q.items) >= q.max {
		if pos == len(q.items) {
			return nil, ShedQueueFull, false
		}
		evicted = q.items[len(q.items)-1]
		q.items = q.items[:len(q.items)-1]
	}
	q.items = slices.Insert(q.items, pos, e)
	return evicted, "", true
}

// Take removes and returns the first entry, in rank order, whose item
// eligible accepts (an orchestrator that just freed a slot serves it).
func (q *EdgeQueue[T]) Take(eligible func(T) bool) (*QueueEntry[T], bool) {
	for i, w := range q.items {
		if eligible(w.Item) {
			q.items = slices.Delete(q.items, i, i+1)
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

// Remove takes e out of the queue and reports whether it was there.
func (q *EdgeQueue[T]) Remove(e *QueueEntry[T]) bool {
	if i := slices.Index(q.items, e); i >= 0 {
		q.items = slices.Delete(q.items, i, i+1)
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
