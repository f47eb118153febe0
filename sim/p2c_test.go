package sim

import (
	"math"
	"testing"
	"time"
)

// TestPeakEWMA pins Finagle's Metric arithmetic: peaks are taken at once,
// lower samples are mixed in by the time since the estimate was last
// touched, and a read (observe(0)) decays it and moves that stamp.
func TestPeakEWMA(t *testing.T) {
	const tau = float64(10 * time.Second)
	s := time.Second
	e := math.Exp(-1) // weight left after one τ
	type step struct {
		at   time.Duration
		rtt  float64 // ns; 0 is a read
		want float64 // cost after the step
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"first sample is a peak", []step{{1 * s, 5e8, 5e8}}},
		{"slower sample jumps", []step{{1 * s, 5e8, 5e8}, {1 * s, 9e8, 9e8}}},
		{"faster sample mixes by elapsed time", []step{{0, 1e9, 1e9}, {10 * s, 2e8, 1e9*e + 2e8*(1-e)}}},
		{"read decays towards zero", []step{{0, 1e9, 1e9}, {10 * s, 0, 1e9 * e}, {20 * s, 0, 1e9 * e * e}}},
		// The read at 10 s moved the stamp: the sample at 10 s mixes with
		// weight 0, so only the decay shows.
		{"read moves the stamp", []step{{0, 1e9, 1e9}, {10 * s, 0, 1e9 * e}, {10 * s, 1e8, 1e9 * e}}},
		{"timeout is a peak", []step{{0, 2e8, 2e8}, {12 * s, 1e10, 1e10}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m peakEWMA
			for i, st := range tt.steps {
				m.observe(st.at, st.rtt, tau)
				if math.Abs(m.cost-st.want) > 1e-6*st.want {
					t.Errorf("step %d: got cost %.6g, want %.6g", i, m.cost, st.want)
				}
			}
		})
	}
}

// TestP2CLoad checks load = ewma × (pending+1), the penalty for a busy node
// without history, the decay on read, and that failed attempts feed it.
func TestP2CLoad(t *testing.T) {
	sc := mini(t, 1, 300, 300, "", "", "")
	p, err := NewP2CEWMA(NewEnv(sc, PolicyP2CEWMA), DefaultP2CConfig())
	if err != nil {
		t.Fatal(err)
	}
	e := newEngine(sc, p, Options{})
	fleet := e.fleet
	s := time.Second
	if got := p.load(0, 0, 0, fleet); got != 0 {
		t.Errorf("idle, no history: got load %v, want 0", got)
	}
	e.orchs[0].inflight = 2
	if got, want := p.load(0, 0, 0, fleet), p2cPenalty+2; got != want {
		t.Errorf("busy, no history: got load %v, want %v", got, want)
	}
	// A failed attempt's 300 ms feeds the EWMA like any reply.
	p.Observe(1*s, &Attempt{Orch: 0, Class: 0, Outcome: Failed, Latency: 300 * time.Millisecond})
	if got, want := p.load(1*s, 0, 0, fleet), 3e8*3; math.Abs(got-want) > 1 {
		t.Errorf("after a failed 300 ms attempt, 2 pending: got load %v, want %v", got, want)
	}
	e.orchs[0].inflight = 0
	if got, want := p.load(11*s, 0, 0, fleet), 3e8*math.Exp(-1); math.Abs(got-want) > 1 {
		t.Errorf("10 s later, idle: got load %v, want %v (decayed on read)", got, want)
	}
	p.Observe(12*s, &Attempt{Orch: 0, Class: 0, Outcome: TimedOut, Latency: 5 * s})
	if got, want := p.load(12*s, 0, 0, fleet), 5e9; math.Abs(got-want) > 1 {
		t.Errorf("after a 5 s timeout: got load %v, want %v", got, want)
	}
}

// TestP2CPicksLowerLoad: with two candidates, p2c always takes the one of
// lower load, whichever order the draw puts them in.
func TestP2CPicksLowerLoad(t *testing.T) {
	sc := mini(t, 1, 300, 300, "", "", "")
	p, err := NewP2CEWMA(NewEnv(sc, PolicyP2CEWMA), DefaultP2CConfig())
	if err != nil {
		t.Fatal(err)
	}
	e := newEngine(sc, p, Options{})
	p.Observe(0, &Attempt{Orch: 0, Class: 0, Outcome: OK, Latency: 900 * time.Millisecond})
	p.Observe(0, &Attempt{Orch: 1, Class: 0, Outcome: OK, Latency: 400 * time.Millisecond})
	for i := 0; i < 50; i++ {
		if got := p.Pick(time.Millisecond, &Request{Class: 0}, e.fleet); got.Orch != 1 {
			t.Fatalf("pick %d: got orchestrator %d, want 1 (400 ms against 900 ms)", i, got.Orch)
		}
	}
	// Two pending requests at b: 400·3 > 900·1.
	e.orchs[1].inflight = 2
	if got := p.Pick(time.Millisecond, &Request{Class: 0}, e.fleet); got.Orch != 0 {
		t.Errorf("b with 2 pending: got orchestrator %d, want 0", got.Orch)
	}
}

func BenchmarkP2CPick(b *testing.B) {
	sc := loadScenario(b, "steady-heterogeneous")
	p, err := NewP2CEWMA(NewEnv(sc, PolicyP2CEWMA), DefaultP2CConfig())
	if err != nil {
		b.Fatal(err)
	}
	e := newEngine(sc, p, Options{})
	req := &Request{Class: 0}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		now := time.Duration(i) * time.Millisecond
		c := p.Pick(now, req, e.fleet)
		p.Observe(now, &Attempt{Orch: c.Orch, Class: 0, Outcome: OK, Latency: time.Duration(300+i%500) * time.Millisecond})
	}
}
