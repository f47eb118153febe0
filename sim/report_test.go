package sim

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/loopgate/loopgate/sim/scenario"
)

func TestSummarize(t *testing.T) {
	sc := mini(t, 1, 300, 300, "", "", "")
	sc.Warmup = time.Second
	ms := time.Millisecond
	res := &Result{Requests: []RequestRecord{
		{Arrival: 500 * ms, Success: true, Latency: 100 * ms, Attempts: 1, Cost: 9}, // warmup: not counted
		{Arrival: 1 * time.Second, Success: true, Latency: 400 * ms, Attempts: 1, Cost: 2.5},
		{Arrival: 2 * time.Second, Success: true, Latency: 2500 * ms, Attempts: 2, Cost: 5}, // misses the 2 s SLO
		{Arrival: 3 * time.Second, Success: false, Latency: 5000 * ms, Attempts: 3, Cost: 0},
		{Arrival: 4 * time.Second, Success: true, Latency: 800 * ms, Attempts: 1, Cost: 2.5},
	}}
	got := Summarize(sc, "x", res)
	want := PolicyReport{
		Name: "x", Requests: 4, SuccessRate: 0.75, SLOAttainment: 0.5,
		LatencyMs:      Percentiles{P50: 800, P95: 2500, P99: 2500, P999: 2500},
		CostPerRequest: 10.0 / 4, LossPerRequest: (10.0 + 2*1) / 4, ExtraAttempts: 3.0 / 4,
		RecoveryS: map[string]float64{},
		Classes:   []ClassReport{{Class: sc.Classes[0].ID, Requests: 4, SLOAttainment: 0.5, LossPerRequest: 3}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// TestExtraAttemptsIgnoreUnattempted: a request shed or refused before
// any attempt has no first attempt to count beyond, so it adds nothing
// (it used to count −1 and could make the column negative).
func TestExtraAttemptsIgnoreUnattempted(t *testing.T) {
	sc := mini(t, 1, 300, 300, "", "", "")
	ms := time.Millisecond
	res := &Result{Requests: []RequestRecord{
		{Arrival: 1 * time.Second, Success: true, Latency: 400 * ms, Attempts: 2, Cost: 1},
		{Arrival: 2 * time.Second, Success: false, Attempts: 0},
		{Arrival: 3 * time.Second, Success: false, Attempts: 0},
		{Arrival: 4 * time.Second, Success: true, Latency: 400 * ms, Attempts: 1, Cost: 1},
	}}
	if got := Summarize(sc, "x", res).ExtraAttempts; got != 1.0/4 {
		t.Errorf("got extra attempts %v, want 1/4 (one retry over four requests)", got)
	}
}

func TestGapClosed(t *testing.T) {
	tests := []struct {
		policy, livepeer, oracle, want float64
	}{
		{5, 5, 3, 0},
		{3, 5, 3, 1},
		{4, 5, 3, 0.5},
		{2, 5, 3, 1.5},
		{6, 5, 3, -0.5},
	}
	for _, tt := range tests {
		if got := GapClosed(tt.policy, tt.livepeer, tt.oracle); math.Abs(got-tt.want) > 1e-12 {
			t.Errorf("GapClosed(%v, %v, %v): got %v, want %v", tt.policy, tt.livepeer, tt.oracle, got, tt.want)
		}
	}
	if got := GapClosed(1, 2, 2); !math.IsNaN(got) {
		t.Errorf("GapClosed with livepeer = oracle: got %v, want NaN", got)
	}
}

// TestRecovery: a request every 100 ms, all on time except those that
// arrive in [100 s, 105 s). The 10 s window (t−10, t] is back within one
// point (≤ 1 miss in 100) once it holds only the last miss, at 104.9 s:
// t = 114.8 s, so recovery is 14.8 s. The event at 150 s sees no dip; the
// one at 90 s does, but only after the next event (100 s): not its own.
func TestRecovery(t *testing.T) {
	sc := mini(t, 1, 300, 300, "", "", "")
	sc.Duration = 200 * time.Second
	res := &Result{}
	for i := 0; i < 2000; i++ {
		at := time.Duration(i) * 100 * time.Millisecond
		ok := at < 100*time.Second || at >= 105*time.Second
		res.Requests = append(res.Requests, RequestRecord{ID: i, Arrival: at, Success: ok, Latency: 100 * time.Millisecond})
	}
	sc.Timeline = []scenario.Change{{At: 90 * time.Second, Orchestrator: "a"}, {At: 100 * time.Second, Orchestrator: "a"}, {At: 150 * time.Second, Orchestrator: "a"}}
	got := recovery(sc, res)
	want := map[string]float64{"100s": 14.8}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v (no entry for 90s or 150s)", got, want)
	}
}

// TestReportJSONFields pins report.json to the fields the format defines.
func TestReportJSONFields(t *testing.T) {
	rep := Report{Scenario: "s", Seed: 1, Policies: []PolicyReport{{Name: "p", RecoveryS: map[string]float64{"200s": 1.8}}}}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	if got, want := keys(top), []string{"policies", "scenario", "seed"}; !reflect.DeepEqual(got, want) {
		t.Errorf("report keys: got %v, want %v", got, want)
	}
	var pols []map[string]json.RawMessage
	if err := json.Unmarshal(top["policies"], &pols); err != nil {
		t.Fatal(err)
	}
	want := []string{"classes", "cost_per_request", "edge_wait_ms", "extra_attempts", "latency_ms", "loss_per_request", "name",
		"orch_queue_ms", "recovery_s", "requests", "shed_rate", "slo_attainment", "success_rate"}
	if got := keys(pols[0]); !reflect.DeepEqual(got, want) {
		t.Errorf("policy keys: got %v, want %v", got, want)
	}
	var lat map[string]json.RawMessage
	if err := json.Unmarshal(pols[0]["latency_ms"], &lat); err != nil {
		t.Fatal(err)
	}
	if got, want := keys(lat), []string{"p50", "p95", "p99", "p999"}; !reflect.DeepEqual(got, want) {
		t.Errorf("latency keys: got %v, want %v", got, want)
	}
}

func keys(m map[string]json.RawMessage) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestSummarizeShaping: shed requests count as misses at their class's
// value, and the waits and per-class rows come from the requests and
// attempts as defined.
func TestSummarizeShaping(t *testing.T) {
	sc := &scenario.Scenario{Duration: time.Minute, Classes: []scenario.Class{
		{ID: "gold", SLO: time.Second, Value: 1}, {ID: "cheap", SLO: time.Second, Value: 0.02},
	}}
	res := &Result{
		Requests: []RequestRecord{
			{ID: 0, Class: 0, Arrival: 0, Success: true, Latency: 500 * time.Millisecond, Attempts: 1, Cost: 0.01, Outcome: OK},
			{ID: 1, Class: 1, Arrival: 0, Success: true, Latency: 900 * time.Millisecond, Attempts: 1, Cost: 0.01, Outcome: OK},
			{ID: 2, Class: 1, Arrival: 0, Outcome: Shed},
			{ID: 3, Class: 1, Arrival: 0, Outcome: Shed},
		},
		Attempts: []Attempt{
			{Request: 0, Seq: 0, Sent: 0, Wait: 0, Service: 400 * time.Millisecond},
			{Request: 1, Seq: 0, Sent: 300 * time.Millisecond, Wait: 100 * time.Millisecond, Service: 400 * time.Millisecond},
		},
	}
	pr := Summarize(sc, "p", res)
	if pr.ShedRate != 0.5 {
		t.Errorf("shed rate: got %v, want 0.5", pr.ShedRate)
	}
	if pr.EdgeWaitMs.P99 != 300 || pr.EdgeWaitMs.Mean != 150 {
		t.Errorf("edge wait: got %+v, want mean 150, p99 300", pr.EdgeWaitMs)
	}
	if pr.OrchQueueMs.Mean != 50 || pr.OrchQueueMs.P95 != 100 {
		t.Errorf("orchestrator queue: got %+v, want mean 50, p95 100", pr.OrchQueueMs)
	}
	want := []ClassReport{
		{Class: "gold", Requests: 1, SLOAttainment: 1, ShedRate: 0, LossPerRequest: 0.01},
		{Class: "cheap", Requests: 3, SLOAttainment: 1.0 / 3, ShedRate: 2.0 / 3, LossPerRequest: (0.01 + 0.04) / 3},
	}
	for i, w := range want {
		g := pr.Classes[i]
		if g.Class != w.Class || g.Requests != w.Requests || math.Abs(g.SLOAttainment-w.SLOAttainment) > 1e-12 ||
			math.Abs(g.ShedRate-w.ShedRate) > 1e-12 || math.Abs(g.LossPerRequest-w.LossPerRequest) > 1e-12 {
			t.Errorf("class %d: got %+v, want %+v", i, g, w)
		}
	}
	// The whole row's loss counts the shed requests at their class's value.
	if wantLoss := (0.02 + 0.04) / 4; math.Abs(pr.LossPerRequest-wantLoss) > 1e-12 {
		t.Errorf("loss: got %v, want %v", pr.LossPerRequest, wantLoss)
	}
	var buf bytes.Buffer
	rep := Report{Scenario: "s", Policies: []PolicyReport{pr}}
	if err := rep.WriteMarkdown(&buf); err != nil {
		t.Fatal(err)
	}
	if want := "| p | 1.0000 / 0.0000 / 0.01000 | 0.3333 / 0.6667 / 0.01667 |"; !strings.Contains(buf.String(), want) {
		t.Errorf("markdown lacks %q:\n%s", want, buf.String())
	}
}

func TestWriteMarkdown(t *testing.T) {
	rep := Report{Scenario: "s", Seed: 1, Policies: []PolicyReport{
		{Name: PolicyLivepeer, Requests: 10, LossPerRequest: 5, RecoveryS: map[string]float64{"20s": 3, "3s": 1}},
		{Name: PolicyOracle, Requests: 10, LossPerRequest: 3},
		{Name: "loopgate", Requests: 10, LossPerRequest: 4},
	}}
	var buf bytes.Buffer
	if err := rep.WriteMarkdown(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"| policy | requests |", "| vs best classic |", "| loopgate | 10 |", "| 0.50 |", "| policy | 3s | 20s |", "| livepeer | 1.0 | 3.0 |"} {
		if !strings.Contains(out, want) {
			t.Errorf("markdown lacks %q:\n%s", want, out)
		}
	}
}

func TestVsBestClassic(t *testing.T) {
	rep := Report{Scenario: "s", Policies: []PolicyReport{
		{Name: PolicyRandom, LossPerRequest: 6},
		{Name: PolicyLeastInflight, LossPerRequest: 4},
		{Name: PolicyP2CEWMA, LossPerRequest: 5},
		{Name: PolicyOracle, LossPerRequest: 3},
		{Name: "loopgate", LossPerRequest: 4.4},
	}}
	name, loss, ok := rep.BestClassic()
	if name != PolicyLeastInflight || loss != 4 || !ok {
		t.Errorf("best classic: got %s %v %v, want least-inflight 4 true", name, loss, ok)
	}
	want := map[string]float64{PolicyRandom: 1.5, PolicyLeastInflight: 1, PolicyP2CEWMA: 1.25, PolicyOracle: 0.75, "loopgate": 1.1}
	got := rep.VsBestClassic()
	for k, w := range want {
		if math.Abs(got[k]-w) > 1e-12 {
			t.Errorf("%s: got %v, want %v", k, got[k], w)
		}
	}
	none := Report{Policies: []PolicyReport{{Name: PolicyOracle, LossPerRequest: 1}}}
	if got := none.VsBestClassic(); got != nil {
		t.Errorf("no classic balancer: got %v, want nil", got)
	}
	var buf bytes.Buffer
	if err := rep.WriteMarkdown(&buf); err != nil {
		t.Fatal(err)
	}
	if want := "| 4.40000 | 1.100 |"; !strings.Contains(buf.String(), want) {
		t.Errorf("markdown lacks %q:\n%s", want, buf.String())
	}
}

func TestWriteSummary(t *testing.T) {
	a := &Report{Scenario: "a", Policies: []PolicyReport{{Name: PolicyRandom, LossPerRequest: 2}, {Name: "loopgate", LossPerRequest: 2.4}}}
	b := &Report{Scenario: "b", Policies: []PolicyReport{{Name: PolicyRandom, LossPerRequest: 4}, {Name: "loopgate", LossPerRequest: 3.2}}}
	var buf bytes.Buffer
	if err := WriteSummary(&buf, []*Report{a, b}); err != nil {
		t.Fatal(err)
	}
	want := "\nvs best classic over 2 scenarios (worst, mean): random 1.000 (a), 1.000; loopgate 1.200 (a), 1.000\n"
	if got := buf.String(); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
