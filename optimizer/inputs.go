package optimizer

import (
	"context"
	"time"

	"github.com/loopgate/loopgate/event"
)

// Stat is one window of attempt statistics for one orchestrator × class ×
// client region, as the warehouse rollup (attempts_1m) aggregates them.
// Counts are attempts routed to the orchestrator in the window; a reader
// may leave the per-kind failure counts at 0 when it only knows the total
// (every judged attempt that is neither a success nor busy then counts as
// a failure).
type Stat struct {
	Orchestrator string
	Capability   string
	Model        string
	ClientRegion string

	Attempts     int64 // every attempt, whatever its result
	Successes    int64 // result ok
	Errors       int64 // result error (5xx, broken response)
	Timeouts     int64 // result timeout
	Refused      int64 // result refused (connection refused or reset)
	Busy         int64 // result busy (503: full, nothing started)
	ClientErrors int64 // result client (4xx): the request's fault, not judged
	Canceled     int64 // result canceled (hedge lost, client left): not judged

	// LatencyP50Ms .. LatencyP99Ms are quantiles of the latency of
	// successful attempts in ms; 0 = unknown. P50 is needed for any latency
	// estimate; the others give the spread.
	LatencyP50Ms float64
	LatencyP90Ms float64
	LatencyP95Ms float64
	LatencyP99Ms float64

	BilledAttempts int64   // attempts that were paid for
	BilledCost     float64 // USD paid for them

	// Seconds is the span of the whole read, the same on every Stat of it;
	// 0 = the requested window. A minute-granular reader reports the span
	// of the minutes it actually summed. Demand is attempts / Seconds.
	Seconds float64
}

// judged is the number of attempts that say something about the
// orchestrator: client errors and cancellations do not.
func (s *Stat) judged() int64 {
	n := s.Attempts - s.ClientErrors - s.Canceled
	if n < s.Successes {
		n = s.Successes
	}
	return n
}

// failures is the judged attempts that were neither successes nor busy.
func (s *Stat) failures() int64 {
	f := s.judged() - s.Successes - s.Busy
	if f < 0 {
		return 0
	}
	return f
}

// StatsReader reads windowed statistics from the warehouse: one Stat per
// orchestrator × capability × model × client region with attempts in
// [from, to).
type StatsReader interface {
	Stats(ctx context.Context, from, to time.Time) ([]Stat, error)
}

// Publisher makes a policy durable and visible to routers (the Kafka policy
// topic and the warehouse policies table). It returns nil only when the
// policy is published; the optimizer retries with a newer policy next
// period otherwise.
type Publisher interface {
	PublishPolicy(ctx context.Context, p event.Policy) error
}

// VersionSource reports the highest policy version ever published, so a
// restarted optimizer continues above it. It is optional: pass it with
// WithLastVersion.
type VersionSource func(ctx context.Context) (uint64, error)
