package sim

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/loopgate/loopgate/sim/scenario"
)

// scripted sends attempt k of every request to order[k] (the last one
// repeats) with fixed limits, and timeouts[k] as its own per-attempt
// timeout (Choice.Timeout) when given.
type scripted struct {
	order    []int
	limits   Limits
	timeouts []time.Duration
}

func (p scripted) Limits(time.Duration, *Request) Limits { return p.limits }
func (p scripted) Pick(_ time.Duration, req *Request, _ *Fleet) Choice {
	c := Use(p.order[min(req.Attempts, len(p.order)-1)])
	if req.Attempts < len(p.timeouts) {
		c.Timeout = p.timeouts[req.Attempts]
	}
	return c
}
func (p scripted) Observe(time.Duration, *Attempt) {}

// mini is a one-client scenario: client in X, orchestrator a in X and b in
// Y (rtt X-Y 100 ms, same region 4 ms), each with 4 servers and a queue of
// 8, deterministic service (p99 = p50). aExtra/bExtra add flow fields.
func mini(t *testing.T, rate float64, aP50, bP50 int, aExtra, bExtra, timeline string) *scenario.Scenario {
	t.Helper()
	src := fmt.Sprintf(`
name: mini
seed: 3
duration: 3s
warmup: 0s
regions: [X, Y]
rtt_ms: {same_region: 4, X-Y: 100}
classes:
  - {id: a, capability: llm, units: 10, slo_ms: 2000, timeout_ms: 5000, value: 1}
clients:
  - {id: c, region: X, rate: %g, mix: {a: 1}}
orchestrators:
  - {id: a, region: X, capacity: 4, queue: 8, %s
     classes: {a: {price: 0.5, p50_ms: %d, p99_ms: %d}}}
  - {id: b, region: Y, capacity: 4, queue: 8, %s
     classes: {a: {price: 0.25, p50_ms: %d, p99_ms: %d}}}
timeline: [%s]
`, rate, aExtra, aP50, aP50, bExtra, bP50, bP50, timeline)
	sc, err := scenario.Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func TestAttemptSemantics(t *testing.T) {
	ms := time.Millisecond
	type want struct {
		outcomes []Outcome
		costs    []float64
		lat      []time.Duration // attempt latencies
		success  bool
		reqLat   time.Duration
		reqOut   Outcome
	}
	tests := []struct {
		name   string
		aExtra string
		aP50   int
		policy scripted
		want   want
	}{
		{"down refuses after one round trip, unbilled", "down: true,", 300,
			scripted{[]int{0, 1}, Limits{MaxAttempts: 2}, nil},
			want{[]Outcome{Refused, OK}, []float64{0, 2.5}, []time.Duration{4 * ms, 400 * ms}, true, 404 * ms, OK}},
		{"fast failure after one round trip, unbilled", "fail: 1, fail_mode: fast,", 300,
			scripted{[]int{0}, Limits{MaxAttempts: 1}, nil},
			want{[]Outcome{Failed}, []float64{0}, []time.Duration{4 * ms}, false, 4 * ms, Failed}},
		{"slow failure after service, billed", "fail: 1, fail_mode: slow,", 300,
			scripted{[]int{0, 1}, Limits{MaxAttempts: 2}, nil},
			want{[]Outcome{Failed, OK}, []float64{5, 2.5}, []time.Duration{304 * ms, 400 * ms}, true, 704 * ms, OK}},
		{"hang: only the client's timeout reveals it", "hang: true,", 300,
			scripted{[]int{0}, Limits{MaxAttempts: 3}, nil},
			want{[]Outcome{TimedOut}, []float64{0}, []time.Duration{5000 * ms}, false, 5000 * ms, TimedOut}},
		{"hang escaped by a per-attempt timeout", "hang: true,", 300,
			scripted{[]int{0, 1}, Limits{MaxAttempts: 2, AttemptTimeout: time.Second}, nil},
			want{[]Outcome{AttemptTimeout, OK}, []float64{0, 2.5}, []time.Duration{time.Second, 400 * ms}, true, 1400 * ms, OK}},
		{"hang escaped by the attempt's own timeout, which overrides the request's", "hang: true,", 300,
			scripted{[]int{0, 1}, Limits{MaxAttempts: 2, AttemptTimeout: time.Second}, []time.Duration{700 * ms}},
			want{[]Outcome{AttemptTimeout, OK}, []float64{0, 2.5}, []time.Duration{700 * ms, 400 * ms}, true, 1100 * ms, OK}},
		{"hedge: the loser is cancelled and billed", "", 3000,
			scripted{[]int{0, 1}, Limits{MaxAttempts: 2, HedgeAfter: 200 * ms}, nil},
			want{[]Outcome{Cancelled, OK}, []float64{5, 2.5}, []time.Duration{600 * ms, 400 * ms}, true, 600 * ms, OK}},
		{"shed at the edge", "", 300,
			scripted{[]int{-1}, Limits{MaxAttempts: 1}, nil},
			want{nil, nil, nil, false, 0, Shed}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// One request: rate 0.3/s over 3 s with seed 3 gives a single arrival.
			sc := mini(t, 0.3, tt.aP50, 300, tt.aExtra, "", "")
			res, err := Run(context.Background(), sc, tt.policy, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(res.Requests) != 1 {
				t.Fatalf("got %d requests, want 1 (fix the rate or seed)", len(res.Requests))
			}
			r := res.Requests[0]
			var outs []Outcome
			var costs []float64
			var lats []time.Duration
			for _, a := range res.Attempts {
				outs, costs, lats = append(outs, a.Outcome), append(costs, a.Cost), append(lats, a.Latency)
			}
			w := tt.want
			if !reflect.DeepEqual(outs, w.outcomes) {
				t.Errorf("attempt outcomes: got %v, want %v", outs, w.outcomes)
			}
			if !reflect.DeepEqual(costs, w.costs) {
				t.Errorf("attempt costs: got %v, want %v", costs, w.costs)
			}
			if !reflect.DeepEqual(lats, w.lat) {
				t.Errorf("attempt latencies: got %v, want %v", lats, w.lat)
			}
			if r.Success != w.success || r.Latency != w.reqLat || r.Outcome != w.reqOut {
				t.Errorf("request: got success %v latency %v outcome %v, want %v %v %v",
					r.Success, r.Latency, r.Outcome, w.success, w.reqLat, w.reqOut)
			}
		})
	}
}

// TestDownEvictsInService: an orchestrator that goes down resets the
// attempts it holds (billed if they had started service) and refuses new ones.
func TestDownEvictsInService(t *testing.T) {
	sc := mini(t, 10, 600, 300, "", "", "{at: 1s, orchestrator: a, set: {down: true}}")
	res, err := Run(context.Background(), sc, scripted{[]int{0}, Limits{MaxAttempts: 1}, nil}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	count := map[Outcome]int{}
	for _, a := range res.Attempts {
		count[a.Outcome]++
		reached := a.Sent + a.RTT/2
		switch {
		case reached >= time.Second && a.Outcome != Refused:
			t.Errorf("attempt %d reached a down orchestrator at %v: got %v, want refused", a.Request, reached, a.Outcome)
		case a.Outcome == Reset && (a.Service > 0) != (a.Cost > 0):
			t.Errorf("reset attempt %d: service %v cost %v, want billed iff service started", a.Request, a.Service, a.Cost)
		case a.Outcome == Reset && a.End != time.Second+a.RTT/2:
			t.Errorf("reset attempt %d: learned at %v, want %v", a.Request, a.End, time.Second+a.RTT/2)
		}
	}
	if count[Reset] == 0 || count[Refused] == 0 || count[OK] == 0 {
		t.Errorf("got outcomes %v, want some ok, reset and refused", count)
	}
}

func TestDeterministic(t *testing.T) {
	sc := loadScenario(t, "fault-storm")
	run := func() *Result {
		p, err := NewP2CEWMA(NewEnv(sc, "p2c-ewma"), DefaultP2CConfig())
		if err != nil {
			t.Fatal(err)
		}
		res, err := Run(context.Background(), sc, p, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	a, b := run(), run()
	if !reflect.DeepEqual(a.Requests, b.Requests) || !reflect.DeepEqual(a.Attempts, b.Attempts) {
		t.Errorf("two runs with the same seed differ")
	}
}

// TestSameLuckAcrossPolicies: a request's first visit to an orchestrator
// draws the same service time whichever policy sent it there.
func TestSameLuckAcrossPolicies(t *testing.T) {
	sc := loadScenario(t, "steady-heterogeneous")
	first := func(p Policy) map[[2]int]time.Duration {
		res, err := Run(context.Background(), sc, p, Options{})
		if err != nil {
			t.Fatal(err)
		}
		m := map[[2]int]time.Duration{}
		for _, a := range res.Attempts {
			k := [2]int{a.Request, a.Orch}
			if _, seen := m[k]; !seen && a.Service > 0 {
				m[k] = a.Service
			}
		}
		return m
	}
	a := first(newRandom(NewEnv(sc, "random")))
	b := first(newLeastInflight(NewEnv(sc, "least-inflight")))
	same := 0
	for k, s := range a {
		if s2, ok := b[k]; ok {
			same++
			if s != s2 {
				t.Fatalf("request %d at orchestrator %d: got service %v and %v, want equal", k[0], k[1], s, s2)
			}
		}
	}
	if same < 100 {
		t.Errorf("only %d shared (request, orchestrator) pairs: the check is too weak", same)
	}
}

func TestArrivals(t *testing.T) {
	sc := loadScenario(t, "flash-crowd")
	arr := genArrivals(sc)
	viral := sc.ClientIndex("viral")
	tests := []struct {
		name     string
		client   int
		from, to time.Duration
		rate     float64
	}{
		{"acme whole run", sc.ClientIndex("acme"), 0, sc.Duration, 14},
		{"viral before burst", viral, 0, 200 * time.Second, 2},
		{"viral burst", viral, 200 * time.Second, 220 * time.Second, 48},
		{"viral sustained", viral, 400 * time.Second, 460 * time.Second, 24},
	}
	for _, tt := range tests {
		n := 0
		for _, a := range arr {
			if a.client == tt.client && a.at >= tt.from && a.at < tt.to {
				n++
			}
		}
		want := tt.rate * (tt.to - tt.from).Seconds()
		if d := float64(n) - want; d*d > 16*want { // 4σ of a Poisson count
			t.Errorf("%s: got %d arrivals, want %.0f ± %.0f", tt.name, n, want, 4*math.Sqrt(want))
		}
	}
	// The class mix of acme: 60% t2i.
	t2i, n := 0, 0
	for _, a := range arr {
		if a.client == sc.ClientIndex("acme") {
			n++
			if a.class == sc.ClassIndex("t2i-sdxl") {
				t2i++
			}
		}
	}
	if share := float64(t2i) / float64(n); share < 0.58 || share > 0.62 {
		t.Errorf("acme t2i share: got %.3f, want 0.60 ± 0.02", share)
	}
}

// TestHangSwallows: attempts held by an orchestrator that hangs, and those
// that reach it later, end only by the client's timeout.
func TestHangSwallows(t *testing.T) {
	sc := mini(t, 10, 600, 300, "", "", "{at: 1s, orchestrator: a, set: {hang: true}}")
	res, err := Run(context.Background(), sc, scripted{[]int{0}, Limits{MaxAttempts: 1}, nil}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	timedOut := 0
	for _, a := range res.Attempts {
		done := a.Sent + a.RTT/2 + a.Wait + a.Service // when service would have ended
		if a.Outcome == OK && done > time.Second {
			t.Errorf("attempt %d: got ok after the hang (service ends %v)", a.Request, done)
		}
		if a.Outcome == TimedOut {
			timedOut++
			if a.Latency != 5*time.Second {
				t.Errorf("attempt %d: timed out after %v, want the class timeout 5s", a.Request, a.Latency)
			}
		}
	}
	if timedOut == 0 {
		t.Errorf("got no timeouts, want every attempt after 1s to time out")
	}
}

// TestRunStopsOnCancel checks that a run whose context is cancelled stops
// with the context's error instead of simulating to the end.
func TestRunStopsOnCancel(t *testing.T) {
	sc, err := scenario.Parse([]byte(`
name: cancel
seed: 1
duration: 600s
regions: [FRA]
rtt_ms: {same_region: 4}
classes:
  - {id: c, capability: text-to-image, model: m, units: 1, slo_ms: 1000, timeout_ms: 5000, value: 0.01}
clients:
  - {id: a, region: FRA, rate: 50, mix: {c: 1.0}}
orchestrators:
  - {id: o, region: FRA, capacity: 4, queue: 4, classes: {c: {price: 1.0e-9, p50_ms: 100, p99_ms: 300}}}
`))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res, err := Run(ctx, sc, newRandom(NewEnv(sc, "random")), Options{})
	if !errors.Is(err, context.Canceled) || res != nil {
		t.Fatalf("got %v and a result %v, want context.Canceled and none", err, res != nil)
	}
}
