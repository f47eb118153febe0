package router

import (
	"math"
	"sort"

	"github.com/loopgate/loopgate/event"
)

// Params are the knobs of Choose. SelectionConfig.Params derives them.
type Params struct {
	Exploration     float64 // ε in [0, 1]
	LatencyExponent float64 // β ≥ 0
	InFlightScale   float64 // > 0
	FailurePenalty  float64 // in (0, 1]
	// MaxPenaltyFailures caps the failures the penalty counts.
	MaxPenaltyFailures int
}

// Params returns the selector parameters of c.
func (c SelectionConfig) Params() Params {
	return Params{
		Exploration: c.Exploration, LatencyExponent: c.LatencyExponent, InFlightScale: c.InFlightScale,
		FailurePenalty: c.FailurePenalty, MaxPenaltyFailures: c.EjectAfter,
	}
}

// Candidate is one orchestrator as the selector sees it at decision time.
// The caller has already removed orchestrators that must not be chosen:
// those tried by this request, those the policy ejects, those at their
// in-flight limit.
type Candidate struct {
	// Share is the policy's traffic share for the class and client region
	// (0 if the policy gives it none). Without a policy: 1/n for each.
	Share float64
	// LatencyMs is the peak-EWMA latency estimate; ignored when Freshness is 0.
	LatencyMs float64
	// Freshness in [0, 1] is the confidence in LatencyMs; 0 = never observed.
	Freshness float64
	InFlight  int
	// Capacity is the in-flight limit, 0 = none.
	Capacity int
	// Failures is the count of consecutive failures.
	Failures int
	// Ejected marks a locally ejected orchestrator. It is chosen only when
	// every candidate is ejected ("panic" routing: better a probably-bad
	// orchestrator than a certain 503).
	Ejected bool

	cum float64 // Choose's scratch: running sum of weights
}

// Choice is the outcome of Choose.
type Choice struct {
	Index      int         // into the candidates
	Propensity float64     // probability this candidate was drawn: weight / Σ weights
	Score      event.Score // what the draw saw for the chosen candidate
	Panic      bool        // drawn among ejected candidates because nothing else was left
}

// Choose draws one candidate with probability proportional to its weight:
//
//	pool     = non-ejected candidates, or all of them if none is non-ejected
//	base_i   = (1−ε)·share_i + ε/|pool|
//	lat_i    = f_i·(L_best/L_i)^β + (1−f_i)     L_best = min L over pool with f > 0
//	load_i   = 1 / (1 + inflight_i/scale_i)      scale_i = capacity_i, else InFlightScale
//	pen_i    = FailurePenalty^min(failures_i, MaxPenaltyFailures)
//	weight_i = base_i · lat_i · load_i · pen_i
//	P(i)     = weight_i / Σ_pool weight_j
//
// If every base is 0 (shares all 0 and ε = 0) the shares are replaced by
// equal ones. u must be uniform in [0, 1); the caller draws it from its
// seeded source, so the choice is a pure function of (p, cands, u).
//
// Choose reads cands twice and finds the draw by binary search; it
// allocates nothing, keeping its running sums in the candidates' unexported
// scratch field, so cands must not be shared by concurrent calls. It
// returns false when cands is empty.
func Choose(p Params, cands []Candidate, u float64) (Choice, bool) {
	if len(cands) == 0 {
		return Choice{}, false
	}
	// One pass gathers what the weights need for both possible pools.
	var all, live poolStats
	for i := range cands {
		c := &cands[i]
		all.add(c)
		if !c.Ejected {
			live.add(c)
		}
	}
	panicMode := live.n == 0
	st := live
	if panicMode {
		st = all
	}
	w := newWeigher(p, st)
	total := 0.0
	for i := range cands {
		c := &cands[i]
		if panicMode || !c.Ejected {
			total += w.weight(c)
		}
		c.cum = total
	}
	if !(total > 0) || total > math.MaxFloat64 {
		// Every weight underflowed or is degenerate: equal weights.
		w = weigher{base: 1 / float64(st.n), equal: true, flat: true}
		total = 0
		for i := range cands {
			c := &cands[i]
			if panicMode || !c.Ejected {
				total += w.base
			}
			c.cum = total
		}
	}
	// The first candidate whose running sum exceeds u·total; candidates
	// outside the pool add nothing to the sum, so they are never found.
	target := u * total
	i := sort.Search(len(cands), func(i int) bool { return cands[i].cum > target })
	if i == len(cands) {
		// Rounding left target at total: take the last candidate with weight.
		for i = len(cands) - 1; i > 0 && cands[i].cum == cands[i-1].cum; i-- {
		}
	}
	c := &cands[i]
	s := w.score(c)
	prop := s.Weight / total
	if prop > 1 {
		prop = 1
	}
	return Choice{Index: i, Propensity: prop, Score: s, Panic: panicMode}, true
}

// poolStats are the pool-wide inputs of the weights.
type poolStats struct {
	n        int
	best     float64 // smallest fresh latency; 0 = none
	shareSum float64
}

func (ps *poolStats) add(c *Candidate) {
	ps.n++
	if c.Freshness > 0 && c.LatencyMs > 0 && (ps.best == 0 || c.LatencyMs < ps.best) {
		ps.best = c.LatencyMs
	}
	if c.Share > 0 && c.Share <= math.MaxFloat64 {
		ps.shareSum += c.Share
	}
}

// weigher computes the weight formula of Choose for one candidate.
type weigher struct {
	keep  float64 // 1 − ε
	base  float64 // ε/n, or 1/n with equal shares
	equal bool    // shares replaced by 1/n
	flat  bool    // every local signal ignored
	best  float64 // L_best; 0 = no latency signal
	beta  float64
	scale float64
	pen   float64
	maxF  int
}

func newWeigher(p Params, st poolStats) weigher {
	n := float64(st.n)
	w := weigher{
		keep: 1 - p.Exploration, base: p.Exploration / n, best: st.best, beta: p.LatencyExponent,
		scale: p.InFlightScale, pen: p.FailurePenalty, maxF: p.MaxPenaltyFailures,
	}
	if st.shareSum == 0 && p.Exploration == 0 {
		w.equal, w.base = true, 1/n
	}
	if !(w.beta > 0) {
		w.best = 0
	}
	return w
}

// weight is the hot path of Choose; score repeats it with its parts named.
func (w *weigher) weight(c *Candidate) float64 {
	base := w.base
	if !w.equal && c.Share > 0 && c.Share <= math.MaxFloat64 {
		base += w.keep * c.Share
	}
	if w.flat {
		return base
	}
	wt := base
	if w.best > 0 && c.LatencyMs > 0 && c.Freshness > 0 && c.LatencyMs <= math.MaxFloat64 {
		f := c.Freshness
		if f > 1 {
			f = 1
		}
		ratio := w.best / c.LatencyMs
		if w.beta != 1 {
			ratio = math.Pow(ratio, w.beta)
		}
		wt *= f*ratio + (1 - f)
	}
	if c.InFlight > 0 {
		scale := w.scale
		if c.Capacity > 0 {
			scale = float64(c.Capacity)
		}
		wt /= 1 + float64(c.InFlight)/scale
	}
	if c.Failures > 0 && w.pen < 1 {
		wt *= penalty(w.pen, min(c.Failures, w.maxF))
	}
	if !(wt > 0) {
		return 0
	}
	return wt
}

func (w *weigher) score(c *Candidate) event.Score {
	s := event.Score{InFlight: c.InFlight, Penalty: 1, Weight: w.weight(c)}
	if c.Share > 0 && c.Share <= math.MaxFloat64 {
		s.Share = c.Share
	}
	if c.Freshness > 0 && c.LatencyMs > 0 && c.LatencyMs <= math.MaxFloat64 {
		s.LatencyMs = c.LatencyMs
	}
	if c.Failures > 0 && w.pen < 1 && !w.flat {
		s.Penalty = penalty(w.pen, min(c.Failures, w.maxF))
	}
	return s
}

// penalty is pen^k for a small k, without math.Pow.
func penalty(pen float64, k int) float64 {
	out := 1.0
	for range k {
		out *= pen
	}
	return out
}
