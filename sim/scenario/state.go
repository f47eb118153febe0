package scenario

import (
	"fmt"
	"maps"
	"slices"
)

// State is the fleet and the demand at one point in time: the scenario's
// clients and orchestrators with every timeline change up to then applied.
// Indices match the Scenario's.
type State struct {
	Clients       []Client
	Orchestrators []Orchestrator
}

// Initial returns a deep copy of the state at time 0, before any change.
func (s *Scenario) Initial() State {
	st := State{
		Clients:       make([]Client, len(s.Clients)),
		Orchestrators: make([]Orchestrator, len(s.Orchestrators)),
	}
	for i, c := range s.Clients {
		c.Mix = maps.Clone(c.Mix)
		st.Clients[i] = c
	}
	for i, o := range s.Orchestrators {
		o.Classes = maps.Clone(o.Classes)
		if o.Classes == nil {
			o.Classes = map[string]Offer{}
		}
		st.Orchestrators[i] = o
	}
	return st
}

// Clone returns a deep copy of st.
func (st *State) Clone() State {
	sc := Scenario{Clients: st.Clients, Orchestrators: st.Orchestrators}
	return sc.Initial()
}

func (st *State) orchestrator(id string) int {
	for i := range st.Orchestrators {
		if id != "" && st.Orchestrators[i].ID == id {
			return i
		}
	}
	return -1
}

func (st *State) client(id string) int {
	for i := range st.Clients {
		if id != "" && st.Clients[i].ID == id {
			return i
		}
	}
	return -1
}

// Apply applies one change. It fails when the target does not exist or the
// patch sets a field the target does not have; it does not validate values
// (Scenario.Validate does).
func (st *State) Apply(ch Change) error {
	p := ch.Set
	if ch.Client != "" {
		i := st.client(ch.Client)
		if i < 0 {
			return fmt.Errorf("client: unknown client %q", ch.Client)
		}
		if p.Address != nil || p.Stake != nil || p.Capacity != nil || p.Queue != nil || p.Fail != nil ||
			p.FailMode != nil || p.Down != nil || p.Hang != nil || p.Classes != nil {
			return fmt.Errorf("set: client %q has only region, rate and mix", ch.Client)
		}
		c := &st.Clients[i]
		setIf(&c.Region, p.Region)
		setIf(&c.Rate, p.Rate)
		if p.Mix != nil {
			c.Mix = maps.Clone(p.Mix)
		}
		return nil
	}
	i := st.orchestrator(ch.Orchestrator)
	if i < 0 {
		return fmt.Errorf("orchestrator: unknown orchestrator %q", ch.Orchestrator)
	}
	if p.Rate != nil || p.Mix != nil {
		return fmt.Errorf("set: rate and mix are client fields, not orchestrator %q's", ch.Orchestrator)
	}
	o := &st.Orchestrators[i]
	setIf(&o.Region, p.Region)
	setIf(&o.Address, p.Address)
	setIf(&o.Stake, p.Stake)
	setIf(&o.Capacity, p.Capacity)
	setIf(&o.Queue, p.Queue)
	setIf(&o.Fail, p.Fail)
	setIf(&o.FailMode, p.FailMode)
	setIf(&o.Down, p.Down)
	setIf(&o.Hang, p.Hang)
	if p.Classes != nil {
		classes := maps.Clone(o.Classes)
		if classes == nil {
			classes = map[string]Offer{}
		}
		for _, id := range slices.Sorted(maps.Keys(p.Classes)) {
			op := p.Classes[id]
			if op == nil {
				delete(classes, id)
				continue
			}
			off, had := classes[id]
			if !had && (op.Price == nil || op.P50 == nil || op.P99 == nil) {
				return fmt.Errorf("set.classes.%s: a class orchestrator %q does not serve yet needs price, p50_ms and p99_ms", id, ch.Orchestrator)
			}
			setIf(&off.Price, op.Price)
			setIf(&off.P50, op.P50)
			setIf(&off.P99, op.P99)
			classes[id] = off
		}
		o.Classes = classes
	}
	return nil
}

func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}
