package scenario

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/loopgate/loopgate/event"
)

// Scenario is one parsed and validated scenario file.
type Scenario struct {
	Name          string
	Description   string
	Seed          int64
	Duration      time.Duration // virtual time during which clients send
	Warmup        time.Duration // requests that arrive before it are not counted
	Regions       []string
	RTT           RTT
	Classes       []Class
	Clients       []Client
	Orchestrators []Orchestrator
	Timeline      []Change // sorted by At (stable)
	Gateway       *Gateway // business rules (gateway.go); nil: none
}

// Class is a kind of request clients send.
type Class struct {
	ID         string
	Capability string
	Model      string
	Units      float64       // units per request (pixels, tokens, ms, characters)
	SLO        time.Duration // met if the request succeeds within it
	Timeout    time.Duration // the client gives up; the request fails
	Value      float64       // USD lost when a request misses its SLO
}

// Client sends Poisson traffic.
type Client struct {
	ID     string
	Region string
	Rate   float64            // requests per second
	Mix    map[string]float64 // class id -> share; shares sum to 1
	// On/off traffic: with On > 0 the client sends at Rate for On, then
	// at OffRate for Off, repeating from time 0 (a timeline change of
	// rate sets the "on" rate). Zero On: always Rate.
	On, Off time.Duration
	OffRate float64
}

// Bursty reports whether the client sends on/off traffic.
func (c *Client) Bursty() bool { return c.On > 0 && c.Off > 0 }

// RateAt is the client's rate at time t (its on or off rate).
func (c *Client) RateAt(t time.Duration) float64 {
	if !c.Bursty() || t%(c.On+c.Off) < c.On {
		return c.Rate
	}
	return c.OffRate
}

// FailMode says how an orchestrator's failures look to the client.
type FailMode string

// Fail modes.
const (
	FailFast FailMode = "fast" // 500 after one round trip, not billed
	FailSlow FailMode = "slow" // 500 after the service time, billed
)

// Offer is what an orchestrator charges and how fast it serves one class.
type Offer struct {
	Price float64       // USD per unit
	P50   time.Duration // median service time
	P99   time.Duration // 99th percentile service time
}

// Sigma is the σ of the lognormal service time: ln(p99/p50)/2.326.
func (o Offer) Sigma() float64 {
	if o.P50 <= 0 || o.P99 <= o.P50 {
		return 0
	}
	return math.Log(float64(o.P99)/float64(o.P50)) / Z99
}

// Z99 is the 99th percentile of the standard normal distribution as the
// format defines it.
const Z99 = 2.326

// Orchestrator is one upstream with its current configuration.
type Orchestrator struct {
	ID       string
	Region   string
	Address  string
	Stake    float64
	Capacity int // requests served at once
	Queue    int // requests waiting beyond Capacity; more are rejected (503)
	Classes  map[string]Offer
	Fail     float64 // probability that an attempt fails
	FailMode FailMode
	Down     bool // connections refused
	Hang     bool // accepts, never answers
}

// Change is one timeline entry: from At on, Set applies to the named
// orchestrator or client (exactly one of them is non-empty).
type Change struct {
	At           time.Duration
	Orchestrator string
	Client       string
	Set          Patch
}

// Patch holds the fields a timeline entry sets; nil pointers are not set.
type Patch struct {
	// Orchestrator fields.
	Region   *string
	Address  *string
	Stake    *float64
	Capacity *int
	Queue    *int
	Fail     *float64
	FailMode *FailMode
	Down     *bool
	Hang     *bool
	// Classes merges per class; a nil *OfferPatch removes the class.
	Classes map[string]*OfferPatch
	// Client fields (Region above is shared).
	Rate *float64
	Mix  map[string]float64 // replaces the whole mix when non-nil
}

// OfferPatch changes some fields of one class offer.
type OfferPatch struct {
	Price *float64
	P50   *time.Duration
	P99   *time.Duration
}

// RTT holds round-trip times between regions.
type RTT struct {
	SameRegion time.Duration
	Pairs      map[[2]string]time.Duration // keyed by the sorted pair
}

// Between returns the round trip between regions a and b.
func (r RTT) Between(a, b string) (time.Duration, bool) {
	if a == b {
		return r.SameRegion, true
	}
	d, ok := r.Pairs[pairKey(a, b)]
	return d, ok
}

func pairKey(a, b string) [2]string {
	if b < a {
		a, b = b, a
	}
	return [2]string{a, b}
}

// ClassIndex returns the index of class id in Classes, or -1.
func (s *Scenario) ClassIndex(id string) int {
	for i := range s.Classes {
		if s.Classes[i].ID == id {
			return i
		}
	}
	return -1
}

// OrchestratorIndex returns the index of orchestrator id, or -1.
func (s *Scenario) OrchestratorIndex(id string) int {
	for i := range s.Orchestrators {
		if s.Orchestrators[i].ID == id {
			return i
		}
	}
	return -1
}

// ClientIndex returns the index of client id, or -1.
func (s *Scenario) ClientIndex(id string) int {
	for i := range s.Clients {
		if s.Clients[i].ID == id {
			return i
		}
	}
	return -1
}

// FormatAt formats a timeline time the way reports key it: "200s", "12.5s".
func FormatAt(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}

// String describes a change for logs and errors.
func (c Change) String() string {
	target := "orchestrator " + c.Orchestrator
	if c.Client != "" {
		target = "client " + c.Client
	}
	return fmt.Sprintf("%s %s set %s", FormatAt(c.At), target, c.Set)
}

// String lists the fields a patch sets, sorted.
func (p Patch) String() string {
	var f []string
	add := func(name string, set bool, v any) {
		if set {
			f = append(f, fmt.Sprintf("%s: %v", name, v))
		}
	}
	add("region", p.Region != nil, deref(p.Region))
	add("address", p.Address != nil, deref(p.Address))
	add("stake", p.Stake != nil, deref(p.Stake))
	add("capacity", p.Capacity != nil, deref(p.Capacity))
	add("queue", p.Queue != nil, deref(p.Queue))
	add("fail", p.Fail != nil, deref(p.Fail))
	add("fail_mode", p.FailMode != nil, deref(p.FailMode))
	add("down", p.Down != nil, deref(p.Down))
	add("hang", p.Hang != nil, deref(p.Hang))
	add("rate", p.Rate != nil, deref(p.Rate))
	if p.Mix != nil {
		f = append(f, fmt.Sprintf("mix: %v", p.Mix))
	}
	if p.Classes != nil {
		ids := make([]string, 0, len(p.Classes))
		for id := range p.Classes {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		f = append(f, "classes: "+strings.Join(ids, ","))
	}
	return "{" + strings.Join(f, ", ") + "}"
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// PickClass draws a class index by mix for a uniform u in [0, 1), walking
// the classes in scenario order, so the same u picks the same class in the
// simulator and the load generator. It returns -1 for an empty mix.
func (sc *Scenario) PickClass(mix map[string]float64, u float64) int {
	acc, last := 0.0, -1
	for j, cl := range sc.Classes {
		share := mix[cl.ID]
		if share <= 0 {
			continue
		}
		last = j
		acc += share
		if u < acc {
			return j
		}
	}
	return last // rounding: shares sum to 1 within 1e-6
}

// Advertised is what discovery tells a gateway about o, in the fleet
// vocabulary: its id, region, address and stake, how many requests it
// serves at once (its capacity, what go-livepeer's capabilities advertise
// per model; the queue behind it holds waiting requests, not servers, and
// is not advertised), and its price for every class it serves, one per wire class
// (capability, model) — the lowest when several scenario classes share
// one — in the scenario's class order. Its latency, failures and the
// timeline's down and hang states stay hidden. URL is left empty: the
// simulated fleet fills in where it listens.
func (s *Scenario) Advertised(o *Orchestrator) event.Orchestrator {
	out := event.Orchestrator{
		ID: o.ID, Region: o.Region, Address: o.Address, Stake: o.Stake,
		MaxInFlight: o.Capacity,
	}
	at := map[[2]string]int{}
	for _, cl := range s.Classes {
		off, ok := o.Classes[cl.ID]
		if !ok {
			continue
		}
		k := [2]string{cl.Capability, cl.Model}
		if i, seen := at[k]; seen {
			out.Classes[i].PricePerUnit = min(out.Classes[i].PricePerUnit, off.Price)
			continue
		}
		at[k] = len(out.Classes)
		out.Classes = append(out.Classes, event.ClassPrice{Capability: cl.Capability, Model: cl.Model, PricePerUnit: off.Price})
	}
	return out
}
