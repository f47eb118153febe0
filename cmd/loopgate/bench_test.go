package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"image/png"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func benchEnv() (*cliEnv, *bytes.Buffer, *bytes.Buffer) {
	var stdout, stderr bytes.Buffer
	return &cliEnv{stdout: &stdout, stderr: &stderr, log: slog.New(slog.NewTextHandler(io.Discard, nil))}, &stdout, &stderr
}

// TestBenchReport runs bench twice on a small built-in scenario and checks
// report.json against the scenario README's format, that the plots are
// PNGs, and that the same seed gives byte-identical reports.
func TestBenchReport(t *testing.T) {
	const scn = "price-shift"
	var reports [2][]byte
	for i := range reports {
		dir := t.TempDir()
		env, stdout, stderr := benchEnv()
		if err := runBench(context.Background(), env, []string{"--scenario", scn, "--policies", "random,livepeer", "--out", dir}); err != nil {
			t.Fatalf("run %d: %v (stderr: %s)", i, err, stderr)
		}
		if stderr.Len() != 0 {
			t.Errorf("got stderr %q, want none (not a terminal)", stderr)
		}
		if !strings.Contains(stdout.String(), "| random |") || !strings.Contains(stdout.String(), "gap closed") {
			t.Errorf("got stdout %q, want a Markdown table with random and gap closed", stdout)
		}
		b, err := os.ReadFile(filepath.Join(dir, scn, "report.json"))
		if err != nil {
			t.Fatal(err)
		}
		reports[i] = b
		for _, f := range []string{"latency-cdf.png", "slo-attainment.png", "traffic-share-livepeer.png"} {
			fh, err := os.Open(filepath.Join(dir, scn, f))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := png.Decode(fh); err != nil {
				t.Errorf("%s: %v", f, err)
			}
			fh.Close()
		}
	}
	if !bytes.Equal(reports[0], reports[1]) {
		t.Errorf("report.json differs between two runs with the same seed:\n%s\n---\n%s", reports[0], reports[1])
	}

	var rep struct {
		Scenario string           `json:"scenario"`
		Seed     *int64           `json:"seed"`
		Policies []map[string]any `json:"policies"`
	}
	if err := json.Unmarshal(reports[0], &rep); err != nil {
		t.Fatalf("parse report.json: %v", err)
	}
	if rep.Scenario != scn || rep.Seed == nil {
		t.Errorf("got scenario %q seed %v, want %q and a seed", rep.Scenario, rep.Seed, scn)
	}
	if len(rep.Policies) != 2 {
		t.Fatalf("got %d policies, want 2", len(rep.Policies))
	}
	fields := []string{"name", "requests", "success_rate", "slo_attainment", "latency_ms", "cost_per_request", "loss_per_request", "extra_attempts", "recovery_s"}
	for _, p := range rep.Policies {
		for _, f := range fields {
			if _, ok := p[f]; !ok {
				t.Errorf("policy %v: no field %q", p["name"], f)
			}
		}
		if lat, ok := p["latency_ms"].(map[string]any); ok {
			for _, q := range []string{"p50", "p95", "p99", "p999"} {
				if _, ok := lat[q]; !ok {
					t.Errorf("policy %v: latency_ms has no %q", p["name"], q)
				}
			}
		}
	}
}

func TestBenchUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // on stderr
	}{
		{"unknown policy", []string{"--scenario", "price-shift", "--policies", "random,nope"}, "known policies: random, round-robin"},
		{"no scenario", []string{}, "--scenario is required"},
		{"share not run", []string{"--scenario", "price-shift", "--policies", "random", "--share-policy", "oracle"}, "not among --policies"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, _, stderr := benchEnv()
			err := runBench(context.Background(), env, tt.args)
			if !errors.Is(err, errUsage) {
				t.Errorf("got error %v, want errUsage", err)
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("got stderr %q, want it to contain %q", stderr, tt.want)
			}
		})
	}
}

func TestBenchUnknownScenario(t *testing.T) {
	env, _, _ := benchEnv()
	err := runBench(context.Background(), env, []string{"--scenario", "no-such-scenario"})
	if err == nil || errors.Is(err, errUsage) || !strings.Contains(err.Error(), "not a built-in scenario") {
		t.Errorf("got %v, want an error naming the built-in scenarios", err)
	}
}

// TestBenchFindsCachedChdb runs the loopgate policy through a loopgate
// process with no libchdb variable set: the library is found in the cache
// `make run` and `make test` fill.
func TestBenchFindsCachedChdb(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tiny.yaml")
	if err := os.WriteFile(path, []byte(tinyBenchScenario), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := cliCommand(t, "bench", "--scenario", path, "--policies", "random,loopgate")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("loopgate bench: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "| loopgate |") {
		t.Errorf("got output %q, want a table row for loopgate", out)
	}
}

// TestBenchStopsOnSignal sends SIGTERM and then SIGINT to loopgate bench in
// the middle of a run of the loopgate policy (about half a minute of work):
// each time the process must stop within 2 s, say so, and exit non-zero.
func TestBenchStopsOnSignal(t *testing.T) {
	for _, sig := range []os.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := cliCommand(t, "bench", "--scenario", "steady-heterogeneous", "--policies", "loopgate")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				t.Fatalf("bench ended before the signal: %v\n%s", err, &stderr)
			case <-time.After(3 * time.Second):
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				var exit *exec.ExitError
				if !errors.As(err, &exit) || exit.ExitCode() == 0 {
					t.Errorf("got %v after %v, want a non-zero exit", err, sig)
				}
				if !strings.Contains(stderr.String(), "interrupted") {
					t.Errorf("got stderr %q, want it to say the run was interrupted", &stderr)
				}
			case <-time.After(2 * time.Second):
				cmd.Process.Kill()
				<-done
				t.Fatalf("bench still running 2 s after %v\n%s", sig, &stderr)
			}
		})
	}
}

const tinyBenchScenario = `
name: bench-cli-tiny
seed: 5
duration: 30s
warmup: 5s
regions: [FRA]
rtt_ms: {same_region: 4}
classes:
  - {id: t2i, capability: text-to-image, model: stabilityai/sdxl-turbo, units: 1048576, slo_ms: 3000, timeout_ms: 10000, value: 0.02}
clients:
  - {id: acme, region: FRA, rate: 5, mix: {t2i: 1.0}}
orchestrators:
  - {id: fra-1, region: FRA, stake: 10, capacity: 4, queue: 8, classes: {t2i: {price: 2.0e-9, p50_ms: 700, p99_ms: 1800}}}
  - {id: fra-2, region: FRA, stake: 10, capacity: 4, queue: 8, classes: {t2i: {price: 3.0e-9, p50_ms: 800, p99_ms: 2000}}}
`

func TestParseLambdas(t *testing.T) {
	tests := []struct {
		in      []string
		want    []float64
		wantErr bool
	}{
		{[]string{"0", "0.25", "1"}, []float64{0, 0.25, 1}, false},
		{[]string{"1.5"}, nil, true},
		{[]string{"-0.1"}, nil, true},
		{[]string{"x"}, nil, true},
		{[]string{"NaN"}, nil, true},
		{[]string{"0.5", "0.5"}, nil, true},
	}
	for _, tt := range tests {
		got, err := parseLambdas(tt.in)
		if (err != nil) != tt.wantErr || !tt.wantErr && !slices.Equal(got, tt.want) {
			t.Errorf("parseLambdas(%q): got %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}
