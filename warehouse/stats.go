package warehouse

import (
	"context"
	"fmt"
	"time"

	"github.com/loopgate/loopgate/event"
)

// Stats aggregates attempts in the 10-second buckets of the attempts_10s
// rollup from the one holding from through the one holding to: the
// current, partial bucket is included, so a policy computed now sees the
// last seconds. Every row's Seconds is the span they cover (to − the first
// bucket's start). It is the optimizer's statistics reader.
func (s *Store) Stats(ctx context.Context, from, to time.Time) ([]event.AttemptStats, error) {
	lo, span := statsWindow(from, to)
	hi := to.Unix()/10*10 + 10
	sql := fmt.Sprintf(`SELECT orchestrator, capability, model, client_region,
    toInt64(countMerge(attempts)), toInt64(sumMerge(successes)), toInt64(sumMerge(errors)),
    toInt64(sumMerge(busy)), toInt64(sumMerge(refused)), toInt64(sumMerge(timeouts)),
    toInt64(sumMerge(client_errors)), toInt64(sumMerge(canceled)),
    toInt64(sumMerge(billed_attempts)), sumMerge(billed_cost),
    quantilesTDigestIfMerge(0.5, 0.9, 0.95, 0.99)(ok_latency_tdigest)
FROM %s.attempts_10s
WHERE bucket >= toDateTime(%d, 'UTC') AND bucket < toDateTime(%d, 'UTC')
GROUP BY orchestrator, capability, model, client_region
ORDER BY orchestrator, capability, model, client_region`, s.cfg.Database, lo, hi)
	rows, err := s.Query(ctx, sql)
	if err != nil {
		return nil, fmt.Errorf("read attempt stats: %w", err)
	}
	out := make([]event.AttemptStats, 0, rows.Len())
	for _, r := range rows.Values {
		st := event.AttemptStats{
			Orchestrator: str(r[0]), Capability: str(r[1]), Model: str(r[2]), ClientRegion: str(r[3]),
			Attempts: i64(r[4]), Successes: i64(r[5]), Errors: i64(r[6]), Busy: i64(r[7]), Refused: i64(r[8]),
			Timeouts: i64(r[9]), ClientErrors: i64(r[10]), Canceled: i64(r[11]), BilledAttempts: i64(r[12]),
			BilledCost: f64(r[13]), Seconds: span,
		}
		if st.Successes > 0 {
			if q, ok := r[14].([]any); ok && len(q) == 4 {
				st.LatencyP50Ms, st.LatencyP90Ms, st.LatencyP95Ms, st.LatencyP99Ms = f64(q[0]), f64(q[1]), f64(q[2]), f64(q[3])
			}
		}
		out = append(out, st)
	}
	return out, nil
}

// Shed counts the requests shed at the edge before any attempt (status
// shed, no attempts) per capability × model × client region × reason
// (the error class), over the
// same span as Stats for the same from and to: the 10-second bucket
// holding from through to. The optimizer adds them to the demand the
// attempts show, so a class held to an admission rate still shows what
// it was offered.
func (s *Store) Shed(ctx context.Context, from, to time.Time) ([]event.ShedStats, error) {
	lo, span := statsWindow(from, to)
	sql := fmt.Sprintf(`SELECT capability, model, client_region, error_class, toInt64(count())
FROM %s.requests
WHERE start_time >= toDateTime(%d, 'UTC') AND start_time < toDateTime(%d, 'UTC')
  AND status = '%s' AND attempt_count = 0
GROUP BY capability, model, client_region, error_class
ORDER BY capability, model, client_region, error_class`, s.cfg.Database, lo, to.Unix()+1, event.StatusShed)
	rows, err := s.Query(ctx, sql)
	if err != nil {
		return nil, fmt.Errorf("read shed requests: %w", err)
	}
	out := make([]event.ShedStats, 0, rows.Len())
	for _, r := range rows.Values {
		out = append(out, event.ShedStats{Capability: str(r[0]), Model: str(r[1]), ClientRegion: str(r[2]), Reason: str(r[3]), Requests: i64(r[4]), Seconds: span})
	}
	return out, nil
}

// statsWindow is the span Stats and Shed read for from and to: from the
// start of the 10-second bucket holding from (Unix seconds, lo) to to, in
// seconds (10 when empty), so that rates from both share a denominator.
func statsWindow(from, to time.Time) (lo int64, span float64) {
	lo = from.Unix() / 10 * 10
	span = float64(to.UnixMilli()-lo*1000) / 1000
	if span <= 0 {
		span = 10
	}
	return lo, span
}

func str(v any) string { s, _ := v.(string); return s }

func i64(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case uint64:
		return int64(x)
	case float64:
		return int64(x)
	}
	return 0
}

func f64(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case int64:
		return float64(x)
	case uint64:
		return float64(x)
	}
	return 0
}
