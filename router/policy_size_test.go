package router

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/loopgate/loopgate/event"
)

// TestFleetPolicyAppliedAsEncoded follows a policy larger than the
// outcomes' event.MaxEncodedSize (a fleet's policy: every orchestrator in
// every class and region), as the policy log delivers it, and checks that
// every member of every class gets exactly the share the optimizer wrote
// for its region.
func TestFleetPolicyAppliedAsEncoded(t *testing.T) {
	const nOrch, nModel = 300, 20
	regions := []string{"FRA", "LAX", "SIN", "NYC", ""}
	rng := rand.New(rand.NewPCG(3, 4))
	var orchs []OrchestratorConfig
	for o := range nOrch {
		var classes []ClassPrice
		for m := range nModel {
			classes = append(classes, ClassPrice{Capability: event.CapLLM, Model: fmt.Sprintf("m%d", m), PricePerUnit: 1})
		}
		orchs = append(orchs, orch(fmt.Sprintf("orchestrator-%04d", o), fmt.Sprintf("http://o%d.invalid", o), classes...))
	}
	tr := newTestRouter(t, testConfig(orchs...))
	p := sharesPolicy(9)
	want := map[policyKey]map[string]float64{}
	for m := range nModel {
		for _, reg := range regions {
			cp := event.ClassPolicy{Capability: event.CapLLM, Model: fmt.Sprintf("m%d", m), ClientRegion: reg}
			w := make([]float64, nOrch)
			sum := 0.0
			for o := range w {
				w[o] = rng.Float64()
				sum += w[o]
			}
			k := policyKey{event.CapLLM, cp.Model, reg}
			want[k] = map[string]float64{}
			for o := range w {
				id := fmt.Sprintf("orchestrator-%04d", o)
				cp.Shares = append(cp.Shares, event.Share{Orchestrator: id, Share: w[o] / sum, Reason: "main"})
				want[k][id] = w[o] / sum
			}
			p.Classes = append(p.Classes, cp)
		}
	}
	b := encodePolicy(t, p)
	if len(b) <= event.MaxEncodedSize {
		t.Fatalf("got a %d-byte policy, want one above MaxEncodedSize (%d) for this test", len(b), event.MaxEncodedSize)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.FollowPolicies(ctx, fakePolicySource{[][]byte{b}}) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("got %v, want nil on cancellation", err)
	}
	if got, _ := tr.Policy(); got.Version != 9 {
		t.Fatalf("got version %d in use, want the %d-byte policy 9 applied", got.Version, len(b))
	}
	s := tr.snap.Load()
	for k, shares := range want {
		ct := s.classes[classKey{k.capability, k.model}]
		if ct == nil {
			t.Fatalf("%v: no class table", k)
		}
		got := ct.shares(k.region)
		if len(got) != len(ct.members) {
			t.Fatalf("%v: got %d shares for %d members", k, len(got), len(ct.members))
		}
		for i, m := range ct.members {
			if w := shares[m.o.cfg.ID]; math.Abs(got[i]-w) > 1e-12 {
				t.Fatalf("%v, %s: got share %v, want %v", k, m.o.cfg.ID, got[i], w)
			}
		}
	}
}
