package warehouse

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/loopgate/loopgate/event"
)

// spendOutcomes are requests of two keys on two routers over two hours,
// with known cost and charge.
func spendOutcomes(t0 time.Time) []event.Outcome {
	var outs []event.Outcome
	for i := range 400 {
		start := t0.Add(time.Duration(i) * 18 * time.Second) // 400 × 18 s = 2 h
		o := event.Outcome{
			ID: fmt.Sprintf("0190a000-0000-7000-8000-%012d", i), Schema: event.SchemaVersion,
			GatewayID: []string{"gw-1", "gw-2"}[i%2], APIKeyID: []string{"k1", "k2"}[i%3%2], Customer: "acme",
			Capability: event.CapLLM, Model: "m", Units: 100, UnitKind: event.UnitTokens,
			StartMs: start.UnixMilli(), EndMs: start.UnixMilli() + 500, Status: event.StatusOK, HTTPStatus: 200, LatencyMs: 500,
			Cost: 0.001 * float64(1+i%5), Attempts: []event.Attempt{{Orchestrator: "o", StartMs: start.UnixMilli(), LatencyMs: 500, Result: event.AttemptOK, HTTPStatus: 200, Billed: true, Propensity: 1}},
		}
		o.Attempts[0].Cost = o.Cost
		if i%7 == 0 {
			o.Status, o.HTTPStatus, o.ErrorClass = event.StatusError, 500, "http_500"
			o.Attempts[0].Result, o.Attempts[0].HTTPStatus = event.AttemptError, 500
		} else {
			o.Charge = 0.004
		}
		o.Margin = o.Charge - o.Cost
		outs = append(outs, o)
	}
	return outs
}

// TestSpend: the routers' shared spend sums the calling router's own
// requests since its start apart (Own), and the spend_1h rollup's margin
// per customer, class and day equals the outcomes' charge − cost.
func TestSpend(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tb testBackend) {
		ctx := context.Background()
		s := newStore(t, tb)
		t0 := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
		outs := spendOutcomes(t0)
		if err := s.WriteOutcomes(ctx, "spend", outs); err != nil {
			t.Fatal(err)
		}
		ownSince := t0.Add(90 * time.Minute).UnixMilli()
		want := map[string]float64{} // key/hour → charge
		var wantCost, wantCharge float64
		for _, o := range outs {
			wantCost += o.Cost
			wantCharge += o.Charge
			own := o.GatewayID == "gw-1" && o.StartMs >= ownSince
			want[fmt.Sprintf("%s/%d/%v", o.APIKeyID, time.UnixMilli(o.StartMs).Truncate(time.Hour).UnixMilli(), own)] += o.Charge
		}
		rows, err := s.Spend(ctx, t0, "gw-1", ownSince)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != len(want) {
			t.Fatalf("got %d spend rows %v, want %d", len(rows), rows, len(want))
		}
		for _, r := range rows {
			k := fmt.Sprintf("%s/%d/%v", r.APIKeyID, r.HourMs, r.Own)
			if w, ok := want[k]; !ok || math.Abs(r.Charge-w) > 1e-9 || r.Customer != "acme" {
				t.Errorf("got %s charge %v customer %q, want %v acme", k, r.Charge, r.Customer, w)
			}
		}
		// The hour since t0+1h only.
		rows, err = s.Spend(ctx, t0.Add(time.Hour), "gw-1", ownSince)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if r.HourMs != t0.Add(time.Hour).UnixMilli() {
				t.Errorf("got a row of hour %v before since", time.UnixMilli(r.HourMs))
			}
		}
		res, err := s.Query(ctx, "SELECT toString(toDate(hour)) AS day, customer, capability, model, sum(requests), sum(cost), sum(charge), sum(charge) - sum(cost) FROM "+s.Database()+".spend_1h GROUP BY day, customer, capability, model")
		if err != nil {
			t.Fatal(err)
		}
		if res.Len() != 1 {
			t.Fatalf("got %d rollup rows %v, want one day of one customer and class", res.Len(), res.Values)
		}
		r := res.Values[0]
		if r[0] != "2026-03-01" || i64(r[4]) != 400 || math.Abs(f64(r[5])-wantCost) > 1e-9 || math.Abs(f64(r[6])-wantCharge) > 1e-9 || math.Abs(f64(r[7])-(wantCharge-wantCost)) > 1e-9 {
			t.Fatalf("got rollup %v, want 2026-03-01 400 requests cost %v charge %v margin %v", r, wantCost, wantCharge, wantCharge-wantCost)
		}
	})
}

// TestAPIKeys: the newest version of each key is in force.
func TestAPIKeys(t *testing.T) {
	forEachBackend(t, func(t *testing.T, tb testBackend) {
		ctx := context.Background()
		s := newStore(t, tb)
		h := "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
		k1 := event.APIKey{ID: "k1", SHA256: h, Customer: "acme", CreatedMs: 10, Limits: event.Limits{Concurrency: 2}}
		k2 := event.APIKey{ID: "k2", SHA256: h, Customer: "beta", CreatedMs: 20}
		revoked := k1
		revoked.RevokedMs = 30
		for _, w := range []struct {
			k  event.APIKey
			at int64
		}{{revoked, 30}, {k1, 10}, {k2, 20}} { // out of order: the version decides
			if err := s.WriteAPIKey(ctx, w.k, w.at); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.APIKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].ID != "k1" || got[0].RevokedMs != 30 || got[0].Limits.Concurrency != 2 || got[1].ID != "k2" || got[1].RevokedMs != 0 {
			t.Fatalf("got %+v, want k1 revoked at 30 (with its limits) and k2 live", got)
		}
	})
}
