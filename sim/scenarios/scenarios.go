// Package scenarios ships the public benchmark scenarios inside the binary,
// so `loopgate bench` works without a checkout of shared/. The format is
// documented in README.md beside them and implemented by sim/scenario.
//
//	for _, name := range scenarios.Names() {
//		sc, err := scenarios.Load(name) // "fault-storm", ...
//		...
//	}
package scenarios

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/loopgate/loopgate/sim/scenario"
)

// files is read-only: embed needs a package-level variable.
//
//go:embed *.yaml
var files embed.FS

// FS returns the embedded scenario files (name.yaml).
func FS() fs.FS { return files }

// Names lists the embedded scenarios, sorted, without the .yaml suffix.
func Names() []string {
	entries, _ := fs.ReadDir(files, ".")
	var out []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".yaml"); ok {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// Load parses the embedded scenario with the given name.
func Load(name string) (*scenario.Scenario, error) {
	b, err := fs.ReadFile(files, name+".yaml")
	if err != nil {
		return nil, fmt.Errorf("scenario %q: %w (have %s)", name, err, strings.Join(Names(), ", "))
	}
	sc, err := scenario.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("scenario %q: %w", name, err)
	}
	return sc, nil
}
