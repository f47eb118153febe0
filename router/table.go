package router

import (
	"encoding/hex"
	"net/url"
	"strings"

	"github.com/loopgate/loopgate/event"
)

// snapshot is an immutable view of configuration and policy, swapped
// atomically by Reload and SetPolicy. A request reads one snapshot from
// start to end. The orchState pointers inside are shared between snapshots.
type snapshot struct {
	cfg     Config // normalized
	caps    map[string]*capInfo
	orchs   []*orchEntry // config order
	byID    map[string]*orchEntry
	classes map[classKey]*classTable
	keys    []apiKey
	policy  *event.Policy // nil until the first policy
}

type capInfo struct {
	spec capSpec
	cfg  CapabilityConfig
}

type classKey struct{ capability, model string }

func (k classKey) String() string { return k.capability + "/" + k.model }

type apiKey struct {
	hash [32]byte
	cfg  APIKeyConfig
}

// orchEntry is one configured orchestrator in one snapshot.
type orchEntry struct {
	cfg     OrchestratorConfig
	baseURL string // without a trailing slash
	limit   int    // min of config and policy in-flight limits; 0 = none
	// policyEjectUntilMs: the policy ejects it until then (math.MaxInt64 =
	// until the next policy); 0 = not ejected.
	policyEjectUntilMs int64
	policyEjectReason  string
	state              *orchState
}

func (o *orchEntry) policyEjected(nowMs int64) bool { return o.policyEjectUntilMs > nowMs }

// member is an orchestrator serving a class, with its price for it. The
// fields a decision reads are copied here so that it walks one contiguous
// slice and one state pointer per member.
type member struct {
	o                  *orchEntry
	st                 *orchState
	limit              int
	policyEjectUntilMs int64
	price              float64
}

// classTable is precomputed per class on every Reload and SetPolicy, so a
// decision touches only the class's members, never every orchestrator.
type classTable struct {
	key     classKey
	members []member
	// regionShares maps a client region to per-member shares (aligned with
	// members); defaultShares serves every other region. nil: no policy
	// entry applies, shares are equal.
	regionShares  map[string][]float64
	defaultShares []float64
}

// shares returns the per-member shares for a client region, or nil for equal shares.
func (t *classTable) shares(region string) []float64 {
	if s, ok := t.regionShares[region]; ok {
		return s
	}
	return t.defaultShares
}

// buildSnapshot indexes cfg (already validated) and applies policy p (may
// be nil). States of orchestrators found in prev are carried over.
func buildSnapshot(cfg Config, p *event.Policy, prev *snapshot, nowMs int64) *snapshot {
	cfg = cfg.normalized()
	s := &snapshot{
		cfg:     cfg,
		caps:    make(map[string]*capInfo),
		byID:    make(map[string]*orchEntry, len(cfg.Orchestrators)),
		classes: make(map[classKey]*classTable),
		policy:  p,
	}
	for _, spec := range capSpecs() {
		s.caps[spec.name] = &capInfo{spec: spec, cfg: cfg.Capabilities[spec.name]}
	}
	for _, k := range cfg.APIKeys {
		var h [32]byte
		b, _ := hex.DecodeString(k.SHA256) // validated
		copy(h[:], b)
		s.keys = append(s.keys, apiKey{hash: h, cfg: k})
	}
	for _, oc := range cfg.Orchestrators {
		base, _ := url.Parse(oc.URL) // validated
		base.Path = strings.TrimSuffix(base.Path, "/")
		base.RawPath = ""
		e := &orchEntry{cfg: oc, baseURL: base.String(), limit: oc.MaxInFlight}
		if prev != nil {
			if old, ok := prev.byID[oc.ID]; ok {
				e.state = old.state
			}
		}
		if e.state == nil {
			e.state = &orchState{}
		}
		s.orchs = append(s.orchs, e)
		s.byID[oc.ID] = e
		seen := map[classKey]bool{}
		for _, cl := range oc.Classes {
			k := classKey{cl.Capability, cl.Model}
			if seen[k] {
				continue // the first price listed wins
			}
			seen[k] = true
			t := s.classes[k]
			if t == nil {
				t = &classTable{key: k}
				s.classes[k] = t
			}
			t.members = append(t.members, member{o: e, price: cl.PricePerUnit})
		}
	}
	if p != nil {
		s.applyPolicy(p, nowMs)
	}
	for _, t := range s.classes {
		for i := range t.members {
			m := &t.members[i]
			m.st, m.limit, m.policyEjectUntilMs = m.o.state, m.o.limit, m.o.policyEjectUntilMs
		}
	}
	return s
}

// applyPolicy resolves the policy's shares, ejections and limits into the
// tables. For class (capability, model) and client region R, the shares come
// from the first policy entry that exists, in this order:
//
//	(capability, model, R), (capability, model, ""), (capability, "", R), (capability, "", "")
//
// and, when none does, shares are equal.
func (s *snapshot) applyPolicy(p *event.Policy, nowMs int64) {
	for _, l := range p.Limits {
		if e, ok := s.byID[l.Orchestrator]; ok && l.MaxInFlight > 0 && (e.limit == 0 || l.MaxInFlight < e.limit) {
			e.limit = l.MaxInFlight
		}
	}
	for _, ej := range p.Ejections {
		e, ok := s.byID[ej.Orchestrator]
		if !ok {
			continue
		}
		until := ej.UntilMs
		if until == 0 {
			until = 1<<63 - 1
		}
		if until > nowMs && until > e.policyEjectUntilMs {
			e.policyEjectUntilMs, e.policyEjectReason = until, ej.Reason
		}
	}
	type entryKey struct{ capability, model, region string }
	entries := make(map[entryKey]*event.ClassPolicy, len(p.Classes))
	regionsByCap := map[string]map[string]bool{}
	for i := range p.Classes {
		c := &p.Classes[i]
		if len(c.Shares) == 0 {
			continue
		}
		k := entryKey{c.Capability, c.Model, c.ClientRegion}
		if _, dup := entries[k]; !dup {
			entries[k] = c
		}
		if regionsByCap[c.Capability] == nil {
			regionsByCap[c.Capability] = map[string]bool{}
		}
		regionsByCap[c.Capability][c.ClientRegion] = true
	}
	for k, t := range s.classes {
		resolve := func(region string) *event.ClassPolicy {
			for _, ek := range []entryKey{{k.capability, k.model, region}, {k.capability, k.model, ""}, {k.capability, "", region}, {k.capability, "", ""}} {
				if c, ok := entries[ek]; ok {
					return c
				}
			}
			return nil
		}
		if c := resolve(""); c != nil {
			t.defaultShares = t.alignShares(c)
		}
		for region := range regionsByCap[k.capability] {
			if region == "" {
				continue
			}
			if c := resolve(region); c != nil {
				if t.regionShares == nil {
					t.regionShares = map[string][]float64{}
				}
				t.regionShares[region] = t.alignShares(c)
			}
		}
	}
}

// alignShares lays a policy entry's shares out in member order; members the
// entry does not name get 0 (only exploration reaches them).
func (t *classTable) alignShares(c *event.ClassPolicy) []float64 {
	idx := make(map[string]int, len(t.members))
	for i, m := range t.members {
		idx[m.o.cfg.ID] = i
	}
	out := make([]float64, len(t.members))
	for _, sh := range c.Shares {
		if i, ok := idx[sh.Orchestrator]; ok {
			out[i] += sh.Share
		}
	}
	return out
}
