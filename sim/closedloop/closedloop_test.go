package closedloop

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/loopgate/loopgate/internal/testenv"
	"github.com/loopgate/loopgate/sim"
	"github.com/loopgate/loopgate/sim/scenario"
	"github.com/loopgate/loopgate/warehouse"
)

func registry(t *testing.T) sim.Registry {
	cfg := DefaultConfig()
	cfg.LibPath = testenv.ChdbLib(t)
	cfg.TempDir = t.TempDir()
	reg := sim.Baselines()
	reg[Name] = Constructor(cfg)
	return reg
}

// benchTinyScenario is one minute of traffic on three orchestrators, one of
// which fails most attempts from the start.
const benchTinyScenario = `
name: bench-policy-tiny
seed: 11
duration: 60s
warmup: 10s
regions: [FRA, LON]
rtt_ms:
  same_region: 4
  FRA-LON: 18
classes:
  - id: t2i
    capability: text-to-image
    model: stabilityai/sdxl-turbo
    units: 1048576
    slo_ms: 3000
    timeout_ms: 10000
    value: 0.02
clients:
  - {id: acme, region: FRA, rate: 10, mix: {t2i: 1.0}}
  - {id: globex, region: LON, rate: 5, mix: {t2i: 1.0}}
orchestrators:
  - {id: fra-1, region: FRA, stake: 3000, capacity: 8, queue: 16, fail: 0.7, fail_mode: slow,
     classes: {t2i: {price: 2.0e-9, p50_ms: 700, p99_ms: 1800}}}
  - {id: fra-2, region: FRA, stake: 1000, capacity: 8, queue: 16, fail: 0.005, fail_mode: fast,
     classes: {t2i: {price: 3.0e-9, p50_ms: 750, p99_ms: 2000}}}
  - {id: lon-1, region: LON, stake: 1000, capacity: 8, queue: 16, fail: 0.005, fail_mode: fast,
     classes: {t2i: {price: 3.2e-9, p50_ms: 800, p99_ms: 2100}}}
`

// TestPolicyDeterministic runs the loopgate policy twice on a tiny scenario
// through the embedded warehouse: the reports must be identical (the
// policy is deterministic per seed) and sane next to the baselines.
func TestPolicyDeterministic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tiny.yaml")
	if err := os.WriteFile(path, []byte(benchTinyScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	sc, err := scenario.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	pols := []string{sim.PolicyLivepeer, sim.PolicyOracle, Name}
	reg := registry(t)
	var reps [2]*sim.Report
	for i := range reps {
		if reps[i], err = sim.Bench(context.Background(), sc, pols, sim.BenchOptions{Registry: reg}); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	if !reflect.DeepEqual(reps[0].Policies, reps[1].Policies) {
		t.Errorf("two runs with the same seed differ:\n%+v\n---\n%+v", reps[0].Policies, reps[1].Policies)
	}
	byName := map[string]sim.PolicyReport{}
	for _, p := range reps[0].Policies {
		byName[p.Name] = p
		t.Logf("%s: loss/request %.5f, SLO attainment %.4f, success %.4f, extra attempts %.3f",
			p.Name, p.LossPerRequest, p.SLOAttainment, p.SuccessRate, p.ExtraAttempts)
	}
	lg := byName[Name]
	if lg.Requests == 0 {
		t.Fatal("got 0 requests counted for loopgate")
	}
	if math.IsNaN(lg.LossPerRequest) || math.IsInf(lg.LossPerRequest, 0) || lg.LossPerRequest <= 0 {
		t.Errorf("got loss per request %v, want finite and positive", lg.LossPerRequest)
	}
	// Two of three orchestrators are healthy and retries reach them: most
	// requests must meet their SLO.
	if lg.SLOAttainment < 0.8 || lg.SLOAttainment > 1 {
		t.Errorf("got SLO attainment %.4f, want in [0.8, 1]", lg.SLOAttainment)
	}
}

// TestPolicyLoop checks that the slow loop really runs through the
// warehouse: outcomes are written, and the optimizer's policies (computed
// from what it reads back) reach the fast loop and take traffic from the
// failing orchestrator.
func TestPolicyLoop(t *testing.T) {
	sc, err := scenario.Parse([]byte(benchTinyScenario))
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.LibPath, cfg.TempDir = testenv.ChdbLib(t), t.TempDir()
	pol, err := New(context.Background(), cfg, sim.NewEnv(sc, Name))
	if err != nil {
		t.Fatal(err)
	}
	defer pol.Close()
	res, err := sim.Run(context.Background(), sc, pol, sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := pol.Stats()
	if st.Written < len(res.Requests)*9/10 {
		t.Errorf("got %d outcomes written, want about %d (one per request)", st.Written, len(res.Requests))
	}
	if st.Rounds < 10 || st.Version == 0 {
		t.Errorf("got %d optimizer rounds, last policy version %d; want ≥ 10 rounds and a policy", st.Rounds, st.Version)
	}
	governed := false
	for ci := range sc.Classes {
		for _, region := range sc.Regions {
			sh, ok := pol.Share(ci, region, "fra-1")
			if !ok {
				continue
			}
			governed = true
			if sh > 0.1 {
				t.Errorf("class %d region %s: got share %.3f for the failing orchestrator, want ≤ 0.1", ci, region, sh)
			}
		}
	}
	if !governed && !pol.Ejected("fra-1", sc.Duration) {
		t.Error("the last policy neither shares traffic nor ejects the failing orchestrator")
	}
	if err := pol.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if entries, err := os.ReadDir(cfg.TempDir); err != nil || len(entries) != 0 {
		t.Errorf("after Close: data dir holds %d entries (%v), want it removed", len(entries), err)
	}
}

// TestPolicyStopsOnCancel checks that a run whose context ends stops with
// the context's error and still closes the warehouse: the next run can open
// the process's one embedded engine.
func TestPolicyStopsOnCancel(t *testing.T) {
	sc, err := scenario.Parse([]byte(benchTinyScenario))
	if err != nil {
		t.Fatal(err)
	}
	reg := registry(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := sim.Bench(ctx, sc, []string{Name}, sim.BenchOptions{Registry: reg}); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if _, err := sim.Bench(context.Background(), sc, []string{Name}, sim.BenchOptions{Registry: reg}); err != nil {
		t.Fatalf("a run after the cancelled one: %v", err)
	}
}

// TestPolicyNoChdb checks that the policy refuses to run, with a clear
// error, when libchdb cannot be loaded.
func TestPolicyNoChdb(t *testing.T) {
	sc, err := scenario.Parse([]byte(benchTinyScenario))
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.LibPath = filepath.Join(t.TempDir(), "no-libchdb.so")
	reg := sim.Registry{Name: Constructor(cfg)}
	_, err = sim.Bench(context.Background(), sc, []string{Name}, sim.BenchOptions{Registry: reg})
	if !errors.Is(err, warehouse.ErrNoChdb) {
		t.Fatalf("got %v without libchdb, want warehouse.ErrNoChdb", err)
	}
	t.Log(err)
}
