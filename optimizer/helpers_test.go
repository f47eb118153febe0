package optimizer

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
)

// t0 is the fake clock's start.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: t0} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeStats returns its stats for any window and records the windows asked.
type fakeStats struct {
	mu      sync.Mutex
	stats   []Stat
	err     error
	windows [][2]time.Time
}

func (f *fakeStats) Stats(_ context.Context, from, to time.Time) ([]Stat, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.windows = append(f.windows, [2]time.Time{from, to})
	if f.err != nil {
		return nil, f.err
	}
	return append([]Stat(nil), f.stats...), nil
}

func (f *fakeStats) set(s ...Stat) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stats = s
}

type fakePub struct {
	mu       sync.Mutex
	policies []event.Policy
	sizes    []int // the encodings' lengths, in order
	err      error
}

func (f *fakePub) PublishPolicy(_ context.Context, p event.Policy, encoded []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return f.err
	}
	f.policies = append(f.policies, p)
	f.sizes = append(f.sizes, len(encoded))
	return nil
}

func (f *fakePub) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.policies)
}

const (
	capT2I   = "text-to-image"
	modelT2I = "sdxl"
	unitsT2I = 1 << 20
)

// orchSpec is a catalog orchestrator serving the one test class.
type orchSpec struct {
	id    string
	price float64 // USD per unit
	slots int
}

func catalogOf(slo time.Duration, value float64, orchs ...orchSpec) Catalog {
	var c Catalog
	for i, o := range orchs {
		c.Orchestrators = append(c.Orchestrators, Orchestrator{
			ID: o.id, URL: fmt.Sprintf("https://%s.example:8935", o.id),
			Address: fmt.Sprintf("0x%040x", i+1), MaxInFlight: o.slots,
			Classes: []ClassPrice{{Capability: capT2I, Model: modelT2I, PricePerUnit: o.price}},
		})
	}
	c.Classes = []Class{{Capability: capT2I, Model: modelT2I, SLO: slo, Value: value, Units: unitsT2I}}
	return c
}

// stat is one window of the test class from region FRA: attempts, of
// which ok succeeded and the rest were errors, with latency p50 and p99 in ms.
func stat(orch string, attempts, ok int64, p50, p99 float64) Stat {
	return Stat{
		Orchestrator: orch, Capability: capT2I, Model: modelT2I, ClientRegion: "FRA",
		Attempts: attempts, Successes: ok, Errors: attempts - ok,
		LatencyP50Ms: p50, LatencyP99Ms: p99,
	}
}

type harness struct {
	opt   *Optimizer
	clock *fakeClock
	stats *fakeStats
	pub   *fakePub
	reg   *prometheus.Registry
}

func newHarness(t testing.TB, cfg Config, opts ...Option) *harness {
	t.Helper()
	h := &harness{clock: newClock(), stats: &fakeStats{}, pub: &fakePub{}, reg: prometheus.NewRegistry()}
	opt, err := New(cfg, h.stats, h.pub, deps.Deps{Registerer: h.reg, Clock: h.clock.now}, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.opt = opt
	return h
}

// step runs one round and fails the test on error.
func (h *harness) step(t testing.TB) event.Policy {
	t.Helper()
	p, err := h.opt.Step(context.Background())
	if err != nil {
		t.Fatalf("Step: %v", err)
	}
	return p
}

// sharesOf returns orchestrator -> share of the (class, region) entry.
func sharesOf(t testing.TB, p event.Policy, region string) map[string]event.Share {
	t.Helper()
	for _, c := range p.Classes {
		if c.Capability == capT2I && c.Model == modelT2I && c.ClientRegion == region {
			out := map[string]event.Share{}
			for _, s := range c.Shares {
				out[s.Orchestrator] = s
			}
			return out
		}
	}
	t.Fatalf("no class entry for region %q in %+v", region, p.Classes)
	return nil
}

// checkPolicy asserts what every published policy must satisfy.
func checkPolicy(t testing.TB, p event.Policy) {
	t.Helper()
	if err := p.Validate(); err != nil {
		t.Fatalf("policy %d does not validate: %v", p.Version, err)
	}
	if _, err := event.EncodePolicy(p); err != nil {
		t.Fatalf("policy %d does not encode: %v", p.Version, err)
	}
	for _, c := range p.Classes {
		sum := 0.0
		for _, s := range c.Shares {
			sum += s.Share
			if s.Reason == "" {
				t.Errorf("class %s/%s %q: share of %s has no reason", c.Capability, c.Model, c.ClientRegion, s.Orchestrator)
			}
		}
		if math.Abs(sum-1) > 1e-9 {
			t.Errorf("class %s/%s %q: shares sum to %v, want 1", c.Capability, c.Model, c.ClientRegion, sum)
		}
	}
}

// value reads a gauge or counter.
func value(t testing.TB, m prometheus.Metric) float64 {
	t.Helper()
	var d dto.Metric
	if err := m.Write(&d); err != nil {
		t.Fatal(err)
	}
	switch {
	case d.Gauge != nil:
		return d.Gauge.GetValue()
	case d.Counter != nil:
		return d.Counter.GetValue()
	}
	t.Fatalf("metric %v is neither a gauge nor a counter", m.Desc())
	return 0
}

// series counts the series a collector exports.
func series(c prometheus.Collector) int {
	ch := make(chan prometheus.Metric, 1024)
	c.Collect(ch)
	close(ch)
	return len(ch)
}
