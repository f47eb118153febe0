package sim

import (
	"testing"

	"github.com/loopgate/loopgate/sim/scenario"
	"github.com/loopgate/loopgate/sim/scenarios"
)

func loadScenario(t testing.TB, name string) *scenario.Scenario {
	t.Helper()
	sc, err := scenarios.Load(name)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}
