package warehouse

import (
	"context"
	"fmt"
	"time"

	"github.com/loopgate/loopgate/event"
)

// Spend sums cost and charge per API key, customer and hour (UTC) of the
// requests that started at or after since; those of router gatewayID that
// started at or after ownSinceMs, which that router counts itself, are
// summed apart (Own). It is what routers share budgets through
// (gateway.SpendSource).
// It reads the raw requests table, not the spend_1h rollup, because the
// cut at ownSinceMs falls inside an hour.
func (s *Store) Spend(ctx context.Context, since time.Time, gatewayID string, ownSinceMs int64) ([]event.Spend, error) {
	sql := fmt.Sprintf(`SELECT api_key_id, customer, toInt64(toUnixTimestamp(toStartOfHour(%s))) * 1000 AS hour_ms,
    sum(cost), sum(charge), toInt64(gateway_id = %s AND start_ms >= %d) AS own
FROM %s.requests
WHERE start_time >= toDateTime(%d, 'UTC') AND start_ms >= %d
GROUP BY api_key_id, customer, hour_ms, own
ORDER BY hour_ms, api_key_id, customer, own`, s.hourOf("start_time"), quote(gatewayID), ownSinceMs, s.cfg.Database, since.Unix(), since.UnixMilli())
	rows, err := s.Query(ctx, sql)
	if err != nil {
		return nil, fmt.Errorf("read spend since %s: %w", since.UTC().Format(time.RFC3339), err)
	}
	out := make([]event.Spend, 0, rows.Len())
	for _, r := range rows.Values {
		out = append(out, event.Spend{APIKeyID: str(r[0]), Customer: str(r[1]), HourMs: i64(r[2]), Cost: f64(r[3]), Charge: f64(r[4]), Own: i64(r[5]) == 1})
	}
	return out, nil
}

// hourOf is an expression truncating a time column to its hour, as
// DateTime, on both profiles.
func (s *Store) hourOf(col string) string {
	if s.profile.DateTime64 {
		return "toDateTime(toStartOfInterval(" + col + ", INTERVAL 1 HOUR), 'UTC')"
	}
	return col
}
