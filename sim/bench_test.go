package sim

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/loopgate/loopgate/sim/scenarios"
)

// TestBenchPublic runs every baseline on every public scenario (about two
// seconds in all) and checks what must hold whatever the numbers.
func TestBenchPublic(t *testing.T) {
	for _, name := range scenarios.Names() {
		t.Run(name, func(t *testing.T) {
			sc := loadScenario(t, name)
			rep, err := Bench(context.Background(), sc, BaselineNames(), BenchOptions{Now: time.Now})
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Policies) != len(BaselineNames()) {
				t.Fatalf("got %d policies, want %d", len(rep.Policies), len(BaselineNames()))
			}
			n := rep.Policies[0].Requests
			for _, p := range rep.Policies {
				if p.Requests != n || n == 0 {
					t.Errorf("%s: got %d requests, want %d like %s (same arrivals)", p.Name, p.Requests, n, rep.Policies[0].Name)
				}
				if p.SLOAttainment > p.SuccessRate || p.SuccessRate > 1 || p.SLOAttainment < 0 {
					t.Errorf("%s: success %v, SLO %v: want 0 ≤ SLO ≤ success ≤ 1", p.Name, p.SuccessRate, p.SLOAttainment)
				}
				if p.LossPerRequest < p.CostPerRequest {
					t.Errorf("%s: loss %v < cost %v", p.Name, p.LossPerRequest, p.CostPerRequest)
				}
			}
			// On every scenario, overload included (the oracle sheds the
			// cheap class's overflow, sim/oracle), the oracle is below livepeer.
			if lp, or := rep.Policy(PolicyLivepeer), rep.Policy(PolicyOracle); or.LossPerRequest >= lp.LossPerRequest {
				t.Errorf("oracle loss %.5f ≥ livepeer loss %.5f: the reference point is broken", or.LossPerRequest, lp.LossPerRequest)
			}
			var md bytes.Buffer
			if err := rep.WriteMarkdown(&md); err != nil {
				t.Fatal(err)
			}
			t.Logf("\n%s", md.String())
			for _, tm := range rep.Timing {
				t.Logf("%s: %.3fs, %d events", tm.Name, tm.Elapsed.Seconds(), tm.Events)
			}
		})
	}
}

func TestBenchUnknownPolicy(t *testing.T) {
	sc := loadScenario(t, "price-shift")
	if _, err := Bench(context.Background(), sc, []string{"nope"}, BenchOptions{}); err == nil {
		t.Errorf("got no error for an unknown policy, want one")
	}
}

// BenchmarkRun measures the simulator on the largest public scenario; it
// reports events per second of wall time.
func BenchmarkRun(b *testing.B) {
	sc := loadScenario(b, "steady-heterogeneous")
	arr := genArrivals(sc)
	var events int64
	start := time.Now()
	for b.Loop() {
		res, err := runArrivals(context.Background(), sc, newLeastInflight(NewEnv(sc, "least-inflight")), Options{}, arr)
		if err != nil {
			b.Fatal(err)
		}
		events += res.Events
	}
	b.ReportMetric(float64(events)/time.Since(start).Seconds(), "events/s")
}
