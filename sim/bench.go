package sim

import (
	"context"
	"time"

	"github.com/loopgate/loopgate/sim/scenario"
)

// BenchOptions tune Bench.
type BenchOptions struct {
	Run Options
	// Registry resolves policy names; nil means Baselines().
	Registry Registry
	// Now times each run for the console; nil means no timing. (The
	// simulation itself never reads a clock.)
	Now func() time.Time
}

// Bench runs each named policy on the same scenario, with the same seed,
// arrivals and per-request random draws, and summarizes them in order.
//
//	reg := sim.Baselines()
//	reg["loopgate"] = newLoopgate // the product, added by the caller
//	rep, err := sim.Bench(ctx, sc, append(sim.BaselineNames(), "loopgate"), sim.BenchOptions{Registry: reg})
//	rep.WriteMarkdown(os.Stdout)
func Bench(ctx context.Context, sc *scenario.Scenario, policies []string, opts BenchOptions) (*Report, error) {
	return BenchRuns(ctx, sc, policies, opts, nil)
}
