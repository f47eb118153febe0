package oracle

import (
	"math"
	"testing"

	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/sim/scenario"
)

func TestAdmittedRates(t *testing.T) {
	sc := &scenario.Scenario{Classes: []scenario.Class{
		{ID: "img", Capability: "text-to-image", Units: 1000},
		{ID: "llm", Capability: "llm", Units: 100},
	}}
	clients := []scenario.Client{
		{ID: "runaway", Mix: map[string]float64{"img": 1}},
		{ID: "a", Mix: map[string]float64{"img": 0.5, "llm": 0.5}},
		{ID: "b", Mix: map[string]float64{"llm": 1}},
		{ID: "free", Mix: map[string]float64{"img": 1}},
	}
	kind, _ := event.UnitKindOf("llm")
	tests := []struct {
		name  string
		gw    *scenario.Gateway
		rates []float64
		want  []float64
	}{
		{"no gateway", nil, []float64{80, 10, 10, 5}, []float64{80, 10, 10, 5}},
		{"a key's requests per second", &scenario.Gateway{Keys: []scenario.GatewayKey{
			{Client: "runaway", Limits: event.Limits{RequestsPerSecond: 6, Burst: 12}},
		}}, []float64{80, 10, 10, 5}, []float64{6, 10, 10, 5}},
		// a sends 5 llm/s × 100 units, b 10/s × 100: 1500 units/s against 600/s.
		{"a customer's units per minute, shared by its clients", &scenario.Gateway{
			Customers: []scenario.GatewayCustomer{{ID: "acme", Limits: event.Limits{UnitsPerMinute: map[event.UnitKind]int64{kind: 36000}}}},
			Keys:      []scenario.GatewayKey{{Client: "a", Customer: "acme"}, {Client: "b", Customer: "acme"}},
		}, []float64{80, 10, 10, 5}, []float64{80, 4, 4, 5}},
		{"a limit above the rate admits it all", &scenario.Gateway{Keys: []scenario.GatewayKey{
			{Client: "free", Limits: event.Limits{RequestsPerSecond: 50}},
		}}, []float64{80, 10, 10, 5}, []float64{80, 10, 10, 5}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sc.Gateway = tc.gw
			got := admittedRates(sc, clients, tc.rates)
			for i := range got {
				if math.Abs(got[i]-tc.want[i]) > 1e-9 {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}
