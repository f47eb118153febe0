package load

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Results of a request, the values of the result label of
// loopgate_load_requests_total.
const (
	Result2xx       = "2xx"       // answered 2xx, body read
	Result4xx       = "4xx"       // answered 4xx
	Result5xx       = "5xx"       // answered 5xx
	ResultOther     = "other"     // answered 1xx/3xx, or a 2xx whose body broke
	ResultTimeout   = "timeout"   // no answer within the class's timeout_ms/Speed
	ResultError     = "error"     // no answer: refused, reset, ...
	ResultCancelled = "cancelled" // still in flight when the drain ended
	ResultDropped   = "dropped"   // not sent: MaxInFlight outstanding
)

type metrics struct {
	requests *prometheus.CounterVec   // client, class, result
	latency  *prometheus.HistogramVec // class
	inFlight prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loopgate_load_requests_total",
			Help: "Scenario arrivals, by client, class and result (2xx, 4xx, 5xx, other, timeout, error, cancelled, dropped).",
		}, []string{"client", "class", "result"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "loopgate_load_request_duration_seconds",
			Help:    "Wall-clock time from sending a request to the end of its answer's body, answered requests only, by class.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16), // 1 ms … 33 s
		}, []string{"class"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loopgate_load_requests_in_flight",
			Help: "Requests sent and not yet ended.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.requests, m.latency, m.inFlight} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, fmt.Errorf("register load metrics (one Generator per registry): %w", err)
			}
			return nil, fmt.Errorf("register load metrics: %w", err)
		}
	}
	return m, nil
}
