package closedloop

import (
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/loopgate/loopgate/optimizer"
	"github.com/loopgate/loopgate/sim"
	"github.com/loopgate/loopgate/sim/scenario"
)

func TestSteadyPhase(t *testing.T) {
	s := time.Second
	tests := []struct {
		name   string
		events []time.Duration
		want   []Interval
	}{
		{"no events", nil, []Interval{{60 * s, 600 * s}}},
		{"one event", []time.Duration{200 * s}, []Interval{{60 * s, 140 * s}, {260 * s, 600 * s}}},
		{"overlapping events", []time.Duration{200 * s, 220 * s}, []Interval{{60 * s, 140 * s}, {280 * s, 600 * s}}},
		{"event in the warmup", []time.Duration{30 * s}, []Interval{{90 * s, 600 * s}}},
		{"events cover it all", []time.Duration{100 * s, 200 * s, 300 * s, 400 * s, 500 * s, 580 * s}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := &scenario.Scenario{Warmup: 60 * s, Duration: 600 * s}
			for _, at := range tt.events {
				sc.Timeline = append(sc.Timeline, scenario.Change{At: at})
			}
			if got := SteadyPhase(sc, SteadyMargin); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCheckFrontier(t *testing.T) {
	s := time.Second
	sc := &scenario.Scenario{Warmup: 10 * s, Duration: 100 * s, Classes: []scenario.Class{{SLO: 2 * s}}}
	phase := []Interval{{20 * s, 80 * s}}
	res := &sim.Result{Requests: []sim.RequestRecord{
		{Arrival: 5 * s, Success: true, Latency: s, Cost: 9},       // warmup: not counted
		{Arrival: 30 * s, Success: true, Latency: s, Cost: 1},      // met
		{Arrival: 40 * s, Success: true, Latency: 3 * s, Cost: 2},  // late
		{Arrival: 50 * s, Success: false, Latency: s, Cost: 0},     // failed
		{Arrival: 60 * s, Success: true, Latency: s / 2, Cost: 1},  // met
		{Arrival: 90 * s, Success: true, Latency: 10 * s, Cost: 9}, // after the phase
	}}
	preds := []Prediction{
		{At: 15 * s, Point: optimizer.FrontierPoint{CostPerRequest: 9, SLOAttainment: 0, P95Ms: 9}},
		{At: 20 * s, Point: optimizer.FrontierPoint{CostPerRequest: 1, SLOAttainment: 0.6, P95Ms: 1000}},
		{At: 25 * s, Point: optimizer.FrontierPoint{CostPerRequest: 2, SLOAttainment: 0.4, P95Ms: 2000}},
	}
	c := CheckFrontier(sc, res, preds, 0.3, phase)
	tests := []struct {
		name      string
		got, want float64
	}{
		{"steps", float64(c.Steps), 2},
		{"requests", float64(c.Requests), 4},
		{"predicted cost", c.Predicted.CostPerRequest, 1.5},
		{"predicted SLO", c.Predicted.SLOAttainment, 0.5},
		{"predicted p95", c.Predicted.P95Ms, 1500},
		{"measured cost", c.Measured.CostPerRequest, 1},
		{"measured SLO", c.Measured.SLOAttainment, 0.5},
		{"measured p95", c.Measured.P95Ms, 3000},
		{"cost error", c.CostError(), 0.5},
		{"SLO error points", c.SLOErrorPoints(), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if math.Abs(tt.got-tt.want) > 1e-9 {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}
