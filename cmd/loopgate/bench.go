package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/loopgate/loopgate/sim"
	"github.com/loopgate/loopgate/sim/closedloop"
	"github.com/loopgate/loopgate/sim/plot"
	"github.com/loopgate/loopgate/sim/scenario"
	"github.com/loopgate/loopgate/sim/scenarios"
)

// Files bench writes per scenario under --out DIR/<scenario>/.
const (
	benchReportFile  = "report.json"
	benchCDFFile     = "latency-cdf.png"
	benchSLOFile     = "slo-attainment.png"
	benchSharePrefix = "traffic-share-" // + policy + ".png"
)

// listFlag is a repeatable flag whose values may also be comma-separated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// benchRegistry is every policy bench can run: the baselines and the
// product's policy (package closedloop).
func benchRegistry() sim.Registry {
	reg := sim.Baselines()
	reg[closedloop.Name] = closedloop.Constructor(closedloop.DefaultConfig())
	return reg
}

func runBench(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var scns, pols listFlag
	fs.Var(&scns, "scenario", "scenario `file` or built-in name; repeatable or comma-separated; \"all\": every built-in scenario")
	fs.Var(&pols, "policies", "comma-separated `list` of policies (default: all: "+strings.Join(knownPolicies(benchRegistry()), ",")+")")
	out := fs.String("out", "", "write `dir`/<scenario>/report.json and PNG plots there")
	share := fs.String("share-policy", "", "`policy` whose traffic share per orchestrator is plotted (default: the last of --policies)")
	if err := parseFlags(fs, env, args, "bench --scenario FILE... [flags]\n\nRun every policy on each scenario in virtual time (same seed, same arrivals) and print a\nMarkdown table per scenario, with the gap each policy closes between livepeer and the oracle."); err != nil {
		return err
	}
	reg := benchRegistry()
	known := knownPolicies(reg)
	if len(pols) == 0 {
		pols = known
	}
	for _, p := range pols {
		if _, ok := reg[p]; !ok {
			fmt.Fprintf(env.stderr, "unknown policy %q; known policies: %s\n", p, strings.Join(known, ", "))
			return errUsage
		}
	}
	if *share == "" {
		*share = pols[len(pols)-1]
	} else if !slices.Contains(pols, *share) {
		fmt.Fprintf(env.stderr, "--share-policy %q is not among --policies (%s)\n", *share, strings.Join(pols, ","))
		return errUsage
	}
	if len(scns) == 0 {
		fmt.Fprintln(env.stderr, "--scenario is required")
		fs.Usage()
		return errUsage
	}
	scs, err := loadBenchScenarios(scns)
	if err != nil {
		return err
	}
	prog := newProgress(env.stderr, len(scs)*len(pols))
	defer prog.done()
	var reps []*sim.Report
	for i, sc := range scs {
		var runs []plot.Run
		rep, err := sim.BenchRuns(ctx, sc, pols, sim.BenchOptions{Registry: reg}, func(name string, res *sim.Result) {
			prog.step(sc.Name, name)
			if *out != "" {
				runs = append(runs, plot.Run{Policy: name, Result: res})
			}
		})
		if err != nil {
			if ctx.Err() != nil {
				fmt.Fprintf(env.stderr, "loopgate bench: interrupted during %s; no report written for it\n", sc.Name)
			}
			return err
		}
		if i > 0 {
			fmt.Fprintln(env.stdout)
		}
		if err := rep.WriteMarkdown(env.stdout); err != nil {
			return err
		}
		if *out != "" {
			if err := writeBenchOutput(filepath.Join(*out, sc.Name), sc, rep, runs, *share); err != nil {
				return err
			}
		}
		reps = append(reps, rep)
	}
	return sim.WriteSummary(env.stdout, reps)
}

// knownPolicies lists reg's names: the baselines in report order, then any
// others sorted.
func knownPolicies(reg sim.Registry) []string {
	var out, extra []string
	for _, n := range sim.BaselineNames() {
		if _, ok := reg[n]; ok {
			out = append(out, n)
		}
	}
	for n := range reg {
		if !slices.Contains(out, n) {
			extra = append(extra, n)
		}
	}
	sort.Strings(extra)
	return append(out, extra...)
}

// loadBenchScenarios resolves files, built-in names and "all", refusing
// two scenarios with the same name (their outputs would collide).
func loadBenchScenarios(names []string) ([]*scenario.Scenario, error) {
	var expanded []string
	for _, n := range names {
		if n == "all" {
			expanded = append(expanded, scenarios.Names()...)
		} else {
			expanded = append(expanded, n)
		}
	}
	var out []*scenario.Scenario
	seen := map[string]string{}
	for _, n := range expanded {
		sc, err := loadScenario(n)
		if err != nil {
			return nil, err
		}
		if prev, ok := seen[sc.Name]; ok {
			if prev == n {
				continue // named twice, e.g. "all" and a built-in name
			}
			return nil, fmt.Errorf("scenario name %q comes from both %s and %s", sc.Name, prev, n)
		}
		seen[sc.Name] = n
		out = append(out, sc)
	}
	return out, nil
}

// writeBenchOutput writes report.json and the plots of one scenario to dir.
func writeBenchOutput(dir string, sc *scenario.Scenario, rep *sim.Report, runs []plot.Run, share string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	cfg := plot.DefaultConfig()
	shareRun := runs[len(runs)-1]
	for _, r := range runs {
		if r.Policy == share {
			shareRun = r
		}
	}
	files := []struct {
		name  string
		write func(io.Writer) error
	}{
		{benchReportFile, rep.WriteJSON},
		{benchCDFFile, func(w io.Writer) error { return plot.LatencyCDF(w, sc, runs, cfg) }},
		{benchSLOFile, func(w io.Writer) error { return plot.SLOAttainment(w, sc, runs, cfg) }},
		{benchSharePrefix + shareRun.Policy + ".png", func(w io.Writer) error { return plot.TrafficShare(w, sc, shareRun, cfg) }},
	}
	for _, f := range files {
		var buf bytes.Buffer
		if err := f.write(&buf); err != nil {
			return fmt.Errorf("%s of %s: %w", f.name, sc.Name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, f.name), buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// progress writes "[k/n] scenario policy" over itself on stderr, only when
// stderr is the process's terminal: logs and pipes stay clean.
type progress struct {
	w    io.Writer // nil: silent
	k, n int
}

func newProgress(stderr io.Writer, n int) *progress {
	p := &progress{n: n}
	if f, ok := stderr.(*os.File); ok && f == os.Stderr {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.w = stderr
		}
	}
	return p
}

func (p *progress) step(scenario, policy string) {
	p.k++
	if p.w != nil {
		fmt.Fprintf(p.w, "\r\033[K[%d/%d] %s: %s done", p.k, p.n, scenario, policy)
	}
}

func (p *progress) done() {
	if p.w != nil {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
