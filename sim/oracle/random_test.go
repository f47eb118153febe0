package oracle

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/loopgate/loopgate/sim/scenario"
)

// TestRandomInstances solves many random fleets (fixed seeds) and checks
// that the LP always solves, respects capacity and routes all demand.
func TestRandomInstances(t *testing.T) {
	for seed := uint64(1); seed <= 150; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		sc := randomScenario(t, rng)
		st := sc.Initial()
		checkAllocation(t, sc, &st, fmt.Sprintf("seed %d", seed))
	}
}

func randomScenario(t *testing.T, rng *rand.Rand) *scenario.Scenario {
	t.Helper()
	regions := []string{"FRA", "LAX", "SIN"}[:1+rng.IntN(3)]
	var b strings.Builder
	fmt.Fprintf(&b, "name: r\nseed: 1\nduration: 60s\nregions: [%s]\nrtt_ms: {same_region: %d", strings.Join(regions, ", "), rng.IntN(10))
	for i := range regions {
		for j := i + 1; j < len(regions); j++ {
			fmt.Fprintf(&b, ", %s-%s: %d", regions[i], regions[j], 50+rng.IntN(300))
		}
	}
	b.WriteString("}\nclasses:\n")
	nc := 1 + rng.IntN(3)
	for c := 0; c < nc; c++ {
		fmt.Fprintf(&b, "  - {id: c%d, units: %d, slo_ms: %d, timeout_ms: 20000, value: %g}\n",
			c, 1+rng.IntN(1000), 300+rng.IntN(4000), rng.Float64()*0.05)
	}
	b.WriteString("clients:\n")
	for i := 0; i < 1+rng.IntN(4); i++ {
		fmt.Fprintf(&b, "  - {id: k%d, region: %s, rate: %g, mix: {c%d: 1}}\n",
			i, regions[rng.IntN(len(regions))], rng.Float64()*80, rng.IntN(nc))
	}
	b.WriteString("orchestrators:\n")
	for o := 0; o < 1+rng.IntN(10); o++ {
		fmt.Fprintf(&b, "  - {id: o%d, region: %s, capacity: %d, queue: 4, fail: %g, fail_mode: %s, down: %v, classes: {",
			o, regions[rng.IntN(len(regions))], 1+rng.IntN(12), rng.Float64()*0.2,
			[]string{"fast", "slow"}[rng.IntN(2)], rng.IntN(8) == 0)
		for c := 0; c < nc; c++ {
			if c > 0 && rng.IntN(2) == 0 {
				continue
			}
			p50 := 50 + rng.IntN(3000)
			fmt.Fprintf(&b, "c%d: {price: %g, p50_ms: %d, p99_ms: %d}, ", c, rng.Float64()*1e-5, p50, p50+rng.IntN(5000))
		}
		b.WriteString("}}\n")
	}
	sc, err := scenario.Parse([]byte(b.String()))
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	return sc
}
