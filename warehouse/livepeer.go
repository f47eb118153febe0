package warehouse

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"

	"github.com/loopgate/loopgate/event"
)

// WriteLivepeer stores the rows of a batch of go-livepeer gateway events in
// livepeer_payments, livepeer_discovery, livepeer_orchestrators and
// livepeer_streams.
//
// The contract is WriteOutcomes's: it returns nil only when every row is
// stored, and writing rows that are already stored (the same batch again,
// an overlapping one, the rest of a batch whose earlier write failed half
// way) adds no rows. A row is identified by (EventID, Index); per table,
// the warehouse is asked which of the batch's keys it holds, bounded by the
// batch's time range, and only the missing rows are inserted, each insert
// carrying a deduplication token on the modern profile. The same limits
// apply: one writer per key range (one consumer per partition).
func (s *Store) WriteLivepeer(ctx context.Context, token string, b *event.LivepeerBatch) error {
	if b == nil || b.Len() == 0 {
		return nil
	}
	if err := s.b.settle(ctx); err != nil {
		return err
	}
	tables := []struct {
		name  string
		keys  []lpKey
		build func(keep []bool) *block
	}{
		{"livepeer_payments", paymentKeys(b.Payments), func(keep []bool) *block { return paymentsBlock(b.Payments, keep) }},
		{"livepeer_discovery", discoveryKeys(b.Discovery), func(keep []bool) *block { return discoveryBlock(b.Discovery, keep) }},
		{"livepeer_orchestrators", orchestratorKeys(b.Orchestrators), func(keep []bool) *block { return orchestratorsBlock(b.Orchestrators, keep) }},
		{"livepeer_streams", streamKeys(b.Streams), func(keep []bool) *block { return streamsBlock(b.Streams, keep) }},
	}
	for _, t := range tables {
		if len(t.keys) == 0 {
			continue
		}
		keep, err := s.missingLivepeer(ctx, t.name, t.keys)
		if err != nil {
			return err
		}
		n := 0
		h := fnv.New64a()
		for i, k := range t.keys {
			if keep[i] {
				n++
				fmt.Fprintf(h, "%s/%d;", k.id, k.idx)
			}
		}
		s.m.dupsSkipped.WithLabelValues(t.name, "warehouse").Add(float64(len(t.keys) - n))
		if n == 0 {
			continue
		}
		if err := s.insert(ctx, t.build(keep), s.dedupToken(token, t.name, n, h.Sum64())); err != nil {
			return err
		}
	}
	s.log.Debug("livepeer events written", "token", token, "rows", b.Len())
	return nil
}

// lpKey is a go-livepeer row's identity and time.
type lpKey struct {
	id   string
	idx  uint32
	time int64
}

// missingLivepeer reports, per key, whether table lacks it; keys within
// the batch that repeat an earlier one are not missing (the first wins).
func (s *Store) missingLivepeer(ctx context.Context, table string, keys []lpKey) ([]bool, error) {
	start := s.now()
	type k2 struct {
		id  string
		idx uint32
	}
	have := map[k2]bool{}
	for lo := 0; lo < len(keys); lo += s.cfg.CheckChunk {
		chunk := keys[lo:min(lo+s.cfg.CheckChunk, len(keys))]
		ids := make([]string, 0, len(chunk))
		seen := map[string]bool{}
		tlo, thi := int64(math.MaxInt64), int64(math.MinInt64)
		for _, k := range chunk {
			tlo, thi = min(tlo, k.time), max(thi, k.time)
			if !seen[k.id] {
				seen[k.id] = true
				ids = append(ids, k.id)
			}
		}
		// The legacy time literal truncates to the second: widen the upper
		// bound by one so the last second's rows are included.
		sqlFrom := func(from string) string {
			return fmt.Sprintf("SELECT event_id, toUInt64(idx) FROM %s WHERE event_time >= %s AND event_time <= %s AND event_id IN %s",
				from, s.profile.timeLiteral(tlo), s.profile.timeLiteral(thi+999), idSetPlaceholder)
		}
		rows, err := s.checkIDs(ctx, table, sqlFrom, ids)
		if err != nil {
			s.m.errors.WithLabelValues("check").Inc()
			return nil, fmt.Errorf("check existing %s of %d rows: %w", table, len(chunk), err)
		}
		for _, r := range rows.Values {
			id, _ := r[0].(string)
			idx, _ := r[1].(uint64)
			have[k2{id, uint32(idx)}] = true
		}
	}
	keep := make([]bool, len(keys))
	for i, k := range keys {
		kk := k2{k.id, k.idx}
		if !have[kk] {
			keep[i] = true
			have[kk] = true // a later copy in the batch is a duplicate
		}
	}
	s.m.checkSeconds.WithLabelValues(table).Observe(s.now().Sub(start).Seconds())
	return keep, nil
}

func paymentKeys(rows []event.LivepeerPayment) []lpKey {
	keys := make([]lpKey, len(rows))
	for i, r := range rows {
		keys[i] = lpKey{r.EventID, 0, r.TimeMs}
	}
	return keys
}

func discoveryKeys(rows []event.LivepeerDiscovery) []lpKey {
	keys := make([]lpKey, len(rows))
	for i, r := range rows {
		keys[i] = lpKey{r.EventID, uint32(r.Index), r.TimeMs}
	}
	return keys
}

func orchestratorKeys(rows []event.LivepeerOrchestrator) []lpKey {
	keys := make([]lpKey, len(rows))
	for i, r := range rows {
		keys[i] = lpKey{r.EventID, r.Index, r.TimeMs}
	}
	return keys
}

func streamKeys(rows []event.LivepeerStream) []lpKey {
	keys := make([]lpKey, len(rows))
	for i, r := range rows {
		keys[i] = lpKey{r.EventID, 0, r.TimeMs}
	}
	return keys
}

// count is the number of kept rows.
func count(keep []bool) int {
	n := 0
	for _, k := range keep {
		if k {
			n++
		}
	}
	return n
}

// envCols appends the envelope columns of the kept rows.
type envCols struct {
	id, gateway []string
	idx         []uint32
	ts          []int64
}

func (e *envCols) add(env event.LivepeerEnvelope, idx uint32) {
	e.id = append(e.id, env.EventID)
	e.gateway = append(e.gateway, env.Gateway)
	e.idx = append(e.idx, idx)
	e.ts = append(e.ts, env.TimeMs)
}

func (e *envCols) cols() []column {
	return []column{{"event_id", e.id}, {"idx", e.idx}, {"gateway", e.gateway}, {"ts_ms", e.ts}}
}

// Wei columns travel as []string of decimal digits into Decimal columns:
// clickhouse-go parses them into Decimal exactly, and on the embedded
// backend ClickHouse parses the text itself (TabSeparated, or a String read
// from RowBinary and cast on insert), so no amount passes through a float.

func paymentsBlock(rows []event.LivepeerPayment, keep []bool) *block {
	n := count(keep)
	var env envCols
	var req, sess, man, capab, orch, recip, sender = make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
	var tickets = make([]uint32, 0, n)
	var face, wp, ev, price, unit = make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
	for i, r := range rows {
		if !keep[i] {
			continue
		}
		env.add(r.LivepeerEnvelope, 0)
		req, sess, man, capab = append(req, r.RequestID), append(sess, r.SessionID), append(man, r.ManifestID), append(capab, r.Capability)
		orch, recip, sender = append(orch, r.Orchestrator), append(recip, r.Recipient), append(sender, r.Sender)
		tickets = append(tickets, r.NumTickets)
		face, wp, ev = append(face, r.FaceValueWei), append(wp, r.WinProb), append(ev, r.EVWei)
		price, unit = append(price, r.PricePerUnitWei), append(unit, r.PriceUnit)
	}
	return &block{table: "livepeer_payments", rows: n, cols: append(env.cols(),
		column{"request_id", req}, column{"session_id", sess}, column{"manifest_id", man}, column{"capability", capab},
		column{"orchestrator", orch}, column{"recipient", recip}, column{"sender", sender}, column{"num_tickets", tickets},
		column{"face_value_wei", face}, column{"win_prob", wp}, column{"ev_wei", ev},
		column{"price_per_unit_wei", price}, column{"price_unit", unit},
	)}
}

func discoveryBlock(rows []event.LivepeerDiscovery, keep []bool) *block {
	n := count(keep)
	var env envCols
	addr, url, lat := make([]string, 0, n), make([]string, 0, n), make([]uint32, 0, n)
	for i, r := range rows {
		if !keep[i] {
			continue
		}
		env.add(r.LivepeerEnvelope, uint32(r.Index))
		addr, url, lat = append(addr, r.Address), append(url, r.URL), append(lat, r.LatencyMs)
	}
	return &block{table: "livepeer_discovery", rows: n, cols: append(env.cols(),
		column{"address", addr}, column{"url", url}, column{"latency_ms", lat})}
}

func orchestratorsBlock(rows []event.LivepeerOrchestrator, keep []bool) *block {
	n := count(keep)
	var env envCols
	addr, local, uri, price := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
	ppu := make([]int64, 0, n)
	cp, caps, hw := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
	for i, r := range rows {
		if !keep[i] {
			continue
		}
		env.add(r.LivepeerEnvelope, r.Index)
		addr, local, uri, price = append(addr, r.Address), append(local, r.LocalAddress), append(uri, r.OrchURI), append(price, r.PricePerUnitWei)
		ppu = append(ppu, r.PixelsPerUnit)
		cp, caps, hw = append(cp, r.CapabilitiesPrices), append(caps, r.Capabilities), append(hw, r.Hardware)
	}
	return &block{table: "livepeer_orchestrators", rows: n, cols: append(env.cols(),
		column{"address", addr}, column{"local_address", local}, column{"orch_uri", uri},
		column{"price_per_unit_wei", price}, column{"pixels_per_unit", ppu},
		column{"capabilities_prices", cp}, column{"capabilities", caps}, column{"hardware", hw})}
}

func streamsBlock(rows []event.LivepeerStream, keep []bool) *block {
	n := count(keep)
	var env envCols
	kind, typ, sid, rid, pipe, pid := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
	oa, ou, msg, data := make([]string, 0, n), make([]string, 0, n), make([]string, 0, n), make([]string, 0, n)
	dts := make([]int64, 0, n)
	for i, r := range rows {
		if !keep[i] {
			continue
		}
		env.add(r.LivepeerEnvelope, 0)
		kind, typ, sid, rid = append(kind, r.Kind), append(typ, r.Type), append(sid, r.StreamID), append(rid, r.RequestID)
		pipe, pid, oa, ou = append(pipe, r.Pipeline), append(pid, r.PipelineID), append(oa, r.OrchAddress), append(ou, r.OrchURL)
		dts, msg, data = append(dts, r.DataTimeMs), append(msg, r.Message), append(data, r.Data)
	}
	return &block{table: "livepeer_streams", rows: n, cols: append(env.cols(),
		column{"kind", kind}, column{"type", typ}, column{"stream_id", sid}, column{"request_id", rid},
		column{"pipeline", pipe}, column{"pipeline_id", pid}, column{"orch_address", oa}, column{"orch_url", ou},
		column{"data_ts_ms", dts}, column{"message", msg}, column{"data", data})}
}
