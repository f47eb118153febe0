package optimizer

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are created per Optimizer on the injected registerer (see the
// package documentation for the list).
type metrics struct {
	runs           *prometheus.CounterVec
	runSeconds     prometheus.Histogram
	version        prometheus.Gauge
	leader         prometheus.Gauge
	leaseEpoch     prometheus.Gauge
	policyBytes    prometheus.Gauge
	publishErrors  prometheus.Counter
	shedReadErrors prometheus.Counter
	ejected        prometheus.Gauge
	ejections      prometheus.Counter
	lambda         prometheus.Gauge
	demand         prometheus.Gauge
	unserved       prometheus.Gauge
	iterations     prometheus.Gauge
	lpFailures     prometheus.Counter
	success        *prometheus.GaugeVec
	share          *prometheus.GaugeVec
	utilisation    *prometheus.GaugeVec
	// labelled holds the orchestrators with per-orchestrator series, so
	// those that leave the catalog are deleted and cardinality stays
	// bounded by the catalog.
	labelled map[string]bool
}

// Results of a round, the values of loopgate_optimizer_runs_total{result}.
const (
	resultOK           = "ok"
	resultStatsError   = "stats_error"
	resultPublishError = "publish_error"
	resultInvalid      = "invalid"
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	orch := []string{"orchestrator"}
	m := &metrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loopgate_optimizer_runs_total", Help: "Optimization rounds, by result (ok, stats_error, publish_error, invalid).",
		}, []string{"result"}),
		runSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "loopgate_optimizer_run_duration_seconds", Help: "Duration of a round on the injected clock: read, solve, publish.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}),
		version: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loopgate_optimizer_policy_version", Help: "Version of the last policy published.",
		}),
		leader: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loopgate_optimizer_leader", Help: "1 while this optimizer runs rounds (always, unless standby; while it holds the lease, in standby), else 0.",
		}),
		leaseEpoch: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loopgate_optimizer_lease_epoch", Help: "Epoch of the standby lease this optimizer holds or last held (0: never).",
		}),
		policyBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loopgate_optimizer_policy_bytes", Help: "Encoded size of the last policy (trimmed to fit event.MaxPolicyEncodedSize when needed).",
		}),
		publishErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loopgate_optimizer_publish_errors_total", Help: "Policies that could not be published (retried next period with a newer one).",
		}),
		shedReadErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loopgate_optimizer_shed_read_errors_total", Help: "Rounds that could not read the requests shed at the edge (admission then sees only what was admitted).",
		}),
		ejected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loopgate_optimizer_ejected_orchestrators", Help: "Orchestrators currently ejected.",
		}),
		ejections: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loopgate_optimizer_ejections_total", Help: "Ejections made.",
		}),
		lambda: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loopgate_optimizer_lambda", Help: "The cost-versus-latency knob of the last round (0 cheapest, 1 fastest).",
		}),
		demand: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loopgate_optimizer_demand_requests_per_second", Help: "Attempts per second observed in the window, every class and region.",
		}),
		unserved: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loopgate_optimizer_unserved_ratio", Help: "Fraction of demand beyond the fleet's capacity at the utilisation cap.",
		}),
		iterations: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loopgate_optimizer_solver_iterations", Help: "Frank-Wolfe iterations of the last round.",
		}),
		lpFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loopgate_optimizer_lp_failures_total", Help: "Linear programs that failed and were replaced by the greedy fallback.",
		}),
		success: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "loopgate_optimizer_orchestrator_success_probability", Help: "Estimated (smoothed) probability that an attempt succeeds, pooled over classes and regions.",
		}, orch),
		share: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "loopgate_optimizer_orchestrator_share", Help: "Planned fraction of all demand routed to the orchestrator.",
		}, orch),
		utilisation: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "loopgate_optimizer_orchestrator_utilisation", Help: "Planned utilisation of the orchestrator's concurrency.",
		}, orch),
		labelled: map[string]bool{},
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{
		m.runs, m.runSeconds, m.version, m.leader, m.leaseEpoch, m.policyBytes, m.publishErrors, m.shedReadErrors, m.ejected, m.ejections, m.lambda,
		m.demand, m.unserved, m.iterations, m.lpFailures, m.success, m.share, m.utilisation,
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register optimizer metrics: %w", err)
		}
	}
	return m, nil
}

// observe records a round's per-orchestrator and fleet gauges.
func (m *metrics) observe(r *round, pl *plan) {
	seen := make(map[string]bool, len(r.orchs))
	for i := range r.orchs {
		id := r.orchs[i].cfg.ID
		seen[id] = true
		m.labelled[id] = true
		m.success.WithLabelValues(id).Set(r.orchs[i].pSucc)
		m.share.WithLabelValues(id).Set(pl.share[i])
		m.utilisation.WithLabelValues(id).Set(pl.sol.rho[i])
	}
	for id := range m.labelled {
		if !seen[id] {
			m.success.DeleteLabelValues(id)
			m.share.DeleteLabelValues(id)
			m.utilisation.DeleteLabelValues(id)
			delete(m.labelled, id)
		}
	}
	m.ejected.Set(float64(len(r.ejections)))
	m.ejections.Add(float64(pl.fresh))
	m.lambda.Set(r.lambda)
	m.demand.Set(pl.demand)
	if pl.demand > 0 {
		m.unserved.Set(pl.unserved / pl.demand)
	} else {
		m.unserved.Set(0)
	}
	m.iterations.Set(float64(pl.sol.iterations))
	m.lpFailures.Add(float64(pl.sol.lpFailures))
}
