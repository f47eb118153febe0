package sim

import (
	"math"
	"time"

	"github.com/loopgate/loopgate/sim/scenario"
)

// offer is one class offer of an orchestrator in the units the engine uses.
type offer struct {
	ok    bool
	price float64 // USD per unit
	p50   float64 // ns
	sigma float64
}

// orchState is an orchestrator in the simulation: its current configuration
// and its servers and FIFO queue.
type orchState struct {
	cfg     scenario.Orchestrator
	offers  []offer // by class index
	region  int     // index into the engine's regions
	busy    int     // servers in use
	queue   []*attempt
	head    int // queue[head:] holds the queue; dropped attempts are skipped
	queued  int // live attempts in the queue
	serving []*attempt
	// inflight counts the router's attempts sent to it and not yet finished.
	inflight int
}

func (o *orchState) configure(sc *scenario.Scenario, cfg scenario.Orchestrator, regions map[string]int) {
	o.cfg = cfg
	o.region = regions[cfg.Region]
	if o.offers == nil {
		o.offers = make([]offer, len(sc.Classes))
	}
	for j, cl := range sc.Classes {
		off, ok := cfg.Classes[cl.ID]
		o.offers[j] = offer{ok: ok, price: off.Price, p50: float64(off.P50), sigma: off.Sigma()}
	}
}

func (o *orchState) enqueue(a *attempt) {
	if o.head > 64 && o.head > len(o.queue)/2 {
		n := copy(o.queue, o.queue[o.head:])
		clear(o.queue[n:])
		o.queue = o.queue[:n]
		o.head = 0
	}
	a.state = stQueued
	o.queue = append(o.queue, a)
	o.queued++
}

// dequeue returns the oldest live queued attempt, or nil.
func (o *orchState) dequeue() *attempt {
	for o.head < len(o.queue) {
		a := o.queue[o.head]
		o.queue[o.head] = nil
		o.head++
		if a.state == stQueued {
			o.queued--
			return a
		}
	}
	return nil
}

func (o *orchState) addServing(a *attempt) {
	a.slot = len(o.serving)
	o.serving = append(o.serving, a)
	o.busy++
}

func (o *orchState) removeServing(a *attempt) {
	last := o.serving[len(o.serving)-1]
	o.serving[a.slot] = last
	last.slot = a.slot
	o.serving[len(o.serving)-1] = nil
	o.serving = o.serving[:len(o.serving)-1]
	o.busy--
}

// Fleet is the router's view of the orchestrators: what discovery
// advertises (ids, regions, stake, classes and prices) and the router's own
// in-flight counts. It does not show the truth a router cannot see (down,
// hang, failure rates, latencies). Orchestrators are identified by their
// index in Scenario.Orchestrators.
type Fleet struct {
	e        *engine
	eligible [][]int // by class
}

func (f *Fleet) rebuild() {
	e := f.e
	f.eligible = make([][]int, len(e.sc.Classes))
	for i := range e.orchs {
		for j := range e.sc.Classes {
			if e.orchs[i].offers[j].ok {
				f.eligible[j] = append(f.eligible[j], i)
			}
		}
	}
}

// Len is the number of orchestrators.
func (f *Fleet) Len() int { return len(f.e.orchs) }

// Orchestrator returns orchestrator o's current configuration. Policies
// other than the oracle must use only ID, Region, Address, Stake and the
// prices in Classes: the rest is the hidden truth.
func (f *Fleet) Orchestrator(o int) *scenario.Orchestrator { return &f.e.orchs[o].cfg }

// Eligible lists the orchestrators that serve class, ascending. The slice
// belongs to the Fleet: do not modify it.
func (f *Fleet) Eligible(class int) []int { return f.eligible[class] }

// Serves reports whether orchestrator o serves class.
func (f *Fleet) Serves(o, class int) bool { return f.e.orchs[o].offers[class].ok }

// Price is orchestrator o's price per request of class (price × units).
func (f *Fleet) Price(o, class int) float64 {
	return f.e.orchs[o].offers[class].price * f.e.sc.Classes[class].Units
}

// Wake asks the simulator to call Pick again, now, for request id, which
// the policy parked with a Wait (queueing at its edge) and can now start:
// a slot it was waiting for has freed. The call comes after the current
// event, in scheduling order; a request that is over or has an attempt in
// flight is not asked.
func (f *Fleet) Wake(id int) {
	if id >= 0 && id < len(f.e.reqs) {
		f.e.agenda.push(event{at: f.e.now, kind: evRepick, req: int32(id)})
	}
}

// InFlight is the number of this router's attempts at orchestrator o that
// have not finished.
func (f *Fleet) InFlight(o int) int { return f.e.orchs[o].inflight }

// RTT is the round trip between a client region and orchestrator o.
func (f *Fleet) RTT(region string, o int) time.Duration {
	return f.e.rtt[f.e.regions[region]][f.e.orchs[o].region]
}

// Tried reports whether req already tried orchestrator o.
func Tried(req *Request, o int) bool {
	for _, t := range req.Tried {
		if t == o {
			return true
		}
	}
	return false
}

// serviceTime draws the service time in ns of a request's visit to an
// orchestrator: lognormal with the offer's p50 and σ, or exponential with
// the same median when the run asks for it.
func serviceTime(dist ServiceDist, off offer, h uint64) float64 {
	if dist == Exponential {
		return off.p50 / math.Ln2 * exponential(h)
	}
	return off.p50 * math.Exp(off.sigma*normal(h))
}
