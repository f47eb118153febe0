package main

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/internal/testenv"
	"github.com/loopgate/loopgate/sim/closedloop"
	"github.com/loopgate/loopgate/sim/fleet"
	"github.com/loopgate/loopgate/sim/load"
	"github.com/loopgate/loopgate/sim/scenario"
	"github.com/loopgate/loopgate/warehouse"
)

// loopScenario: one client in FRA sending 40 requests/s of one class to
// three identical orchestrators. The test breaks and mends b-2 by hand.
const loopScenario = `
name: loop-e2e
seed: 11
duration: 600s
warmup: 0s
regions: [FRA]
rtt_ms: {same_region: 1}
classes:
  - id: t2i
    capability: text-to-image
    model: stabilityai/sdxl-turbo
    units: 262144
    slo_ms: 400
    timeout_ms: 3000
    value: 0.02
clients:
  - {id: acme, region: FRA, rate: 40, mix: {t2i: 1.0}}
orchestrators:
  - {id: b-1, region: FRA, stake: 1, capacity: 8, queue: 16, fail: 0, fail_mode: fast, classes: {t2i: {price: 1.0e-8, p50_ms: 40, p99_ms: 120}}}
  - {id: b-2, region: FRA, stake: 1, capacity: 8, queue: 16, fail: 0, fail_mode: fast, classes: {t2i: {price: 1.0e-8, p50_ms: 40, p99_ms: 120}}}
  - {id: b-3, region: FRA, stake: 1, capacity: 8, queue: 16, fail: 0, fail_mode: fast, classes: {t2i: {price: 1.0e-8, p50_ms: 40, p99_ms: 120}}}
`

// share is b's share in the router's current policy for the test class.
func share(p event.Policy, orch string) (float64, bool) {
	for _, c := range p.Classes {
		if c.Capability != "text-to-image" {
			continue
		}
		for _, s := range c.Shares {
			if s.Orchestrator == orch {
				return s.Share, true
			}
		}
		return 0, true
	}
	return 0, false
}

// TestClosedLoop runs router, ingest and optimizer over a simulated fleet
// on real services, breaks one orchestrator (60% of its attempts fail),
// and measures the loop: fault → policy share below 5% → router traffic
// moved; then mends it and waits for exploration to bring it back.
func TestClosedLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("closed loop takes a minute")
	}
	setups := []struct {
		name    string
		brokers func(t *testing.T) []string
		ware    func(t *testing.T, cfg *Config)
	}{
		{"kafka+server", func(t *testing.T) []string { return []string{testenv.Kafka(t)} }, func(t *testing.T, cfg *Config) {
			cfg.Warehouse.Backend, cfg.Warehouse.Addr = warehouse.BackendServer, testenv.ClickHouse(t)
		}},
		{"embedded+embedded", nil, func(t *testing.T, cfg *Config) {
			cfg.Warehouse.Backend, cfg.Warehouse.LibPath = warehouse.BackendEmbedded, testenv.ChdbLib(t)
		}},
	}
	for _, s := range setups {
		t.Run(s.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.DataDir = t.TempDir()
			cfg.Warehouse.Database = fmt.Sprintf("loopgate_loop_%d", time.Now().UnixNano())
			sfx := fmt.Sprint(time.Now().UnixNano())
			cfg.Kafka.OutcomesTopic, cfg.Kafka.PolicyTopic, cfg.Kafka.DLQTopic = "loop.outcomes."+sfx, "loop.policy."+sfx, "loop.dlq."+sfx
			cfg.Kafka.EmbeddedPort = 0
			cfg.Ingest.BatchWait = 200 * time.Millisecond
			cfg.Ingest.Group = "loop-" + sfx
			cfg.RouterAddr = testenv.FreeAddr(t)
			s.ware(t, &cfg)
			if s.brokers != nil {
				cfg.Kafka.Brokers = s.brokers(t)
			}
			runLoopTest(t, cfg)
		})
	}
}

func runLoopTest(t *testing.T, cfg Config) {
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	p := process{log: log, reg: prometheus.NewRegistry()}
	sc, err := scenario.Parse([]byte(loopScenario))
	if err != nil {
		t.Fatal(err)
	}

	brokers, stopKafka, err := kafka(ctx, cfg, true, p)
	if err != nil {
		t.Fatal(err)
	}
	defer stopKafka()
	store := startIngest(t, ctx, cfg, brokers, p)

	fcfg := fleet.DefaultConfig()
	fcfg.DisableTimeline = true
	fl, err := fleet.New(sc, fcfg, deps.Deps{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := fl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	rcfg := routerConfigFor(cfg.Router, sc, fl.Orchestrators())
	plog, err := policyLog(cfg, brokers, p)
	if err != nil {
		t.Fatal(err)
	}
	defer plog.Close()
	rsvc, err := newRouterService(cfg, rcfg, brokers, plog, p)
	if err != nil {
		t.Fatal(err)
	}
	go rsvc.run(ctx, cfg.RouterAddr, log)

	ocfg := cfg.Optimizer
	ocfg.Period, ocfg.Window = time.Second, 10*time.Second
	ocfg.Ejection.Cooldown = 10 * time.Second
	ocfg.Catalog = closedloop.Catalog(sc, advertised(fl.Orchestrators()))
	osvc, err := newOptimizerService(ocfg, DefaultConfig().Livepeer.Priors, plog, store, p)
	if err != nil {
		t.Fatal(err)
	}
	go osvc.opt.Run(ctx)

	lcfg := load.DefaultConfig()
	lcfg.Target, lcfg.APIKeys = "http://"+cfg.RouterAddr, simAPIKeys(sc)
	gen, err := load.New(sc, lcfg, deps.Deps{Logger: log, Rand: rand.New(rand.NewPCG(1, 2))})
	if err != nil {
		t.Fatal(err)
	}
	go gen.Run(ctx)

	// Steady state: a policy that gives b-2 a real share.
	testenv.Eventually(t, 60*time.Second, "a first policy with b-2 in it", func() bool {
		p, ok := rsvc.r.Policy()
		sh, found := share(p, "b-2")
		return ok && found && sh > 0.15
	})

	fault := time.Now()
	fail := 0.6
	if err := fl.Set(ctx, "b-2", scenario.Patch{Fail: &fail}); err != nil {
		t.Fatal(err)
	}
	var moved time.Time
	testenv.Eventually(t, 10*time.Second, "b-2's share below 5% within 10 s of the fault", func() bool {
		p, _ := rsvc.r.Policy()
		sh, _ := share(p, "b-2")
		if sh < 0.05 {
			moved = time.Now()
			return true
		}
		return false
	})
	t.Logf("loop latency, fault → policy share < 5%% in the router: %v", moved.Sub(fault).Round(10*time.Millisecond))

	// The router's traffic follows: b-2's part of the attempts started in
	// the 3 s after the policy moved.
	time.Sleep(4 * time.Second)
	frac := attemptFraction(t, store, "b-2", moved, moved.Add(3*time.Second))
	t.Logf("b-2's part of the attempts in the 3 s after the policy moved: %.3f", frac)
	if frac > 0.10 {
		t.Errorf("router traffic to b-2 after the policy moved: got %.3f of attempts, want < 0.10", frac)
	}

	healed := 0.0
	if err := fl.Set(ctx, "b-2", scenario.Patch{Fail: &healed}); err != nil {
		t.Fatal(err)
	}
	mended := time.Now()
	testenv.Eventually(t, 90*time.Second, "b-2's share back above 15% after it recovers", func() bool {
		p, _ := rsvc.r.Policy()
		sh, _ := share(p, "b-2")
		return sh > 0.15
	})
	t.Logf("recovery, mended → share > 15%%: %v", time.Since(mended).Round(10*time.Millisecond))
}

// attemptFraction is orch's part of the attempts started in [from, to).
func attemptFraction(t *testing.T, store *warehouse.Store, orch string, from, to time.Time) float64 {
	t.Helper()
	rows, err := store.Query(context.Background(), fmt.Sprintf(
		"SELECT toFloat64(countIf(orchestrator = '%s')), toFloat64(count()) FROM attempts WHERE start_ms >= %d AND start_ms < %d",
		orch, from.UnixMilli(), to.UnixMilli()))
	if err != nil {
		t.Fatal(err)
	}
	n, total := rows.Values[0][0].(float64), rows.Values[0][1].(float64)
	if total < 30 {
		t.Fatalf("only %v attempts in the window: the load is not flowing", total)
	}
	return n / total
}

// startIngest opens cfg's warehouse (a database the test drops at the
// end) and runs an ingest pipeline into it from brokers until ctx ends;
// the caller must cancel ctx before the test ends.
func startIngest(t *testing.T, ctx context.Context, cfg Config, brokers []string, p process) *warehouse.Store {
	t.Helper()
	store, err := openWarehouse(ctx, cfg, p.deps("warehouse"))
	if err != nil {
		t.Fatal(err)
	}
	pipe, err := newIngestPipeline(cfg, brokers, store, p)
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { pipe.Run(ctx); close(done) }()
	t.Cleanup(func() {
		<-done // the caller cancels ctx (defer) before the cleanups run
		pipe.Close()
		store.Query(context.Background(), "DROP DATABASE IF EXISTS "+cfg.Warehouse.Database)
		store.Close()
	})
	return store
}
