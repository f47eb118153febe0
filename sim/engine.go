package sim

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/loopgate/loopgate/sim/scenario"
)

// attState is where an attempt is.
type attState uint8

const (
	stTravelling attState = iota // sent, not yet at the orchestrator
	stQueued
	stServing
	stReplying // the reply (or refusal) is on its way back
	stSilent   // swallowed by a hung orchestrator: never answers
	stDropped  // gone: the router abandoned it before service, or it was answered
)

type attempt struct {
	Attempt
	req       *request
	visit     uint64 // how many earlier attempts of the request went to this orchestrator
	state     attState
	slowFail  bool
	reached   time.Duration
	slot      int  // index in the orchestrator's serving list
	finished  bool // the router has learned the outcome or given up
	abandoned bool // the router gave up on it; a late reply is ignored
}

type request struct {
	Request
	limits      Limits
	outstanding int
	done        bool
	success     bool
	end         time.Duration
	cost        float64
	last        Outcome
	attempts    []*attempt
}

// engine is one run of one policy on one scenario.
type engine struct {
	// ctx is the run's, kept for the duration of run only: the policy's
	// Advance needs it from deep inside event handling.
	ctx     context.Context
	clocked Clocked
	reqObs  RequestObserver // nil unless the policy is one
	sc      *scenario.Scenario
	opts    Options
	pol     Policy
	fleet   *Fleet
	state   scenario.State
	now     time.Duration
	agenda  agenda
	regions map[string]int
	rtt     [][]time.Duration // by region index
	orchs   []orchState
	reqs    []request
	all     []*attempt
	events  int64
	err     error
}

func newEngine(sc *scenario.Scenario, pol Policy, opts Options) *engine {
	e := &engine{sc: sc, opts: opts, pol: pol, regions: map[string]int{}}
	for i, r := range sc.Regions {
		e.regions[r] = i
	}
	e.rtt = make([][]time.Duration, len(sc.Regions))
	for i, a := range sc.Regions {
		e.rtt[i] = make([]time.Duration, len(sc.Regions))
		for j, b := range sc.Regions {
			d, ok := sc.RTT.Between(a, b)
			if !ok {
				d = -1 // validated scenarios never use such a pair
			}
			e.rtt[i][j] = d
		}
	}
	e.state = sc.Initial()
	e.orchs = make([]orchState, len(sc.Orchestrators))
	for i := range e.orchs {
		e.orchs[i].configure(sc, e.state.Orchestrators[i], e.regions)
	}
	e.fleet = &Fleet{e: e}
	e.fleet.rebuild()
	return e
}

func (e *engine) fail(format string, args ...any) {
	if e.err == nil {
		e.err = fmt.Errorf(format, args...)
	}
}

func (e *engine) run(ctx context.Context, arr []arrival) error {
	e.ctx = ctx
	e.clocked, _ = e.pol.(Clocked)
	e.reqObs, _ = e.pol.(RequestObserver)
	e.reqs = make([]request, len(arr))
	e.all = make([]*attempt, 0, len(arr)+len(arr)/8)
	for i, ch := range e.sc.Timeline {
		if i == 0 || ch.At != e.sc.Timeline[i-1].At {
			e.agenda.push(event{at: ch.At, kind: evTimeline, req: int32(i)})
		}
	}
	if obs, ok := e.pol.(ChangeObserver); ok {
		st := e.state.Clone()
		obs.OnChange(0, &st)
	}
	next := 0
	for e.err == nil {
		if e.events%ctxCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("stopped at %s of virtual time: %w", e.now, err)
			}
		}
		if next < len(arr) && (e.agenda.len() == 0 || arr[next].at < e.agenda.peek()) {
			e.now = arr[next].at
			e.events++
			e.arrive(next, arr[next])
			next++
			continue
		}
		if e.agenda.len() == 0 {
			break
		}
		ev := e.agenda.pop()
		e.now = ev.at
		e.events++
		e.dispatch(ev)
	}
	return e.err
}

// ctxCheckEvery is how many events pass between two looks at the run's
// context: often enough to stop within milliseconds, rarely enough to cost
// nothing.
const ctxCheckEvery = 1024

// advance lets a Clocked policy do its work up to now before it is asked
// anything. It reports false, and ends the run, when that work failed.
func (e *engine) advance() bool {
	if e.clocked == nil || e.err != nil {
		return e.err == nil
	}
	if err := e.clocked.Advance(e.ctx, e.now); err != nil {
		e.err = fmt.Errorf("policy at %s: %w", e.now, err)
		return false
	}
	return true
}

func (e *engine) dispatch(ev event) {
	switch ev.kind {
	case evTimeline:
		e.applyTimeline(int(ev.req))
	case evReach:
		e.reach(ev.att)
	case evDone:
		e.done(ev.att)
	case evReply:
		e.reply(ev.att)
	case evDeadline:
		e.deadline(&e.reqs[ev.req])
	case evHedge:
		e.hedge(ev.att)
	case evRepick:
		// A parked request only: a wake may outlive the wait it ended.
		if r := &e.reqs[ev.req]; !r.done && r.outstanding == 0 {
			e.pick(r, false)
		}
	case evAttemptTimeout:
		if a := ev.att; !a.finished {
			e.abandon(a, AttemptTimeout)
			if a.req.outstanding == 0 && !a.req.done {
				e.next(a.req)
			}
		}
	}
}

func (e *engine) arrive(id int, a arrival) {
	cl := &e.sc.Classes[a.class]
	r := &e.reqs[id]
	r.Request = Request{
		ID: id, Client: a.client, Region: a.region, Class: a.class,
		Arrival: e.now, Deadline: e.now + cl.Timeout,
	}
	r.last = Shed
	r.limits = e.pol.Limits(e.now, &r.Request)
	if r.limits.MaxAttempts < 1 {
		r.limits.MaxAttempts = 1
	}
	e.agenda.push(event{at: r.Deadline, kind: evDeadline, req: int32(id)})
	e.pick(r, false)
}

// pick asks the policy for the next attempt of r and starts it.
func (e *engine) pick(r *request, hedge bool) {
	if !e.advance() {
		return
	}
	c := e.pol.Pick(e.now, &r.Request, e.fleet)
	switch {
	case c.Orch >= len(e.orchs):
		e.fail("policy picked orchestrator %d of %d", c.Orch, len(e.orchs))
	case c.Orch >= 0:
		e.start(r, c.Orch, hedge, c.Timeout)
	case hedge:
		// No hedge; the attempt in flight goes on.
	case c.Wait > 0:
		e.agenda.push(event{at: e.now + c.Wait, kind: evRepick, req: int32(r.ID)})
	case r.outstanding == 0:
		e.finish(r, false)
	}
}

// next retries r after its last attempt ended without success, or fails it.
func (e *engine) next(r *request) {
	if r.Attempts >= r.limits.MaxAttempts || e.now >= r.Deadline {
		e.finish(r, false)
		return
	}
	e.pick(r, false)
}

func (e *engine) start(r *request, o int, hedge bool, timeout time.Duration) {
	orch := &e.orchs[o]
	rtt := e.rtt[e.regions[r.Region]][orch.region]
	a := &attempt{req: r}
	a.Attempt = Attempt{
		Request: r.ID, Client: r.Client, Class: r.Class, Orch: o, Seq: r.Attempts,
		Hedge: hedge, Sent: e.now, RTT: rtt,
	}
	for _, t := range r.Tried {
		if t == o {
			a.visit++
		}
	}
	r.Tried = append(r.Tried, o)
	r.Attempts++
	r.outstanding++
	r.attempts = append(r.attempts, a)
	orch.inflight++
	e.all = append(e.all, a)
	e.agenda.push(event{at: e.now + rtt/2, kind: evReach, att: a})
	if timeout <= 0 {
		timeout = r.limits.AttemptTimeout
	}
	if timeout > 0 {
		e.agenda.push(event{at: e.now + timeout, kind: evAttemptTimeout, att: a})
	}
	if r.limits.HedgeAfter > 0 && r.outstanding == 1 && r.Attempts < r.limits.MaxAttempts {
		e.agenda.push(event{at: e.now + r.limits.HedgeAfter, kind: evHedge, att: a})
	}
}

func (e *engine) hedge(a *attempt) {
	r := a.req
	if r.done || a.finished || r.outstanding != 1 || r.Attempts >= r.limits.MaxAttempts {
		return
	}
	e.pick(r, true)
}

// back is the one-way trip from the orchestrator to the router; with the
// rtt/2 of the way out it adds up to exactly one rtt.
func back(a *attempt) time.Duration { return a.RTT - a.RTT/2 }

// answer sends a reply with outcome o from the orchestrator to the router.
func (e *engine) answer(a *attempt, o Outcome) {
	a.Outcome = o
	a.state = stReplying
	e.agenda.push(event{at: e.now + back(a), kind: evReply, att: a})
}

// reach admits an attempt at its orchestrator: refuse, swallow, fail fast,
// serve, queue or reject.
func (e *engine) reach(a *attempt) {
	if a.abandoned {
		a.state = stDropped
		return
	}
	o := &e.orchs[a.Orch]
	a.reached = e.now
	switch {
	case o.cfg.Down:
		e.answer(a, Refused)
		return
	case o.cfg.Hang:
		a.state = stSilent
		return
	case !o.offers[a.Class].ok:
		e.answer(a, Unsupported)
		return
	}
	if u := unit(draw(e.sc.Seed, purposeFail, uint64(a.Request), uint64(a.Orch), a.visit)); u < o.cfg.Fail {
		if o.cfg.FailMode == scenario.FailSlow {
			a.slowFail = true
		} else {
			e.answer(a, Failed)
			return
		}
	}
	switch {
	case o.busy < o.cfg.Capacity && o.queued == 0:
		e.serve(o, a)
	case o.queued < o.cfg.Queue:
		o.enqueue(a)
	default:
		e.answer(a, Rejected)
	}
}

func (e *engine) serve(o *orchState, a *attempt) {
	off := o.offers[a.Class]
	a.state = stServing
	a.Wait = e.now - a.reached
	h := draw(e.sc.Seed, purposeService, uint64(a.Request), uint64(a.Orch), a.visit)
	a.Service = time.Duration(math.Round(serviceTime(e.opts.Service, off, h)))
	a.Cost = off.price * e.sc.Classes[a.Class].Units
	a.req.cost += a.Cost
	o.addServing(a)
	e.agenda.push(event{at: e.now + a.Service, kind: evDone, att: a})
}

func (e *engine) done(a *attempt) {
	if a.state != stServing {
		return // the orchestrator went down or hung meanwhile
	}
	o := &e.orchs[a.Orch]
	o.removeServing(a)
	if a.abandoned {
		a.state = stDropped
	} else if a.slowFail {
		e.answer(a, Failed)
	} else {
		e.answer(a, OK)
	}
	e.drain(o)
}

// drain starts queued attempts while servers are free.
func (e *engine) drain(o *orchState) {
	for o.busy < o.cfg.Capacity && o.queued > 0 {
		e.serve(o, o.dequeue())
	}
}

func (e *engine) reply(a *attempt) {
	if a.abandoned || a.state != stReplying {
		return
	}
	a.state = stDropped
	e.settle(a, a.Outcome)
	r := a.req
	if a.Outcome == OK {
		e.finish(r, true)
		return
	}
	if r.outstanding == 0 {
		e.next(r)
	}
}

// settle records that the router learned how a is over.
func (e *engine) settle(a *attempt, o Outcome) {
	a.finished = true
	a.Outcome = o
	a.End = e.now
	a.Latency = e.now - a.Sent
	a.req.outstanding--
	a.req.last = o
	e.orchs[a.Orch].inflight--
	if e.advance() {
		e.pol.Observe(e.now, &a.Attempt)
	}
}

// abandon gives up on an attempt that has not answered: a queued attempt
// leaves the queue unbilled, one in service goes on (and stays billed).
func (e *engine) abandon(a *attempt, o Outcome) {
	a.abandoned = true
	if a.state == stQueued {
		a.state = stDropped
		e.orchs[a.Orch].queued--
	}
	e.settle(a, o)
}

func (e *engine) finish(r *request, success bool) {
	r.done, r.success, r.end = true, success, e.now
	for _, a := range r.attempts {
		if !a.finished {
			if success {
				e.abandon(a, Cancelled)
			} else {
				e.abandon(a, TimedOut)
			}
		}
	}
	if e.reqObs != nil {
		rec := r.record()
		e.reqObs.Finished(e.now, &rec)
	}
}

// record is r as the report counts it.
func (r *request) record() RequestRecord {
	out := r.last
	if r.success {
		out = OK
	}
	return RequestRecord{
		ID: r.ID, Client: r.Client, Class: r.Class, Arrival: r.Arrival, End: r.end,
		Success: r.success, Latency: r.end - r.Arrival, Attempts: r.Attempts, Cost: r.cost,
		Outcome: out,
	}
}

func (e *engine) deadline(r *request) {
	if r.done {
		return
	}
	r.last = TimedOut
	e.finish(r, false)
}

// applyTimeline applies every timeline entry at the time of entry first.
func (e *engine) applyTimeline(first int) {
	tl := e.sc.Timeline
	for i := first; i < len(tl) && tl[i].At == tl[first].At; i++ {
		if err := e.state.Apply(tl[i]); err != nil {
			e.fail("timeline %s: %w", tl[i], err)
			return
		}
		if tl[i].Orchestrator == "" {
			continue // client changes are already in the arrivals
		}
		oi := e.sc.OrchestratorIndex(tl[i].Orchestrator)
		o := &e.orchs[oi]
		wasDown, wasHung := o.cfg.Down, o.cfg.Hang
		o.configure(e.sc, e.state.Orchestrators[oi], e.regions)
		switch {
		case o.cfg.Down && !wasDown:
			e.evict(o, true)
		case o.cfg.Hang && !o.cfg.Down && !wasHung:
			e.evict(o, false)
		default:
			e.drain(o)
		}
	}
	e.fleet.rebuild()
	if obs, ok := e.pol.(ChangeObserver); ok {
		st := e.state.Clone()
		obs.OnChange(e.now, &st)
	}
}

// evict empties an orchestrator that goes down (its attempts are reset) or
// hangs (its attempts are never answered). Either way its servers are free.
func (e *engine) evict(o *orchState, down bool) {
	var held []*attempt
	held = append(held, o.serving...)
	for a := o.dequeue(); a != nil; a = o.dequeue() {
		held = append(held, a)
	}
	clear(o.serving)
	o.serving, o.busy = o.serving[:0], 0
	for _, a := range held {
		switch {
		case a.abandoned:
			a.state = stDropped
		case down:
			e.answer(a, Reset)
		default:
			a.state = stSilent
		}
	}
}
