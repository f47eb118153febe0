package sim

import (
	"errors"
	"fmt"
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
//	rep, err := sim.Bench(sc, append(sim.BaselineNames(), "loopgate"), sim.BenchOptions{Registry: reg})
//	rep.WriteMarkdown(os.Stdout)
func Bench(sc *scenario.Scenario, policies []string, opts BenchOptions) (*Report, error) {
	if sc == nil {
		return nil, errors.New("bench: nil scenario")
	}
	reg := opts.Registry
	if reg == nil {
		reg = Baselines()
	}
	rep := &Report{Scenario: sc.Name, Seed: sc.Seed}
	arr := genArrivals(sc)
	for _, name := range policies {
		ctor, ok := reg[name]
		if !ok {
			return nil, fmt.Errorf("bench: unknown policy %q", name)
		}
		var start time.Time
		if opts.Now != nil {
			start = opts.Now()
		}
		p, err := ctor(NewEnv(sc, name))
		if err != nil {
			return nil, fmt.Errorf("bench: build policy %s: %w", name, err)
		}
		res, err := runArrivals(sc, p, opts.Run, arr)
		if err != nil {
			return nil, fmt.Errorf("bench: policy %s: %w", name, err)
		}
		rep.Policies = append(rep.Policies, Summarize(sc, name, res))
		t := PolicyTiming{Name: name, Events: res.Events}
		if opts.Now != nil {
			t.Elapsed = opts.Now().Sub(start)
		}
		rep.Timing = append(rep.Timing, t)
	}
	return rep, nil
}
