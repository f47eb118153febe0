package main

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/loopgate/loopgate/internal/testenv"
	"github.com/loopgate/loopgate/sim"
	"github.com/loopgate/loopgate/sim/scenario"
)

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

// TestBenchPolicyLoopgate runs the loopgate policy twice on a tiny scenario
// through the embedded warehouse: the reports must be identical (the
// policy is deterministic per seed) and sane next to the baselines.
func TestBenchPolicyLoopgate(t *testing.T) {
	t.Setenv("LOOPGATE_CHDB_LIB", testenv.ChdbLib(t))
	path := filepath.Join(t.TempDir(), "tiny.yaml")
	if err := os.WriteFile(path, []byte(benchTinyScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	sc, err := scenario.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	pols := []string{sim.PolicyLivepeer, sim.PolicyOracle, benchPolicyName}
	var reps [2]*sim.Report
	for i := range reps {
		if reps[i], err = sim.Bench(sc, pols, sim.BenchOptions{Registry: benchRegistry()}); err != nil {
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
	lg := byName[benchPolicyName]
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

// TestBenchPolicyLoop checks that the slow loop really runs through the
// warehouse: outcomes are written, and the optimizer's policies (computed
// from what it reads back) reach the fast loop and eject the failing
// orchestrator from the shares.
func TestBenchPolicyLoop(t *testing.T) {
	t.Setenv("LOOPGATE_CHDB_LIB", testenv.ChdbLib(t))
	sc, err := scenario.Parse([]byte(benchTinyScenario))
	if err != nil {
		t.Fatal(err)
	}
	pol, err := newBenchPolicy(sim.NewEnv(sc, benchPolicyName))
	if err != nil {
		t.Fatal(err)
	}
	res, err := sim.Run(sc, pol, sim.Options{}) // calls Err, which closes the store
	if err != nil {
		t.Fatal(err)
	}
	p := pol.(*benchPolicy)
	if p.written < len(res.Requests)*9/10 {
		t.Errorf("got %d outcomes written, want about %d (one per request)", p.written, len(res.Requests))
	}
	if p.rounds < 10 || p.version == 0 {
		t.Errorf("got %d optimizer rounds, last policy version %d; want ≥ 10 rounds and a policy", p.rounds, p.version)
	}
	bad := p.orchIndex["fra-1"]
	for k, sh := range p.shares {
		if sh[bad] > 0.1 {
			t.Errorf("class %d region %s: got share %.3f for the failing orchestrator, want ≤ 0.1", k.class, k.region, sh[bad])
		}
	}
	if len(p.shares) == 0 && p.ejectUntil[bad] == 0 {
		t.Error("the last policy neither shares traffic nor ejects the failing orchestrator")
	}
}

// TestBenchPolicyNoChdb checks that the policy refuses to run, with a
// clear error, when libchdb cannot be loaded.
func TestBenchPolicyNoChdb(t *testing.T) {
	t.Setenv("LOOPGATE_CHDB_LIB", filepath.Join(t.TempDir(), "no-libchdb.so"))
	t.Setenv("CHDB_LIB_PATH", "")
	sc, err := scenario.Parse([]byte(benchTinyScenario))
	if err != nil {
		t.Fatal(err)
	}
	_, err = sim.Bench(sc, []string{benchPolicyName}, sim.BenchOptions{Registry: benchRegistry()})
	if err == nil {
		t.Fatal("got nil error without libchdb, want one")
	}
	t.Log(err)
}
