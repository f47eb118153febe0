package oracle

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/loopgate/loopgate/sim/scenario"
)

// hand is a small instance solved by hand (queueing off, utilisation 0.9).
// One class (units 1, slo 1000 ms, value 10). Service times are
// deterministic (p99 = p50), so a request misses iff rtt + p50 > slo.
//
//	orch  region price servers p50    max rate (0.9·servers/p50)
//	A     FRA    1     2       0.5 s  3.6/s
//	B     FRA    3     10      0.5 s  18/s
//	C     FRA    0.5   10      2 s    4.5/s  always misses: 10.5 per request
//	D     SIN    2     1       0.5 s  1.8/s
//
// rtt FRA-SIN is 600 ms, so FRA→D and SIN→A/B/C miss (600+500 > 1000):
// per request FRA pays A 1, B 3, C 10.5, D 12; SIN pays D 2, A 11, B 13, C 10.5.
//
// Demand FRA 5/s, SIN 1/s: SIN→D 1 (D has room for 1.8); FRA fills the
// cheapest first: A 3.6, then B 1.4. Objective 3.6·1 + 1.4·3 + 1·2 = 9.8.
//
// Demand FRA 30/s without shedding: A 3.6, B 18, C 4.5, then D's
// remaining 0.8 (at 12, dearer than C), and 3.1 overflow. The overflow
// cost is the dearest band of the class (SIN→B, 13) + value 10 = 23.
// Objective 3.6 + 54 + 47.25 + 9.6 + 2 + 3.1·23 = 187.75.
//
// With shedding a refused request costs its value, 10: C (10.5) and D
// (12) cost more than that, so FRA takes only A 3.6 and B 18 and sheds
// 8.4 (28 %). Objective 3.6 + 54 + 2 + 8.4·10 = 143.6.
const hand = `
name: hand
seed: 1
duration: 10s
warmup: 0s
regions: [FRA, SIN]
rtt_ms: {same_region: 0, FRA-SIN: 600}
classes:
  - {id: a, capability: llm, units: 1, slo_ms: 1000, timeout_ms: 10000, value: 10}
clients:
  - {id: f, region: FRA, rate: 5, mix: {a: 1}}
  - {id: s, region: SIN, rate: 1, mix: {a: 1}}
orchestrators:
  - {id: A, region: FRA, capacity: 2, classes: {a: {price: 1, p50_ms: 500, p99_ms: 500}}}
  - {id: B, region: FRA, capacity: 10, classes: {a: {price: 3, p50_ms: 500, p99_ms: 500}}}
  - {id: C, region: FRA, capacity: 10, classes: {a: {price: 0.5, p50_ms: 2000, p99_ms: 2000}}}
  - {id: D, region: SIN, capacity: 1, classes: {a: {price: 2, p50_ms: 500, p99_ms: 500}}}
`

func TestHandSolved(t *testing.T) {
	tests := []struct {
		name       string
		fraRate    string
		shed       bool
		wantFRA    []float64 // A, B, C, D
		wantSIN    []float64
		wantOver   float64
		wantObject float64
	}{
		{"fits", "rate: 5", false, []float64{3.6, 1.4, 0, 0}, []float64{0, 0, 0, 1}, 0, 9.8},
		{"fits, shedding", "rate: 5", true, []float64{3.6, 1.4, 0, 0}, []float64{0, 0, 0, 1}, 0, 9.8},
		{"overflows", "rate: 30", false, []float64{3.6, 18, 4.5, 0.8}, []float64{0, 0, 0, 1}, 3.1, 187.75},
		{"overflows, shedding", "rate: 30", true, []float64{3.6, 18, 0, 0}, []float64{0, 0, 0, 1}, 8.4, 143.6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc, err := scenario.Parse([]byte(strings.Replace(hand, "rate: 5", tt.fraRate, 1)))
			if err != nil {
				t.Fatal(err)
			}
			st := sc.Initial()
			cfg := DefaultConfig()
			cfg.Queueing, cfg.Shed = false, tt.shed
			a, err := Solve(sc, &st, cfg)
			if err != nil {
				t.Fatal(err)
			}
			for o := range tt.wantFRA {
				if got := a.Rate[0][0][o]; math.Abs(got-tt.wantFRA[o]) > 1e-6 {
					t.Errorf("FRA→%s: got %.4f, want %.4f", st.Orchestrators[o].ID, got, tt.wantFRA[o])
				}
				if got := a.Rate[0][1][o]; math.Abs(got-tt.wantSIN[o]) > 1e-6 {
					t.Errorf("SIN→%s: got %.4f, want %.4f", st.Orchestrators[o].ID, got, tt.wantSIN[o])
				}
			}
			if got := a.Overflow[0][0]; math.Abs(got-tt.wantOver) > 1e-6 {
				t.Errorf("FRA overflow: got %.4f, want %.4f", got, tt.wantOver)
			}
			if math.Abs(a.Objective-tt.wantObject) > 1e-6 {
				t.Errorf("objective: got %.4f, want %.4f", a.Objective, tt.wantObject)
			}
			wantShed := 0.0
			if tt.shed {
				wantShed = tt.wantOver / 30
				if tt.fraRate == "rate: 5" {
					wantShed = 0
				}
			}
			if got := a.ShedFraction(0, 0); math.Abs(got-wantShed) > 1e-6 {
				t.Errorf("FRA shed fraction: got %.4f, want %.4f", got, wantShed)
			}
			if tt.shed && wantShed > 0 {
				// The routed demand is shared: A 3.6 and B 18 of 21.6.
				sh := a.Shares(0, 0)
				if math.Abs(sh[0]-3.6/21.6) > 1e-6 || math.Abs(sh[1]-18/21.6) > 1e-6 {
					t.Errorf("FRA shares with shedding: got %v, want A %.4f, B %.4f", sh, 3.6/21.6, 18/21.6)
				}
			}
			for r := 0; r < 2; r++ {
				sum := 0.0
				for _, s := range a.Shares(0, r) {
					sum += s
				}
				if math.Abs(sum-1) > 1e-9 {
					t.Errorf("shares of region %d: sum %v, want 1", r, sum)
				}
			}
		})
	}
}

// TestCapacityRespected solves every state of every public scenario (and the
// hand instance under heavy overload) and checks each orchestrator's load.
func TestCapacityRespected(t *testing.T) {
	paths, _ := filepath.Glob("../scenarios/*.yaml")
	if len(paths) < 5 {
		t.Fatalf("got %d public scenarios, want 5", len(paths))
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		sc, err := scenario.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		st := sc.Initial()
		checkAllocation(t, sc, &st, sc.Name+"@0s")
		for _, ch := range sc.Timeline {
			if err := st.Apply(ch); err != nil {
				t.Fatal(err)
			}
			checkAllocation(t, sc, &st, sc.Name+"@"+scenario.FormatAt(ch.At))
		}
	}
}

func checkAllocation(t *testing.T, sc *scenario.Scenario, st *scenario.State, name string) {
	t.Helper()
	cfg := DefaultConfig()
	a, err := Solve(sc, st, cfg)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	for o, orch := range st.Orchestrators {
		load := 0.0
		for c := range sc.Classes {
			for r := range sc.Regions {
				if x := a.Rate[c][r][o]; x > 0 {
					if orch.Down || orch.Hang {
						t.Errorf("%s: %s is down or hung, got rate %v", name, orch.ID, x)
						continue
					}
					load += x * work(sc, st, c, o)
				}
			}
		}
		if limit := float64(orch.Capacity) * cfg.Utilisation; load > limit+1e-9 {
			t.Errorf("%s: %s busy servers %.4f, want ≤ %.4f", name, orch.ID, load, limit)
		}
	}
	for c := range sc.Classes {
		for r := range sc.Regions {
			sum := a.Overflow[c][r]
			for o := range st.Orchestrators {
				sum += a.Rate[c][r][o]
			}
			if d := a.Demand[c][r]; math.Abs(sum-d) > 1e-6 {
				t.Errorf("%s: class %d region %d routed %v, want demand %v", name, c, r, sum, d)
			}
		}
	}
}

// TestShedAtLongRunRate: an on/off client whose peak overflows the fleet
// but whose long-run rate does not is routed for its peak and never
// refused; one whose long-run rate overflows is refused what overflows.
func TestShedAtLongRunRate(t *testing.T) {
	tests := []struct {
		name     string
		client   string
		wantShed float64
	}{
		// Peak 30/s, long-run (30·10 + 2·30)/40 = 9/s: A and B take 21.6.
		{"bursts fit on average", "{id: f, region: FRA, rate: 30, on: 10s, off: 30s, off_rate: 2, mix: {a: 1}}", 0},
		// Long-run (30·30 + 30·10)/40 = 30/s: as the steady 30/s, 8.4 shed.
		{"overflows on average", "{id: f, region: FRA, rate: 30, on: 30s, off: 10s, off_rate: 30, mix: {a: 1}}", 8.4 / 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc, err := scenario.Parse([]byte(strings.Replace(hand, "{id: f, region: FRA, rate: 5, mix: {a: 1}}", tt.client, 1)))
			if err != nil {
				t.Fatal(err)
			}
			st := sc.Initial()
			cfg := DefaultConfig()
			cfg.Queueing = false
			a, err := Solve(sc, &st, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := a.ShedFraction(0, 0); math.Abs(got-tt.wantShed) > 1e-6 {
				t.Errorf("shed fraction: got %.4f, want %.4f", got, tt.wantShed)
			}
			// Routed for the peak: the overflow spreads over every server.
			if sh := a.Shares(0, 0); !(sh[2] > 0) {
				t.Errorf("shares %v: want C used at the peak", sh)
			}
		})
	}
}

// TestOnTimeOdds: the odds fall as the orchestrator's true queue grows
// and with the round trip, and failures scale them.
func TestOnTimeOdds(t *testing.T) {
	orch := &scenario.Orchestrator{Capacity: 2, Fail: 0.1}
	off := scenario.Offer{P50: 500 * time.Millisecond, P99: 500 * time.Millisecond} // deterministic 0.5 s
	tests := []struct {
		name     string
		inFlight int
		rtt      time.Duration
		want     float64
	}{
		{"a free server", 1, 0, 0.9},
		{"3 in flight: waits 2 × 0.5/2 s, 0.5 + 0.5 ≤ 2 s", 3, 0, 0.9},
		{"9 in flight: waits 8 × 0.5/2 = 2 s, misses", 9, 0, 0},
		{"free server, rtt too long", 0, 1600 * time.Millisecond, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := OnTimeOdds(orch, off, tt.inFlight, tt.rtt, 2*time.Second); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestErlangC(t *testing.T) {
	// M/M/2 with a = 1: C = a²/(2!(1−ρ)) / (1 + a + a²/(2!(1−ρ))) = 1/3.
	if got := erlangC(2, 1); math.Abs(got-1.0/3) > 1e-12 {
		t.Errorf("erlangC(2, 1): got %v, want 1/3", got)
	}
	// M/M/1: C = ρ.
	if got := erlangC(1, 0.7); math.Abs(got-0.7) > 1e-12 {
		t.Errorf("erlangC(1, 0.7): got %v, want 0.7", got)
	}
}
