package gateway

import (
	"testing"
	"time"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
)

// BenchmarkAdmit measures one admission and its settlement, on a key
// without limits (the baseline: what the gate costs at all) and on a key
// and customer with every limit and a budget.
func BenchmarkAdmit(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Routers = 3
	cfg.Tiers = map[string]Tier{"std": {Prices: map[string]float64{"llm": 1e-6}}}
	cfg.Customers = []Customer{{ID: "acme", Tier: "std", Limits: event.Limits{RequestsPerSecond: 1e9, Concurrency: 1 << 20},
		Budgets: []event.Budget{{Period: event.PeriodMonth, USD: 1e12}}}}
	for _, bc := range []struct {
		name string
		key  event.APIKey
	}{
		{"no-limits", event.APIKey{ID: "plain", Customer: "nobody"}},
		{"all-limits", event.APIKey{ID: "k1", Customer: "acme", Limits: event.Limits{RequestsPerSecond: 1e9, Burst: 1 << 30, Concurrency: 1 << 20,
			UnitsPerMinute: map[event.UnitKind]int64{event.UnitTokens: 1 << 62}}, Budgets: []event.Budget{{Period: event.PeriodDay, USD: 1e12}}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
			var i int64
			g, err := New(cfg, "gw-1", deps.Deps{Clock: func() time.Time { return t0.Add(time.Duration(i) * time.Microsecond) }})
			if err != nil {
				b.Fatal(err)
			}
			req := request()
			o := &event.Outcome{Capability: event.CapLLM, Model: "m", Units: 256, UnitKind: event.UnitTokens}
			out := event.Outcome{Status: event.StatusOK, Capability: event.CapLLM, Model: "m", Units: 256, Cost: 1e-4}
			b.ReportAllocs()
			for b.Loop() {
				i++
				done, err := g.Admit(req, &bc.key, o, 1e-6, 0)
				if err != nil {
					b.Fatal(err)
				}
				res := out
				done(&res)
			}
		})
	}
}
