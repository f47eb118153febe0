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
		{"large fleet: floors lose their reasons", bigPolicy(10, 5, 60), 2},
		{"huge fleet: frontier and floors dropped", bigPolicy(10, 5, 200), 4},
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
			if err != nil || !bytes.Equal(b, encoded) || len(b) > event.MaxEncodedSize {
				t.Fatalf("got %d bytes (returned %d, equal %v), err %v; want the policy's encoding, ≤ %d", len(b), len(encoded), bytes.Equal(b, encoded), err, event.MaxEncodedSize)
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
