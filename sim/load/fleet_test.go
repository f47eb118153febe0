package load_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/sim/fleet"
	"github.com/loopgate/loopgate/sim/load"
	"github.com/loopgate/loopgate/sim/scenario"
)

// TestAgainstFleet sends every kind of body to a real simulated
// orchestrator: each must be accepted and served as its class.
func TestAgainstFleet(t *testing.T) {
	if load.HeaderClass != fleet.HeaderClass {
		t.Fatalf("class header: load sends %q, fleet reads %q", load.HeaderClass, fleet.HeaderClass)
	}
	sc, err := scenario.Parse([]byte(`
name: load-fleet
seed: 9
duration: 4s
regions: [FRA]
rtt_ms: {same_region: 4}
classes:
  - {id: t2i, capability: text-to-image, model: stabilityai/sdxl-turbo, units: 1048576, slo_ms: 3000, timeout_ms: 60000, value: 0.02}
  - {id: t2i-small, capability: text-to-image, model: stabilityai/sdxl-turbo, units: 262144, slo_ms: 3000, timeout_ms: 60000, value: 0.02}
  - {id: i2i, capability: image-to-image, model: stabilityai/sdxl-turbo, units: 262144, slo_ms: 3000, timeout_ms: 60000, value: 0.02}
  - {id: i2v, capability: image-to-video, model: stabilityai/stable-video-diffusion-img2vid-xt, units: 14745600, slo_ms: 3000, timeout_ms: 60000, value: 0.02}
  - {id: a2t, capability: audio-to-text, model: openai/whisper-large-v3, units: 3000, slo_ms: 3000, timeout_ms: 60000, value: 0.02}
  - {id: llm, capability: llm, model: meta-llama/Meta-Llama-3.1-8B-Instruct, units: 256, slo_ms: 2000, timeout_ms: 60000, value: 0.01}
  - {id: tts, capability: text-to-speech, model: parler-tts/parler-tts-large-v1, units: 100, slo_ms: 2000, timeout_ms: 60000, value: 0.01}
clients:
  - {id: acme, region: FRA, rate: 30, mix: {t2i: 0.2, t2i-small: 0.1, i2i: 0.1, i2v: 0.1, a2t: 0.2, llm: 0.2, tts: 0.1}}
orchestrators:
  - id: all
    region: FRA
    capacity: 32
    classes:
      t2i: {price: 1.0e-9, p50_ms: 20, p99_ms: 60}
      t2i-small: {price: 1.0e-9, p50_ms: 20, p99_ms: 60}
      i2i: {price: 1.0e-9, p50_ms: 20, p99_ms: 60}
      i2v: {price: 1.0e-9, p50_ms: 20, p99_ms: 60}
      a2t: {price: 1.0e-9, p50_ms: 20, p99_ms: 60}
      llm: {price: 1.0e-9, p50_ms: 20, p99_ms: 60}
      tts: {price: 1.0e-9, p50_ms: 20, p99_ms: 60}
`))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	freg := prometheus.NewRegistry()
	fcfg := fleet.DefaultConfig()
	fcfg.Speed = 4
	f, err := fleet.New(sc, fcfg, deps.Deps{Registerer: freg})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Start(ctx); err != nil {
		t.Fatal(err)
	}
	fleetDone := make(chan error, 1)
	go func() { fleetDone <- f.Run(ctx) }()

	lcfg := load.DefaultConfig()
	lcfg.Target = f.Addrs()["all"]
	lcfg.Speed = 4
	lcfg.Origin = f.Origin()
	g, err := load.New(sc, lcfg, deps.Deps{Registerer: prometheus.NewRegistry(), Rand: rand.New(rand.NewPCG(3, 4))})
	if err != nil {
		t.Fatal(err)
	}
	s, err := g.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Total.Sent < 60 || s.Total.Succeeded != s.Total.Sent {
		t.Errorf("got %+v by status %v, want ~120 sent, all succeeded", s.Total, s.ByStatus)
	}
	for _, id := range []string{"t2i", "i2i", "i2v", "a2t", "llm", "tts"} {
		if c := s.ByClass[id]; c.Sent == 0 || c.Succeeded != c.Sent {
			t.Errorf("class %s: got %+v, want some sent, all succeeded", id, c)
		}
	}
	served := metric(t, freg, "loopgate_fleet_requests_total", "served")
	if int64(served) != s.Total.Succeeded {
		t.Errorf("fleet served %v, load succeeded %d", served, s.Total.Succeeded)
	}
	cancel()
	select {
	case <-fleetDone:
	case <-time.After(5 * time.Second):
		t.Error("fleet Run did not return")
	}
}

func metric(t *testing.T, reg *prometheus.Registry, name, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}
