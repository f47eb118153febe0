package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/loopgate/loopgate/sim/scenario"
)

// BenchRuns is Bench that also hands each policy's full Result to keep,
// in policy order, before going on to the next policy: plots need every
// request and attempt, which the Report summarizes away. keep may retain
// res. The Report is the one Bench returns for the same arguments.
//
//	rep, err := sim.BenchRuns(ctx, sc, sim.BaselineNames(), sim.BenchOptions{},
//		func(name string, res *sim.Result) { runs[name] = res })
func BenchRuns(ctx context.Context, sc *scenario.Scenario, policies []string, opts BenchOptions, keep func(name string, res *Result)) (*Report, error) {
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
		res, err := runOne(ctx, sc, name, ctor, opts.Run, arr)
		if err != nil {
			return nil, fmt.Errorf("bench: policy %s: %w", name, err)
		}
		rep.Policies = append(rep.Policies, Summarize(sc, name, res))
		t := PolicyTiming{Name: name, Events: res.Events}
		if opts.Now != nil {
			t.Elapsed = opts.Now().Sub(start)
		}
		rep.Timing = append(rep.Timing, t)
		if keep != nil {
			keep(name, res)
		}
	}
	return rep, nil
}

// runOne builds the policy, runs it and closes it (io.Closer) on every path.
func runOne(ctx context.Context, sc *scenario.Scenario, name string, ctor Constructor, opts Options, arr []arrival) (res *Result, err error) {
	p, err := ctor(ctx, NewEnv(sc, name))
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	if c, ok := p.(io.Closer); ok {
		defer func() {
			if cerr := c.Close(); cerr != nil && err == nil {
				res, err = nil, fmt.Errorf("close: %w", cerr)
			}
		}()
	}
	return runArrivals(ctx, sc, p, opts, arr)
}
