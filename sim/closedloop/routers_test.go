package closedloop

import (
	"context"
	"testing"

	"github.com/loopgate/loopgate/internal/testenv"
	"github.com/loopgate/loopgate/sim"
	"github.com/loopgate/loopgate/sim/scenario"
)

// TestRoutersShareOneSlowLoop runs the tiny scenario as three routers: one
// warehouse receives every router's outcomes (one per request), the one
// optimizer's policies reach every router (same version, same shares),
// requests are split round-robin, and each router counts only its own
// attempts in flight, none left at the end.
func TestRoutersShareOneSlowLoop(t *testing.T) {
	sc, err := scenario.Parse([]byte(benchTinyScenario))
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.LibPath, cfg.TempDir, cfg.Routers = testenv.ChdbLib(t), t.TempDir(), 3
	m, err := NewRouters(context.Background(), cfg, sim.NewEnv(sc, Name))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	res, err := sim.Run(context.Background(), sc, m, sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := m.Stats()
	if st.Written < len(res.Requests)*9/10 || st.Written > len(res.Requests) {
		t.Errorf("got %d outcomes written for %d requests, want about one per request from all routers", st.Written, len(res.Requests))
	}
	if st.Rounds < 10 || st.Version == 0 {
		t.Errorf("got %d rounds, version %d; want ≥ 10 rounds and a policy", st.Rounds, st.Version)
	}
	leader := m.routers[0]
	for i, r := range m.routers {
		if r.version != leader.version {
			t.Errorf("router %d applies policy %d, the leader %d", i, r.version, leader.version)
		}
		for ci := range sc.Classes {
			for _, region := range sc.Regions {
				for _, o := range sc.Orchestrators {
					a, aok := leader.Share(ci, region, o.ID)
					b, bok := r.Share(ci, region, o.ID)
					if a != b || aok != bok {
						t.Errorf("router %d: share of %s for class %d in %s is %v (%v), the leader's %v (%v)", i, o.ID, ci, region, b, bok, a, aok)
					}
				}
			}
		}
		for o, n := range r.own {
			if n != 0 {
				t.Errorf("router %d: %d attempts still counted in flight on %s after the run", i, n, sc.Orchestrators[o].ID)
			}
		}
		if i > 0 && (r.store != nil || r.opt != nil) {
			t.Errorf("router %d has a warehouse or optimizer of its own", i)
		}
	}
	// Round-robin: every router ended requests, and the pending records
	// of each are its own (request i on router i mod 3).
	for i, r := range m.routers {
		if len(r.pending) > 0 {
			t.Errorf("router %d: %d requests still pending after the run", i, len(r.pending))
		}
		seen := false
		for o := range sc.Orchestrators {
			if _, fresh := r.fast[o].LatencyView(r.clock(sc.Duration), r.sel.LatencyStale); fresh > 0 {
				seen = true
			}
		}
		if !seen {
			t.Errorf("router %d's fast loop has seen no attempt", i)
		}
	}
}

// TestOneRouterIsThePolicy checks Routers: 1 builds the single policy.
func TestOneRouterIsThePolicy(t *testing.T) {
	sc, err := scenario.Parse([]byte(benchTinyScenario))
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.LibPath, cfg.TempDir = testenv.ChdbLib(t), t.TempDir()
	p, err := Constructor(cfg)(context.Background(), sim.NewEnv(sc, Name))
	if err != nil {
		t.Fatal(err)
	}
	defer p.(interface{ Close() error }).Close()
	if _, ok := p.(*Policy); !ok {
		t.Fatalf("Routers 1 built %T, want *Policy", p)
	}
	cfg.Routers = 0
	if err := cfg.Validate(); err == nil {
		t.Error("Routers 0 validated, want an error")
	}
}
