package oracle

import (
	"math"
	"time"
)

// lognormal is a service time distribution in seconds.
type lognormal struct {
	p50, sigma float64
}

func (l lognormal) mean() float64 { return l.p50 * math.Exp(l.sigma*l.sigma/2) }

// cdf is Pr[S ≤ t].
func (l lognormal) cdf(t float64) float64 {
	if t <= 0 {
		return 0
	}
	if l.sigma == 0 {
		if t >= l.p50 {
			return 1
		}
		return 0
	}
	return 0.5 * math.Erfc(-(math.Log(t/l.p50))/(l.sigma*math.Sqrt2))
}

// erlangC is the probability that an arrival waits in an M/M/c queue with
// offered load a = λ·E[S] (a < c).
func erlangC(c int, a float64) float64 {
	if a <= 0 {
		return 0
	}
	if a >= float64(c) {
		return 1
	}
	b := 1.0
	for k := 1; k <= c; k++ {
		b = a * b / (float64(k) + a*b)
	}
	return float64(c) * b / (float64(c) - a*(1-b))
}

// quadrature points for the wait convolution.
const quadPoints = 64

// onTime is Pr[W + S ≤ t] where W is the M/M/c waiting time at utilisation
// rho of servers servers whose mean service time is s.mean() (rho 0: no
// wait). The exponential part is integrated by substituting its CDF, so the
// midpoint rule samples it evenly.
func onTime(s lognormal, servers int, rho, t float64) float64 {
	if t <= 0 {
		return 0
	}
	if rho <= 0 {
		return s.cdf(t)
	}
	pw := erlangC(servers, rho*float64(servers))
	theta := float64(servers) * (1 - rho) / s.mean()
	if theta <= 0 {
		return (1 - pw) * s.cdf(t)
	}
	// ∫_0^t θe^{−θw} F(t−w) dw = ∫_0^{U} F(t − w(u)) du, w(u) = −ln(1−u)/θ.
	umax := 1 - math.Exp(-theta*t)
	sum := 0.0
	for i := 0; i < quadPoints; i++ {
		u := (float64(i) + 0.5) / quadPoints * umax
		w := -math.Log1p(-u) / theta
		sum += s.cdf(t - w)
	}
	waited := sum / quadPoints * umax
	return (1-pw)*s.cdf(t) + pw*waited
}

// missProb is P(ρ): the probability that a request misses its SLO at an
// orchestrator run at utilisation rho.
func missProb(s lognormal, servers int, rho, fail float64, rtt, slo time.Duration) float64 {
	t := (slo - rtt).Seconds()
	return 1 - (1-fail)*onTime(s, servers, rho, t)
}
