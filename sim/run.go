package sim

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/loopgate/loopgate/sim/scenario"
)

// ServiceDist is the distribution of service times.
type ServiceDist uint8

const (
	// Lognormal with the offer's p50 and σ = ln(p99/p50)/2.326: the format's.
	Lognormal ServiceDist = iota
	// Exponential with the offer's p50 as its median (mean p50/ln 2). It
	// exists so that queueing theory (M/M/c) can check the simulator.
	Exponential
)

// Options tune a run. The zero value is the format's behaviour.
type Options struct {
	Service ServiceDist
}

// RequestRecord is how one client request went.
type RequestRecord struct {
	ID       int
	Client   int
	Class    int
	Arrival  time.Duration
	End      time.Duration // success, failure or the client's timeout
	Success  bool
	Latency  time.Duration // End − Arrival, as the client saw it
	Attempts int
	Cost     float64 // billed for all its attempts
	Outcome  Outcome // OK, or what ended it (the last attempt's outcome, or TimedOut)
}

// SLOMet reports whether the request succeeded within its class's SLO.
func (r RequestRecord) SLOMet(sc *scenario.Scenario) bool {
	return r.Success && r.Latency <= sc.Classes[r.Class].SLO
}

// Result is everything one run produced, in arrival order.
type Result struct {
	Scenario string
	Seed     int64
	Requests []RequestRecord
	Attempts []Attempt // in the order they were sent
	Events   int64     // events the simulator processed
}

// Run simulates policy p on sc in virtual time and returns every request and
// attempt. It runs until every request has ended: clients send during
// [0, Duration), and the run goes on past it until the last reply or timeout.
//
// It stops early, with ctx's error, when ctx ends; the policy's own
// errors (a Clocked policy's Advance) end it too.
func Run(ctx context.Context, sc *scenario.Scenario, p Policy, opts Options) (*Result, error) {
	if sc == nil || p == nil {
		return nil, errors.New("run: nil scenario or policy")
	}
	return runArrivals(ctx, sc, p, opts, genArrivals(sc))
}

func runArrivals(ctx context.Context, sc *scenario.Scenario, p Policy, opts Options, arr []arrival) (*Result, error) {
	e := newEngine(sc, p, opts)
	if err := e.run(ctx, arr); err != nil {
		return nil, fmt.Errorf("simulate %s: %w", sc.Name, err)
	}
	res := &Result{
		Scenario: sc.Name, Seed: sc.Seed, Events: e.events,
		Requests: make([]RequestRecord, len(e.reqs)),
		Attempts: make([]Attempt, len(e.all)),
	}
	for i := range e.reqs {
		res.Requests[i] = e.reqs[i].record()
	}
	for i, a := range e.all {
		res.Attempts[i] = a.Attempt
	}
	return res, nil
}
