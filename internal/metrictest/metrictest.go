// Package metrictest reads metrics back from a Prometheus registry in
// tests, so every package asserts on its metrics the same way:
//
//	if got := metrictest.Value(t, reg, "loopgate_router_policy_updates_total", "result", "applied"); got != 1 { ... }
package metrictest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Value is the value of the counter or gauge (or the sum of the
// histogram) name in g whose labels
// include every pair of labels (name, value, name, value, ...); a metric
// without labels matches when none are given. It fails the test when no
// such series exists or g cannot be gathered.
func Value(t testing.TB, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	v, ok := Lookup(t, g, name, labels...)
	if !ok {
		t.Fatalf("metric %s%v not found", name, labels)
	}
	return v
}

// Lookup is Value that reports a missing series as ok = false instead of
// failing: a counter that never moved may not exist yet.
func Lookup(t testing.TB, g prometheus.Gatherer, name string, labels ...string) (v float64, ok bool) {
	t.Helper()
	if len(labels)%2 != 0 {
		t.Fatalf("metrictest: labels %v are not name/value pairs", labels)
	}
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !matches(m, labels) {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue(), true
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue(), true
			case m.GetUntyped() != nil:
				return m.GetUntyped().GetValue(), true
			case m.GetHistogram() != nil:
				return m.GetHistogram().GetSampleSum(), true
			}
			t.Fatalf("metric %s is neither a counter, a gauge nor a histogram", name)
		}
	}
	return 0, false
}

func matches(m *dto.Metric, labels []string) bool {
	for i := 0; i < len(labels); i += 2 {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}
