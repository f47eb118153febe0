// Package eventtest makes valid, deterministic events for tests and
// benchmarks of the packages that carry them.
package eventtest

import (
	"fmt"
	"math/rand/v2"

	"github.com/loopgate/loopgate/event"
)

// BaseMs is the start time of generated outcomes: 2026-01-01T00:00:00Z.
const BaseMs int64 = 1767225600000

var (
	regions       = []string{"FRA", "LAX", "MDW", "SIN"}
	orchestrators = []string{"fra-1", "fra-2", "lax-1", "mdw-1", "sin-1"}
)

// Outcome returns the i-th outcome of a deterministic sequence: ids are
// unique per (seed, i), start times advance 10 ms per i, and the number of
// attempts is AttemptsOf(i).
func Outcome(seed uint64, i int) event.Outcome {
	r := rand.New(rand.NewPCG(seed, uint64(i)))
	start := BaseMs + int64(i)*10
	n := AttemptsOf(i)
	o := event.Outcome{
		ID:            fmt.Sprintf("%016x-%08x", seed, i),
		Schema:        event.SchemaVersion,
		GatewayID:     "gw-test",
		GatewayRegion: "FRA",
		ClientRegion:  regions[i%len(regions)],
		APIKeyID:      "key-1",
		Customer:      "acme",
		Capability:    "text-to-image",
		Model:         "stabilityai/sdxl-turbo",
		Units:         1048576,
		UnitKind:      event.UnitPixels,
		StartMs:       start,
		Status:        event.StatusOK,
		HTTPStatus:    200,
		BytesIn:       512,
		BytesOut:      int64(100000 + r.IntN(1000)),
		PricePerUnit:  2e-9,
		PolicyVersion: uint64(1 + i/1000),
	}
	at := start
	for k := 0; k < n; k++ {
		lat := int64(200 + r.IntN(2000))
		a := event.Attempt{
			Orchestrator: orchestrators[(i+k)%len(orchestrators)],
			OrchRegion:   regions[(i+k)%len(regions)],
			StartMs:      at,
			LatencyMs:    lat,
			Result:       event.AttemptOK,
			HTTPStatus:   200,
			Retry:        k > 0,
			Billed:       true,
			Cost:         2e-9 * 1048576,
			Propensity:   0.25,
			Score:        event.Score{Share: 0.25, LatencyMs: float64(lat), InFlight: r.IntN(8), Penalty: 1, Weight: 0.25},
		}
		if k < n-1 {
			a.Result, a.HTTPStatus, a.ErrorClass, a.Billed, a.Cost = event.AttemptError, 500, "upstream_5xx", false, 0
		}
		o.Cost += a.Cost
		o.Attempts = append(o.Attempts, a)
		at += lat
	}
	o.EndMs = at
	o.LatencyMs = at - start
	o.TTFBMs = o.LatencyMs
	o.Charge = o.Cost * 1.2
	return o
}

// AttemptsOf is the number of attempts Outcome(_, i) carries: 1, 1, 2, 1, 3
// repeating, so totals are easy to compute.
func AttemptsOf(i int) int {
	return []int{1, 1, 2, 1, 3}[i%5]
}

// TotalAttempts is the sum of AttemptsOf(i) for i in [0, n).
func TotalAttempts(n int) int {
	t := 0
	for i := 0; i < n; i++ {
		t += AttemptsOf(i)
	}
	return t
}
