package fleet

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of a request at an orchestrator, the values of the outcome label
// of loopgate_fleet_requests_total.
const (
	OutcomeServed     = "served"      // 200 after queue and service
	OutcomeRejected   = "rejected"    // 503 at once: capacity and queue full
	OutcomeFailed     = "failed"      // 500 (fast or slow failure)
	OutcomeBadRequest = "bad_request" // 4xx: unknown path, malformed body, class not served
	OutcomeReset      = "reset"       // connection closed unanswered: went down, or the fleet stopped
	OutcomeHung       = "hung"        // held unanswered while hanging, until the client or the hang gave up
	OutcomeAbandoned  = "abandoned"   // the client went away while queued or in service
)

// States of loopgate_fleet_requests_in_progress.
const (
	stateQueued  = "queued"
	stateServing = "serving"
	stateHung    = "hung"
)

type metrics struct {
	requests   *prometheus.CounterVec // orchestrator, outcome
	inProgress *prometheus.GaugeVec   // orchestrator, state
	up         *prometheus.GaugeVec   // orchestrator
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loopgate_fleet_requests_total",
			Help: "Requests that reached a simulated orchestrator, by orchestrator and outcome (served, rejected, failed, bad_request, reset, hung, abandoned).",
		}, []string{"orchestrator", "outcome"}),
		inProgress: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "loopgate_fleet_requests_in_progress",
			Help: "Requests held by a simulated orchestrator, by orchestrator and state (queued, serving, hung).",
		}, []string{"orchestrator", "state"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "loopgate_fleet_up",
			Help: "1 while a simulated orchestrator accepts connections, 0 while it is down.",
		}, []string{"orchestrator"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.inProgress, m.up} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("register fleet metrics (one Fleet per registry): %w", err)
			}
			return nil, fmt.Errorf("register fleet metrics: %w", err)
		}
	}
	return m, nil
}
