package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
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
// product's policy (package closedloop), each behind the scenario's
// gateway section when it has one (closedloop.Gated): the same gateway in
// front of every policy.
// routers > 1 runs the product as that many routers sharing one slow loop.
func benchRegistry(routers int) sim.Registry {
	reg := sim.Baselines()
	cfg := closedloop.DefaultConfig()
	cfg.Routers = routers
	reg[closedloop.Name] = closedloop.Constructor(cfg)
	for name, ctor := range reg {
		reg[name] = closedloop.Gated(ctor)
	}
	return reg
}

func runBench(ctx context.Context, env *cliEnv, args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var scns, pols listFlag
	fs.Var(&scns, "scenario", "scenario `file` or built-in name; repeatable or comma-separated; \"all\": every built-in scenario")
	fs.Var(&pols, "policies", "comma-separated `list` of policies (default: all: "+strings.Join(knownPolicies(benchRegistry(1)), ",")+")")
	out := fs.String("out", "", "write `dir`/<scenario>/report.json and PNG plots there")
	share := fs.String("share-policy", "", "`policy` whose traffic share per orchestrator is plotted (default: the last of --policies)")
	routers := fs.Int("routers", 1, "run the loopgate policy as `N` routers behind a round-robin load balancer: N fast loops (request i to router i mod N), one slow loop")
	var lambdas listFlag
	fs.Var(&lambdas, "lambdas", "comma-separated `list` of λ in [0, 1]: run only the loopgate policy, once at each fixed λ, and compare the optimizer's predicted cost per request and SLO attainment with the measured ones over the steady phase (after the warmup, outside ±60 s of every timeline event); writes "+benchFrontierJSON+" and "+benchFrontierPNG+" under --out")
	if err := parseFlags(fs, env, args, "bench --scenario FILE... [flags]\n\nRun every policy on each scenario in virtual time (same seed, same arrivals) and print a\nMarkdown table per scenario, with the gap each policy closes between livepeer and the oracle."); err != nil {
		return err
	}
	if len(lambdas) > 0 {
		if len(pols) > 0 && !slices.Equal(pols, []string{closedloop.Name}) {
			fmt.Fprintf(env.stderr, "--lambdas runs the %s policy only; drop --policies\n", closedloop.Name)
			return errUsage
		}
		if len(scns) == 0 {
			fmt.Fprintln(env.stderr, "--scenario is required")
			return errUsage
		}
		lams, err := parseLambdas(lambdas)
		if err != nil {
			fmt.Fprintln(env.stderr, err)
			return errUsage
		}
		scs, err := loadBenchScenarios(scns)
		if err != nil {
			return err
		}
		return runFrontierBench(ctx, env, scs, lams, *out)
	}
	if *routers < 1 {
		fmt.Fprintf(env.stderr, "--routers %d: must be at least 1\n", *routers)
		return errUsage
	}
	reg := benchRegistry(*routers)
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

// Files bench --lambdas writes per scenario under --out DIR/<scenario>/.
const (
	benchFrontierJSON = "frontier.json"
	benchFrontierPNG  = "frontier.png"
)

// parseLambdas reads --lambdas: numbers in [0, 1], each once.
func parseLambdas(vals []string) ([]float64, error) {
	var out []float64
	for _, v := range vals {
		l, err := strconv.ParseFloat(v, 64)
		if err != nil || !(l >= 0 && l <= 1) {
			return nil, fmt.Errorf("--lambdas %q: want numbers in [0, 1]", v)
		}
		if slices.Contains(out, l) {
			return nil, fmt.Errorf("--lambdas: %v given twice", l)
		}
		out = append(out, l)
	}
	return out, nil
}

// frontierReport is DIR/<scenario>/frontier.json.
type frontierReport struct {
	Scenario    string            `json:"scenario"`
	Seed        int64             `json:"seed"`
	MarginS     float64           `json:"margin_s"`     // the steady phase keeps this far from timeline events
	SteadyPhase []steadyInterval  `json:"steady_phase"` // by arrival, virtual seconds
	Runs        []frontierRunJSON `json:"runs"`         // one per λ, in --lambdas order
}

type steadyInterval struct {
	FromS float64 `json:"from_s"`
	ToS   float64 `json:"to_s"`
}

type frontierRunJSON struct {
	closedloop.FrontierCheck
	CostError      float64 `json:"cost_error"`       // (predicted − measured) / measured
	SLOErrorPoints float64 `json:"slo_error_points"` // predicted − measured, percentage points
}

// runFrontierBench runs the loopgate policy on each scenario at each λ and
// reports the optimizer's steady-phase prediction against the simulator's
// measurement: a Markdown table per scenario on stdout, and under out the
// JSON and a plot.
func runFrontierBench(ctx context.Context, env *cliEnv, scs []*scenario.Scenario, lambdas []float64, out string) error {
	prog := newProgress(env.stderr, len(scs)*len(lambdas))
	defer prog.done()
	for i, sc := range scs {
		phase := closedloop.SteadyPhase(sc, closedloop.SteadyMargin)
		rep := frontierReport{Scenario: sc.Name, Seed: sc.Seed, MarginS: closedloop.SteadyMargin.Seconds(), SteadyPhase: []steadyInterval{}}
		for _, iv := range phase {
			rep.SteadyPhase = append(rep.SteadyPhase, steadyInterval{iv.From.Seconds(), iv.To.Seconds()})
		}
		for _, l := range lambdas {
			cfg := closedloop.DefaultConfig()
			cfg.Optimizer.Lambda = l
			var pol *closedloop.Policy
			name := fmt.Sprintf("%s@%g", closedloop.Name, l)
			reg := sim.Registry{name: func(ctx context.Context, e sim.Env) (sim.Policy, error) {
				p, err := closedloop.New(ctx, cfg, e)
				if err != nil {
					return nil, err
				}
				pol = p
				return p, nil
			}}
			var res *sim.Result
			if _, err := sim.BenchRuns(ctx, sc, []string{name}, sim.BenchOptions{Registry: reg}, func(_ string, r *sim.Result) { res = r }); err != nil {
				return err
			}
			prog.step(sc.Name, name)
			c := closedloop.CheckFrontier(sc, res, pol.Predictions(), l, phase)
			rep.Runs = append(rep.Runs, frontierRunJSON{FrontierCheck: c, CostError: c.CostError(), SLOErrorPoints: c.SLOErrorPoints()})
		}
		if i > 0 {
			fmt.Fprintln(env.stdout)
		}
		if err := writeFrontierMarkdown(env.stdout, &rep); err != nil {
			return err
		}
		if out != "" {
			if err := writeFrontierOutput(filepath.Join(out, sc.Name), sc, &rep); err != nil {
				return err
			}
		}
	}
	return nil
}

func writeFrontierMarkdown(w io.Writer, rep *frontierReport) error {
	var spans []string
	for _, iv := range rep.SteadyPhase {
		spans = append(spans, fmt.Sprintf("%g–%g s", iv.FromS, iv.ToS))
	}
	if len(spans) == 0 {
		spans = []string{"empty"}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "### %s (seed %d): frontier, predicted vs measured\n\n", rep.Scenario, rep.Seed)
	fmt.Fprintf(&b, "steady phase (by arrival): %s\n\n", strings.Join(spans, ", "))
	b.WriteString("| λ | rounds | requests | cost/req predicted | cost/req measured | cost error | SLO predicted | SLO measured | SLO error (points) | p95 ms predicted | p95 ms measured |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range rep.Runs {
		fmt.Fprintf(&b, "| %g | %d | %d | %.5f | %.5f | %+.1f %% | %.4f | %.4f | %+.2f | %.0f | %.0f |\n",
			r.Lambda, r.Steps, r.Requests, r.Predicted.CostPerRequest, r.Measured.CostPerRequest, 100*r.CostError,
			r.Predicted.SLOAttainment, r.Measured.SLOAttainment, r.SLOErrorPoints, r.Predicted.P95Ms, r.Measured.P95Ms)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeFrontierOutput(dir string, sc *scenario.Scenario, rep *frontierReport) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return fmt.Errorf("%s of %s: %w", benchFrontierJSON, sc.Name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, benchFrontierJSON), append(js, '\n'), 0o644); err != nil {
		return err
	}
	pts := make([]plot.FrontierPoint, len(rep.Runs))
	for i, r := range rep.Runs {
		pts[i] = plot.FrontierPoint{Lambda: r.Lambda, PredictedCost: r.Predicted.CostPerRequest, PredictedSLO: r.Predicted.SLOAttainment,
			MeasuredCost: r.Measured.CostPerRequest, MeasuredSLO: r.Measured.SLOAttainment}
	}
	var buf bytes.Buffer
	if err := plot.Frontier(&buf, sc, pts, plot.DefaultConfig()); err != nil {
		return fmt.Errorf("%s of %s: %w", benchFrontierPNG, sc.Name, err)
	}
	return os.WriteFile(filepath.Join(dir, benchFrontierPNG), buf.Bytes(), 0o644)
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
