package sim

import (
	"context"
	"hash/fnv"
	"math/rand/v2"
	"time"

	"github.com/loopgate/loopgate/sim/scenario"
)

// Policy routes requests. The simulator calls Limits once when a request
// arrives, Pick for every attempt (the first, each retry and a hedge), and
// Observe once for every attempt when the router learns how it ended (a reply,
// or the router giving up on it). Calls come from one goroutine in virtual
// time order, so a policy needs no locking. A policy must be deterministic
// given the Env it was built with.
type Policy interface {
	// Limits returns the retry, hedging and timeout settings for a request.
	Limits(now time.Duration, req *Request) Limits
	// Pick chooses the orchestrator for the request's next attempt.
	// req.Tried lists the orchestrators already tried, in order.
	Pick(now time.Duration, req *Request, fleet *Fleet) Choice
	// Observe reports how an attempt ended. a is only valid during the call.
	Observe(now time.Duration, a *Attempt)
}

// ChangeObserver is implemented by policies that are told the true state of
// the fleet whenever the timeline changes it (and once at time 0). Only the
// oracle should: every other policy must learn from Observe alone.
type ChangeObserver interface {
	OnChange(now time.Duration, st *scenario.State)
}

// RequestObserver is implemented by policies that are told when each
// request ends (success, failure, refusal or the client's timeout), with
// the record the report will count. A gateway in front of a policy
// settles its admissions here (closedloop.Gated); routing needs no more
// than Observe.
type RequestObserver interface {
	Finished(now time.Duration, r *RequestRecord)
}

// Limits bounds what the simulator does for one request.
type Limits struct {
	// MaxAttempts caps attempts per request, retries and hedges included
	// (values < 1 mean 1).
	MaxAttempts int
	// AttemptTimeout abandons an attempt that has not answered after it and
	// lets the policy retry; 0 means only the client's timeout applies.
	AttemptTimeout time.Duration
	// HedgeAfter starts a second attempt on another orchestrator when the
	// only attempt in flight has not answered after it; 0 disables hedging.
	// The first success wins; the loser is abandoned (and billed if it had
	// started service).
	HedgeAfter time.Duration
}

// Choice is a policy's answer to Pick: an orchestrator index, or Orch < 0 to
// give up (the request fails unless another attempt is in flight), or a
// positive Wait to be asked again after it (queueing at the edge; the
// client's timeout still runs).
type Choice struct {
	Orch int
	Wait time.Duration
	// Timeout, when positive, is this attempt's own per-attempt timeout,
	// in place of Limits.AttemptTimeout: a policy that estimates each
	// orchestrator's latency sets it per attempt.
	Timeout time.Duration
}

// GiveUp is the Choice that picks no orchestrator.
func GiveUp() Choice { return Choice{Orch: -1} }

// Use is the Choice of orchestrator o.
func Use(o int) Choice { return Choice{Orch: o} }

// Request is what a policy knows about a client request.
type Request struct {
	ID       int // dense, in order of arrival, same for every policy
	Client   int // index into Scenario.Clients
	Region   string
	Class    int // index into Scenario.Classes
	Arrival  time.Duration
	Deadline time.Duration // Arrival + the class's timeout
	Attempts int           // attempts started so far
	Tried    []int         // orchestrators of those attempts, in order
}

// Outcome is how an attempt ended as the router saw it.
type Outcome uint8

// Attempt outcomes.
const (
	OK             Outcome = iota // 200
	Failed                        // 500 from the orchestrator (fast or slow failure)
	Rejected                      // 503: the orchestrator's queue was full
	Refused                       // the orchestrator is down: connection refused
	Reset                         // the orchestrator went down while holding the attempt
	Unsupported                   // the orchestrator does not serve the class (400)
	TimedOut                      // the client's timeout ended the request first
	AttemptTimeout                // the policy's per-attempt timeout fired
	Cancelled                     // another attempt of the same request won
	Shed                          // the policy picked no orchestrator (503 at the edge)
)

func (o Outcome) String() string {
	switch o {
	case OK:
		return "ok"
	case Failed:
		return "failed"
	case Rejected:
		return "rejected"
	case Refused:
		return "refused"
	case Reset:
		return "reset"
	case Unsupported:
		return "unsupported"
	case TimedOut:
		return "timeout"
	case AttemptTimeout:
		return "attempt_timeout"
	case Cancelled:
		return "cancelled"
	case Shed:
		return "shed"
	}
	return "unknown"
}

// Status is the HTTP status the router saw (0 when there was no reply).
func (o Outcome) Status() int {
	switch o {
	case OK:
		return 200
	case Failed:
		return 500
	case Rejected:
		return 503
	case Unsupported:
		return 400
	}
	return 0
}

// Attempt is one try of a request on one orchestrator.
type Attempt struct {
	Request int // Request.ID
	Client  int
	Class   int
	Orch    int
	Seq     int  // 0 for the first attempt of the request
	Hedge   bool // started by the hedge timer
	Sent    time.Duration
	End     time.Duration // when the router learned the outcome
	// Latency is End − Sent: for a reply, rtt + Wait + Service exactly.
	Latency time.Duration
	RTT     time.Duration // round trip between the client and the orchestrator
	Wait    time.Duration // time in the orchestrator's queue (truth, not known to a router)
	Service time.Duration // service time (truth); 0 if service never started
	Outcome Outcome
	Cost    float64 // billed: price × units if service started
}

// Env is what a policy is built from.
type Env struct {
	Scenario *scenario.Scenario // the scenario as written (time 0)
	Rand     *rand.Rand         // the policy's own stream, derived from the seed and its name
}

// NewEnv returns the Env for the policy called name on sc.
func NewEnv(sc *scenario.Scenario, name string) Env {
	h := fnv.New64a()
	h.Write([]byte(name))
	return Env{Scenario: sc, Rand: rand.New(rand.NewPCG(uint64(sc.Seed), h.Sum64()))}
}

// Constructor builds a fresh policy for one run; ctx bounds what building
// it blocks on. A policy that holds resources implements io.Closer: the
// simulator closes it once the run is over, however it ended.
type Constructor func(ctx context.Context, env Env) (Policy, error)

// Clocked is implemented by a policy that works as virtual time passes,
// besides answering Pick and Observe: the product's slow loop writes
// outcomes and runs its optimizer. The simulator calls Advance with the
// current virtual time before every Pick and every Observe; an error ends
// the run with it.
type Clocked interface {
	Advance(ctx context.Context, now time.Duration) error
}

// Registry maps policy names to constructors. Callers own it: Baselines
// returns a new one, and the product's policy is added by the caller:
//
//	reg := sim.Baselines()
//	reg["loopgate"] = newLoopgatePolicy
type Registry map[string]Constructor
