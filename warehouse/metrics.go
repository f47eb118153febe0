package warehouse

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Store's Prometheus collectors, listed in doc.go.
type metrics struct {
	rowsWritten   *prometheus.CounterVec   // table
	dupsSkipped   *prometheus.CounterVec   // table, where: batch | warehouse
	insertSeconds *prometheus.HistogramVec // table
	checkSeconds  *prometheus.HistogramVec // table
	errors        *prometheus.CounterVec   // op: check | insert | query
}

// newMetrics creates the collectors; register adds them to a registry.
func newMetrics() *metrics {
	buckets := prometheus.ExponentialBuckets(0.001, 2, 16) // 1 ms … 33 s
	m := &metrics{
		rowsWritten: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loopgate_warehouse_rows_written_total",
			Help: "Rows inserted, by table.",
		}, []string{"table"}),
		dupsSkipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loopgate_warehouse_duplicate_rows_skipped_total",
			Help: "Rows not inserted because they were already stored (where=warehouse) or repeated within the batch (where=batch).",
		}, []string{"table", "where"}),
		insertSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "loopgate_warehouse_insert_duration_seconds",
			Help:    "Time to insert one block, by table.",
			Buckets: buckets,
		}, []string{"table"}),
		checkSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "loopgate_warehouse_check_duration_seconds",
			Help:    "Time to ask which rows of a batch already exist, by table.",
			Buckets: buckets,
		}, []string{"table"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loopgate_warehouse_errors_total",
			Help: "Failed warehouse operations, by operation (check, insert, query).",
		}, []string{"op"}),
	}
	return m
}

// register adds the collectors to reg (nil: nowhere).
func (m *metrics) register(reg prometheus.Registerer) error {
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{m.rowsWritten, m.dupsSkipped, m.insertSeconds, m.checkSeconds, m.errors} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return fmt.Errorf("register warehouse metrics (one Store per registry): %w", err)
			}
			return fmt.Errorf("register warehouse metrics: %w", err)
		}
	}
	return nil
}
