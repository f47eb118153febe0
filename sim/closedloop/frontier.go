package closedloop

import (
	"math"
	"sort"
	"time"

	"github.com/loopgate/loopgate/optimizer"
	"github.com/loopgate/loopgate/sim"
	"github.com/loopgate/loopgate/sim/scenario"
)

// SteadyMargin is how far from every timeline event the steady phase
// stays: the loop needs about a window (60 s) to see a change and act.
const SteadyMargin = 60 * time.Second

// Prediction is what one optimizer round predicted for its own λ (the
// point of its frontier at the λ it published), at virtual time At.
type Prediction struct {
	At    time.Duration
	Point optimizer.FrontierPoint
}

// Predictions returns every round's prediction so far, in round order.
func (p *Policy) Predictions() []Prediction { return p.predictions }

// record keeps the round's prediction for its own λ.
func (p *Policy) record(now time.Duration) {
	f := p.opt.Frontier()
	if pt, ok := f.At(f.Lambda); ok {
		p.predictions = append(p.predictions, Prediction{At: now, Point: pt})
	}
}

// Interval is a half-open span [From, To) of virtual time.
type Interval struct{ From, To time.Duration }

// SteadyPhase is the part of sc's run that is steady: after the warmup,
// before the end of arrivals, and farther than margin from every timeline
// event. It may be empty.
func SteadyPhase(sc *scenario.Scenario, margin time.Duration) []Interval {
	out := []Interval{{sc.Warmup, sc.Duration}}
	for _, ch := range sc.Timeline {
		lo, hi := ch.At-margin, ch.At+margin
		var next []Interval
		for _, iv := range out {
			if iv.From < lo {
				next = append(next, Interval{iv.From, min(iv.To, lo)})
			}
			if iv.To > hi {
				next = append(next, Interval{max(iv.From, hi), iv.To})
			}
		}
		out = next
	}
	return out
}

func inPhase(phase []Interval, t time.Duration) bool {
	for _, iv := range phase {
		if t >= iv.From && t < iv.To {
			return true
		}
	}
	return false
}

// FrontierCheck compares, for one run at a fixed λ, the optimizer's
// prediction with what the simulator measured over the steady phase.
type FrontierCheck struct {
	Lambda    float64                 `json:"lambda"`
	Steps     int                     `json:"steps"`    // optimizer rounds in the steady phase
	Requests  int                     `json:"requests"` // requests arriving in the steady phase
	Predicted optimizer.FrontierPoint `json:"predicted"`
	Measured  optimizer.FrontierPoint `json:"measured"`
}

// CostError is (predicted − measured) / measured cost per request.
func (c FrontierCheck) CostError() float64 {
	return (c.Predicted.CostPerRequest - c.Measured.CostPerRequest) / c.Measured.CostPerRequest
}

// SLOErrorPoints is predicted − measured SLO attainment, in points.
func (c FrontierCheck) SLOErrorPoints() float64 {
	return 100 * (c.Predicted.SLOAttainment - c.Measured.SLOAttainment)
}

// CheckFrontier compares preds, the rounds' predictions of a run at λ
// lambda, with res over phase: predicted is the mean of the rounds run in
// the phase; measured is the requests arriving in it — billed cost per
// request, the fraction that succeeded within their class's SLO, and the
// nearest-rank p95 of successful requests' latency, as the bench report
// computes them.
func CheckFrontier(sc *scenario.Scenario, res *sim.Result, preds []Prediction, lambda float64, phase []Interval) FrontierCheck {
	c := FrontierCheck{Lambda: lambda, Predicted: optimizer.FrontierPoint{Lambda: lambda}, Measured: optimizer.FrontierPoint{Lambda: lambda}}
	for _, pr := range preds {
		if inPhase(phase, pr.At) {
			c.Steps++
			c.Predicted.CostPerRequest += pr.Point.CostPerRequest
			c.Predicted.SLOAttainment += pr.Point.SLOAttainment
			c.Predicted.P95Ms += pr.Point.P95Ms
		}
	}
	if c.Steps > 0 {
		n := float64(c.Steps)
		c.Predicted.CostPerRequest /= n
		c.Predicted.SLOAttainment /= n
		c.Predicted.P95Ms /= n
	}
	var billed float64
	var met int
	var lat []float64
	for i := range res.Requests {
		r := &res.Requests[i]
		if !inPhase(phase, r.Arrival) {
			continue
		}
		c.Requests++
		billed += r.Cost
		if r.SLOMet(sc) {
			met++
		}
		if r.Success {
			lat = append(lat, float64(r.Latency)/float64(time.Millisecond))
		}
	}
	if c.Requests > 0 {
		c.Measured.CostPerRequest = billed / float64(c.Requests)
		c.Measured.SLOAttainment = float64(met) / float64(c.Requests)
	}
	if len(lat) > 0 {
		sort.Float64s(lat)
		i := int(math.Ceil(0.95*float64(len(lat)))) - 1
		c.Measured.P95Ms = lat[max(0, i)]
	}
	return c
}
