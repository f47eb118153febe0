package fleetgen

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/loopgate/loopgate/sim/scenario"
)

func TestGenerate(t *testing.T) {
	tests := []struct {
		name                         string
		orchs, regions, classes, min int // min: timeline entries
	}{
		{"default", 200, 8, 5, 48},
		{"small", 10, 3, 2, 0},
		{"one", 1, 1, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Orchestrators, cfg.Regions, cfg.Classes = tt.orchs, tt.regions, tt.classes
			if tt.min == 0 {
				cfg.Faults = 0
			}
			y, err := Generate(cfg)
			if err != nil {
				t.Fatal(err)
			}
			sc, err := scenario.Parse(y)
			if err != nil {
				t.Fatalf("generated scenario does not parse: %v\n%s", err, y)
			}
			if got := len(sc.Orchestrators); got != tt.orchs {
				t.Errorf("got %d orchestrators, want %d", got, tt.orchs)
			}
			if got := len(sc.Regions); got != tt.regions {
				t.Errorf("got %d regions, want %d", got, tt.regions)
			}
			if got := len(sc.Classes); got != tt.classes {
				t.Errorf("got %d classes, want %d", got, tt.classes)
			}
			if got := len(sc.Timeline); got < tt.min {
				t.Errorf("got %d timeline entries, want ≥ %d", got, tt.min)
			}
			again, _ := Generate(cfg)
			if !bytes.Equal(y, again) {
				t.Errorf("same config, different bytes")
			}
		})
	}
}

// TestLargeFleetFile keeps the generated scenario files equal to what
// Generate writes for their configs: testdata/fleet-200.yaml
// (DefaultConfig) and the two public scenarios in sim/scenarios that come
// from fleetgen. Regenerate them with FLEETGEN_UPDATE=1 go test ./sim/fleetgen.
func TestLargeFleetFile(t *testing.T) {
	faults := DefaultConfig()
	faults.Name, faults.Seed, faults.Faults = "fleet-200-faults", 2026, 36
	hangs := DefaultConfig()
	hangs.Name, hangs.Seed, hangs.Orchestrators, hangs.Regions, hangs.Classes = "hang-slow", 77, 60, 4, 3
	hangs.Faults, hangs.Kinds = 30, []string{FaultHang, FaultSlow}
	for _, tt := range []struct {
		path string
		cfg  Config
	}{
		{filepath.Join("testdata", "fleet-200.yaml"), DefaultConfig()},
		{filepath.Join("..", "scenarios", "fleet-200-faults.yaml"), faults},
		{filepath.Join("..", "scenarios", "hang-slow.yaml"), hangs},
	} {
		t.Run(tt.cfg.Name, func(t *testing.T) {
			y, err := Generate(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if os.Getenv("FLEETGEN_UPDATE") != "" {
				if err := os.WriteFile(tt.path, y, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := os.ReadFile(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, y) {
				t.Errorf("%s is stale: regenerate it with FLEETGEN_UPDATE=1 go test ./sim/fleetgen", tt.path)
			}
		})
	}
}
