package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"gopkg.in/yaml.v3"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/internal/testenv"
	"github.com/loopgate/loopgate/router"
	"github.com/loopgate/loopgate/sim/fleet"
	"github.com/loopgate/loopgate/sim/scenario"
	"github.com/loopgate/loopgate/warehouse"
)

// durableScenario: two orchestrators slow enough (p50 150 ms) that a kill
// always finds requests in flight.
const durableScenario = `
name: durable-e2e
seed: 3
duration: 600s
regions: [FRA]
rtt_ms: {same_region: 1}
classes:
  - {id: t2i, capability: text-to-image, model: stabilityai/sdxl-turbo, units: 262144, slo_ms: 2000, timeout_ms: 5000, value: 0.02}
clients:
  - {id: acme, region: FRA, rate: 10, mix: {t2i: 1.0}}
orchestrators:
  - {id: d-1, region: FRA, capacity: 16, queue: 32, classes: {t2i: {price: 1.0e-8, p50_ms: 150, p99_ms: 400}}}
  - {id: d-2, region: FRA, capacity: 16, queue: 32, classes: {t2i: {price: 1.0e-8, p50_ms: 150, p99_ms: 400}}}
`

// TestRouterSIGKILL runs `loopgate router` as a child process on the real
// Apache Kafka, sends it load, and SIGKILLs it three times mid-load,
// restarting it on the same data directory each time. Then ingest stores
// everything in the real ClickHouse server, and: every request the load
// saw answered is there exactly once, count() = uniqExact(id), and the
// requests in flight at the kills are there as interrupted.
func TestRouterSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("kills a router three times")
	}
	brokers := []string{testenv.Kafka(t)}
	chAddr := testenv.ClickHouse(t)
	sc, err := scenario.Parse([]byte(durableScenario))
	if err != nil {
		t.Fatal(err)
	}
	fcfg := fleet.DefaultConfig()
	fcfg.DisableTimeline = true
	fl, err := fleet.New(sc, fcfg, deps.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := fl.Start(ctx); err != nil {
		t.Fatal(err)
	}

	sfx := fmt.Sprint(time.Now().UnixNano())
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Kafka.Brokers = brokers
	cfg.Kafka.OutcomesTopic, cfg.Kafka.PolicyTopic, cfg.Kafka.DLQTopic = "kill.outcomes."+sfx, "kill.policy."+sfx, "kill.dlq."+sfx
	cfg.RouterAddr = testenv.FreeAddr(t)
	cfg.Admin.Addr = testenv.FreeAddr(t)
	cfg.PolicyWait = time.Second
	rcfg := routerConfigFor(cfg.Router, sc, fl.Orchestrators())
	cfg.Orchestrators, cfg.Router.APIKeys = rcfg.Orchestrators, rcfg.APIKeys
	path := filepath.Join(t.TempDir(), "router.yaml")
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}

	// The load: workers that send one request at a time and keep the ids of
	// the answered ones (any HTTP answer); a refused connection is a router
	// that is down, not an answer.
	var mu sync.Mutex
	answered := map[string]bool{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodPost, "http://"+cfg.RouterAddr+"/text-to-image", strings.NewReader(`{"prompt":"a cat","model_id":"stabilityai/sdxl-turbo"}`))
				req.Header.Set("Authorization", "Bearer "+simKey("acme"))
				resp, err := client.Do(req)
				if err != nil {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				resp.Body.Close()
				if id := resp.Header.Get(router.HeaderRequestID); id != "" {
					mu.Lock()
					answered[id] = true
					mu.Unlock()
				}
			}
		}()
	}

	// start runs a router and returns it with a channel closed once it has
	// exited (and its sockets are gone).
	start := func() (*os.Process, <-chan struct{}) {
		cmd := cliChild(t, "router", "--config", path)
		cmd.Stderr = testWriter{t}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		testenv.Eventually(t, 30*time.Second, "the router listening", func() bool {
			c, err := net.DialTimeout("tcp", cfg.RouterAddr, 200*time.Millisecond)
			if err == nil {
				c.Close()
			}
			return err == nil
		})
		return cmd.Process, exited
	}
	for kill := range 3 {
		proc, exited := start()
		time.Sleep(1500 * time.Millisecond)
		if err := proc.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-exited
		mu.Lock()
		t.Logf("kill %d: %d answered so far", kill+1, len(answered))
		mu.Unlock()
	}
	proc, exited := start() // recovers the last kill's requests, then serves
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	if err := proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("the last router is gone before SIGTERM: %v", err)
	}
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the router did not stop within 30 s of SIGTERM")
	}

	// Ingest everything into the ClickHouse server.
	cfg.Warehouse.Backend, cfg.Warehouse.Addr = warehouse.BackendServer, chAddr
	cfg.Warehouse.Database = "loopgate_kill_" + sfx
	cfg.Ingest.Group, cfg.Ingest.BatchWait = "kill-"+sfx, 200*time.Millisecond
	p := process{log: slog.New(slog.DiscardHandler), reg: prometheus.NewRegistry()}
	ictx, stopIngest := context.WithCancel(ctx)
	defer stopIngest()
	store := startIngest(t, ictx, cfg, brokers, p)

	mu.Lock()
	want := len(answered)
	mu.Unlock()
	var rows *warehouse.Rows
	testenv.Eventually(t, 60*time.Second, "every answered request in ClickHouse", func() bool {
		var err error
		rows, err = store.Query(ctx, "SELECT id, toString(status) FROM requests")
		if err != nil {
			return false
		}
		found := 0
		for _, r := range rows.Values {
			if answered[r[0].(string)] {
				found++
			}
		}
		return found == want
	})
	stats, err := store.Query(ctx, "SELECT count(), uniqExact(id), countIf(status = 'interrupted') FROM requests")
	if err != nil {
		t.Fatal(err)
	}
	n, uniq, interrupted := i64any(stats.Values[0][0]), i64any(stats.Values[0][1]), i64any(stats.Values[0][2])
	t.Logf("%d answered; ClickHouse: %d rows, %d distinct ids, %d interrupted", want, n, uniq, interrupted)
	if n != uniq {
		t.Errorf("got %d rows for %d ids, want each once", n, uniq)
	}
	if interrupted == 0 {
		t.Error("got no interrupted request after three kills under load, want the requests in flight at each kill")
	}
	for _, r := range rows.Values {
		id, status := r[0].(string), r[1].(string)
		if !answered[id] && status != string(event.StatusInterrupted) {
			t.Errorf("request %s (%s) is in ClickHouse but was neither answered nor interrupted", id, status)
		}
	}
}

// testWriter sends a child's stderr to the test log, kept short.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if strings.Contains(line, "level=ERROR") || strings.Contains(line, "interrupted") || strings.HasPrefix(line, "loopgate ") {
			w.t.Log(line)
		}
	}
	return len(b), nil
}
