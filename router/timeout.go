package router

import (
	"errors"
	"fmt"
	"math"
	"time"

	"gonum.org/v1/gonum/stat/distuv"
)

// TimeoutConfig sets the per-attempt timeout derived from the latency an
// orchestrator has shown for a class (LatencyDist): an attempt that has not
// answered by Margin × its Quantile is abandoned and retried elsewhere,
// long before the client's own timeout. A hung orchestrator — one that
// accepts and never answers, so no error and no 503 gives it away — is
// revealed by such timeouts only, each counting as a failure towards
// ejection.
type TimeoutConfig struct {
	// Disabled turns the derived timeout off: only the configured
	// attempt_timeout and the client's deadline apply. Default false.
	Disabled bool `yaml:"disabled"`
	// Quantile is the latency quantile the timeout is built on, in (0, 1).
	// Default 0.999: a healthy orchestrator's attempt is cut about once in
	// a thousand before Margin.
	Quantile float64 `yaml:"quantile"`
	// Margin multiplies the quantile (≥ 1). Default 1.5.
	Margin float64 `yaml:"margin"`
	// Min is the shortest timeout ever set. Default 250ms.
	Min time.Duration `yaml:"min"`
	// MinSamples is how many successful attempts an estimate needs before
	// it sets a timeout. Default 20.
	MinSamples int `yaml:"min_samples"`
	// Window is the effective number of recent samples the estimate keeps
	// (an EWMA with weight 1/Window once it has that many). Default 200.
	Window int `yaml:"window"`
}

// DefaultTimeoutConfig returns the defaults documented on TimeoutConfig.
func DefaultTimeoutConfig() TimeoutConfig {
	return TimeoutConfig{Quantile: 0.999, Margin: 1.5, Min: 250 * time.Millisecond, MinSamples: 20, Window: 200}
}

// Validate reports settings that cannot work.
func (c TimeoutConfig) Validate() error {
	if c.Disabled {
		return nil
	}
	var errs []error
	if !(c.Quantile > 0 && c.Quantile < 1) {
		errs = append(errs, fmt.Errorf("attempt timeout quantile %v must be in (0, 1)", c.Quantile))
	}
	if !(c.Margin >= 1) || math.IsInf(c.Margin, 0) {
		errs = append(errs, fmt.Errorf("attempt timeout margin %v must be at least 1", c.Margin))
	}
	if c.Min < 0 {
		errs = append(errs, fmt.Errorf("attempt timeout min %v must not be negative", c.Min))
	}
	if c.MinSamples < 1 || c.Window < 1 {
		errs = append(errs, fmt.Errorf("attempt timeout min_samples %d and window %d must be at least 1", c.MinSamples, c.Window))
	}
	return errors.Join(errs...)
}

// LatencyDist is a lognormal estimate of an orchestrator's attempt latency
// for one class: exponentially weighted moments of ln(ms) over its recent
// successful attempts. Attempts that timed out are censored samples and
// are not folded in (they count as failures instead), so a hang cannot
// stretch the timeout that reveals it. The zero value is an empty
// estimate; not safe for concurrent use.
type LatencyDist struct {
	n        int
	mean, m2 float64 // EW mean of ln ms and of its square
}

// Observe folds one successful attempt's latency (ms) in.
func (d *LatencyDist) Observe(ms float64, c TimeoutConfig) {
	if !(ms > 0) || math.IsInf(ms, 0) {
		return
	}
	x := math.Log(ms)
	d.n++
	w := 1 / float64(min(d.n, max(c.Window, 1)))
	d.mean += w * (x - d.mean)
	d.m2 += w * (x*x - d.m2)
}

// Samples is how many latencies were observed.
func (d *LatencyDist) Samples() int { return d.n }

// Quantile is the estimate's q-quantile in ms; false while it is empty.
func (d *LatencyDist) Quantile(q float64) (float64, bool) {
	if d.n == 0 {
		return 0, false
	}
	sd := math.Sqrt(max(d.m2-d.mean*d.mean, 0))
	return math.Exp(d.mean + distuv.UnitNormal.Quantile(q)*sd), true
}

// Timeout is the per-attempt timeout for an attempt with remaining time
// left before the client's deadline: Margin × the Quantile of d, at least
// Min. It returns 0 (no timeout of its own) when the config is disabled,
// d has fewer than MinSamples samples, or the timeout would not come
// before the deadline, which ends the attempt anyway.
func (c TimeoutConfig) Timeout(d *LatencyDist, remaining time.Duration) time.Duration {
	if c.Disabled || d == nil || d.n < c.MinSamples {
		return 0
	}
	q, _ := d.Quantile(c.Quantile)
	ms := max(c.Margin*q, float64(c.Min)/float64(time.Millisecond))
	if !(ms < float64(remaining)/float64(time.Millisecond)) {
		return 0
	}
	return time.Duration(math.Ceil(ms * float64(time.Millisecond)))
}

// TimeoutFor is Timeout from an orchestrator's own estimate for the class
// when it has MinSamples, else from the class's over every orchestrator
// (one not yet seen in the class is timed like the class). Either may be
// nil. The router's proxy and the simulator's closed loop both time
// attempts with it.
func (c TimeoutConfig) TimeoutFor(own, class *LatencyDist, remaining time.Duration) time.Duration {
	if own == nil || own.Samples() < c.MinSamples {
		own = class
	}
	return c.Timeout(own, remaining)
}
