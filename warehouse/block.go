package warehouse

import (
	"fmt"
	"math"

	"github.com/loopgate/loopgate/event"
)

// block is a batch of rows for one table, held by column: the server
// backend appends whole columns to a native batch, the embedded backend
// serialises it row by row. Every insert names exactly these columns;
// columns with a DEFAULT (start_time, ingested_at) are left to ClickHouse.
type block struct {
	table string
	cols  []column
	rows  int
}

// column is one named column; data is a []string, []int64, []uint64,
// []uint32, []uint16, []uint8 or []float64 of length rows.
type column struct {
	name string
	data any
}

func (b *block) names() []string {
	n := make([]string, len(b.cols))
	for i, c := range b.cols {
		n[i] = c.name
	}
	return n
}

// requestsBlock is one requests row per outcome.
func requestsBlock(outs []*event.Outcome) *block {
	n := len(outs)
	var (
		id, gatewayID, gatewayRegion, clientRegion = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		apiKeyID, customer, capability, model      = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		unitKind, status, errorClass               = make([]string, n), make([]string, n), make([]string, n)
		schema, httpStatus                         = make([]uint16, n), make([]uint16, n)
		units, startMs, endMs                      = make([]int64, n), make([]int64, n), make([]int64, n)
		latency, ttfb                              = make([]uint32, n), make([]uint32, n)
		bytesIn, bytesOut, policyVersion           = make([]uint64, n), make([]uint64, n), make([]uint64, n)
		price, cost, charge                        = make([]float64, n), make([]float64, n), make([]float64, n)
		attemptCount                               = make([]uint8, n)
	)
	for i, o := range outs {
		id[i], gatewayID[i], gatewayRegion[i], clientRegion[i] = o.ID, o.GatewayID, o.GatewayRegion, o.ClientRegion
		apiKeyID[i], customer[i], capability[i], model[i] = o.APIKeyID, o.Customer, o.Capability, o.Model
		unitKind[i], status[i], errorClass[i] = string(o.UnitKind), string(o.Status), o.ErrorClass
		schema[i], httpStatus[i] = uint16(o.Schema), uint16(o.HTTPStatus)
		units[i], startMs[i], endMs[i] = o.Units, o.StartMs, o.EndMs
		latency[i], ttfb[i] = clampU32(o.LatencyMs), clampU32(o.TTFBMs)
		bytesIn[i], bytesOut[i], policyVersion[i] = uint64(max(o.BytesIn, 0)), uint64(max(o.BytesOut, 0)), o.PolicyVersion
		price[i], cost[i], charge[i] = o.PricePerUnit, o.Cost, o.Charge
		attemptCount[i] = uint8(len(o.Attempts))
	}
	return &block{table: "requests", rows: n, cols: []column{
		{"id", id}, {"schema", schema}, {"gateway_id", gatewayID}, {"gateway_region", gatewayRegion},
		{"client_region", clientRegion}, {"api_key_id", apiKeyID}, {"customer", customer},
		{"capability", capability}, {"model", model}, {"units", units}, {"unit_kind", unitKind},
		{"start_ms", startMs}, {"end_ms", endMs}, {"status", status}, {"error_class", errorClass},
		{"http_status", httpStatus}, {"latency_ms", latency}, {"ttfb_ms", ttfb},
		{"bytes_in", bytesIn}, {"bytes_out", bytesOut}, {"price_per_unit", price}, {"cost", cost},
		{"charge", charge}, {"policy_version", policyVersion}, {"attempt_count", attemptCount},
	}}
}

// attemptRef names one attempt of one outcome.
type attemptRef struct {
	o *event.Outcome
	i int
}

// attemptsBlock is one attempts row per ref.
func attemptsBlock(refs []attemptRef) *block {
	n := len(refs)
	var (
		requestID, capability, model, clientRegion = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		gatewayID, orch, orchRegion                = make([]string, n), make([]string, n), make([]string, n)
		result, errorClass                         = make([]string, n), make([]string, n)
		attempt, retry, hedged, billed             = make([]uint8, n), make([]uint8, n), make([]uint8, n), make([]uint8, n)
		policyVersion                              = make([]uint64, n)
		startMs                                    = make([]int64, n)
		latency, inFlight                          = make([]uint32, n), make([]uint32, n)
		httpStatus                                 = make([]uint16, n)
		cost, propensity                           = make([]float64, n), make([]float64, n)
		share, scoreLatency, penalty, weight       = make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	)
	for k, r := range refs {
		o, a := r.o, &r.o.Attempts[r.i]
		requestID[k], capability[k], model[k], clientRegion[k] = o.ID, o.Capability, o.Model, o.ClientRegion
		gatewayID[k], orch[k], orchRegion[k] = o.GatewayID, a.Orchestrator, a.OrchRegion
		result[k], errorClass[k] = string(a.Result), a.ErrorClass
		attempt[k], retry[k], hedged[k], billed[k] = uint8(r.i), b2u(a.Retry), b2u(a.Hedged), b2u(a.Billed)
		policyVersion[k], startMs[k] = o.PolicyVersion, a.StartMs
		latency[k], inFlight[k], httpStatus[k] = clampU32(a.LatencyMs), clampU32(int64(a.Score.InFlight)), uint16(a.HTTPStatus)
		cost[k], propensity[k] = a.Cost, a.Propensity
		share[k], scoreLatency[k], penalty[k], weight[k] = a.Score.Share, a.Score.LatencyMs, a.Score.Penalty, a.Score.Weight
	}
	return &block{table: "attempts", rows: n, cols: []column{
		{"request_id", requestID}, {"attempt", attempt}, {"capability", capability}, {"model", model},
		{"client_region", clientRegion}, {"gateway_id", gatewayID}, {"policy_version", policyVersion},
		{"orchestrator", orch}, {"orch_region", orchRegion}, {"start_ms", startMs}, {"latency_ms", latency},
		{"result", result}, {"error_class", errorClass}, {"http_status", httpStatus},
		{"retry", retry}, {"hedged", hedged}, {"billed", billed}, {"cost", cost}, {"propensity", propensity},
		{"score_share", share}, {"score_latency_ms", scoreLatency}, {"score_in_flight", inFlight},
		{"score_penalty", penalty}, {"score_weight", weight},
	}}
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// clampU32 fits a non-negative duration or count into UInt32 (49 days of
// milliseconds); validated events never come near either bound.
func clampU32(v int64) uint32 {
	return uint32(min(max(v, 0), math.MaxUint32))
}

// checkBlock reports a block whose columns disagree on length: a bug, not
// bad input.
func checkBlock(b *block) error {
	for _, c := range b.cols {
		if n := columnLen(c.data); n != b.rows {
			return fmt.Errorf("column %s.%s has %d values, want %d", b.table, c.name, n, b.rows)
		}
	}
	return nil
}

func columnLen(data any) int {
	switch v := data.(type) {
	case []string:
		return len(v)
	case []int64:
		return len(v)
	case []uint64:
		return len(v)
	case []uint32:
		return len(v)
	case []uint16:
		return len(v)
	case []uint8:
		return len(v)
	case []float64:
		return len(v)
	}
	return -1
}
