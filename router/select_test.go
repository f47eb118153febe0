package router

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/loopgate/loopgate/event"
)

func defaultParams() Params { return DefaultConfig().Selection.Params() }

// drawFrequencies draws n times with a seeded source and returns how often
// each candidate was chosen, checking each propensity against the
// frequencies' expectation.
func drawFrequencies(t *testing.T, p Params, cands []Candidate, n int, seed uint64) []float64 {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	counts := make([]float64, len(cands))
	props := make([]float64, len(cands))
	for range n {
		ch, ok := Choose(p, cands, rng.Float64())
		if !ok {
			t.Fatal("got no choice, want one")
		}
		if !(ch.Propensity > 0 && ch.Propensity <= 1) {
			t.Fatalf("got propensity %v, want in (0, 1]", ch.Propensity)
		}
		if props[ch.Index] != 0 && math.Abs(props[ch.Index]-ch.Propensity) > 1e-12 {
			t.Fatalf("propensity of %d changed between draws: %v, %v", ch.Index, props[ch.Index], ch.Propensity)
		}
		props[ch.Index] = ch.Propensity
		counts[ch.Index]++
	}
	for i := range counts {
		counts[i] /= float64(n)
	}
	return counts
}

// within checks a frequency against its probability with a 5-sigma binomial tolerance.
func within(t *testing.T, name string, got, want float64, n int) {
	t.Helper()
	sigma := math.Sqrt(want * (1 - want) / float64(n))
	if math.Abs(got-want) > 5*sigma+1e-9 {
		t.Errorf("%s: got frequency %.4f, want %.4f ± %.4f", name, got, want, 5*sigma)
	}
}

func TestChooseFollowsShares(t *testing.T) {
	p := defaultParams()
	p.Exploration = 0
	cands := []Candidate{{Share: 0.6}, {Share: 0.3}, {Share: 0.1}}
	const n = 100000
	freq := drawFrequencies(t, p, cands, n, 7)
	for i, want := range []float64{0.6, 0.3, 0.1} {
		within(t, "candidate "+string(rune('A'+i)), freq[i], want, n)
	}
	// The propensity of a neutral candidate is its share.
	for i, want := range []float64{0.6, 0.3, 0.1} {
		// u just below the cumulative bound picks candidate i.
		cum := 0.0
		for j := 0; j <= i; j++ {
			cum += cands[j].Share
		}
		ch, _ := Choose(p, cands, cum-1e-9)
		if ch.Index != i || math.Abs(ch.Propensity-want) > 1e-9 {
			t.Errorf("u=%v: got index %d propensity %v, want %d, %v", cum-1e-9, ch.Index, ch.Propensity, i, want)
		}
	}
}

func TestChooseWeights(t *testing.T) {
	tests := []struct {
		name  string
		p     func(*Params)
		cands []Candidate
		want  []float64 // probabilities
	}{
		{
			name:  "exploration mixes in a uniform share",
			p:     func(p *Params) { p.Exploration = 0.3 },
			cands: []Candidate{{Share: 1}, {Share: 0}, {Share: 0}},
			want:  []float64{0.7 + 0.1, 0.1, 0.1},
		},
		{
			name:  "no shares and no exploration: equal",
			p:     func(p *Params) { p.Exploration = 0 },
			cands: []Candidate{{}, {}, {}, {}},
			want:  []float64{0.25, 0.25, 0.25, 0.25},
		},
		{
			name:  "twice the latency, half the weight",
			p:     func(p *Params) { p.Exploration = 0 },
			cands: []Candidate{{Share: 0.5, LatencyMs: 100, Freshness: 1}, {Share: 0.5, LatencyMs: 200, Freshness: 1}},
			want:  []float64{2.0 / 3, 1.0 / 3},
		},
		{
			name:  "a stale estimate fades to neutral",
			p:     func(p *Params) { p.Exploration = 0 },
			cands: []Candidate{{Share: 0.5, LatencyMs: 100, Freshness: 1}, {Share: 0.5, LatencyMs: 200, Freshness: 0}},
			want:  []float64{0.5, 0.5},
		},
		{
			name:  "unknown latency counts as the best",
			p:     func(p *Params) { p.Exploration = 0 },
			cands: []Candidate{{Share: 0.5, LatencyMs: 100, Freshness: 1}, {Share: 0.5}},
			want:  []float64{0.5, 0.5},
		},
		{
			name:  "latency exponent 0 ignores latency",
			p:     func(p *Params) { p.Exploration = 0; p.LatencyExponent = 0 },
			cands: []Candidate{{Share: 0.5, LatencyMs: 100, Freshness: 1}, {Share: 0.5, LatencyMs: 900, Freshness: 1}},
			want:  []float64{0.5, 0.5},
		},
		{
			name:  "in flight at the scale halves the weight",
			p:     func(p *Params) { p.Exploration = 0; p.InFlightScale = 4 },
			cands: []Candidate{{Share: 0.5, InFlight: 4}, {Share: 0.5}},
			want:  []float64{1.0 / 3, 2.0 / 3},
		},
		{
			name:  "a limit is the in-flight scale",
			p:     func(p *Params) { p.Exploration = 0; p.InFlightScale = 100 },
			cands: []Candidate{{Share: 0.5, InFlight: 2, Capacity: 2}, {Share: 0.5}},
			want:  []float64{1.0 / 3, 2.0 / 3},
		},
		{
			name:  "each failure halves the weight",
			p:     func(p *Params) { p.Exploration = 0 },
			cands: []Candidate{{Share: 0.5, Failures: 2}, {Share: 0.5}},
			want:  []float64{0.2, 0.8},
		},
		{
			name:  "ejected candidates are skipped",
			p:     func(p *Params) { p.Exploration = 0 },
			cands: []Candidate{{Share: 0.9, Ejected: true}, {Share: 0.1}},
			want:  []float64{0, 1},
		},
		{
			name:  "all ejected: panic routing among them",
			p:     func(p *Params) { p.Exploration = 0 },
			cands: []Candidate{{Share: 0.75, Ejected: true}, {Share: 0.25, Ejected: true}},
			want:  []float64{0.75, 0.25},
		},
		{
			name:  "garbage in: NaN and negative shares count as 0",
			p:     func(p *Params) { p.Exploration = 0 },
			cands: []Candidate{{Share: math.NaN()}, {Share: -1}, {Share: 1}},
			want:  []float64{0, 0, 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := defaultParams()
			tt.p(&p)
			const n = 40000
			freq := drawFrequencies(t, p, tt.cands, n, 11)
			for i, want := range tt.want {
				within(t, "candidate", freq[i], want, n)
			}
		})
	}
}

func TestChooseScoreAndPanic(t *testing.T) {
	p := defaultParams()
	p.Exploration = 0
	cands := []Candidate{{Share: 1, LatencyMs: 120, Freshness: 0.5, InFlight: 3, Failures: 1, Ejected: true}}
	ch, ok := Choose(p, cands, 0.5)
	if !ok || !ch.Panic || ch.Propensity != 1 {
		t.Fatalf("got %+v, %v; want the only candidate, in panic mode, propensity 1", ch, ok)
	}
	want := event.Score{Share: 1, LatencyMs: 120, InFlight: 3, Penalty: 0.5, Weight: 1 * 1 * (1 / (1 + 3.0/8)) * 0.5}
	if math.Abs(ch.Score.Weight-want.Weight) > 1e-12 || ch.Score.Share != want.Share || ch.Score.LatencyMs != want.LatencyMs ||
		ch.Score.InFlight != want.InFlight || ch.Score.Penalty != want.Penalty {
		t.Fatalf("got score %+v, want %+v", ch.Score, want)
	}
	if _, ok := Choose(p, nil, 0.5); ok {
		t.Fatal("got a choice from no candidates")
	}
}

func TestChooseDeterministic(t *testing.T) {
	cands := make([]Candidate, 50)
	for i := range cands {
		cands[i] = Candidate{Share: float64(i%7) / 100, LatencyMs: float64(50 + i), Freshness: 0.8, InFlight: i % 3}
	}
	run := func() []int {
		rng := rand.New(rand.NewPCG(42, 43))
		out := make([]int, 200)
		for i := range out {
			ch, _ := Choose(defaultParams(), cands, rng.Float64())
			out[i] = ch.Index
		}
		return out
	}
	a, b := run(), run()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("draw %d: got %d then %d, want the same choice for the same seed", i, a[i], b[i])
		}
	}
}

func TestOrchStateEjectionBackoff(t *testing.T) {
	sc := DefaultConfig().Selection
	sc.EjectBase, sc.EjectMax = 10*time.Second, 35*time.Second
	var s orchState
	now := newFakeClock().Now()
	for i := 1; i < sc.EjectAfter; i++ {
		if _, ej := s.failed(now, sc); ej {
			t.Fatalf("ejected after %d failures, want after %d", i, sc.EjectAfter)
		}
	}
	wantLens := []time.Duration{10 * time.Second, 20 * time.Second, 35 * time.Second, 35 * time.Second}
	for i, want := range wantLens {
		until, ej := s.failed(now, sc)
		if !ej || until.Sub(now) != want {
			t.Fatalf("ejection %d: got %v for %v, want ejected for %v", i+1, ej, until.Sub(now), want)
		}
		if e, _ := s.ejected(now.UnixMilli()); !e {
			t.Fatalf("ejection %d: not ejected right after", i+1)
		}
		// A failure during the ejection does not extend it.
		if _, ej := s.failed(now.Add(time.Second), sc); ej {
			t.Fatalf("ejection %d: a failure while ejected ejected again", i+1)
		}
		now = until // the ejection ends: the next failure is the probe failing
		if e, _ := s.ejected(now.UnixMilli()); e {
			t.Fatalf("ejection %d: still ejected at its end", i+1)
		}
	}
	s.succeeded()
	if s.failures.Load() != 0 {
		t.Fatal("success did not reset the failure streak")
	}
	for i := 0; i < sc.EjectAfter-1; i++ {
		s.failed(now, sc)
	}
	if until, ej := s.failed(now, sc); !ej || until.Sub(now) != sc.EjectBase {
		t.Fatalf("after a success: got ejection %v for %v, want a fresh %v", ej, until.Sub(now), sc.EjectBase)
	}
}

func TestPeakEWMA(t *testing.T) {
	tau := 10 * time.Second
	clock := newFakeClock()
	var s orchState
	if _, f := s.latencyView(clock.Now(), time.Minute); f != 0 {
		t.Fatalf("got freshness %v before any sample, want 0", f)
	}
	s.observeLatency(clock.Now(), 100, tau)
	s.observeLatency(clock.Now(), 500, tau) // a peak replaces the estimate at once
	if got, _ := s.latencyView(clock.Now(), time.Minute); got != 500 {
		t.Fatalf("got %v after a peak, want 500", got)
	}
	clock.Advance(tau) // a lower sample one τ later pulls by 1 − 1/e
	s.observeLatency(clock.Now(), 100, tau)
	want := 500*math.Exp(-1) + 100*(1-math.Exp(-1))
	got, fresh := s.latencyView(clock.Now(), time.Minute)
	if math.Abs(got-want) > 1e-9 || fresh != 1 {
		t.Fatalf("got %v (freshness %v), want %v (1)", got, fresh, want)
	}
	clock.Advance(time.Minute)
	if _, fresh := s.latencyView(clock.Now(), time.Minute); math.Abs(fresh-0.5) > 1e-12 {
		t.Fatalf("got freshness %v one stale period later, want 0.5", fresh)
	}
}

func TestRetryBudget(t *testing.T) {
	tests := []struct {
		name     string
		cfg      RetryBudgetConfig
		requests int
		want     int // retries allowed
	}{
		{"20% of requests", RetryBudgetConfig{Ratio: 0.2, Window: 10 * time.Second}, 50, 10},
		{"one request cannot retry on ratio alone", RetryBudgetConfig{Ratio: 0.2, Window: 10 * time.Second}, 1, 0},
		{"minimum per second", RetryBudgetConfig{Ratio: 0.2, MinPerSecond: 1, Window: 10 * time.Second}, 1, 10},
		{"no budget", RetryBudgetConfig{Window: time.Second}, 100, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			b := newRetryBudget(tt.cfg)
			for range tt.requests {
				b.request(clock.Now())
			}
			got := 0
			for b.tryRetry(clock.Now()) {
				got++
				if got > 1000 {
					break
				}
			}
			if got != tt.want {
				t.Fatalf("got %d retries allowed, want %d", got, tt.want)
			}
		})
	}
	t.Run("the window forgets", func(t *testing.T) {
		clock := newFakeClock()
		b := newRetryBudget(RetryBudgetConfig{Ratio: 0.5, Window: 10 * time.Second})
		for range 10 {
			b.request(clock.Now())
		}
		for range 5 {
			if !b.tryRetry(clock.Now()) {
				t.Fatal("retry refused within budget")
			}
		}
		if b.tryRetry(clock.Now()) {
			t.Fatal("retry allowed over budget")
		}
		clock.Advance(11 * time.Second) // requests and retries have aged out
		b.request(clock.Now())
		b.request(clock.Now())
		if !b.tryRetry(clock.Now()) || b.tryRetry(clock.Now()) {
			t.Fatal("want exactly one retry for two fresh requests at ratio 0.5")
		}
	})
}
