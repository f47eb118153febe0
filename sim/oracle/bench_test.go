package oracle

import (
	"fmt"
	"testing"

	"github.com/loopgate/loopgate/sim/fleetgen"
	"github.com/loopgate/loopgate/sim/scenario"
)

// BenchmarkSolve solves the initial state of generated fleets (8 regions,
// 5 classes) of growing size with the interior point method, and the
// small ones with the exact simplex for comparison.
func BenchmarkSolve(b *testing.B) {
	for _, n := range []int{10, 50, 200} {
		cfg := fleetgen.DefaultConfig()
		cfg.Orchestrators = n
		y, err := fleetgen.Generate(cfg)
		if err != nil {
			b.Fatal(err)
		}
		sc, err := scenario.Parse(y)
		if err != nil {
			b.Fatal(err)
		}
		st := sc.Initial()
		methods := []Method{IPM}
		if n <= 50 {
			methods = append(methods, Simplex)
		}
		for _, m := range methods {
			name := map[Method]string{IPM: "ipm", Simplex: "simplex"}[m]
			b.Run(fmt.Sprintf("orchestrators=%d/%s", n, name), func(b *testing.B) {
				ocfg := DefaultConfig()
				ocfg.Method = m
				b.ReportAllocs()
				for b.Loop() {
					if _, err := Solve(sc, &st, ocfg); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
