package scenario

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that Parse never panics and that whatever it accepts is
// valid and parses the same way again.
func FuzzParse(f *testing.F) {
	f.Add([]byte(base))
	paths, _ := filepath.Glob("../scenarios/*.yaml")
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("name: x\nduration: 1e300\n"))
	f.Add([]byte("timeline: [{at: 1s, orchestrator: o, set: [1]}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sc, err := Parse(data)
		if err != nil {
			return
		}
		if err := sc.Validate(); err != nil {
			t.Fatalf("accepted a scenario that does not validate: %v", err)
		}
		for _, o := range sc.Orchestrators {
			for id, off := range o.Classes {
				if off.P99 < off.P50 || off.P50 <= 0 {
					t.Fatalf("%s/%s: accepted p50 %v p99 %v", o.ID, id, off.P50, off.P99)
				}
			}
		}
		again, err := Parse(data)
		if err != nil || again.Name != sc.Name || len(again.Timeline) != len(sc.Timeline) {
			t.Fatalf("second parse differs: %v", err)
		}
	})
}
