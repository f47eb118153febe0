package plot

import (
	"bytes"
	"context"
	"image/png"
	"io"
	"testing"

	"github.com/loopgate/loopgate/sim"
	"github.com/loopgate/loopgate/sim/scenario"
	"github.com/loopgate/loopgate/sim/scenarios"
)

// TestFigures renders each figure for a small run and checks that it is a
// PNG of the configured size.
func TestFigures(t *testing.T) {
	sc, err := scenarios.Load("price-shift") // has a timeline and a warmup
	if err != nil {
		t.Fatal(err)
	}
	var runs []Run
	if _, err := sim.BenchRuns(context.Background(), sc, []string{sim.PolicyRandom, sim.PolicyOracle}, sim.BenchOptions{}, func(name string, res *sim.Result) {
		runs = append(runs, Run{Policy: name, Result: res})
	}); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Width, cfg.Height = 640, 360
	tests := []struct {
		name string
		draw func(io.Writer, *scenario.Scenario, Config) error
	}{
		{"latency-cdf", func(w io.Writer, sc *scenario.Scenario, cfg Config) error { return LatencyCDF(w, sc, runs, cfg) }},
		{"slo-attainment", func(w io.Writer, sc *scenario.Scenario, cfg Config) error { return SLOAttainment(w, sc, runs, cfg) }},
		{"traffic-share", func(w io.Writer, sc *scenario.Scenario, cfg Config) error {
			return TrafficShare(w, sc, runs[len(runs)-1], cfg)
		}},
		{"frontier", func(w io.Writer, sc *scenario.Scenario, cfg Config) error {
			return Frontier(w, sc, []FrontierPoint{
				{Lambda: 0, PredictedCost: 0.0030, PredictedSLO: 0.95, MeasuredCost: 0.0031, MeasuredSLO: 0.94},
				{Lambda: 1, PredictedCost: 0.0040, PredictedSLO: 0.99, MeasuredCost: 0.0039, MeasuredSLO: 0.985},
			}, cfg)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := tt.draw(&buf, sc, cfg); err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(&buf)
			if err != nil {
				t.Fatalf("decode png: %v", err)
			}
			if b := img.Bounds(); b.Dx() != cfg.Width || b.Dy() != cfg.Height {
				t.Errorf("got %dx%d, want %dx%d", b.Dx(), b.Dy(), cfg.Width, cfg.Height)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		ok   bool
	}{
		{"default", func(*Config) {}, true},
		{"tiny", func(c *Config) { c.Width = 10 }, false},
		{"no bucket", func(c *Config) { c.Bucket = 0 }, false},
		{"no dpi", func(c *Config) { c.DPI = 0 }, false},
		{"one cdf point", func(c *Config) { c.CDFPoints = 1 }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.edit(&c)
			if err := c.Validate(); (err == nil) != tt.ok {
				t.Errorf("got error %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestCDF(t *testing.T) {
	pts := cdf([]float64{1, 2, 3, 4, 5}, 2)
	if last := pts[len(pts)-1]; last.X != 5 || last.Y != 1 {
		t.Errorf("got last point %v, want {5 1}", last)
	}
	if len(pts) > 3 {
		t.Errorf("got %d points, want at most 3 for max 2 (+ the last)", len(pts))
	}
	if got := cdf(nil, 10); len(got) != 0 {
		t.Errorf("got %d points for no values, want 0", len(got))
	}
}

func TestLines(t *testing.T) {
	var buf bytes.Buffer
	err := Lines(&buf, "t", "x", "y", []Series{{Name: "a", X: []float64{0, 1, 2}, Y: []float64{1, 3, 2}}, {Name: "b", X: []float64{0, 2}, Y: []float64{2, 2}}}, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(&buf); err != nil {
		t.Fatalf("got no PNG: %v", err)
	}
	if err := Lines(&buf, "t", "x", "y", []Series{{Name: "bad", X: []float64{0}, Y: nil}}, DefaultConfig()); err == nil {
		t.Error("mismatched series: got nil error")
	}
}
