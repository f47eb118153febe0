package router

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
)

// TestAliasTableExact checks, for random distributions, that the alias
// table's implied probability of every index is the one it was built for.
func TestAliasTableExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, k := range []int{1, 2, 3, 7, 64, 157} {
		t.Run(fmt.Sprint(k), func(t *testing.T) {
			p := make([]float64, k)
			sum := 0.0
			for i := range p {
				p[i] = rng.ExpFloat64()
				if i%5 == 0 {
					p[i] = 0 // zero-probability entries must never be drawn
				}
				sum += p[i]
			}
			if sum == 0 {
				p[0], sum = 1, 1
			}
			for i := range p {
				p[i] /= sum
			}
			a := newAliasTable(p)
			got := make([]float64, k)
			for i := range k {
				got[i] += a.cut[i] / float64(k)
				got[a.alias[i]] += (1 - a.cut[i]) / float64(k)
			}
			for i := range k {
				if math.Abs(got[i]-p[i]) > 1e-12 {
					t.Errorf("index %d: got probability %v, want %v", i, got[i], p[i])
				}
			}
		})
	}
}

// largeClassRouter is a router over n orchestrators in one class, with a
// policy giving each a random share and live latency and load on each.
func largeClassRouter(t testing.TB, n int, seed uint64) (*Router, *snapshot, *classTable) {
	t.Helper()
	cfg := DefaultConfig()
	rng := rand.New(rand.NewPCG(seed, 1))
	var shares []event.Share
	for i := range n {
		id := fmt.Sprintf("o%05d", i)
		cfg.Orchestrators = append(cfg.Orchestrators, OrchestratorConfig{
			ID: id, URL: "http://" + id + ".invalid", MaxInFlight: 64,
			Classes: []ClassPrice{{Capability: event.CapTextToImage, Model: "m", PricePerUnit: 1e-9}},
		})
		if i%3 != 0 { // a third get no share: only exploration reaches them
			shares = append(shares, event.Share{Orchestrator: id, Share: rng.Float64()})
		}
	}
	sum := 0.0
	for _, sh := range shares {
		sum += sh.Share
	}
	for i := range shares {
		shares[i].Share /= sum
	}
	clock := newFakeClock()
	r, err := New(cfg, &fakePublisher{}, deps.Deps{Rand: rand.New(rand.NewPCG(seed, 2)), Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.SetPolicy(sharesPolicy(1, event.ClassPolicy{Capability: event.CapTextToImage, Model: "m", Shares: shares})); err != nil {
		t.Fatal(err)
	}
	s := r.snap.Load()
	for i, o := range s.orchs {
		o.state.observeLatency(clock.Now(), float64(100+rng.IntN(400)), time.Second)
		o.state.inFlight.Store(int64(i % 7))
	}
	return r, s, s.classes[classKey{event.CapTextToImage, "m"}]
}

// TestTwoStagePropensity checks the two-stage draw of a large class: the
// logged propensity is P(g)·P(i | g) computed independently from the
// policy and the one-stage rule on the group, and the draw's frequencies
// match the logged propensities.
func TestTwoStagePropensity(t *testing.T) {
	const n = 300 // above groupThreshold: 5 groups, the last one short
	r, s, tab := largeClassRouter(t, n, 7)
	if tab.groups("") == nil {
		t.Fatalf("a class of %d members has no group stage", n)
	}
	eps := s.cfg.Selection.Exploration
	shares := tab.shares("")
	var mass [5]float64
	total := 0.0
	for i := range n {
		b := eps/float64(n) + (1-eps)*shares[i]
		mass[i/groupSize] += b
		total += b
	}
	// Independent expectation: P(g) · weight_i / Σ weights of g's candidates.
	now := r.now()
	want := make([]float64, n)
	params := s.cfg.Selection.Params()
	for g := range mass {
		lo, hi := groupBounds(g, n)
		var cands []Candidate
		for i := lo; i < hi; i++ {
			m := tab.members[i]
			c, ok := m.st.candidateOf(now, s.cfg.Selection.LatencyStale, shares[i], int(m.st.inFlight.Load()), m.limit, m.policyEjectUntilMs)
			if !ok {
				t.Fatalf("member %d is not a candidate", i)
			}
			cands = append(cands, c)
		}
		var ws []float64
		sum := 0.0
		var ps poolStats
		for k := range cands {
			ps.add(&cands[k])
		}
		w := newWeigher(params, ps)
		for j := range cands {
			ws = append(ws, w.weight(&cands[j]))
			sum += ws[j]
		}
		for j := range ws {
			want[lo+j] = mass[g] / total * ws[j] / sum
		}
	}
	counts := make([]int, n)
	const draws = 200000
	for k := range draws {
		p, _, ok := r.choose(s, tab, "", nil)
		if !ok {
			t.Fatal("no choice")
		}
		p.m.o.state.release()
		i := indexOf(tab, p.m.o)
		counts[i]++
		if k < 2000 && math.Abs(p.choice.Propensity-want[i]) > 1e-12*math.Max(1, want[i]) {
			t.Fatalf("member %d: logged propensity %v, want P(g)·P(i|g) = %v", i, p.choice.Propensity, want[i])
		}
	}
	// Frequencies: within 5 standard deviations of the logged probability.
	for i, c := range counts {
		p := want[i]
		sd := math.Sqrt(draws * p * (1 - p))
		if math.Abs(float64(c)-draws*p) > 5*sd+3 {
			t.Errorf("member %d: drawn %d times, want about %.0f (p = %.5f)", i, c, draws*p, p)
		}
	}
}

func indexOf(t *classTable, o *orchEntry) int {
	for i, m := range t.members {
		if m.o == o {
			return i
		}
	}
	return -1
}

// TestTwoStageFallback: when every member of the drawn group is tried, the
// decision falls back to the whole class and still finds a member.
func TestTwoStageFallback(t *testing.T) {
	r, s, tab := largeClassRouter(t, 300, 9)
	var skip []*orchEntry
	for i := range 4 * groupSize { // the first four groups are all tried
		skip = append(skip, tab.members[i].o)
	}
	for range 200 {
		p, _, ok := r.choose(s, tab, "", skip)
		if !ok {
			t.Fatal("no choice with the last group free")
		}
		p.m.o.state.release()
		if i := indexOf(tab, p.m.o); i < 4*groupSize {
			t.Fatalf("chose tried member %d", i)
		}
	}
}

// TestSmallClassOneStage: classes up to groupThreshold members keep the
// one-stage rule (no group stage is built).
func TestSmallClassOneStage(t *testing.T) {
	_, _, tab := largeClassRouter(t, groupThreshold, 1)
	if tab.groups("") != nil {
		t.Fatalf("a class of %d members got a group stage", groupThreshold)
	}
}
