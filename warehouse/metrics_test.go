package warehouse

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestMetricsRegisterOncePerRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	if err := newMetrics().register(reg); err != nil {
		t.Fatal(err)
	}
	if err := newMetrics().register(reg); err == nil {
		t.Fatal("got nil error registering a second Store's metrics on one registry")
	}
	if err := newMetrics().register(nil); err != nil {
		t.Fatalf("nil registry: got %v, want nil", err)
	}
}
