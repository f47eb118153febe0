package optimizer

import (
	"math"
	"sync/atomic"
)

// z-scores of the latency quantiles a Stat carries.
const (
	z90 = 1.2815515655446004
	z95 = 1.6448536269514722
	z99 = 2.3263478740408408
)

// lognormal is a latency distribution in seconds: ln L ~ N(mu, sigma²).
type lognormal struct {
	mu, sigma float64
}

func (l lognormal) median() float64 { return math.Exp(l.mu) }

func (l lognormal) mean() float64 { return math.Exp(l.mu + l.sigma*l.sigma/2) }

// cdf is Pr[L ≤ t].
func (l lognormal) cdf(t float64) float64 {
	if t <= 0 {
		return 0
	}
	if l.sigma <= 0 {
		if math.Log(t) >= l.mu {
			return 1
		}
		return 0
	}
	return 0.5 * math.Erfc(-(math.Log(t)-l.mu)/(l.sigma*math.Sqrt2))
}

// fitLognormal fits a lognormal to latency quantiles in ms (0 = unknown):
// mu from the median, sigma by least squares through the median on the
// other quantiles' z-scores. ok is false without a median.
func fitLognormal(p50, p90, p95, p99 float64) (l lognormal, ok bool) {
	if !(p50 > 0) {
		return lognormal{}, false
	}
	l.mu = math.Log(p50 / 1000)
	var num, den float64
	for _, q := range [...]struct{ v, z float64 }{{p90, z90}, {p95, z95}, {p99, z99}} {
		if q.v > 0 {
			num += q.z * math.Log(q.v/p50)
			den += q.z * q.z
		}
	}
	if den > 0 {
		l.sigma = math.Max(num/den, 0)
	} else {
		l.sigma = math.NaN() // unknown: the caller takes the prior's
	}
	return l, true
}

// erlangC is the probability that an arrival waits in an M/M/c queue with
// c servers (c may be fractional, it is rounded up) and offered load a.
func erlangC(c float64, a float64) float64 {
	n := int(math.Ceil(c - 1e-9))
	if n < 1 {
		n = 1
	}
	if a <= 0 {
		return 0
	}
	if a >= float64(n) {
		return 1
	}
	b := 1.0 // Erlang B by the stable recursion
	for k := 1; k <= n; k++ {
		b = a * b / (float64(k) + a*b)
	}
	return float64(n) * b / (float64(n) - a*(1-b))
}

// quadPoints is the resolution of the waiting-time convolution.
const quadPoints = 24

// onTime is Pr[W + S ≤ t] where S is the service time and W the M/M/c
// waiting time at utilisation rho of slots servers with mean service time
// s.mean(). The exponential part of W is integrated through its CDF, so
// the midpoint rule samples it evenly.
func onTime(s lognormal, slots, rho, t float64) float64 {
	if t <= 0 {
		return 0
	}
	if rho <= 0 {
		return s.cdf(t)
	}
	n := math.Max(1, math.Ceil(slots-1e-9))
	pw := erlangC(n, rho*n)
	theta := n * (1 - rho) / s.mean()
	if pw <= 0 {
		return s.cdf(t)
	}
	if theta <= 0 {
		return (1 - pw) * s.cdf(t)
	}
	umax := -math.Expm1(-theta * t)
	sum := 0.0
	for i := 0; i < quadPoints; i++ {
		u := (float64(i) + 0.5) / quadPoints * umax
		w := -math.Log1p(-u) / theta
		sum += s.cdf(t - w)
	}
	return (1-pw)*s.cdf(t) + pw*sum/quadPoints*umax
}

// onTimeGauss is onTime with 12-point Gauss–Legendre quadrature in the
// same variable instead of the 24-point midpoint rule: half the lognormal
// CDFs, and closer to the integral (TestOnTimeGaussAccuracy: against a
// 20,000-node reference its worst error over a grid of latencies, slots,
// SLOs and utilisations is below the midpoint rule's for every σ). The
// curves of problems above exactLPArcs use it; smaller problems keep
// onTime, so their allocations do not move.
// The standard normal CDF is read from nt (normalTable) rather than
// math.Erfc.
func onTimeGauss(s lognormal, slots, rho, t float64, nt *normalTable) float64 {
	if t <= 0 {
		return 0
	}
	if rho <= 0 {
		return nt.lognormalCDF(s, t)
	}
	n := math.Max(1, math.Ceil(slots-1e-9))
	pw := erlangC(n, rho*n)
	theta := n * (1 - rho) / s.mean()
	if pw <= 0 {
		return nt.lognormalCDF(s, t)
	}
	if theta <= 0 {
		return (1 - pw) * nt.lognormalCDF(s, t)
	}
	umax := -math.Expm1(-theta * t)
	nodes := gaussLegendre12()
	sum := 0.0
	for _, nw := range nodes {
		w := -math.Log1p(-nw[0]*umax) / theta
		sum += nw[1] * nt.lognormalCDF(s, t-w)
	}
	return (1-pw)*nt.lognormalCDF(s, t) + pw*sum*umax
}

// normalTable is the standard normal CDF Φ and density φ on a grid of
// z in [−normalZMax, normalZMax], step 1/normalPerUnit, read by cubic
// Hermite interpolation with the exact derivative at the nodes: error
// below 2e-9 (TestNormalTable), a few multiplications where math.Erfc
// took a fifth of a round at scale. Outside the grid Φ is 0 or 1 (Φ(−9)
// is 1e-19). One is built per problem (scaleQuadrature) and shared by its
// curves; it is read-only.
type normalTable struct {
	cdf, pdf []float64
}

const (
	normalZMax    = 9
	normalPerUnit = 32
)

func newNormalTable() *normalTable {
	n := 2*normalZMax*normalPerUnit + 1
	nt := &normalTable{cdf: make([]float64, n), pdf: make([]float64, n)}
	for i := range n {
		z := float64(i)/normalPerUnit - normalZMax
		nt.cdf[i] = 0.5 * math.Erfc(-z/math.Sqrt2)
		nt.pdf[i] = math.Exp(-z*z/2) / math.Sqrt(2*math.Pi)
	}
	return nt
}

// phi is Φ(z).
func (nt *normalTable) phi(z float64) float64 {
	x := (z + normalZMax) * normalPerUnit
	if !(x > 0) {
		return 0
	}
	if x >= float64(len(nt.cdf)-1) {
		return 1
	}
	i := int(x)
	const h = 1.0 / normalPerUnit
	t := x - float64(i)
	t2 := t * t
	t3 := t2 * t
	return (2*t3-3*t2+1)*nt.cdf[i] + (t3-2*t2+t)*h*nt.pdf[i] + (-2*t3+3*t2)*nt.cdf[i+1] + (t3-t2)*h*nt.pdf[i+1]
}

// lognormalCDF is s.cdf(t) read from the table.
func (nt *normalTable) lognormalCDF(s lognormal, t float64) float64 {
	if t <= 0 || s.sigma <= 0 {
		return s.cdf(t)
	}
	return nt.phi((math.Log(t) - s.mu) / s.sigma)
}

// gaussLegendre12 is the 12-point Gauss–Legendre rule on [0, 1]: nodes
// and weights (exact for polynomials of degree ≤ 23; TestGaussLegendre12).
func gaussLegendre12() [12][2]float64 {
	return [12][2]float64{
		{0.0092196828766403782, 0.023587668193255917},
		{0.047941371814762601, 0.053469662997659283},
		{0.11504866290284765, 0.080039164271673166},
		{0.20634102285669126, 0.10158371336153292},
		{0.31608425050090994, 0.11674626826917739},
		{0.43738329574426554, 0.12457352290670144},
		{0.5626167042557344, 0.12457352290670144},
		{0.68391574949909006, 0.11674626826917739},
		{0.79365897714330869, 0.10158371336153292},
		{0.88495133709715235, 0.080039164271673166},
		{0.95205862818523745, 0.053469662997659283},
		{0.99078031712335957, 0.023587668193255917},
	}
}

// gridPoints sample the on-time curve of an arc over utilisation
// [0, gridMax]; between points it is interpolated linearly.
const (
	gridPoints = 19
	gridMax    = 0.99
)

// curve is a sampled on-time probability as a function of utilisation.
// Its grid points are computed when first read (each costs quadPoints
// lognormal CDFs, and an orchestrator's utilisation visits a few of them
// in a round), then kept: a round at scale has a curve per (orchestrator,
// class, region) latency estimate, and computing all gridPoints of each
// up front was a quarter of the round. The value of a point does not
// depend on when it is computed, so the curve is the same function as the
// eager one. The zero curve is 0 everywhere (an arc that is never loaded).
// Curves are read by concurrent previews: points are filled atomically.
type curve struct{ d *curveData }

type curveData struct {
	lat      lognormal
	slots, t float64
	// gauss, when set, computes the points by onTimeGauss with this
	// table instead of onTime; set (problem.scaleQuadrature) before any
	// point is read.
	gauss *normalTable
	// pts holds ^math.Float64bits of each computed point; 0 is "not yet"
	// (^bits is 0 only for an all-ones NaN, which onTime never returns).
	pts [gridPoints]atomic.Uint64
}

func newCurve(s lognormal, slots, t float64, queueing bool) curve {
	d := &curveData{lat: s, slots: slots, t: t}
	if !queueing {
		v := ^math.Float64bits(s.cdf(t))
		for i := range d.pts {
			d.pts[i].Store(v)
		}
	}
	return curve{d}
}

// point is the curve at grid point i.
func (c curve) point(i int) float64 {
	if c.d == nil {
		return 0
	}
	if b := c.d.pts[i].Load(); b != 0 {
		return math.Float64frombits(^b)
	}
	rho := float64(i) * gridMax / (gridPoints - 1)
	var v float64
	if c.d.gauss != nil {
		v = onTimeGauss(c.d.lat, c.d.slots, rho, c.d.t, c.d.gauss)
	} else {
		v = onTime(c.d.lat, c.d.slots, rho, c.d.t)
	}
	c.d.pts[i].Store(^math.Float64bits(v))
	return v
}

// at returns the value and slope of the curve at utilisation rho (clamped
// to the grid). Between points it is a cubic Hermite spline with
// central-difference tangents, so the slope is continuous: Frank–Wolfe
// stalls at the kinks of a piecewise-linear curve.
func (c curve) at(rho float64) (v, slope float64) {
	const h = gridMax / (gridPoints - 1)
	if !(rho > 0) {
		rho = 0
	}
	if rho > gridMax {
		rho = gridMax
	}
	i := int(rho / h)
	if i >= gridPoints-1 {
		i = gridPoints - 2
	}
	t := (rho - float64(i)*h) / h
	c0, c1 := c.point(i), c.point(i+1)
	var m0, m1 float64 // central-difference tangents (one-sided at the ends)
	if i == 0 {
		m0 = (c1 - c0) / h
	} else {
		m0 = (c1 - c.point(i-1)) / (2 * h)
	}
	if i+1 == gridPoints-1 {
		m1 = (c1 - c0) / h
	} else {
		m1 = (c.point(i+2) - c0) / (2 * h)
	}
	t2, t3 := t*t, t*t*t
	v = (2*t3-3*t2+1)*c0 + (t3-2*t2+t)*h*m0 + (-2*t3+3*t2)*c1 + (t3-t2)*h*m1
	slope = ((6*t2-6*t)*c0 + (3*t2-4*t+1)*h*m0 + (-6*t2+6*t)*c1 + (3*t2-2*t)*h*m1) / h
	return math.Min(1, math.Max(0, v)), slope
}
