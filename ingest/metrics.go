package ingest

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	messages     *prometheus.CounterVec
	rows         prometheus.Counter
	batchSize    prometheus.Histogram
	writeSeconds prometheus.Histogram
	writeErrors  prometheus.Counter
	deadLetters  *prometheus.CounterVec
	lag          prometheus.Gauge
	lastCommit   prometheus.Gauge
	revoked      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loopgate_ingest_messages_total", Help: "Messages read from the outcomes topic, by result (ok, dead_letter).",
		}, []string{"result"}),
		rows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loopgate_ingest_rows_written_total", Help: "Outcomes the warehouse accepted.",
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "loopgate_ingest_batch_size", Help: "Outcomes per written batch.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9),
		}),
		writeSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "loopgate_ingest_batch_write_seconds", Help: "Latency of successful warehouse writes.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loopgate_ingest_write_errors_total", Help: "Failed warehouse writes; each is retried.",
		}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loopgate_ingest_dead_letters_total", Help: "Messages sent to the dead-letter topic, by reason.",
		}, []string{"reason"}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loopgate_ingest_consumer_lag", Help: "Messages between the committed position and the partition ends.",
		}),
		lastCommit: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loopgate_ingest_last_commit_timestamp_seconds", Help: "Unix time of the last offset commit.",
		}),
		revoked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "loopgate_ingest_revoked_messages_total", Help: "Messages dropped uncommitted because their partitions moved to another consumer before their batch was committed; the new owner reads them again.",
		}),
	}
	// Every known label value exists from the start at 0, so the first
	// dead letter is an increase that alerts and rate() can see.
	for _, r := range []string{"ok", "dead_letter"} {
		m.messages.WithLabelValues(r)
	}
	for _, r := range []string{"too_large", "schema_version", "malformed", "invalid", "other"} {
		m.deadLetters.WithLabelValues(r)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.messages, m.rows, m.batchSize, m.writeSeconds, m.writeErrors, m.deadLetters, m.lag, m.lastCommit, m.revoked} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register ingest metrics: %w", err)
		}
	}
	return m, nil
}
