package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
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

// The chaos suite: the whole event path under load from a simulated fleet,
// on the real Apache Kafka and ClickHouse server, through one fault each —
// a router SIGKILLed three times, an ingest SIGKILLed three times, the
// broker stopped and started, ClickHouse stopped and started. Each ends
// with the same count: every request the load saw answered is in
// ClickHouse exactly once, count() = uniqExact(id), nothing else is there
// but the requests in flight at a router kill (status interrupted), and
// the router's spill is empty.

// chaosScenario: two orchestrators slow enough (p50 150 ms) that a kill
// always finds requests in flight.
const chaosScenario = `
name: chaos-e2e
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

// rig is one chaos run: a simulated fleet, a config file shared by the
// loopgate processes, and the load's record of answered requests.
type rig struct {
	t    *testing.T
	ctx  context.Context
	cfg  Config
	path string

	mu       sync.Mutex
	answered map[string]bool
	stopLoad chan struct{}
	loadDone sync.WaitGroup
}

func newRig(t *testing.T, brokers []string, chAddr string) *rig {
	t.Helper()
	return newRigFor(t, brokers, chAddr, 3*time.Minute)
}

// newRigFor is newRig with a fleet (and context) that lasts d.
func newRigFor(t *testing.T, brokers []string, chAddr string, d time.Duration) *rig {
	t.Helper()
	if testing.Short() {
		t.Skip("chaos runs the whole event path")
	}
	sc, err := scenario.Parse([]byte(chaosScenario))
	if err != nil {
		t.Fatal(err)
	}
	fcfg := fleet.DefaultConfig()
	fcfg.DisableTimeline = true
	fl, err := fleet.New(sc, fcfg, deps.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	if err := fl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	sfx := fmt.Sprint(time.Now().UnixNano())
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Kafka.Brokers = brokers
	cfg.Kafka.OutcomesTopic, cfg.Kafka.PolicyTopic, cfg.Kafka.DLQTopic = "chaos.outcomes."+sfx, "chaos.policy."+sfx, "chaos.dlq."+sfx
	cfg.Warehouse.Backend, cfg.Warehouse.Addr = warehouse.BackendServer, chAddr
	cfg.Warehouse.Database = "loopgate_chaos_" + sfx
	cfg.Ingest.Group, cfg.Ingest.BatchWait = "chaos-"+sfx, 200*time.Millisecond
	cfg.RouterAddr = testenv.FreeAddr(t)
	cfg.Admin.Addr = "" // several processes share the config: no admin ports
	cfg.PolicyWait = time.Second
	rcfg := routerConfigFor(cfg.Router, sc, fl.Orchestrators())
	cfg.Orchestrators, cfg.Router.APIKeys = rcfg.Orchestrators, rcfg.APIKeys
	r := &rig{t: t, ctx: ctx, cfg: cfg, path: filepath.Join(t.TempDir(), "loopgate.yaml"), answered: map[string]bool{}}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return r
}

// startLoad runs workers that send one request at a time and keep the ids
// of the answered ones (any HTTP answer); a refused connection is a router
// that is down, not an answer.
func (r *rig) startLoad(workers int) {
	r.stopLoad = make(chan struct{})
	client := &http.Client{Timeout: 10 * time.Second}
	for range workers {
		r.loadDone.Add(1)
		go func() {
			defer r.loadDone.Done()
			for {
				select {
				case <-r.stopLoad:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodPost, "http://"+r.cfg.RouterAddr+"/text-to-image", strings.NewReader(`{"prompt":"a cat","model_id":"stabilityai/sdxl-turbo"}`))
				req.Header.Set("Authorization", "Bearer "+simKey("acme"))
				resp, err := client.Do(req)
				if err != nil {
					time.Sleep(20 * time.Millisecond)
					continue
				}
				resp.Body.Close()
				if id := resp.Header.Get(router.HeaderRequestID); id != "" {
					r.mu.Lock()
					r.answered[id] = true
					r.mu.Unlock()
				}
			}
		}()
	}
}

func (r *rig) endLoad() {
	close(r.stopLoad)
	r.loadDone.Wait()
}

func (r *rig) answeredCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.answered)
}

// child is one loopgate process of the rig.
type child struct {
	proc   *os.Process
	exited chan struct{}
}

// start runs `loopgate <command> --config` and, for the router, waits
// until it serves.
func (r *rig) start(command string) *child {
	r.t.Helper()
	cmd := cliChild(r.t, command, "--config", r.path)
	cmd.Stderr = testWriter{r.t, command}
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	c := &child{proc: cmd.Process, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(c.exited) }()
	if command == "router" {
		testenv.Eventually(r.t, 30*time.Second, "the router listening", func() bool {
			conn, err := net.DialTimeout("tcp", r.cfg.RouterAddr, 200*time.Millisecond)
			if err == nil {
				conn.Close()
			}
			return err == nil
		})
	}
	return c
}

// kill SIGKILLs c and waits until it is gone (and its sockets with it).
func (c *child) kill(t *testing.T) {
	t.Helper()
	if err := c.proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill: the process is already gone: %v", err)
	}
	<-c.exited
}

// stop SIGTERMs c and waits (30 s at most) for it to exit.
func (c *child) stop(t *testing.T) {
	t.Helper()
	if err := c.proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("stop: the process is already gone: %v", err)
	}
	select {
	case <-c.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("no exit within 30 s of SIGTERM")
	}
}

// verify waits until every answered request is in the warehouse, then
// checks the count, and that the router's spill was left empty.
func (r *rig) verify(store *warehouse.Store) {
	t := r.t
	t.Helper()
	r.mu.Lock()
	answered := r.answered
	r.mu.Unlock()
	var rows *warehouse.Rows
	testenv.Eventually(t, 90*time.Second, "every answered request in ClickHouse", func() bool {
		var err error
		rows, err = store.Query(r.ctx, "SELECT id, toString(status) FROM requests")
		if err != nil {
			return false
		}
		found := 0
		for _, row := range rows.Values {
			if answered[row[0].(string)] {
				found++
			}
		}
		return found == len(answered)
	})
	stats, err := store.Query(r.ctx, "SELECT count(), uniqExact(id), countIf(status = 'interrupted') FROM requests")
	if err != nil {
		t.Fatal(err)
	}
	n, uniq, interrupted := i64any(stats.Values[0][0]), i64any(stats.Values[0][1]), i64any(stats.Values[0][2])
	t.Logf("%d answered; ClickHouse: %d rows, %d distinct ids, %d interrupted", len(answered), n, uniq, interrupted)
	if n != uniq {
		t.Errorf("got %d rows for %d ids, want each once", n, uniq)
	}
	for _, row := range rows.Values {
		id, status := row[0].(string), row[1].(string)
		if !answered[id] && status != string(event.StatusInterrupted) {
			t.Errorf("request %s (%s) is in ClickHouse but was neither answered nor interrupted", id, status)
		}
	}
	segs, _ := filepath.Glob(filepath.Join(r.cfg.DataDir, "spill", "*", "*.seg"))
	if len(segs) != 0 {
		t.Errorf("the router left %d spill segments: %v", len(segs), segs)
	}
}

// ingestInProcess runs ingest in the test process until the test ends,
// after creating the topics as `loopgate ingest` does.
func (r *rig) ingestInProcess() *warehouse.Store {
	ictx, stop := context.WithCancel(r.ctx)
	p := process{log: slog.New(slog.NewTextHandler(testWriter{r.t, "ingest"}, nil)), reg: prometheus.NewRegistry()}
	if _, _, err := kafka(ictx, r.cfg, false, p); err != nil {
		r.t.Fatal(err)
	}
	store := startIngest(r.t, ictx, r.cfg, r.cfg.Kafka.Brokers, p)
	r.t.Cleanup(stop) // registered after startIngest's cleanup, so it runs first
	return store
}

// TestChaosRouterSIGKILL kills the router three times mid-load, restarting
// it on the same data directory each time: the requests in flight at each
// kill are stored as interrupted, every answered one once.
func TestChaosRouterSIGKILL(t *testing.T) {
	r := newRig(t, []string{testenv.Kafka(t)}, testenv.ClickHouse(t))
	r.startLoad(12)
	for kill := range 3 {
		c := r.start("router")
		time.Sleep(1500 * time.Millisecond)
		c.kill(t)
		t.Logf("router kill %d: %d answered so far", kill+1, r.answeredCount())
	}
	c := r.start("router") // publishes the last kill's requests as interrupted, then serves
	time.Sleep(time.Second)
	r.endLoad()
	c.stop(t)
	store := r.ingestInProcess()
	r.verify(store)
	rows, err := store.Query(r.ctx, "SELECT count() FROM requests WHERE status = 'interrupted'")
	if err != nil {
		t.Fatal(err)
	}
	if i64any(rows.Values[0][0]) == 0 {
		t.Error("got no interrupted request after three kills under load, want the requests in flight at each kill")
	}
}

// TestChaosIngestSIGKILL kills ingest three times while the router serves
// load: commits after writes and the warehouse's existence check leave
// every outcome stored once.
func TestChaosIngestSIGKILL(t *testing.T) {
	r := newRig(t, []string{testenv.Kafka(t)}, testenv.ClickHouse(t))
	rt := r.start("router")
	r.startLoad(8)
	for kill := range 3 {
		ing := r.start("ingest")
		time.Sleep(1200 * time.Millisecond)
		ing.kill(t)
		t.Logf("ingest kill %d: %d answered so far", kill+1, r.answeredCount())
	}
	r.endLoad()
	rt.stop(t)
	r.verify(r.ingestInProcess())
}

// TestChaosBrokerRestart stops the Kafka broker mid-load (a broker of its
// own, started for the test) and starts it again: the router's publisher
// keeps the outcomes in its spill meanwhile and sends them after.
func TestChaosBrokerRestart(t *testing.T) {
	broker := dedicatedService(t, "kafka.sh", "KAFKA_PORT", "KAFKA_CONTROLLER_PORT")
	r := newRig(t, []string{broker.addr}, testenv.ClickHouse(t))
	store := r.ingestInProcess()
	rt := r.start("router")
	r.startLoad(8)
	time.Sleep(1500 * time.Millisecond)
	broker.run(t, "stop")
	time.Sleep(3 * time.Second) // requests go on being answered: outcomes spill
	broker.run(t, "start")
	time.Sleep(2 * time.Second)
	r.endLoad()
	rt.stop(t)
	r.verify(store)
}

// TestChaosClickHouseRestart stops the ClickHouse server mid-load (one of
// its own) and starts it again: ingest waits, commits nothing, and goes on.
func TestChaosClickHouseRestart(t *testing.T) {
	ch := dedicatedService(t, "clickhouse.sh", "CLICKHOUSE_PORT", "CLICKHOUSE_HTTP_PORT")
	r := newRig(t, []string{testenv.Kafka(t)}, ch.addr)
	store := r.ingestInProcess()
	rt := r.start("router")
	r.startLoad(8)
	time.Sleep(1500 * time.Millisecond)
	ch.run(t, "stop")
	time.Sleep(3 * time.Second)
	ch.run(t, "start")
	time.Sleep(2 * time.Second)
	r.endLoad()
	rt.stop(t)
	r.verify(store)
}

// service is a Kafka broker or ClickHouse server of a test's own, run by
// the project's deploy/local script with its own ports and directory.
type service struct {
	script string
	env    []string
	addr   string
}

// dedicatedService starts script with ports for each of portVars. The
// ports come from below the kernel's ephemeral range, so no outgoing
// connection takes one between the choice and the service's bind (a JVM
// takes seconds to get there); a start that still loses the race is tried
// again with other ports.
func dedicatedService(t *testing.T, script string, portVars ...string) *service {
	t.Helper()
	var last error
	for range 3 {
		s := &service{script: script}
		s.env = append(os.Environ(), "LOOPGATE_VAR="+t.TempDir())
		for _, v := range portVars {
			s.env = append(s.env, fmt.Sprintf("%s=%d", v, stablePort(t)))
		}
		out, err := s.try("start")
		if err != nil {
			last = err
			s.try("stop")
			continue
		}
		s.addr = strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
		t.Cleanup(func() { s.run(t, "stop") })
		return s
	}
	t.Fatalf("%s start: %v", script, last)
	return nil
}

// stablePort is a free 127.0.0.1 port in [20000, 32000), below Linux's
// default ephemeral range (32768–60999).
func stablePort(t *testing.T) int {
	t.Helper()
	for range 100 {
		p := 20000 + int(time.Now().UnixNano()%12000)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			l.Close()
			return p
		}
	}
	t.Fatal("no free port in [20000, 32000)")
	return 0
}

func (s *service) run(t *testing.T, verb string) string {
	t.Helper()
	out, err := s.try(verb)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (s *service) try(verb string) (string, error) {
	cmd := exec.Command("../../deploy/local/"+s.script, verb)
	cmd.Env = s.env
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		return "", fmt.Errorf("%s %s: %w\n%s", s.script, verb, err, stderr)
	}
	return string(out), nil
}

// testWriter sends a child's errors and recoveries to the test log.
type testWriter struct {
	t    *testing.T
	name string
}

func (w testWriter) Write(b []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN") || strings.Contains(line, "interrupted") || strings.HasPrefix(line, "loopgate ") {
			w.t.Log(w.name + ": " + line)
		}
	}
	return len(b), nil
}
