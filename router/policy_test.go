package router

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/loopgate/loopgate/event"
)

func sharesPolicy(version uint64, classes ...event.ClassPolicy) event.Policy {
	return event.Policy{Version: version, CreatedMs: 1, Lambda: 0.5, Classes: classes}
}

func TestPolicyShareResolution(t *testing.T) {
	cfg := testConfig(
		orch("a", "http://a.invalid", t2i(1), ClassPrice{Capability: event.CapLLM, Model: "l", PricePerUnit: 1}),
		orch("b", "http://b.invalid", t2i(1), ClassPrice{Capability: event.CapLLM, Model: "l", PricePerUnit: 1}),
	)
	share := func(a, b float64) []event.Share {
		return []event.Share{{Orchestrator: "a", Share: a}, {Orchestrator: "b", Share: b}}
	}
	p := sharesPolicy(1,
		event.ClassPolicy{Capability: event.CapTextToImage, Model: "m1", ClientRegion: "LON", Shares: share(0.9, 0.1)},
		event.ClassPolicy{Capability: event.CapTextToImage, Model: "m1", Shares: share(0.6, 0.4)},
		event.ClassPolicy{Capability: event.CapLLM, ClientRegion: "SIN", Shares: share(0.2, 0.8)},
		event.ClassPolicy{Capability: event.CapLLM, Shares: share(0.3, 0.7)},
	)
	tests := []struct {
		class  classKey
		region string
		want   []float64 // nil: equal shares
	}{
		{classKey{event.CapTextToImage, "m1"}, "LON", []float64{0.9, 0.1}},
		{classKey{event.CapTextToImage, "m1"}, "NYC", []float64{0.6, 0.4}},
		{classKey{event.CapTextToImage, "m1"}, "", []float64{0.6, 0.4}},
		{classKey{event.CapLLM, "l"}, "SIN", []float64{0.2, 0.8}},
		{classKey{event.CapLLM, "l"}, "LON", []float64{0.3, 0.7}},
	}
	s := buildSnapshot(cfg, &p, nil, 1)
	for _, tt := range tests {
		got := s.classes[tt.class].shares(tt.region)
		if len(got) != len(tt.want) || math.Abs(got[0]-tt.want[0]) > 1e-12 || math.Abs(got[1]-tt.want[1]) > 1e-12 {
			t.Errorf("%v from %q: got %v, want %v", tt.class, tt.region, got, tt.want)
		}
	}
	if got := buildSnapshot(cfg, nil, nil, 1).classes[classKey{event.CapTextToImage, "m1"}].shares("LON"); got != nil {
		t.Errorf("without a policy: got %v, want nil (equal shares)", got)
	}
}

func TestPolicyEjectionsAndLimits(t *testing.T) {
	cfg := testConfig(orch("a", "http://a.invalid", t2i(1)), orch("b", "http://b.invalid", t2i(1)), orch("c", "http://c.invalid", t2i(1)))
	cfg.Orchestrators[2].MaxInFlight = 4
	nowMs := newFakeClock().Now().UnixMilli()
	p := sharesPolicy(1)
	p.Ejections = []event.Ejection{
		{Orchestrator: "a", Reason: "fail rate", UntilMs: nowMs + 60000},
		{Orchestrator: "b", Reason: "already over", UntilMs: nowMs - 1},
	}
	p.Limits = []event.Limit{{Orchestrator: "c", MaxInFlight: 2}, {Orchestrator: "b", MaxInFlight: 9}}
	s := buildSnapshot(cfg, &p, nil, nowMs)
	if !s.byID["a"].policyEjected(nowMs) || s.byID["a"].policyEjected(nowMs+60000) {
		t.Error("a: want ejected for exactly 60 s")
	}
	if s.byID["b"].policyEjected(nowMs) {
		t.Error("b: an ejection that ended is applied")
	}
	if got := s.byID["c"].limit; got != 2 {
		t.Errorf("c: got limit %d, want the smaller of config 4 and policy 2", got)
	}
	if got := s.byID["b"].limit; got != 9 {
		t.Errorf("b: got limit %d, want the policy's 9", got)
	}

	// Through the router: the ejected orchestrator is never chosen, and the
	// one at its limit is skipped.
	tr := newTestRouter(t, cfg)
	clockNow := tr.clock.Now()
	p.CreatedMs = clockNow.UnixMilli()
	if err := tr.SetPolicy(p); err != nil {
		t.Fatal(err)
	}
	snap := tr.snap.Load()
	table := snap.classes[classKey{event.CapTextToImage, "m1"}]
	snap.byID["c"].state.inFlight.Store(2)
	for range 200 {
		pk, reason, ok := tr.choose(snap, table, "LON", nil)
		if !ok {
			t.Fatalf("no choice: %s", reason)
		}
		if id := pk.m.o.cfg.ID; id != "b" {
			t.Fatalf("got %s, want b (a ejected by policy, c at its limit)", id)
		}
		pk.m.o.state.release()
	}
	snap.byID["b"].state.inFlight.Store(9)
	// Every candidate left is at its limit: the request may wait at the edge.
	if _, reason, ok := tr.choose(snap, table, "LON", nil); ok || reason != reasonAtLimit {
		t.Fatalf("got ok=%v reason %q, want at limit", ok, reason)
	}
	snap.byID["b"].state.inFlight.Store(0)
	snap.byID["c"].state.inFlight.Store(0)
	if _, reason, ok := tr.choose(snap, table, "LON", []*orchEntry{snap.byID["b"], snap.byID["c"]}); ok || reason != reasonNoCapacity {
		t.Fatalf("got ok=%v reason %q, want no capacity (the rest tried or ejected)", ok, reason)
	}
	// b locally ejected, c healthy at its limit: wait for c's slot rather
	// than panic-route to b; with c tried, b is all there is (panic).
	snap.byID["b"].state.ejectedUntilMs.Store(clockNow.UnixMilli() + 60000)
	snap.byID["c"].state.inFlight.Store(2)
	if _, reason, ok := tr.choose(snap, table, "LON", nil); ok || reason != reasonAtLimit {
		t.Fatalf("got ok=%v reason %q, want at limit (not a panic pick of the ejected b)", ok, reason)
	}
	snap.byID["c"].state.inFlight.Store(0)
	pk, _, ok := tr.choose(snap, table, "LON", []*orchEntry{snap.byID["c"]})
	if !ok || pk.m.o.cfg.ID != "b" || !pk.choice.Panic {
		t.Fatalf("got ok=%v, want a panic pick of b (c tried, nothing healthy left)", ok)
	}
}

func TestSetPolicyOnlyNewer(t *testing.T) {
	tr := newTestRouter(t, testConfig(orch("a", "http://a.invalid", t2i(1))))
	if _, ok := tr.Policy(); ok {
		t.Fatal("got a policy before any was set")
	}
	valid := func(v uint64) event.Policy {
		return sharesPolicy(v, event.ClassPolicy{Capability: event.CapTextToImage, Shares: []event.Share{{Orchestrator: "a", Share: 1}}})
	}
	steps := []struct {
		p       event.Policy
		wantErr error // nil: applied; ErrStalePolicy; or errInvalid for a validation error
		wantVer uint64
	}{
		{valid(5), nil, 5},
		{valid(5), ErrStalePolicy, 5},
		{valid(3), ErrStalePolicy, 5},
		{event.Policy{Version: 9, Lambda: 2}, errInvalid, 5},
		{valid(6), nil, 6},
	}
	for i, st := range steps {
		err := tr.SetPolicy(st.p)
		switch {
		case st.wantErr == nil && err != nil:
			t.Fatalf("step %d: got %v, want applied", i, err)
		case st.wantErr == ErrStalePolicy && !errors.Is(err, ErrStalePolicy):
			t.Fatalf("step %d: got %v, want ErrStalePolicy", i, err)
		case st.wantErr == errInvalid && (err == nil || errors.Is(err, ErrStalePolicy)):
			t.Fatalf("step %d: got %v, want a validation error", i, err)
		}
		got, _ := tr.Policy()
		if got.Version != st.wantVer {
			t.Fatalf("step %d: got version %d in use, want %d", i, got.Version, st.wantVer)
		}
		if v := value(t, tr.m.policyVersion); v != float64(st.wantVer) {
			t.Fatalf("step %d: got policy version gauge %v, want %d", i, v, st.wantVer)
		}
	}
}

var errInvalid = errors.New("invalid")

// fakePolicySource delivers encoded policies, as the policy log does.
type fakePolicySource struct{ policies [][]byte }

func (f fakePolicySource) Follow(ctx context.Context, apply func([]byte)) error {
	for _, p := range f.policies {
		apply(p)
	}
	<-ctx.Done()
	return nil
}

func encodePolicy(t *testing.T, p event.Policy) []byte {
	t.Helper()
	b, err := event.EncodePolicy(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestFollowPolicies(t *testing.T) {
	tr := newTestRouter(t, testConfig(orch("a", "http://a.invalid", t2i(1))))
	// Decodable JSON the validator refuses (a λ below 0), and bytes that are no policy at all.
	invalid, err := json.Marshal(event.Policy{Schema: event.SchemaVersion, Version: 3, Lambda: -1})
	if err != nil {
		t.Fatal(err)
	}
	src := fakePolicySource{[][]byte{
		encodePolicy(t, sharesPolicy(2)), encodePolicy(t, sharesPolicy(1)), invalid, []byte("not json"), encodePolicy(t, sharesPolicy(4)),
	}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.FollowPolicies(ctx, src) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("got %v, want nil on cancellation", err)
	}
	if p, _ := tr.Policy(); p.Version != 4 {
		t.Fatalf("got version %d, want 4 (1 stale, 3 and the garbage invalid, all skipped)", p.Version)
	}
	for result, want := range map[string]float64{"applied": 2, "stale": 1, "invalid": 2} {
		if got := value(t, tr.m.policyUpdates.WithLabelValues(result)); got != want {
			t.Errorf("policy updates %s: got %v, want %v", result, got, want)
		}
	}
}

func TestReloadKeepsState(t *testing.T) {
	cfg := testConfig(orch("a", "http://a.invalid", t2i(1)), orch("b", "http://b.invalid", t2i(1)))
	tr := newTestRouter(t, cfg)
	if err := tr.SetPolicy(sharesPolicy(7, event.ClassPolicy{Capability: event.CapTextToImage, Model: "m1",
		Shares: []event.Share{{Orchestrator: "a", Share: 0.25}, {Orchestrator: "c", Share: 0.75}}})); err != nil {
		t.Fatal(err)
	}
	old := tr.snap.Load()
	a := old.byID["a"].state
	a.inFlight.Store(3)
	a.observeLatency(tr.clock.Now(), 420, time.Second)
	a.failed(tr.clock.Now(), cfg.Selection)

	next := testConfig(orch("a", "http://a2.invalid", t2i(5)), orch("c", "http://c.invalid", t2i(1)))
	if err := tr.Reload(next); err != nil {
		t.Fatal(err)
	}
	s := tr.snap.Load()
	if s.byID["a"].state != a {
		t.Fatal("a lost its state across the reload")
	}
	if s.byID["a"].state.inFlight.Load() != 3 || s.byID["a"].state.failures.Load() != 1 {
		t.Fatal("a's counters changed across the reload")
	}
	if lat, _ := s.byID["a"].state.latencyView(tr.clock.Now(), time.Minute); lat != 420 {
		t.Fatalf("a's latency: got %v, want 420", lat)
	}
	if _, ok := s.byID["b"]; ok {
		t.Fatal("b was removed but is still there")
	}
	if s.byID["c"].state.inFlight.Load() != 0 {
		t.Fatal("c is new but has state")
	}
	if s.byID["a"].baseURL != "http://a2.invalid" || s.classes[classKey{event.CapTextToImage, "m1"}].members[0].price != 5 {
		t.Fatal("a's new URL or price not applied")
	}
	// The policy is re-applied to the new set: c now has its share.
	if got := s.classes[classKey{event.CapTextToImage, "m1"}].shares(""); len(got) != 2 || got[0] != 0.25 || got[1] != 0.75 {
		t.Fatalf("got shares %v after reload, want [0.25 0.75]", got)
	}
	if s.policy == nil || s.policy.Version != 7 {
		t.Fatal("policy lost across reload")
	}

	bad := next
	bad.MaxAttempts = 0
	if err := tr.Reload(bad); err == nil {
		t.Fatal("got nil error for an invalid config")
	}
	if tr.snap.Load() != s {
		t.Fatal("an invalid reload replaced the config")
	}
}

func TestChooseThroughRouterFollowsPolicy(t *testing.T) {
	cfg := testConfig(orch("a", "http://a.invalid", t2i(1)), orch("b", "http://b.invalid", t2i(1)), orch("c", "http://c.invalid", t2i(1)))
	cfg.Selection.Exploration = 0.1
	tr := newTestRouter(t, cfg)
	tr.rng = rand.New(rand.NewPCG(3, 4))
	if err := tr.SetPolicy(sharesPolicy(1, event.ClassPolicy{Capability: event.CapTextToImage, Model: "m1", ClientRegion: "LON",
		Shares: []event.Share{{Orchestrator: "a", Share: 0.7}, {Orchestrator: "b", Share: 0.3}}})); err != nil {
		t.Fatal(err)
	}
	s := tr.snap.Load()
	table := s.classes[classKey{event.CapTextToImage, "m1"}]
	const n = 30000
	counts := map[string]float64{}
	for range n {
		pk, _, ok := tr.choose(s, table, "LON", nil)
		if !ok {
			t.Fatal("no choice")
		}
		pk.m.o.state.release()
		counts[pk.m.o.cfg.ID]++
	}
	// base = 0.9·share + 0.1/3
	for id, want := range map[string]float64{"a": 0.9*0.7 + 0.1/3, "b": 0.9*0.3 + 0.1/3, "c": 0.1 / 3} {
		within(t, id, counts[id]/n, want, n)
	}
	// A client from another region has no entry: equal shares.
	counts = map[string]float64{}
	for range n {
		pk, _, _ := tr.choose(s, table, "SAO", nil)
		pk.m.o.state.release()
		counts[pk.m.o.cfg.ID]++
	}
	for _, id := range []string{"a", "b", "c"} {
		within(t, id+" from SAO", counts[id]/n, 1.0/3, n)
	}
	// Exclusion: a tried orchestrator is not drawn again.
	for range 100 {
		pk, _, _ := tr.choose(s, table, "LON", []*orchEntry{s.byID["a"], s.byID["b"]})
		pk.m.o.state.release()
		if pk.m.o.cfg.ID != "c" {
			t.Fatalf("got %s, want c (a and b tried)", pk.m.o.cfg.ID)
		}
	}
}
