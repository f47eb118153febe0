package optimizer

import (
	"context"
	"time"

	"github.com/loopgate/loopgate/event"
)

// Stat is one window's attempt statistics of an orchestrator for a class
// and a client region (event.AttemptStats): what the warehouse computes
// and the optimizer estimates from.
type Stat = event.AttemptStats

// judged is the number of attempts that say something about the
// orchestrator: client errors and cancellations do not.
func judged(s *Stat) int64 {
	n := s.Attempts - s.ClientErrors - s.Canceled
	if n < s.Successes {
		n = s.Successes
	}
	return n
}

// failures is the judged attempts that were neither successes nor busy.
func failures(s *Stat) int64 {
	f := judged(s) - s.Successes - s.Busy
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

// ShedReader reads the requests the routers shed at the edge before any
// attempt, per capability × model × client region, over the same span as
// StatsReader.Stats for the same from and to. It is optional (WithShed):
// without it a class held to an admission rate shows only what was
// admitted, and shaping falls back to a hysteresis (ShapingConfig.Release).
type ShedReader interface {
	Shed(ctx context.Context, from, to time.Time) ([]event.ShedStats, error)
}

// Publisher makes a policy durable and visible to routers (the policy log
// and the warehouse's policies table). encoded is p's encoding, made once
// by the optimizer (event.EncodePolicy, validated, within the size limit):
// publish and store those bytes, do not encode p again. It returns nil
// only when the policy is published; the optimizer retries with a newer
// policy next period otherwise.
type Publisher interface {
	PublishPolicy(ctx context.Context, p event.Policy, encoded []byte) error
}

// VersionSource reports the highest policy version ever published, so a
// restarted optimizer continues above it. It is optional: pass it with
// WithLastVersion.
type VersionSource func(ctx context.Context) (uint64, error)
