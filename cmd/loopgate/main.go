// Command loopgate is the control plane of a Livepeer gateway. One binary,
// one subcommand per component; this package only wires the packages
// together. Run `loopgate help` for the list.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *cliEnv, args []string) error
	// batch: a command that does one job; SIGTERM or SIGINT before it is
	// done is a failure (exit 1). Servers stop cleanly on them (exit 0),
	// even while still starting.
	batch bool
}

// cliEnv is what every subcommand gets from main: streams and a logger.
type cliEnv struct {
	stdout, stderr io.Writer
	log            *slog.Logger
}

func commands() []command {
	return []command{
		{"dev", "run the whole loop in one process: embedded Kafka and ClickHouse, router, ingest, optimizer, a simulated fleet and its load", runDev, false},
		{"router", "serve the Livepeer AI API and route each request by policy", runRouter, false},
		{"optimizer", "recompute the routing policy from ClickHouse and publish it", runOptimizer, false},
		{"fleet", "start a scenario's simulated orchestrators as HTTP servers", runFleet, false},
		{"load", "send a scenario's client traffic to the router", runLoad, false},
		{"bench", "run routing policies on scenarios in the simulator and compare them", runBench, true},
		{"ingest", "consume loopgate.outcomes into ClickHouse (the distributed form)", runIngest, false},
		{"migrate", "create or upgrade the ClickHouse schema and exit", runMigrate, true},
		{"topics", "create the Kafka topics if missing and exit", runTopics, true},
		{"broker", "run the embedded Kafka-protocol broker on its own (development)", runBroker, false},
		{"query", "run one SQL query on the warehouse and print the result", runQuery, true},
		{"version", "print the version", func(_ context.Context, env *cliEnv, _ []string) error {
			fmt.Fprintln(env.stdout, "loopgate", version)
			return nil
		}, true},
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `loopgate — the control plane of a Livepeer gateway: it routes AI and video jobs
to orchestrators, records every outcome through Kafka into ClickHouse, and learns
from them.

Usage:
  loopgate <command> [flags]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Every command reads an optional YAML config (--config FILE) and LOOPGATE_*
environment variables; flags win over both. Run 'loopgate <command> --help'
for a command's flags, and 'loopgate dev --print-config' for every setting with
its default.
`)
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		return 0
	}
	level := slog.LevelInfo
	if os.Getenv("LOOPGATE_DEBUG") != "" {
		level = slog.LevelDebug
	}
	env := &cliEnv{stdout: stdout, stderr: stderr, log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		err := c.run(ctx, env, args[1:])
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		case !c.batch && ctx.Err() != nil && errors.Is(err, context.Canceled):
			// Stopped by a signal while starting: a clean stop for a server.
			return 0
		case errors.Is(err, errUsage):
			return 2
		default:
			fmt.Fprintf(stderr, "loopgate %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "loopgate: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

// errUsage marks an error already explained to the user by the flag set.
var errUsage = errors.New("usage")
