package optimizer

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/loopgate/loopgate/event"
)

// ShapingConfig tunes the workload shaping a policy carries: concurrency
// limits per orchestrator and admission rates per class × client region
// (see the package documentation, "Shaping").
type ShapingConfig struct {
	// NoLimits publishes no concurrency limits. Default false.
	NoLimits bool `yaml:"no_limits"`
	// NoAdmission publishes no admission rates. Default false.
	NoAdmission bool `yaml:"no_admission"`
	// Release: without the requests shed at the edge in view (no
	// ShedReader, or its read failed), a class under an admission rate
	// keeps one until its observed demand falls below Release × its rate
	// (its observed demand is then what was admitted, so it cannot show
	// the surge is over until it is well under). Default 0.8.
	Release float64 `yaml:"release"`
	// MinAdmitPerS is the smallest rate published (0 would mean
	// unlimited). Default 0.1.
	MinAdmitPerS float64 `yaml:"min_admit_per_s"`
}

// DefaultShapingConfig returns the defaults written on ShapingConfig.
func DefaultShapingConfig() ShapingConfig { return ShapingConfig{Release: 0.8, MinAdmitPerS: 0.1} }

// withDefaults fills zero fields with their defaults.
func (c ShapingConfig) withDefaults() ShapingConfig {
	d := DefaultShapingConfig()
	if c.Release == 0 {
		c.Release = d.Release
	}
	if c.MinAdmitPerS == 0 {
		c.MinAdmitPerS = d.MinAdmitPerS
	}
	return c
}

// Validate reports settings that cannot work (a zero field means its default).
func (c ShapingConfig) Validate() error {
	c = c.withDefaults()
	if !(c.Release > 0 && c.Release <= 1) {
		return fmt.Errorf("optimizer: shaping.release %v not in (0, 1]", c.Release)
	}
	if !(c.MinAdmitPerS > 0) || math.IsInf(c.MinAdmitPerS, 0) {
		return fmt.Errorf("optimizer: shaping.min_admit_per_s %v must be positive", c.MinAdmitPerS)
	}
	return nil
}

// shape fills in the policy's workload shaping, in place on its class
// entries (Value, SLOMs, AdmitPerS, AdmitReason), and returns its limits.
// st remembers which classes are under admission (the hysteresis).
//
// Limits (Little's law). An orchestrator that takes slots_i at once
// (advertised; a capacity learned from busy answers steers the shares,
// not the limit, which the router adapts itself) serves at most
// μ_i = slots_i / W_i requests per second, W_i its mean latency over the
// classes it serves. With N in flight, a request's latency is about N/μ_i,
// so keeping it within the tightest SLO T_i of those classes needs
// N ≤ μ_i·T_i:
//
//	limit_i = max(1, min(slots_i + q_i, ⌊μ_i·T_i⌋))
//	q_i     = 1 when 1/μ_i ≤ min over its classes of (SLO − p95 latency)
//	          and none of its attempts timed out in the window, else 0
//
// The one request beyond its slots waits in the orchestrator's own queue
// so that a server freed does not idle while the router hands the slot to
// the next request and that request travels (a round trip per request:
// on the bursty scenario, with limit = slots, the orchestrators idled 80 ms
// of every cross-region ~0.9 s request, and the edge shed what they could
// have served: SLO 0.8306 against 0.8477 with the queued one). Its wait,
// about 1/μ_i, must fit in every class's tail slack: on fleet-200-faults
// an unconditional one pushed audio-to-text, whose p95 is near its SLO,
// from 16 % shed to 32 %. And an orchestrator with attempts that timed out
// in the window gets none: a timeout is a slot held by service that did
// not end (a hang, or a slowdown past its timeout), and a request queued
// behind it waits for that, not for 1/μ_i (on hang-slow the queued one
// raised the shed rate from 4.3 % to 8.7 % and loopgate's loss to 1.15×
// the best classic balancer's).
//
// Orchestrators whose concurrency is only the default guess get none.
//
// Admission. The fleet's capacity is budgeted in server-seconds per
// second: orchestrator i offers Utilisation × slots_i (its advertised
// concurrency, else Capacity.DefaultMaxInFlight). Classes take it in
// order of value (USD per SLO miss, highest first; ties by name): class c
// needs offered_c × W_c, W_c its mean latency and offered_c its demand,
// what its attempts show plus the requests its admission rate refused
// (WithShed; not those the edge queue shed, see addShed), from the
// orchestrators serving it. The budget is
// handed out as a maximum flow (flow.go): a class takes as much as it can
// without lowering what any class before it got, work of an earlier class
// moving to orchestrators the later one cannot use. A class that cannot
// get its need gets AdmitPerS = got / W_c (at least MinAdmitPerS), split
// over its client-region entries by their offered demand (the region-less
// entry takes the demand of regions without an entry of their own, at
// least MinAdmitPerS). The cheap classes are thus lowered first, and a
// class is released as soon as what it is offered fits. Without a
// ShedReader, a class under admission shows only what was admitted, so it
// keeps its rate until that falls below Release × the rate.
func (r *round) shape(cfg *Config, st *state, entries []event.ClassPolicy) []event.Limit {
	sc := cfg.Shaping.withDefaults()
	for i := range entries {
		e := &entries[i]
		if ci, ok := r.byClass[classKey{e.Capability, e.Model}]; ok {
			c := &r.classes[ci]
			e.Value, e.SLOMs = c.value, int64(math.Round(c.slo*1000))
		}
	}
	var limits []event.Limit
	if !sc.NoLimits {
		limits = r.limits()
	}
	if !sc.NoAdmission {
		r.admission(cfg, st, entries)
	}
	return limits
}

// orchLoad is what shaping knows of one orchestrator.
type orchLoad struct {
	work, slo float64 // mean latency over its classes (s), tightest SLO (s)
	// room is the least, over its classes, of SLO − p95 latency (s): the
	// wait a queued request can take without pushing a class's tail past
	// its SLO.
	room float64
	n    int
}

func (r *round) orchLoads() []orchLoad {
	out := make([]orchLoad, len(r.orchs))
	for ci := range r.classes {
		c := &r.classes[ci]
		for j, o := range c.orchs {
			l := &out[o]
			l.work += c.work[j]
			room := c.slo - math.Exp(c.lat[j].mu+z95*c.lat[j].sigma)
			if l.n == 0 || room < l.room {
				l.room = room
			}
			l.n++
			if l.slo == 0 || c.slo < l.slo {
				l.slo = c.slo
			}
		}
	}
	for i := range out {
		if out[i].n > 0 {
			out[i].work /= float64(out[i].n)
		}
	}
	return out
}

func (r *round) limits() []event.Limit {
	var out []event.Limit
	loads := r.orchLoads()
	for i := range r.orchs {
		o := &r.orchs[i]
		l := loads[i]
		if !o.eligible || l.n == 0 || !(l.work > 0) || o.cfg.MaxInFlight <= 0 {
			continue
		}
		slots := float64(o.cfg.MaxInFlight)
		mu := slots / l.work
		little := math.Floor(mu * l.slo)
		queued, why := 0.0, ""
		switch {
		case o.obs.timeouts > 0:
			why = fmt.Sprintf(", none queued (%d attempts timed out in the window)", int64(o.obs.timeouts))
		case l.room >= 1/mu:
			queued, why = 1, fmt.Sprintf(" + 1 queued (its wait 1/μ ≤ SLO − p95 = %s)", secs(l.room))
		}
		limit := max(1, int(math.Min(slots+queued, little)))
		out = append(out, event.Limit{Orchestrator: o.cfg.ID, MaxInFlight: limit, Reason: fmt.Sprintf(
			"min(takes %.0f at once (advertised)%s, Little's law μ·T = %.2f/s × SLO %s = %.0f)",
			slots, why, mu, secs(l.slo), little)})
	}
	return out
}

func secs(s float64) time.Duration {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond)
}

func (r *round) admission(cfg *Config, st *state, entries []event.ClassPolicy) {
	sc := cfg.Shaping.withDefaults()
	// The budget is what orchestrators say they take (the default when
	// they do not say): a capacity learned from a short burst of busy
	// answers can be far below it, and admitting too little loses traffic
	// the fleet could serve, while admitting too much only leaves the
	// excess to the edge queue.
	f := newServerFlow(r)
	for i := range r.orchs {
		if o := &r.orchs[i]; o.eligible {
			slots := float64(o.cfg.MaxInFlight)
			if slots <= 0 {
				slots = float64(cfg.Capacity.DefaultMaxInFlight)
			}
			f.spare[i] = cfg.Capacity.Utilisation * slots
		}
	}
	order := make([]int, len(r.classes))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return r.classes[order[a]].value > r.classes[order[b]].value })
	rates := map[int]float64{}
	why := map[int]string{}
	for _, ci := range order {
		c := &r.classes[ci]
		w, n := 0.0, 0
		for j, o := range c.orchs {
			if r.orchs[o].eligible {
				w += c.work[j]
				n++
			}
		}
		if n == 0 || !(w > 0) {
			continue
		}
		w /= float64(n)
		offered := c.demand + c.shed
		need := offered * w
		got := f.take(ci, need)
		prev, limited := st.admitted[c.key]
		var rate float64
		switch {
		case need-got > eps(need): // short of its need (flow.go)
			rate = got / w
		case !r.shedKnown && limited && c.demand >= sc.Release*prev:
			// Held at its rate: its demand beyond it is not seen (no
			// ShedReader), so it may still be more than what is left.
			rate = (got + f.spareOf(ci)) / w
		default:
			delete(st.admitted, c.key)
			continue
		}
		rate = math.Max(sc.MinAdmitPerS, rate)
		st.admitted[c.key] = rate
		rates[ci] = rate
		why[ci] = fmt.Sprintf("offered %.2f/s (%.2f/s refused by admission) × %s needs %.2f server-s/s; %.2f left after higher-value classes (value $%.3g/miss)",
			offered, c.shed, secs(w), need, got, c.value)
	}
	for key := range st.admitted {
		if ci, ok := r.byClass[key]; !ok || rates[ci] == 0 {
			delete(st.admitted, key)
		}
	}
	// Split each rate over the class's entries by the demand they govern.
	offeredIn := func(ci int, reg string) float64 {
		return r.demand[demandKey{ci, reg}] + r.shed[demandKey{ci, reg}]
	}
	for i := range entries {
		e := &entries[i]
		ci, ok := r.byClass[classKey{e.Capability, e.Model}]
		if !ok || rates[ci] == 0 {
			continue
		}
		c := &r.classes[ci]
		d := 0.0
		if e.ClientRegion != "" {
			d = offeredIn(ci, e.ClientRegion)
		} else {
			for _, reg := range r.offeredRegions(ci) {
				if !hasEntry(entries, e, reg) {
					d += offeredIn(ci, reg)
				}
			}
		}
		frac := 1.0
		if offered := c.demand + c.shed; offered > 0 {
			frac = d / offered
		}
		e.AdmitPerS = math.Max(sc.MinAdmitPerS, rates[ci]*frac)
		e.AdmitReason = fmt.Sprintf("overload: %s; %.0f%% of the class's demand", why[ci], 100*frac)
	}
}

// offeredRegions are the client regions with demand for class ci, seen
// in attempts or only in requests shed, sorted.
func (r *round) offeredRegions(ci int) []string {
	regs := slices.Clone(r.regions)
	for k := range r.shed {
		if k.class == ci && !slices.Contains(regs, k.region) {
			regs = append(regs, k.region)
		}
	}
	slices.Sort(regs)
	return regs
}

// hasEntry reports whether the class of e has an entry of its own for region.
func hasEntry(entries []event.ClassPolicy, e *event.ClassPolicy, region string) bool {
	for i := range entries {
		x := &entries[i]
		if x.Capability == e.Capability && x.Model == e.Model && x.ClientRegion == region {
			return true
		}
	}
	return false
}
