package router

import (
	"encoding/hex"
	"math"
	"net/url"
	"slices"
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
	ix      *PolicyIndex  // policy resolved; nil until the first policy
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
	limitReason        string // why the policy limits it, when its limit is the policy's
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
	// The group stage of classes over groupThreshold members (groups.go),
	// per shares vector; nil for smaller classes.
	groupEqual, groupDefault *groupDraw
	groupRegion              map[string]*groupDraw
	// pos finds a member by its state: the edge queue hands a slot freed
	// on an orchestrator to a waiter of a class it serves.
	pos map[*orchState]int
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
			e.state = &orchState{lim: NewLimiter(cfg.Shaping.Limit)}
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
	for _, e := range s.orchs {
		if e.state.lim != nil {
			e.state.lim.SetCeiling(e.limit)
		}
	}
	for _, t := range s.classes {
		t.pos = make(map[*orchState]int, len(t.members))
		for i := range t.members {
			m := &t.members[i]
			m.st, m.limit, m.policyEjectUntilMs = m.o.state, m.o.limit, m.o.policyEjectUntilMs
			t.pos[m.st] = i
		}
		t.buildGroups(cfg.Selection.Exploration)
	}
	return s
}

// PolicyIndex is a policy indexed for resolution: which entry governs a
// class for a client region, each orchestrator's in-flight limit and
// policy ejection. The router's tables and the simulator's closed loop
// both resolve policies through it, so they cannot disagree.
type PolicyIndex struct {
	entries      map[policyKey]*event.ClassPolicy
	regionsByCap map[string][]string // client regions with an entry, per capability, sorted
	limits       map[string]int
	limitReasons map[string]string
	ejections    map[string]PolicyEjection
}

// PolicyEjection is an orchestrator the policy ejects until UntilMs
// (Unix ms; math.MaxInt64 = until the next policy), with its reason.
type PolicyEjection struct {
	UntilMs int64
	Reason  string
}

type policyKey struct{ capability, model, region string }

// NewPolicyIndex indexes p at nowMs: ejections that ended by then are
// dropped; an ejection without an end lasts until the next policy; of
// several limits for one orchestrator the smallest positive one wins; of
// several entries for one (capability, model, client region), the first.
func NewPolicyIndex(p *event.Policy, nowMs int64) *PolicyIndex {
	ix := &PolicyIndex{
		entries:      make(map[policyKey]*event.ClassPolicy, len(p.Classes)),
		regionsByCap: map[string][]string{},
		limits:       map[string]int{},
		limitReasons: map[string]string{},
		ejections:    map[string]PolicyEjection{},
	}
	for _, l := range p.Limits {
		if cur, ok := ix.limits[l.Orchestrator]; l.MaxInFlight > 0 && (!ok || l.MaxInFlight < cur) {
			ix.limits[l.Orchestrator] = l.MaxInFlight
			ix.limitReasons[l.Orchestrator] = l.Reason
		}
	}
	for _, ej := range p.Ejections {
		until := ej.UntilMs
		if until == 0 {
			until = math.MaxInt64
		}
		if until > nowMs && until > ix.ejections[ej.Orchestrator].UntilMs {
			ix.ejections[ej.Orchestrator] = PolicyEjection{UntilMs: until, Reason: ej.Reason}
		}
	}
	for i := range p.Classes {
		c := &p.Classes[i]
		if len(c.Shares) == 0 {
			continue
		}
		k := policyKey{c.Capability, c.Model, c.ClientRegion}
		if _, dup := ix.entries[k]; !dup {
			ix.entries[k] = c
			if !slices.Contains(ix.regionsByCap[c.Capability], c.ClientRegion) {
				ix.regionsByCap[c.Capability] = append(ix.regionsByCap[c.Capability], c.ClientRegion)
			}
		}
	}
	for _, rs := range ix.regionsByCap {
		slices.Sort(rs)
	}
	return ix
}

// Entry returns the entry that governs class (capability, model) for a
// client region: the first that exists of
//
//	(capability, model, region), (capability, model, ""), (capability, "", region), (capability, "", "")
//
// or nil, meaning equal shares.
func (ix *PolicyIndex) Entry(capability, model, region string) *event.ClassPolicy {
	for _, k := range [...]policyKey{{capability, model, region}, {capability, model, ""}, {capability, "", region}, {capability, "", ""}} {
		if c, ok := ix.entries[k]; ok {
			return c
		}
	}
	return nil
}

// Regions lists the client regions that have an entry of their own for
// some class of capability, sorted; "" (every other region) included.
func (ix *PolicyIndex) Regions(capability string) []string { return ix.regionsByCap[capability] }

// Limit is the policy's in-flight limit for an orchestrator, 0 = none.
func (ix *PolicyIndex) Limit(orchestrator string) int { return ix.limits[orchestrator] }

// LimitReason is why the policy limits an orchestrator ("" = no limit or no reason given).
func (ix *PolicyIndex) LimitReason(orchestrator string) string { return ix.limitReasons[orchestrator] }

// Ejection is the policy's ejection of an orchestrator; ok is false when
// it is not ejected.
func (ix *PolicyIndex) Ejection(orchestrator string) (ej PolicyEjection, ok bool) {
	ej, ok = ix.ejections[orchestrator]
	return ej, ok
}

// Shares lays an entry's shares out in the order of ids (the class's
// members); orchestrators the entry does not name get 0 (only exploration
// reaches them). A nil entry gives nil: equal shares.
func Shares(c *event.ClassPolicy, ids []string) []float64 {
	if c == nil {
		return nil
	}
	idx := make(map[string]int, len(ids))
	for i, id := range ids {
		idx[id] = i
	}
	out := make([]float64, len(ids))
	for _, sh := range c.Shares {
		if i, ok := idx[sh.Orchestrator]; ok {
			out[i] += sh.Share
		}
	}
	return out
}

// applyPolicy resolves the policy's shares, ejections and limits into the
// tables, through PolicyIndex.
func (s *snapshot) applyPolicy(p *event.Policy, nowMs int64) {
	ix := NewPolicyIndex(p, nowMs)
	s.ix = ix
	for _, e := range s.orchs {
		if l := ix.Limit(e.cfg.ID); l > 0 && (e.limit == 0 || l < e.limit) {
			e.limit, e.limitReason = l, ix.LimitReason(e.cfg.ID)
		}
		if ej, ok := ix.Ejection(e.cfg.ID); ok {
			e.policyEjectUntilMs, e.policyEjectReason = ej.UntilMs, ej.Reason
		}
	}
	for k, t := range s.classes {
		ids := make([]string, len(t.members))
		for i, m := range t.members {
			ids[i] = m.o.cfg.ID
		}
		t.defaultShares = Shares(ix.Entry(k.capability, k.model, ""), ids)
		for _, region := range ix.Regions(k.capability) {
			if region == "" {
				continue
			}
			if sh := Shares(ix.Entry(k.capability, k.model, region), ids); sh != nil {
				if t.regionShares == nil {
					t.regionShares = map[string][]float64{}
				}
				t.regionShares[region] = sh
			}
		}
	}
}
