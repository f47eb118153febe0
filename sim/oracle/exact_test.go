package oracle

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/loopgate/loopgate/sim/fleetgen"
	"github.com/loopgate/loopgate/sim/scenario"
)

// maxGap is the largest relative objective gap the interior point method
// may have against the exact simplex (the package doc states it).
const maxGap = 1e-7

// TestIPMMatchesSimplex solves random fleets and every state of every
// public scenario with both solvers and compares objectives: the IPM's
// polished, exactly feasible allocation must cost at most maxGap more
// (relative) than the simplex vertex.
func TestIPMMatchesSimplex(t *testing.T) {
	// The public scenarios up to this size are compared (the generated
	// fleets above reach 20 with the full 8 × 5 structure).
	const maxSimplexOrchestrators = 24
	type instance struct {
		name string
		sc   *scenario.Scenario
		st   scenario.State
	}
	var all []instance
	for seed := uint64(1); seed <= 150; seed++ {
		sc := randomScenario(t, rand.New(rand.NewPCG(seed, 99)))
		all = append(all, instance{fmt.Sprintf("seed %d", seed), sc, sc.Initial()})
	}
	// Generated fleets with the full 8 regions × 5 classes structure,
	// small enough for the dense simplex, a few timeline states each.
	for _, n := range []int{10, 20} {
		for seed := uint64(1); seed <= 2; seed++ {
			cfg := fleetgen.DefaultConfig()
			cfg.Orchestrators, cfg.Seed, cfg.Faults = n, seed, 4
			y, err := fleetgen.Generate(cfg)
			if err != nil {
				t.Fatal(err)
			}
			sc, err := scenario.Parse(y)
			if err != nil {
				t.Fatal(err)
			}
			st := sc.Initial()
			all = append(all, instance{fmt.Sprintf("fleetgen %d/%d@0s", n, seed), sc, st.Clone()})
			for _, ch := range sc.Timeline[:3] {
				if err := st.Apply(ch); err != nil {
					t.Fatal(err)
				}
				all = append(all, instance{fmt.Sprintf("fleetgen %d/%d@%s", n, seed, scenario.FormatAt(ch.At)), sc, st.Clone()})
			}
		}
	}
	paths, _ := filepath.Glob("../scenarios/*.yaml")
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		sc, err := scenario.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		if len(sc.Orchestrators) > maxSimplexOrchestrators {
			// The dense simplex cannot solve network-scale fleets in a
			// test's time (TestTimelineStatesScale covers their IPM solves).
			t.Logf("%s: %d orchestrators, beyond the dense simplex; skipped", sc.Name, len(sc.Orchestrators))
			continue
		}
		st := sc.Initial()
		all = append(all, instance{sc.Name + "@0s", sc, st.Clone()})
		for _, ch := range sc.Timeline {
			if err := st.Apply(ch); err != nil {
				t.Fatal(err)
			}
			all = append(all, instance{sc.Name + "@" + scenario.FormatAt(ch.At), sc, st.Clone()})
		}
	}
	worst, worstName := 0.0, ""
	for _, in := range all {
		for _, queueing := range []bool{true, false} {
			cfg := DefaultConfig()
			cfg.Queueing = queueing
			ipm, err := Solve(in.sc, &in.st, cfg)
			if err != nil {
				t.Fatalf("%s: ipm: %v", in.name, err)
			}
			cfg.Method = Simplex
			ex, err := Solve(in.sc, &in.st, cfg)
			if err != nil {
				t.Fatalf("%s: simplex: %v", in.name, err)
			}
			gap := (ipm.Objective - ex.Objective) / math.Max(math.Abs(ex.Objective), 1e-12)
			if gap > maxGap {
				t.Errorf("%s (queueing %v): got objective %.12g, want within %g of the exact %.12g (gap %.3g)",
					in.name, queueing, ipm.Objective, maxGap, ex.Objective, gap)
			}
			if gap > worst {
				worst, worstName = gap, in.name
			}
		}
	}
	t.Logf("%d instances: worst relative gap %.3g (%s)", 2*len(all), worst, worstName)
}
