package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/internal/metrictest"
	"github.com/loopgate/loopgate/internal/testenv"
	"github.com/loopgate/loopgate/warehouse"
)

// TestRestartedRouterAppliesNewestPolicy publishes a history of policies,
// then starts a router as `loopgate router` does: by the time its listener
// accepts a connection it has applied exactly one policy, the newest, and
// none of the history before it.
func TestRestartedRouterAppliesNewestPolicy(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Kafka.EmbeddedPort = 0
	cfg.RouterAddr = testenv.FreeAddr(t)
	cfg.Orchestrators = []event.Orchestrator{{ID: "a", URL: "http://127.0.0.1:1", Classes: []event.ClassPrice{{Capability: event.CapLLM, Model: "m", PricePerUnit: 1e-6}}}}
	p := process{log: slog.New(slog.DiscardHandler), reg: prometheus.NewRegistry()}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	brokers, stop, err := kafka(ctx, cfg, true, p)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	plog, err := policyLog(cfg, brokers, p)
	if err != nil {
		t.Fatal(err)
	}
	defer plog.Close()
	const history = 6
	for v := uint64(1); v <= history; v++ {
		b, err := event.EncodePolicy(event.Policy{Schema: event.SchemaVersion, Version: v, CreatedMs: int64(v), Lambda: 0.5,
			Classes: []event.ClassPolicy{{Capability: event.CapLLM, Model: "m", Shares: []event.Share{{Orchestrator: "a", Share: 1}}}}})
		if err != nil {
			t.Fatal(err)
		}
		if err := plog.Publish(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	// A new process: its own registry and policy log, as after a restart.
	p = process{log: p.log, reg: prometheus.NewRegistry()}
	plog, err = policyLog(cfg, brokers, p)
	if err != nil {
		t.Fatal(err)
	}
	defer plog.Close()
	svc, err := newRouterService(cfg, cfg.RouterConfig(), brokers, plog, p)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.r.Close()
	done := make(chan error, 1)
	rctx, stopRouter := context.WithCancel(ctx)
	go func() { done <- svc.run(rctx, cfg.RouterAddr, p.log) }()
	for {
		c, err := net.DialTimeout("tcp", cfg.RouterAddr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the router never listened: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Serving: the policy must be in place already.
	pol, ok := svc.r.Policy()
	if !ok || pol.Version != history {
		t.Fatalf("when the router started serving it had policy %d (%v), want the newest, %d", pol.Version, ok, history)
	}
	if got := metrictest.Value(t, p.reg, "loopgate_router_policy_updates_total", "result", "applied"); got != 1 {
		t.Errorf("got %v policies applied before serving, want exactly 1 (the newest)", got)
	}
	stopRouter()
	if err := <-done; err != nil {
		t.Fatalf("router run: %v", err)
	}
}

// TestPolicySinkAuditsPublishes publishes through the optimizer's sink and
// finds the publish in the audit table, as the optimizer, with the version
// and λ.
func TestPolicySinkAuditsPublishes(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Kafka.EmbeddedPort = 0
	cfg.Warehouse.Backend, cfg.Warehouse.LibPath = warehouse.BackendEmbedded, testenv.ChdbLib(t)
	cfg.Warehouse.Database = fmt.Sprintf("loopgate_sink_%d", time.Now().UnixNano())
	p := process{log: slog.New(slog.DiscardHandler), reg: prometheus.NewRegistry()}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	brokers, stop, err := kafka(ctx, cfg, true, p)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	plog, err := policyLog(cfg, brokers, p)
	if err != nil {
		t.Fatal(err)
	}
	defer plog.Close()
	store, err := openWarehouse(ctx, cfg, p.deps("warehouse"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		store.Query(context.Background(), "DROP DATABASE IF EXISTS "+cfg.Warehouse.Database)
		store.Close()
	}()

	pol := event.Policy{Schema: event.SchemaVersion, Version: 7, CreatedMs: 1000, Lambda: 0.25,
		Classes: []event.ClassPolicy{{Capability: event.CapLLM, Model: "m", Shares: []event.Share{{Orchestrator: "a", Share: 1}}}}}
	b, err := event.EncodePolicy(pol)
	if err != nil {
		t.Fatal(err)
	}
	sink := policySink{log: plog, store: store, logger: p.log}
	if err := sink.PublishPolicy(ctx, pol, b); err != nil {
		t.Fatal(err)
	}
	rows, err := store.Query(ctx, "SELECT actor, action, detail FROM audit")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows.Values) != 1 {
		t.Fatalf("got %d audit rows, want 1", len(rows.Values))
	}
	got := fmt.Sprint(rows.Values[0]...)
	if want := fmt.Sprint("optimizer", "policy.publish", `{"version":7,"lambda":0.25}`); got != want {
		t.Errorf("got audit row %q, want %q", got, want)
	}
}
