package warehouse

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"slices"

	"github.com/loopgate/loopgate/event"
)

// WriteOutcomes stores outs: one requests row per outcome and one attempts
// row per attempt (which also feeds the attempts_1m rollup).
//
// The contract: WriteOutcomes returns nil only when every row of outs is
// stored (acknowledged by ClickHouse), and calling it again with outcomes
// that are already stored — the same batch, an overlapping one, the rest
// of a batch whose earlier write failed half way, with the same token or
// another — adds no rows. An outcome is identified by its ID, an attempt by
// (ID, index in Attempts). So after any sequence of writes and retries,
// count() = uniqExact(id) in requests and each (request_id, attempt) is in
// attempts once. On error nothing can be assumed about which rows landed;
// retry with the same outcomes.
//
// How: ids are first made unique within outs (the first copy wins). Then,
// per table, the warehouse is asked which of the batch's keys it already
// holds, bounded by the batch's time range so the primary key (time first)
// prunes, and only the missing rows are inserted: requests first, then
// attempts. Because tables are checked separately, a write interrupted
// between them is completed, never doubled, by the next one, and the
// rollup only ever sees rows actually inserted. On the modern profile each
// insert also carries an insert_deduplication_token derived from token, the
// table and the keys it inserts, so an insert that ClickHouse applied but
// whose acknowledgement was lost is dropped if retried (a second line of
// defence; 18.16 has no deduplication for non-replicated tables).
//
// token should name the batch deterministically (e.g. its Kafka partition
// and offsets); it may be empty.
//
// An insert that failed on the server backend (a cut connection, a
// cancelled context) may still be applied after the client gave up, so the
// next WriteOutcomes first waits until no such insert is running
// (system.processes) before it checks what is stored.
//
// Limits: the check and the insert are not atomic, so two writers storing
// the same ids at the same moment can both insert them; run one writer per
// id range (one consumer per Kafka partition does that; ingest keeps it
// so while partitions move between processes, by writing each batch inside
// a hold of its consumer-group generation: ingest.Holder). A copy of an
// outcome whose start time differs from the stored one is not recognised
// as a duplicate.
func (s *Store) WriteOutcomes(ctx context.Context, token string, outs []event.Outcome) error {
	batch, err := s.uniqueOutcomes(outs)
	if err != nil {
		return err
	}
	if len(batch) == 0 {
		return nil
	}
	if err := s.b.settle(ctx); err != nil {
		return err
	}
	if err := s.writeRequests(ctx, token, batch); err != nil {
		return err
	}
	if err := s.writeAttempts(ctx, token, batch); err != nil {
		return err
	}
	s.log.Debug("outcomes written", "token", token, "outcomes", len(outs), "unique", len(batch))
	return nil
}

// uniqueOutcomes returns one pointer per distinct id (the first copy),
// ordered by start time so each existence query spans a narrow range.
func (s *Store) uniqueOutcomes(outs []event.Outcome) ([]*event.Outcome, error) {
	seen := make(map[string]struct{}, len(outs))
	batch := make([]*event.Outcome, 0, len(outs))
	dupAttempts := 0
	for i := range outs {
		o := &outs[i]
		if o.ID == "" {
			return nil, fmt.Errorf("check outcome %d of %d: empty id", i, len(outs))
		}
		if len(o.Attempts) > 255 {
			return nil, fmt.Errorf("check outcome %s: %d attempts, limit 255", o.ID, len(o.Attempts))
		}
		if _, ok := seen[o.ID]; ok {
			dupAttempts += len(o.Attempts)
			continue
		}
		seen[o.ID] = struct{}{}
		batch = append(batch, o)
	}
	if d := len(outs) - len(batch); d > 0 {
		s.m.dupsSkipped.WithLabelValues("requests", "batch").Add(float64(d))
		s.m.dupsSkipped.WithLabelValues("attempts", "batch").Add(float64(dupAttempts))
	}
	slices.SortStableFunc(batch, func(a, b *event.Outcome) int {
		switch {
		case a.StartMs < b.StartMs:
			return -1
		case a.StartMs > b.StartMs:
			return 1
		}
		return 0
	})
	return batch, nil
}

// writeRequests inserts the requests rows of batch that are not stored yet.
func (s *Store) writeRequests(ctx context.Context, token string, batch []*event.Outcome) error {
	have, err := s.existing(ctx, "requests", batch)
	if err != nil {
		return err
	}
	missing := make([]*event.Outcome, 0, len(batch))
	for _, o := range batch {
		if _, ok := have[key{o.ID, 0}]; !ok {
			missing = append(missing, o)
		}
	}
	s.m.dupsSkipped.WithLabelValues("requests", "warehouse").Add(float64(len(batch) - len(missing)))
	if len(missing) == 0 {
		return nil
	}
	h := fnv.New64a()
	for _, o := range missing {
		h.Write([]byte(o.ID))
		h.Write([]byte{0})
	}
	return s.insert(ctx, requestsBlock(missing), s.dedupToken(token, "requests", len(missing), h.Sum64()))
}

// writeAttempts inserts the attempts rows of batch that are not stored yet.
func (s *Store) writeAttempts(ctx context.Context, token string, batch []*event.Outcome) error {
	withAttempts := make([]*event.Outcome, 0, len(batch))
	total := 0
	for _, o := range batch {
		if len(o.Attempts) > 0 {
			withAttempts = append(withAttempts, o)
			total += len(o.Attempts)
		}
	}
	if total == 0 {
		return nil
	}
	have, err := s.existing(ctx, "attempts", withAttempts)
	if err != nil {
		return err
	}
	refs := make([]attemptRef, 0, total)
	h := fnv.New64a()
	var idx [1]byte
	for _, o := range withAttempts {
		for i := range o.Attempts {
			if _, ok := have[key{o.ID, i}]; ok {
				continue
			}
			refs = append(refs, attemptRef{o, i})
			idx[0] = byte(i)
			h.Write([]byte(o.ID))
			h.Write(idx[:])
		}
	}
	s.m.dupsSkipped.WithLabelValues("attempts", "warehouse").Add(float64(total - len(refs)))
	if len(refs) == 0 {
		return nil
	}
	return s.insert(ctx, attemptsBlock(refs), s.dedupToken(token, "attempts", len(refs), h.Sum64()))
}

// dedupToken derives the insert_deduplication_token of one insert, or ""
// when the profile has no insert deduplication. It covers the keys the
// insert carries, not just the caller's token: ClickHouse drops a block
// whose token it has seen regardless of content, so a caller token reused
// for different outcomes must not make their insert vanish.
func (s *Store) dedupToken(token, table string, rows int, keyHash uint64) string {
	if !s.profile.InsertDedup {
		return ""
	}
	return fmt.Sprintf("%s/%s/%d/%016x", token, table, rows, keyHash)
}

// insert writes one block and records its metrics.
func (s *Store) insert(ctx context.Context, b *block, token string) error {
	if err := checkBlock(b); err != nil {
		return err
	}
	start := s.now()
	if err := s.b.insert(ctx, s.cfg.Database, b, token); err != nil {
		s.m.errors.WithLabelValues("insert").Inc()
		return fmt.Errorf("insert %d rows into %s: %w", b.rows, b.table, err)
	}
	s.m.insertSeconds.WithLabelValues(b.table).Observe(s.now().Sub(start).Seconds())
	s.m.rowsWritten.WithLabelValues(b.table).Add(float64(b.rows))
	return nil
}

// key is a stored row's identity: (request id, attempt index); requests
// use index 0.
type key struct {
	id      string
	attempt int
}

// existing returns the keys of batch's rows already stored in table
// ("requests" or "attempts"). batch is sorted by start time; it is asked
// about in chunks of at most CheckChunk ids, each bounded by its own time
// range so the primary key prunes. The ids travel as a set beside the
// query (see backend.queryIDs), not as an IN list of literals: ClickHouse
// spends about 5 µs parsing each literal (10 ms per 2,000 ids, on 18.16 and
// 26.x alike) and 18.16 caps a query at 256 KiB.
func (s *Store) existing(ctx context.Context, table string, batch []*event.Outcome) (map[key]struct{}, error) {
	start := s.now()
	have := map[key]struct{}{}
	for len(batch) > 0 {
		n := min(len(batch), s.cfg.CheckChunk)
		sqlFrom, ids := s.checkQuery(table, batch[:n])
		rows, err := s.checkIDs(ctx, table, sqlFrom, ids)
		if err != nil {
			s.m.errors.WithLabelValues("check").Inc()
			return nil, fmt.Errorf("check existing %s of %d outcomes: %w", table, n, err)
		}
		for _, r := range rows.Values {
			k := key{}
			k.id, _ = r[0].(string)
			if len(r) > 1 {
				a, _ := r[1].(uint64)
				k.attempt = int(a)
			}
			have[k] = struct{}{}
		}
		batch = batch[n:]
	}
	s.m.checkSeconds.WithLabelValues(table).Observe(s.now().Sub(start).Seconds())
	return have, nil
}

// checkQuery is the existence query for chunk, given the table it reads
// (see checkIDs), and the ids it asks about.
func (s *Store) checkQuery(table string, chunk []*event.Outcome) (func(from string) string, []string) {
	ids := make([]string, len(chunk))
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for i, o := range chunk {
		ids[i] = o.ID
		if table == "requests" {
			lo, hi = min(lo, o.StartMs), max(hi, o.StartMs)
			continue
		}
		for _, a := range o.Attempts {
			lo, hi = min(lo, a.StartMs), max(hi, a.StartMs)
		}
	}
	cols, idCol := "id", "id"
	if table == "attempts" {
		cols, idCol = "request_id, attempt", "request_id"
	}
	return func(from string) string {
		return fmt.Sprintf("SELECT %s FROM %s WHERE start_time >= %s AND start_time <= %s AND %s IN %s",
			cols, from, s.profile.timeLiteral(lo), s.profile.timeLiteral(hi), idCol, idSetPlaceholder)
	}, ids
}

// checkIDs runs an existence query, sqlFrom(the table to read), with ids
// beside it. On one node it reads db.table. On a cluster it reads
// db.table_local on every replica of every shard and returns the union, so
// a row that one replica holds and another has not fetched yet — an insert
// acknowledged just before its replica died, or one that failed after it
// was written — is seen wherever the writer runs now. A replica that does
// not answer fails the check, and with it the write: retried, it goes
// through once the replica is back.
func (s *Store) checkIDs(ctx context.Context, table string, sqlFrom func(from string) string, ids []string) (*Rows, error) {
	if len(s.replicas) == 0 {
		return s.b.queryIDs(ctx, sqlFrom(s.cfg.Database+"."+table), ids)
	}
	var all *Rows
	for _, r := range s.replicas {
		rows, err := r.b.queryIDs(ctx, sqlFrom(s.cfg.Database+"."+table+"_local"), ids)
		if err != nil {
			return nil, fmt.Errorf("replica %s: %w", r.addr, err)
		}
		if all == nil {
			all = rows
			continue
		}
		all.Values = append(all.Values, rows.Values...)
	}
	return all, nil
}
