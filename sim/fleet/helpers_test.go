package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/internal/metrictest"
	"github.com/loopgate/loopgate/sim/scenario"
)

// baseScenario has two classes on two paths and one orchestrator per test
// to shape; tests append orchestrators and a timeline.
const baseScenario = `
name: fleet-test
seed: 3
duration: 600s
regions: [FRA, LAX]
rtt_ms: {same_region: 4, FRA-LAX: 150}
classes:
  - {id: t2i, capability: text-to-image, model: stabilityai/sdxl-turbo, units: 1048576, slo_ms: 3000, timeout_ms: 10000, value: 0.02}
  - {id: llm, capability: llm, model: meta-llama/Meta-Llama-3.1-8B-Instruct, units: 256, slo_ms: 2000, timeout_ms: 8000, value: 0.01}
  - {id: i2i, capability: image-to-image, model: stabilityai/sdxl-turbo, units: 262144, slo_ms: 3000, timeout_ms: 10000, value: 0.02}
clients:
  - {id: acme, region: FRA, rate: 1, mix: {t2i: 1.0}}
`

func parseScenario(t *testing.T, yaml string) *scenario.Scenario {
	t.Helper()
	sc, err := scenario.Parse([]byte(yaml))
	if err != nil {
		t.Fatalf("parse scenario: %v", err)
	}
	return sc
}

// startFleet runs a fleet until the test ends and checks that Run returns
// promptly then: no request or server outlives it.
func startFleet(t *testing.T, sc *scenario.Scenario, cfg Config) (*Fleet, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	f, err := New(sc, cfg, deps.Deps{Registerer: reg})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := f.Start(ctx); err != nil {
		cancel()
		t.Fatalf("Start: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: got %v, want nil", err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("Run did not return within 5s of cancel")
		}
	})
	return f, reg
}

type result struct {
	status  int
	body    []byte
	err     error
	latency time.Duration
}

func post(client *http.Client, url string, body any) result {
	b, _ := json.Marshal(body)
	start := time.Now()
	resp, err := client.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		return result{err: err, latency: time.Since(start)}
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	return result{status: resp.StatusCode, body: rb, err: err, latency: time.Since(start)}
}

func newClient(timeout time.Duration) *http.Client {
	return &http.Client{Timeout: timeout, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 64}}
}

// metricValue reads a counter or gauge with these labels; 0 if absent.
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	var pairs []string
	for k, v := range labels {
		pairs = append(pairs, k, v)
	}
	v, _ := metrictest.Lookup(t, reg, name, pairs...)
	return v
}

func errorMessage(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error.Message == "" {
		t.Fatalf("body %q: want {\"error\":{\"message\":...}}", body)
	}
	return e.Error.Message
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}

func ptr[T any](v T) *T { return &v }

func t2iBody() map[string]any {
	return map[string]any{"model_id": "stabilityai/sdxl-turbo", "prompt": "a cat", "height": 1024, "width": 1024}
}

func promRegistry() *prometheus.Registry { return prometheus.NewRegistry() }
