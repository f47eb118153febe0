package gateway

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	admitted   prometheus.Counter
	refused    *prometheus.CounterVec
	budgetUsed *prometheus.GaugeVec
	warnings   *prometheus.CounterVec
	syncs      *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		admitted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loopgate_gateway_admitted_total", Help: "Requests the gateway admitted.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loopgate_gateway_refused_total", Help: "Requests the gateway refused, by code and scope (key, customer, global).",
		}, []string{"code", "scope"}),
		budgetUsed: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "loopgate_gateway_budget_used_ratio", Help: "Spend of the current period over the budget, by scope, id and budget (period.of).",
		}, []string{"scope", "id", "budget"}),
		warnings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loopgate_gateway_budget_warnings_total", Help: "Budgets whose spend crossed a warning level (0.8, 1), by scope and level.",
		}, []string{"scope", "level"}),
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loopgate_gateway_spend_syncs_total", Help: "Reads of the other routers' spend, by result (ok, error).",
		}, []string{"result"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.admitted, m.refused, m.budgetUsed, m.warnings, m.syncs} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("gateway metrics: %w", err)
		}
	}
	return m, nil
}
