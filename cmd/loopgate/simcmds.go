package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/router"
	"github.com/loopgate/loopgate/sim/fleet"
	"github.com/loopgate/loopgate/sim/load"
	"github.com/loopgate/loopgate/sim/scenario"
	"github.com/loopgate/loopgate/sim/scenarios"
)

// loadScenario reads a scenario file, or one of the scenarios built into the
// binary by name (see `loopgate fleet --list`).
func loadScenario(nameOrPath string) (*scenario.Scenario, error) {
	if _, err := os.Stat(nameOrPath); err == nil {
		return scenario.Load(nameOrPath)
	}
	for _, n := range scenarios.Names() {
		if n == nameOrPath || n+".yaml" == nameOrPath {
			return scenarios.Load(n)
		}
	}
	return nil, fmt.Errorf("scenario %q: no such file, and not a built-in scenario (%s)", nameOrPath, strings.Join(scenarios.Names(), ", "))
}

// simKey is the API key the simulated client id uses in dev and demos.
func simKey(client string) string { return "sim-key-" + client }

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// routerConfigFor is a router config serving the fleet's orchestrators,
// with one API key per scenario client (its region as the client region).
func routerConfigFor(base router.Config, sc *scenario.Scenario, infos []fleet.OrchestratorInfo) router.Config {
	cfg := base
	cfg.Orchestrators = nil
	cfg.Orchestrators = advertised(infos)
	cfg.APIKeys = nil
	for _, c := range sc.Clients {
		cfg.APIKeys = append(cfg.APIKeys, router.APIKeyConfig{ID: c.ID, SHA256: sha256Hex(simKey(c.ID)), Customer: c.ID, ClientRegion: c.Region})
	}
	return cfg
}

func simAPIKeys(sc *scenario.Scenario) map[string]string {
	keys := map[string]string{}
	for _, c := range sc.Clients {
		keys[c.ID] = simKey(c.ID)
	}
	return keys
}

func runFleet(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("fleet", flag.ContinueOnError)
	scn := fs.String("scenario", "steady-heterogeneous", "scenario `file`, or the name of a built-in scenario")
	speed := fs.Float64("speed", 1, "play scenario time this many times faster than the wall clock")
	basePort := fs.Int("base-port", 0, "first orchestrator listens on this port, the next on +1, ... (0: free ports)")
	if err := parseFlags(fs, env, args, "fleet [flags]\n\nStart the scenario's orchestrators as HTTP servers on 127.0.0.1 (capacity, queue, failures,\ndown, hang and the timeline as the scenario says) and print a router config for them."); err != nil {
		return err
	}
	sc, err := loadScenario(*scn)
	if err != nil {
		return err
	}
	cfg := fleet.DefaultConfig()
	cfg.Speed, cfg.BasePort = *speed, *basePort
	f, err := fleet.New(sc, cfg, deps.Deps{Logger: env.log.With("component", "fleet")})
	if err != nil {
		return err
	}
	if err := f.Start(ctx); err != nil {
		return err
	}
	rc := routerConfigFor(router.DefaultConfig(), sc, f.Orchestrators())
	fmt.Fprintf(env.stdout, "# fleet of scenario %s; router orchestrators (paste under router: in a config):\n", sc.Name)
	if err := printYAML(env.stdout, map[string]any{"orchestrators": rc.Orchestrators}); err != nil {
		return err
	}
	fmt.Fprintf(env.stdout, "# API keys for `loopgate load`: sim-key-<client id>\n")
	f.Wait()
	return nil
}

func runLoad(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	scn := fs.String("scenario", "steady-heterogeneous", "scenario `file`, or the name of a built-in scenario")
	target := fs.String("target", "http://127.0.0.1:8935", "router base `url`")
	speed := fs.Float64("speed", 1, "play scenario time this many times faster (use the fleet's value)")
	dur := fs.Duration("for", 0, "scenario time to send for (0: the scenario's duration)")
	if err := parseFlags(fs, env, args, "load [flags]\n\nSend the scenario's clients' requests (Poisson arrivals, class mix, timeline) to the router,\nwith API key sim-key-<client id>, and print a summary."); err != nil {
		return err
	}
	sc, err := loadScenario(*scn)
	if err != nil {
		return err
	}
	cfg := load.DefaultConfig()
	cfg.Target, cfg.Speed, cfg.Duration, cfg.APIKeys = *target, *speed, *dur, simAPIKeys(sc)
	g, err := load.New(sc, cfg, deps.Deps{Logger: env.log.With("component", "load"), Rand: rand.New(rand.NewPCG(uint64(sc.Seed), uint64(time.Now().UnixNano())))})
	if err != nil {
		return err
	}
	sum, err := g.Run(ctx)
	if err != nil {
		return err
	}
	return sum.WriteText(env.stdout)
}

// advertised is the fleet as discovery reports it.
func advertised(infos []fleet.OrchestratorInfo) []event.Orchestrator {
	out := make([]event.Orchestrator, len(infos))
	for i, in := range infos {
		out[i] = in.Orchestrator
	}
	return out
}
