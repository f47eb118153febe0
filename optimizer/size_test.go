package optimizer

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/eventlog"
)

// bigPolicy has classes × regions entries naming n orchestrators with long
// ids: one main share, an ejected one, and exploration floors.
func bigPolicy(classes, regions, n int) event.Policy {
	p := event.Policy{Schema: event.SchemaVersion, Version: 1, Lambda: 0.5, Producer: "t"}
	for c := 0; c < classes; c++ {
		for r := 0; r < regions; r++ {
			cp := event.ClassPolicy{Capability: "cap", Model: fmt.Sprintf("m%d", c), ClientRegion: fmt.Sprintf("R%d", r)}
			floor := 0.2 / float64(n-1)
			for o := 0; o < n; o++ {
				id := fmt.Sprintf("orchestrator-with-a-long-name-%04d", o)
				switch o {
				case 0:
					cp.Shares = append(cp.Shares, event.Share{Orchestrator: id, Share: 1 - floor*float64(n-2), Reason: "success 0.990, on time 0.950 at load 0.50, $0.002/req, 1000 attempts"})
				case 1:
					cp.Shares = append(cp.Shares, event.Share{Orchestrator: id, Reason: reasonEjected})
				default:
					cp.Shares = append(cp.Shares, event.Share{Orchestrator: id, Share: floor, Reason: reasonExploration + ", 12 attempts"})
				}
			}
			p.Classes = append(p.Classes, cp)
		}
	}
	for i := range 12 {
		p.Frontier = append(p.Frontier, event.FrontierPoint{Lambda: float64(i) / 11, CostPerRequest: 0.003, SLOAttainment: 0.98, P95Ms: 2100})
	}
	return p
}

func TestFitPolicy(t *testing.T) {
	tests := []struct {
		name      string
		p         event.Policy
		wantSteps int
	}{
		{"small: untouched", bigPolicy(2, 2, 5), 0},
		{"large fleet: floors lose their reasons", bigPolicy(40, 10, 110), 2},
		{"huge fleet: frontier and floors dropped", bigPolicy(40, 10, 200), 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := tt.p
			orig.Classes = append([]event.ClassPolicy(nil), tt.p.Classes...)
			encoded, steps, err := fitPolicy(&tt.p)
			if err != nil {
				t.Fatal(err)
			}
			if steps != tt.wantSteps {
				t.Errorf("got %d steps, want %d", steps, tt.wantSteps)
			}
			b, err := event.EncodePolicy(tt.p)
			if err != nil || !bytes.Equal(b, encoded) || len(b) > event.MaxPolicyEncodedSize {
				t.Fatalf("got %d bytes (returned %d, equal %v), err %v; want the policy's encoding, ≤ %d", len(b), len(encoded), bytes.Equal(b, encoded), err, event.MaxPolicyEncodedSize)
			}
			if _, err := event.DecodePolicy(b); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if got, want := len(tt.p.Frontier), len(orig.Frontier); steps < 3 && got != want || steps >= 3 && got != 0 {
				t.Errorf("got %d frontier points after %d steps, want %d before step 3 and 0 from it", got, steps, want)
			}
			if steps == 0 && !reflect.DeepEqual(tt.p, orig) {
				t.Error("got a changed policy, want it untouched")
			}
			for _, c := range tt.p.Classes {
				if c.Shares[0].Reason == "" {
					t.Errorf("got the main share's reason dropped at step %d, want it kept", steps)
				}
				sum := 0.0
				for _, s := range c.Shares {
					sum += s.Share
				}
				if math.Abs(sum-1) > 1e-9 {
					t.Errorf("got shares summing to %v, want 1", sum)
				}
			}
		})
	}
}

// TestFleetPolicyFitsThePolicyTopic encodes, with the real encoder, a
// policy shaped like the 5,000-orchestrator round of BenchmarkStepScale
// (100 classes × 8 regions and a region-less entry each, 500 orchestrators
// serving each class, 40 allocated shares per entry with reasons, the rest
// exploration floors, a limit per orchestrator): it fits the policy
// topic's max.message.bytes, and only exploration floors are given up.
func TestFleetPolicyFitsThePolicyTopic(t *testing.T) {
	const nOrch, nClass, perClass, main = 5000, 100, 500, 40
	p := event.Policy{Schema: event.SchemaVersion, Version: 1, Lambda: 0.5, Producer: "t"}
	for c := range nClass {
		for _, reg := range []string{"FRA", "LAX", "MDW", "SIN", "NYC", "LON", "SAO", "PRG", ""} {
			cp := event.ClassPolicy{Capability: "cap", Model: fmt.Sprintf("m%d", c), ClientRegion: reg, Value: 0.02, SLOMs: 3000}
			floor := 0.001
			for k := range perClass {
				id := fmt.Sprintf("o%04d", (c*perClass/10+k)%nOrch)
				if k < main {
					cp.Shares = append(cp.Shares, event.Share{Orchestrator: id, Share: (1 - floor*(perClass-main)) / main, Reason: "success 0.962, on time 0.951 at load 0.70, $0.00236/req"})
				} else {
					cp.Shares = append(cp.Shares, event.Share{Orchestrator: id, Share: floor, Reason: reasonExploration})
				}
			}
			p.Classes = append(p.Classes, cp)
		}
	}
	for o := range nOrch {
		p.Limits = append(p.Limits, event.Limit{Orchestrator: fmt.Sprintf("o%04d", o), MaxInFlight: 12, Reason: "capacity 12 × utilisation 0.90, Little's law at 1.4 s"})
	}
	encoded, steps, err := fitPolicy(&p)
	if err != nil {
		t.Fatalf("fit the policy of %d orchestrators: %v", nOrch, err)
	}
	if n := len(encoded) + len(eventlog.PolicyKey); n > eventlog.PolicyMaxMessageBytes {
		t.Fatalf("got a %d-byte record, want it within the policy topic's %d", n, eventlog.PolicyMaxMessageBytes)
	}
	got, err := event.DecodePolicy(encoded)
	if err != nil {
		t.Fatalf("decode the %d-byte policy: %v", len(encoded), err)
	}
	for _, c := range got.Classes {
		if len(c.Shares) < main {
			t.Fatalf("%s/%s: got %d shares after %d steps, want the %d allocated ones kept", c.Model, c.ClientRegion, len(c.Shares), steps, main)
		}
	}
	if len(got.Limits) != nOrch {
		t.Fatalf("got %d limits, want %d", len(got.Limits), nOrch)
	}
}

func TestStepIsDeterministic(t *testing.T) {
	cfg, stats := benchFleet(30, 4, 3, 3, 0.8)
	var got []event.Policy
	for i := 0; i < 2; i++ {
		h := newHarness(t, cfg)
		h.stats.set(stats...)
		got = append(got, h.step(t))
	}
	if !reflect.DeepEqual(got[0], got[1]) {
		t.Fatal("got different policies from the same input, want identical ones")
	}
	checkPolicy(t, got[0])
}

func TestSimplexBudgetStopsARunawaySolve(t *testing.T) {
	// minimise −x₁ − x₂ s.t. x₁ + x₂ + s₁ = 1, x₁ + s₂ = 1.
	A := mat.NewDense(2, 4, []float64{1, 1, 1, 0, 1, 0, 0, 1})
	c := []float64{-1, -1, 0, 0}
	b := []float64{1, 1}
	x, err := simplex(c, A, b, []int{2, 3})
	if err != nil || math.Abs(x[0]+x[1]-1) > 1e-9 {
		t.Fatalf("got %v, %v; want a solution with x₁ + x₂ = 1", x, err)
	}
	if _, err := simplexBudget(c, A, b, []int{2, 3}, 5); !errors.Is(err, errLPBudget) {
		t.Fatalf("got %v, want errLPBudget", err)
	}
}
