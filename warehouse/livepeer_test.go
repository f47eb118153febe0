package warehouse

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/loopgate/loopgate/event"
)

// livepeerBatch is n payments, 3n discovery rows, n orchestrator snapshots
// and n stream events, dated from 2026-01-01, with amounts that a float
// would round: face values above 2^53 wei and past 2^64 in sum.
func livepeerBatch(from, n int) *event.LivepeerBatch {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	b := &event.LivepeerBatch{}
	for i := from; i < from+n; i++ {
		env := event.LivepeerEnvelope{EventID: fmt.Sprintf("ev-%05d", i), Gateway: "0xgw", TimeMs: t0 + int64(i)*1500}
		b.Payments = append(b.Payments, event.LivepeerPayment{
			LivepeerEnvelope: env, Capability: "text-to-image", Orchestrator: "https://o.example:8935", Recipient: "0xabc",
			NumTickets: 3, FaceValueWei: fmt.Sprintf("12345678901234567%03d", i%1000), WinProb: "0.0000123457",
			EVWei: "1.0000000001", PricePerUnitWei: "1234.567", PriceUnit: "pixel",
		})
		for j := 0; j < 3; j++ {
			b.Discovery = append(b.Discovery, event.LivepeerDiscovery{LivepeerEnvelope: env, Index: uint16(j), Address: fmt.Sprintf("0x%d", j), URL: "https://o", LatencyMs: uint32(10 * (j + 1))})
		}
		b.Orchestrators = append(b.Orchestrators, event.LivepeerOrchestrator{LivepeerEnvelope: env, Address: "0xabc", PricePerUnitWei: "1000", PixelsPerUnit: 1, CapabilitiesPrices: "[]", Capabilities: "{}", Hardware: "[]"})
		b.Streams = append(b.Streams, event.LivepeerStream{LivepeerEnvelope: env, Kind: "stream_trace", Type: "orchestrator_swap", StreamID: "s", DataTimeMs: env.TimeMs, Data: "{}"})
	}
	return b
}

func TestWriteLivepeerExactlyOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tb testBackend) {
		ctx := context.Background()
		s := newStore(t, tb)
		for _, step := range []struct {
			token    string
			from, to int
		}{{"a", 0, 600}, {"a", 0, 600}, {"b", 400, 1000}, {"", 0, 1000}} {
			if err := s.WriteLivepeer(ctx, step.token, livepeerBatch(step.from, step.to-step.from)); err != nil {
				t.Fatalf("write %+v: %v", step, err)
			}
		}
		for table, want := range map[string]int64{"livepeer_payments": 1000, "livepeer_discovery": 3000, "livepeer_orchestrators": 1000, "livepeer_streams": 1000} {
			if got := queryInt(t, s, "SELECT count() FROM "+s.Database()+"."+table); got != want {
				t.Errorf("%s: got %d rows, want %d", table, got, want)
			}
		}
		// Past 2^64 and with more digits than a float64 holds: compared in
		// SQL, exactly.
		want := "12345678901234567499500" // Σ_{i<1000} (12345678901234567000 + i)
		if got := queryInt(t, s, fmt.Sprintf("SELECT toUInt8(sum(face_value_wei) = toDecimal128('%s', 0)) FROM %s.livepeer_payments", want, s.Database())); got != 1 {
			t.Errorf("Σ face_value_wei: got %v, want exactly %s", sumFloat(t, s, "face_value_wei"), want)
		}
		if got := queryInt(t, s, fmt.Sprintf("SELECT toUInt8(sum(ev_wei) = toDecimal128('1000.0000001', 10)) FROM %s.livepeer_payments", s.Database())); got != 1 {
			t.Errorf("Σ ev_wei: got %v, want exactly 1000.0000001", sumFloat(t, s, "ev_wei"))
		}
		// The optimizer's priors read the same tables on every profile.
		from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		priors, err := s.LivepeerPriors(ctx, from, from.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		byAddr := map[string]event.OrchestratorPrior{}
		for _, p := range priors {
			byAddr[p.Address] = p
		}
		if p := byAddr["0x2"]; p.DiscoverySamples != 1000 || p.DiscoveryP50Ms != 30 {
			t.Errorf("discovery prior of 0x2: got %d samples, p50 %v ms, want 1000 and 30", p.DiscoverySamples, p.DiscoveryP50Ms)
		}
		if p := byAddr["0xabc"]; len(p.Prices) != 1 || p.Prices[0].Payments != 1000 || math.Abs(p.Prices[0].PricePerUnitWei-1234.567) > 1e-6 || p.Prices[0].Capability != "text-to-image" {
			t.Errorf("price prior of 0xabc: got %+v, want 1000 text-to-image payments at 1234.567 wei/pixel", p.Prices)
		}
	})
}

func sumFloat(t *testing.T, s *Store, col string) any {
	t.Helper()
	rows, err := s.Query(context.Background(), "SELECT sum("+col+") FROM "+s.Database()+".livepeer_payments")
	if err != nil {
		t.Fatal(err)
	}
	return rows.Values[0][0]
}
