package optimizer

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"

	"github.com/loopgate/loopgate/event"
)

// FrontierPoint is the prediction for one λ: cost per request (USD), SLO
// attainment (a fraction) and p95 latency (ms). JSON: {"lambda",
// "cost_per_request", "slo_attainment", "p95_ms"}.
type FrontierPoint = event.FrontierPoint

// Frontier is the cost/latency frontier of one round: the prediction for
// every swept λ, on the estimates the round's policy was computed from.
type Frontier struct {
	// Version is the policy the round published; 0 before the first round.
	Version uint64 `json:"version"`
	// Lambda is the knob the round used; Points holds its prediction.
	Lambda float64 `json:"lambda"`
	// Points are sorted by λ, ascending and distinct; never nil.
	Points []FrontierPoint `json:"points"`
	// ComputedMs is when the round ran: Unix ms on the injected clock.
	ComputedMs int64 `json:"computed_ms"`
}

// At returns the point of λ lambda, if the frontier has it.
func (f Frontier) At(lambda float64) (FrontierPoint, bool) {
	for _, pt := range f.Points {
		if math.Abs(pt.Lambda-lambda) <= lambdaEps {
			return pt, true
		}
	}
	return FrontierPoint{}, false
}

// Preview is what a policy at another λ would do, computed on the latest
// round's estimates without publishing anything.
type Preview struct {
	Lambda         float64 `json:"lambda"`
	CostPerRequest float64 `json:"cost_per_request"` // USD
	SLOAttainment  float64 `json:"slo_attainment"`   // fraction in [0, 1]
	P95Ms          float64 `json:"p95_ms"`
	// Current is the prediction for the published policy's λ.
	Current FrontierPoint `json:"current"`
	// Moves are the shares that would change by more than
	// Frontier.MoveThreshold, sorted by class, region and orchestrator;
	// never nil.
	Moves []Move `json:"moves"`
}

// Move is one orchestrator's share of one (class, client region) that a
// preview would change.
type Move struct {
	Capability   string  `json:"capability"`
	Model        string  `json:"model"`
	ClientRegion string  `json:"client_region"`
	Orchestrator string  `json:"orchestrator"`
	From         float64 `json:"from"` // the published share
	To           float64 `json:"to"`   // the share at the previewed λ
}

// ErrNoRound is returned by Preview before the optimizer has published a
// policy: there are no estimates to preview on.
var ErrNoRound = errors.New("optimizer: no round has published a policy yet")

// lambdaEps is how close two λ are to be the same point.
const lambdaEps = 1e-9

// sweep is what a round leaves for the frontier and previews. It is
// immutable once stored: previews re-weigh copies of its problem.
type sweep struct {
	pr       *planner
	cur      solution
	frontier Frontier
	// The sweep's own solves, by λ (the current λ's is cur on pr.p), so a
	// preview at a swept λ is the frontier's point and its neighbours warm
	// start the others.
	lambdas []float64
	probs   []*problem
	sols    []solution
}

// Frontier returns the latest round's frontier (the empty one, version 0,
// before the first round).
func (o *Optimizer) Frontier() Frontier {
	if sw := o.sweep.Load(); sw != nil {
		f := sw.frontier
		f.Points = slices.Clone(f.Points)
		return f
	}
	return Frontier{Points: []FrontierPoint{}}
}

// Preview predicts what a policy at λ lambda would do on the latest
// round's estimates, and which shares would move; it publishes nothing.
// It fails with ErrNoRound before the first policy, and for λ outside
// [0, 1].
func (o *Optimizer) Preview(lambda float64) (Preview, error) {
	if !inUnit(lambda) {
		return Preview{}, fmt.Errorf("lambda %v: want in [0, 1]", lambda)
	}
	sw := o.sweep.Load()
	if sw == nil {
		return Preview{}, ErrNoRound
	}
	return sw.preview(lambda), nil
}

// sweepLambdas are the λ a round predicts for: 0, Points log-spaced values
// from MinLambda to 1, and current; sorted and distinct.
func sweepLambdas(cfg *FrontierConfig, current float64) []float64 {
	out := []float64{current}
	if cfg.Points > 0 {
		out = append(out, 0)
		for i := range cfg.Points {
			t := 1.0
			if cfg.Points > 1 {
				t = float64(i) / float64(cfg.Points-1)
			}
			// Rounded so the points read well in JSON and on a chart.
			out = append(out, math.Round(math.Pow(cfg.MinLambda, 1-t)*1e4)/1e4)
		}
	}
	sort.Float64s(out)
	return slices.CompactFunc(out, func(a, b float64) bool { return math.Abs(a-b) <= lambdaEps })
}

// newSweep computes the round's frontier: the published solution gives
// the current λ's point; every other λ re-weighs a copy of the same
// problem and solves it, warm-started from its neighbour's allocation
// (the feasible set does not depend on λ), outward from the current λ.
func newSweep(pr *planner, lambda float64, version uint64, computedMs int64) *sweep {
	sw := &sweep{pr: pr, cur: pr.sol}
	fcfg := &pr.cfg.Frontier
	lambdas := sweepLambdas(fcfg, lambda)
	points := make([]FrontierPoint, len(lambdas))
	c := slices.IndexFunc(lambdas, func(l float64) bool { return math.Abs(l-lambda) <= lambdaEps })
	points[c] = pr.predict(pr.p, &sw.cur, lambda)
	sw.lambdas, sw.probs, sw.sols = lambdas, make([]*problem, len(lambdas)), make([]solution, len(lambdas))
	sw.probs[c], sw.sols[c] = pr.p, sw.cur
	for _, dir := range [...]int{1, -1} {
		prev := &sw.cur
		for i := c + dir; i >= 0 && i < len(lambdas); i += dir {
			p, sol := pr.solveAt(lambdas[i], prev.active, fcfg.MaxIterations, true)
			points[i] = pr.predict(p, &sol, lambdas[i])
			sw.probs[i], sw.sols[i] = p, sol
			prev = &sw.sols[i]
		}
	}
	// A point that is not a number must not keep the policy from
	// validating; no demand predicts nothing.
	points = slices.DeleteFunc(points, func(pt FrontierPoint) bool {
		return !pr.hasDemand() || !(pt.CostPerRequest >= 0 && pt.SLOAttainment >= 0 && pt.P95Ms >= 0) ||
			math.IsInf(pt.CostPerRequest, 0) || math.IsInf(pt.P95Ms, 0)
	})
	sw.frontier = Frontier{Version: version, Lambda: lambda, Points: points, ComputedMs: computedMs}
	return sw
}

// hasDemand reports whether any row has demand to predict for.
func (pr *planner) hasDemand() bool {
	for k, rm := range pr.rows {
		if !rm.pseudo && pr.p.rows[k].demand > 0 && len(pr.p.rows[k].arcs) > 0 {
			return true
		}
	}
	return false
}

// preview predicts at lambda the way the sweep does (the same solve, so a
// previewed point lies on the frontier) and lists the shares that would
// move from the published allocation.
func (sw *sweep) preview(lambda float64) Preview {
	pr := sw.pr
	cur, _ := sw.frontier.At(sw.frontier.Lambda)
	// The swept λ nearest lambda: at a swept λ its solve is the answer, so
	// the preview is the frontier's point; between two, it warm starts the
	// solve, as the sweep does.
	near := 0
	for i, l := range sw.lambdas {
		if math.Abs(l-lambda) < math.Abs(sw.lambdas[near]-lambda) {
			near = i
		}
	}
	var p *problem
	var sol *solution
	if len(sw.lambdas) == 0 {
		q, s := pr.solveAt(lambda, sw.cur.active, pr.cfg.Frontier.MaxIterations, true)
		p, sol = q, &s
	} else if math.Abs(sw.lambdas[near]-lambda) <= lambdaEps {
		p, sol = sw.probs[near], &sw.sols[near]
	} else {
		q, s := pr.solveAt(lambda, sw.sols[near].active, pr.cfg.Frontier.MaxIterations, true)
		p, sol = q, &s
	}
	pt := pr.predict(p, sol, lambda)
	out := Preview{Lambda: lambda, CostPerRequest: pt.CostPerRequest, SLOAttainment: pt.SLOAttainment, P95Ms: pt.P95Ms, Current: cur, Moves: []Move{}}
	thr := pr.cfg.Frontier.MoveThreshold
	for k, rm := range pr.rows {
		if rm.pseudo || len(p.rows[k].arcs) == 0 {
			continue
		}
		from := roundShares(pr.p.shares(&sw.cur, k))
		to := roundShares(p.shares(sol, k))
		c := &pr.r.classes[rm.class]
		for i, a := range p.rows[k].arcs {
			if math.Abs(to[i]-from[i]) > thr {
				out.Moves = append(out.Moves, Move{
					Capability: c.key.capability, Model: c.key.model, ClientRegion: rm.region,
					Orchestrator: pr.r.orchs[p.arcs[a].orch].cfg.ID, From: from[i], To: to[i],
				})
			}
		}
	}
	slices.SortStableFunc(out.Moves, func(a, b Move) int {
		return cmp.Or(cmp.Compare(a.Capability, b.Capability), cmp.Compare(a.Model, b.Model),
			cmp.Compare(a.ClientRegion, b.ClientRegion), cmp.Compare(a.Orchestrator, b.Orchestrator))
	})
	return out
}

// solveAt solves a copy of the round's problem re-weighed at lambda,
// starting from the vertices start, in at most maxIter iterations. The
// round's problem is only read, so previews may run concurrently.
func (pr *planner) solveAt(lambda float64, start []vertex, maxIter int, greedy bool) (*problem, solution) {
	src := pr.p
	p := &problem{rows: slices.Clone(src.rows), arcs: slices.Clone(src.arcs), orchs: make([]porch, len(src.orchs)), maxIter: maxIter, tol: src.tol, greedyLMO: greedy}
	for i, o := range src.orchs {
		p.orchs[i] = porch{slots: o.slots, capacity: o.capacity}
	}
	pr.weigh(p, lambda)
	return p, p.solveFrom(start)
}

// predict is the prediction model of the package doc for the allocation
// sol of p: cost per request, SLO attainment and p95 latency over the
// rows with demand, weighted by demand.
func (pr *planner) predict(p *problem, sol *solution, lambda float64) FrontierPoint {
	pt := FrontierPoint{Lambda: lambda}
	var demand, cost, met float64
	var mix []mixComponent
	for k, rm := range pr.rows {
		row := &p.rows[k]
		if rm.pseudo || !(row.demand > 0) || len(row.arcs) == 0 {
			continue
		}
		shares := p.shares(sol, k)
		if pr.bend != nil {
			sum := 0.0
			for i, a := range row.arcs {
				shares[i] *= pr.bend[a]
				sum += shares[i]
			}
			if sum > 0 {
				for i := range shares {
					shares[i] /= sum
				}
			}
		}
		var billed, success, onTime, fastFail float64
		for i, a := range row.arcs {
			s := shares[i]
			if !(s > 0) {
				continue
			}
			arc, est := &p.arcs[a], &pr.est[a]
			rho := 0.0
			if pr.cfg.Solver.Queueing {
				rho = sol.rho[arc.orch]
			}
			t, _ := arc.t.at(rho)
			billed += s * pr.billed[a] * est.cost
			success += s * est.p
			onTime += s * est.p * t
			// Slow failures are billed, fast ones (errors, busy, refused)
			// are not: what is billed beyond the successes tells them apart.
			slow := 0.0
			if est.p < 1 {
				slow = math.Min(1, math.Max(0, (pr.billed[a]-est.p)/(1-est.p)))
			}
			fastFail += s * (1 - est.p) * (1 - slow)
			mix = append(mix, mixComponent{weight: row.demand * s * est.p, lat: withWaiting(est.lat, est.slots, rho)})
		}
		// A failed first attempt is retried once on the same mixture; a
		// retry after a fast failure has (nearly) the whole SLO left.
		cost += row.demand * billed * (2 - math.Min(1, success))
		met += row.demand * math.Min(1, onTime*(1+fastFail))
		demand += row.demand
	}
	if demand > 0 {
		pt.CostPerRequest = cost / demand
		pt.SLOAttainment = math.Min(1, met/demand)
		pt.P95Ms = math.Round(mixtureQuantile(mix, 0.95)*1e4) / 10 // 0.1 ms
	}
	return pt
}

// billedFraction estimates the fraction of an (orchestrator, class)'s
// attempts that are billed (those that started service: successes, slow
// failures, lost hedges): the window's billed attempts shrunk with weight
// w toward p (successes billed, failures not). A source that reports no
// billed attempts although some succeeded does not report them at all:
// then it is p.
func billedFraction(o *obs, p, w float64) float64 {
	if o.attempts <= 0 || o.billed <= 0 && o.succ > 0 {
		return p
	}
	return math.Min(1, (o.billed+p*w)/(o.attempts+w))
}

// mixComponent is one arc's share of the successful requests' latency.
type mixComponent struct {
	weight float64
	lat    lognormal
}

// withWaiting is the lognormal with the mean and variance of W + S: S the
// service latency, W the M/M/c wait at utilisation rho (moment-matched,
// so the p95 costs one CDF per arc and step of the search).
func withWaiting(s lognormal, slots, rho float64) lognormal {
	if !(rho > 0) {
		return s
	}
	rho = math.Min(rho, gridMax)
	n := math.Max(1, math.Ceil(slots-1e-9))
	pw := erlangC(n, rho*n)
	ms := s.mean()
	vs := math.Expm1(s.sigma*s.sigma) * ms * ms
	theta := n * (1 - rho) / ms
	mw := pw / theta
	vw := 2*pw/(theta*theta) - mw*mw
	m, v := ms+mw, vs+vw
	sigma2 := math.Log1p(v / (m * m))
	return lognormal{mu: math.Log(m) - sigma2/2, sigma: math.Sqrt(sigma2)}
}

// mixtureQuantile is the q-quantile, in seconds, of the weighted mixture
// of lognormals, by bisection on log t; 0 for an empty mixture.
func mixtureQuantile(mix []mixComponent, q float64) float64 {
	total := 0.0
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, c := range mix {
		total += c.weight
		lo = math.Min(lo, c.lat.mu-8*c.lat.sigma)
		hi = math.Max(hi, c.lat.mu+8*c.lat.sigma)
	}
	if !(total > 0) || math.IsInf(lo, 0) || math.IsInf(hi, 0) {
		return 0
	}
	// 32 halvings of a bracket of at most ~30 in log t: 1e-8 relative.
	for range 32 {
		mid := (lo + hi) / 2
		f := 0.0
		for _, c := range mix {
			if c.lat.sigma > 0 {
				f += c.weight * 0.5 * math.Erfc(-(mid-c.lat.mu)/(c.lat.sigma*math.Sqrt2))
			} else if mid >= c.lat.mu {
				f += c.weight
			}
		}
		if f/total < q {
			lo = mid
		} else {
			hi = mid
		}
	}
	return math.Exp((lo + hi) / 2)
}
