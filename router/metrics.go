package router

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are created per Router on the injected registerer (see the
// package documentation for the list).
type metrics struct {
	requests        *prometheus.CounterVec
	attempts        *prometheus.CounterVec
	retries         *prometheus.CounterVec
	budgetExhausted prometheus.Counter
	rejected        *prometheus.CounterVec
	latency         *prometheus.HistogramVec
	inFlight        prometheus.Gauge
	decision        prometheus.Histogram
	policyVersion   prometheus.Gauge
	policyUpdates   *prometheus.CounterVec
	reloads         *prometheus.CounterVec
	ejections       prometheus.Counter
	published       prometheus.Counter
	publishErrors   prometheus.Counter
	journalErrors   prometheus.Counter
	interrupted     prometheus.Counter
	shed            *prometheus.CounterVec
	queueLength     prometheus.Gauge
	queueWait       prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loopgate_router_requests_total", Help: "Client requests by capability and HTTP status returned (capability \"unknown\" for unknown paths).",
		}, []string{"capability", "code"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loopgate_router_attempts_total", Help: "Attempts on orchestrators by capability and result (ok, error, busy, refused, timeout, client, canceled).",
		}, []string{"capability", "result"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loopgate_router_retries_total", Help: "Attempts that were retries of a failed attempt, by capability.",
		}, []string{"capability"}),
		budgetExhausted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loopgate_router_retry_budget_exhausted_total", Help: "Retries not made because the retry budget was spent.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loopgate_router_rejected_total", Help: "Requests answered without an attempt, by reason.",
		}, []string{"reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "loopgate_router_request_duration_seconds", Help: "Request latency as the client saw it, by capability.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 16),
		}, []string{"capability"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loopgate_router_in_flight_requests", Help: "Client requests being served.",
		}),
		decision: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "loopgate_router_decision_duration_seconds", Help: "Time to choose an orchestrator.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 10),
		}),
		policyVersion: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loopgate_router_policy_version", Help: "Version of the routing policy in use; 0 before the first.",
		}),
		policyUpdates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loopgate_router_policy_updates_total", Help: "Policies offered to the router, by result (applied, stale, invalid).",
		}, []string{"result"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loopgate_router_config_reloads_total", Help: "Configuration reloads by result (ok, invalid).",
		}, []string{"result"}),
		ejections: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loopgate_router_local_ejections_total", Help: "Orchestrators ejected by this router after consecutive failures.",
		}),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loopgate_router_outcomes_published_total", Help: "Outcome events handed to the publisher.",
		}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loopgate_router_outcome_publish_errors_total", Help: "Outcome events that could not be encoded or that the publisher refused.",
		}),
		journalErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loopgate_router_journal_errors_total", Help: "Journal records of requests in flight that could not be written.",
		}),
		interrupted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loopgate_router_interrupted_outcomes_total", Help: "Outcomes rebuilt from the journal for requests a crash interrupted.",
		}),
		shed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loopgate_router_shed_total", Help: "Requests shed at the edge (503 with Retry-After), by reason (admission, queue_full, queue_deadline).",
		}, []string{"reason"}),
		queueLength: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loopgate_router_edge_queue_length", Help: "Requests waiting in the edge queue for an orchestrator under its concurrency limit.",
		}),
		queueWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "loopgate_router_edge_queue_wait_seconds", Help: "Time requests spent in the edge queue, served or shed.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{
		m.requests, m.attempts, m.retries, m.budgetExhausted, m.rejected, m.latency, m.inFlight,
		m.decision, m.policyVersion, m.policyUpdates, m.reloads, m.ejections, m.published, m.publishErrors,
		m.journalErrors, m.interrupted, m.shed, m.queueLength, m.queueWait,
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register router metrics: %w", err)
		}
	}
	return m, nil
}
