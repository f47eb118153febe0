package oracle

import (
	"time"

	"github.com/loopgate/loopgate/sim/scenario"
)

// OnTimeOdds is the oracle's per-request look at one orchestrator: the
// probability that a request of a class with SLO slo, sent to orch now,
// answers successfully within it, knowing the offer's true service time,
// the orchestrator's servers and failure rate, the attempts it already
// holds (inFlight, in service or queued) and the round trip:
//
//	(1 − fail) · Pr[rtt + W + S ≤ slo]   W = max(0, inFlight − capacity + 1) · E[S] / capacity
//
// W is the expected wait for a server at the orchestrator's true queue
// (its servers free one every E[S]/capacity on average).
func OnTimeOdds(orch *scenario.Orchestrator, off scenario.Offer, inFlight int, rtt, slo time.Duration) float64 {
	if orch.Capacity <= 0 {
		return 0
	}
	s := lognormal{p50: off.P50.Seconds(), sigma: off.Sigma()}
	wait := 0.0
	if ahead := inFlight - orch.Capacity + 1; ahead > 0 {
		wait = float64(ahead) * s.mean() / float64(orch.Capacity)
	}
	return (1 - orch.Fail) * s.cdf(slo.Seconds()-rtt.Seconds()-wait)
}
