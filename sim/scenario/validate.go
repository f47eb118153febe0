package scenario

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"time"
)

// FieldError says which field of a scenario is wrong and why. Path is the
// field's path in the YAML, such as "clients[1].mix.t2i-sdxl".
type FieldError struct {
	Path   string
	Reason string
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Reason }

func fieldErr(path, format string, args ...any) error {
	return &FieldError{Path: path, Reason: fmt.Sprintf(format, args...)}
}

// mixTolerance is how far a client's shares may sum from 1.
const mixTolerance = 1e-6

// Validate checks the whole scenario, the timeline included (by applying it
// to a copy of the initial state), and returns every problem it finds joined
// with errors.Join, or nil. It sorts Timeline by At (stable).
func (s *Scenario) Validate() error {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if s.Name == "" {
		add(fieldErr("name", "required"))
	}
	errs = append(errs, s.Gateway.validate(s)...)
	if s.Duration <= 0 {
		add(fieldErr("duration", "got %v, want > 0", s.Duration))
	}
	if s.Warmup < 0 || (s.Duration > 0 && s.Warmup >= s.Duration) {
		add(fieldErr("warmup", "got %v, want in [0, duration %v)", s.Warmup, s.Duration))
	}
	if len(s.Regions) == 0 {
		add(fieldErr("regions", "want at least one region"))
	}
	regions := map[string]bool{}
	for i, r := range s.Regions {
		if r == "" {
			add(fieldErr(fmt.Sprintf("regions[%d]", i), "empty"))
		}
		if regions[r] {
			add(fieldErr(fmt.Sprintf("regions[%d]", i), "duplicate region %q", r))
		}
		regions[r] = true
	}
	if s.RTT.SameRegion < 0 {
		add(fieldErr("rtt_ms.same_region", "got %v, want ≥ 0", s.RTT.SameRegion))
	}
	for _, k := range sortedPairs(s.RTT.Pairs) {
		path := "rtt_ms." + k[0] + "-" + k[1]
		if s.RTT.Pairs[k] < 0 {
			add(fieldErr(path, "got %v, want ≥ 0", s.RTT.Pairs[k]))
		}
		for _, r := range k {
			if !regions[r] {
				add(fieldErr(path, "unknown region %q", r))
			}
		}
	}
	if len(s.Classes) == 0 {
		add(fieldErr("classes", "want at least one class"))
	}
	classes := map[string]bool{}
	for i, c := range s.Classes {
		p := fmt.Sprintf("classes[%d]", i)
		if c.ID == "" {
			add(fieldErr(p+".id", "required"))
		} else if classes[c.ID] {
			add(fieldErr(p+".id", "duplicate class %q", c.ID))
		}
		classes[c.ID] = true
		if !(c.Units > 0) || math.IsInf(c.Units, 0) {
			add(fieldErr(p+".units", "got %v, want > 0", c.Units))
		}
		if c.SLO <= 0 {
			add(fieldErr(p+".slo_ms", "got %v, want > 0", c.SLO))
		}
		if c.Timeout <= 0 {
			add(fieldErr(p+".timeout_ms", "got %v, want > 0", c.Timeout))
		}
		if !(c.Value >= 0) || math.IsInf(c.Value, 0) {
			add(fieldErr(p+".value", "got %v, want ≥ 0", c.Value))
		}
	}
	if len(s.Clients) == 0 {
		add(fieldErr("clients", "want at least one client"))
	}
	if len(s.Orchestrators) == 0 {
		add(fieldErr("orchestrators", "want at least one orchestrator"))
	}
	ids := map[string]bool{}
	for i, c := range s.Clients {
		if c.ID == "" {
			add(fieldErr(fmt.Sprintf("clients[%d].id", i), "required"))
		} else if ids[c.ID] {
			add(fieldErr(fmt.Sprintf("clients[%d].id", i), "duplicate client %q", c.ID))
		}
		ids[c.ID] = true
	}
	ids = map[string]bool{}
	for i, o := range s.Orchestrators {
		if o.ID == "" {
			add(fieldErr(fmt.Sprintf("orchestrators[%d].id", i), "required"))
		} else if ids[o.ID] {
			add(fieldErr(fmt.Sprintf("orchestrators[%d].id", i), "duplicate orchestrator %q", o.ID))
		}
		ids[o.ID] = true
	}
	st := s.Initial()
	errs = append(errs, s.checkState(&st)...)
	// Apply in order of time, but name entries by their position as written.
	order := make([]int, len(s.Timeline))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool { return s.Timeline[order[i]].At < s.Timeline[order[j]].At })
	for _, i := range order {
		ch := s.Timeline[i]
		p := fmt.Sprintf("timeline[%d]", i)
		if ch.At < 0 || ch.At > s.Duration {
			add(fieldErr(p+".at", "got %v, want in [0, duration %v]", ch.At, s.Duration))
		}
		if (ch.Orchestrator == "") == (ch.Client == "") {
			add(fieldErr(p, "want exactly one of orchestrator and client"))
			continue
		}
		// An entity that was already invalid has been reported; only check
		// it again if the change is what breaks it.
		oi, ci := st.orchestrator(ch.Orchestrator), st.client(ch.Client)
		wasOK := (oi >= 0 && len(s.checkOrchestrator(&st, oi, "", false)) == 0) ||
			(ci >= 0 && len(s.checkClient(&st, ci, "", false)) == 0)
		if err := st.Apply(ch); err != nil {
			add(fieldErr(p, "%v", err))
			continue
		}
		if !wasOK {
			continue
		}
		if oi >= 0 {
			errs = append(errs, s.checkOrchestrator(&st, oi, p+".set", ch.Set.Region != nil)...)
		}
		if ci >= 0 {
			errs = append(errs, s.checkClient(&st, ci, p+".set", ch.Set.Region != nil)...)
		}
	}
	sort.SliceStable(s.Timeline, func(i, j int) bool { return s.Timeline[i].At < s.Timeline[j].At })
	return errors.Join(errs...)
}

// checkState validates every client and orchestrator of the initial state.
func (s *Scenario) checkState(st *State) []error {
	var errs []error
	for i := range st.Clients {
		errs = append(errs, s.checkClient(st, i, fmt.Sprintf("clients[%d]", i), false)...)
	}
	for i := range st.Orchestrators {
		errs = append(errs, s.checkOrchestrator(st, i, fmt.Sprintf("orchestrators[%d]", i), false)...)
	}
	// A missing round trip is reported once per pair of regions.
	seen := map[[2]string]bool{}
	for _, c := range st.Clients {
		for _, o := range st.Orchestrators {
			if _, ok := s.RTT.Between(c.Region, o.Region); ok || !s.hasRegion(c.Region) || !s.hasRegion(o.Region) {
				continue
			}
			if k := pairKey(c.Region, o.Region); !seen[k] {
				seen[k] = true
				errs = append(errs, fieldErr("rtt_ms", "no round trip between %s and %s (client %s, orchestrator %s): want rtt_ms.%s-%s",
					c.Region, o.Region, c.ID, o.ID, c.Region, o.Region))
			}
		}
	}
	return errs
}

func (s *Scenario) hasRegion(r string) bool {
	for _, x := range s.Regions {
		if x == r {
			return true
		}
	}
	return false
}

// checkClient validates client i; base is its path ("clients[1]", or
// "timeline[3].set" after a change). With rtt it also checks the round trips
// to every orchestrator (needed when a change moves the client).
func (s *Scenario) checkClient(st *State, i int, base string, rtt bool) []error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, fieldErr(base+path, format, args...)) }
	c := st.Clients[i]
	if !s.hasRegion(c.Region) {
		add(".region", "unknown region %q", c.Region)
	}
	if !(c.Rate >= 0) || math.IsInf(c.Rate, 0) {
		add(".rate", "got %v, want ≥ 0 requests per second", c.Rate)
	}
	if c.On < 0 || c.Off < 0 || (c.On > 0) != (c.Off > 0) {
		add(".on", "on %v and off %v: want both positive (on/off traffic) or both absent", c.On, c.Off)
	}
	if c.On > 0 && c.On < 100*time.Millisecond || c.Off > 0 && c.Off < 100*time.Millisecond {
		add(".on", "on %v and off %v: want at least 100ms each", c.On, c.Off)
	}
	if !(c.OffRate >= 0) || math.IsInf(c.OffRate, 0) {
		add(".off_rate", "got %v, want ≥ 0 requests per second", c.OffRate)
	}
	if len(c.Mix) == 0 {
		add(".mix", "want at least one class")
	}
	sum := 0.0
	for _, id := range slices.Sorted(maps.Keys(c.Mix)) {
		share := c.Mix[id]
		if s.ClassIndex(id) < 0 {
			add(".mix."+id, "unknown class %q", id)
		}
		if !(share >= 0) || share > 1 {
			add(".mix."+id, "got %v, want a share in [0, 1]", share)
		}
		sum += share
	}
	if len(c.Mix) > 0 && math.Abs(sum-1) > mixTolerance {
		add(".mix", "shares sum to %.6g, want 1", sum)
	}
	if rtt && s.hasRegion(c.Region) {
		for _, o := range st.Orchestrators {
			if _, ok := s.RTT.Between(c.Region, o.Region); !ok && s.hasRegion(o.Region) {
				add(".region", "no rtt_ms between %s and %s (orchestrator %s)", c.Region, o.Region, o.ID)
			}
		}
	}
	return errs
}

// checkOrchestrator validates orchestrator i like checkClient.
func (s *Scenario) checkOrchestrator(st *State, i int, base string, rtt bool) []error {
	var errs []error
	add := func(path, format string, args ...any) { errs = append(errs, fieldErr(base+path, format, args...)) }
	o := st.Orchestrators[i]
	if !s.hasRegion(o.Region) {
		add(".region", "unknown region %q", o.Region)
	}
	if !(o.Stake >= 0) || math.IsInf(o.Stake, 0) {
		add(".stake", "got %v, want ≥ 0", o.Stake)
	}
	if o.Capacity < 1 {
		add(".capacity", "got %d, want ≥ 1", o.Capacity)
	}
	if o.Queue < 0 {
		add(".queue", "got %d, want ≥ 0", o.Queue)
	}
	if !(o.Fail >= 0 && o.Fail <= 1) {
		add(".fail", "got %v, want a probability in [0, 1]", o.Fail)
	}
	if o.FailMode != FailFast && o.FailMode != FailSlow {
		add(".fail_mode", "got %q, want fast or slow", o.FailMode)
	}
	for _, id := range slices.Sorted(maps.Keys(o.Classes)) {
		off := o.Classes[id]
		cp := ".classes." + id
		if s.ClassIndex(id) < 0 {
			add(cp, "unknown class %q", id)
		}
		if !(off.Price >= 0) || math.IsInf(off.Price, 0) {
			add(cp+".price", "got %v, want ≥ 0", off.Price)
		}
		if off.P50 <= 0 {
			add(cp+".p50_ms", "got %v, want > 0", off.P50)
		}
		if off.P99 < off.P50 {
			add(cp+".p99_ms", "p99_ms %v < p50_ms %v", off.P99, off.P50)
		}
	}
	if rtt && s.hasRegion(o.Region) {
		for _, c := range st.Clients {
			if _, ok := s.RTT.Between(c.Region, o.Region); !ok && s.hasRegion(c.Region) {
				add(".region", "no rtt_ms between %s and %s (client %s)", o.Region, c.Region, c.ID)
			}
		}
	}
	return errs
}

func sortedPairs(m map[[2]string]time.Duration) [][2]string {
	out := make([][2]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i][0] != out[j][0] {
			return out[i][0] < out[j][0]
		}
		return out[i][1] < out[j][1]
	})
	return out
}
