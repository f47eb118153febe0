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

// TestLargeFleetFile keeps testdata/fleet-200.yaml equal to what
// Generate(DefaultConfig()) writes. Regenerate it with
// FLEETGEN_UPDATE=1 go test ./sim/fleetgen.
func TestLargeFleetFile(t *testing.T) {
	y, err := Generate(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "fleet-200.yaml")
	if os.Getenv("FLEETGEN_UPDATE") != "" {
		if err := os.WriteFile(path, y, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, y) {
		t.Errorf("%s is stale: regenerate it with FLEETGEN_UPDATE=1 go test ./sim/fleetgen", path)
	}
}
