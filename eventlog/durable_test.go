package eventlog_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/eventlog"
)

// durableChildEnv carries a durableChild spec to the test binary run as a
// child process (TestMain).
const durableChildEnv = "LOOPGATE_TEST_DURABLE_CHILD"

type durableChild struct {
	Brokers  []string
	Topic    string
	SpillDir string
	Events   int
	Keys     int
}

func TestMain(m *testing.M) {
	if v := os.Getenv(durableChildEnv); v != "" {
		var spec durableChild
		if err := json.Unmarshal([]byte(v), &spec); err != nil {
			os.Stderr.WriteString(err.Error())
			os.Exit(2)
		}
		runDurableChild(spec)
	}
	os.Exit(m.Run())
}

// runDurableChild publishes with a durable publisher that runs against a
// live broker, and SIGKILLs its own process the moment the last Publish
// returns: whatever was not sent yet must be in the spill.
func runDurableChild(spec durableChild) {
	cfg := eventlog.DefaultPublisherConfig()
	cfg.Brokers, cfg.Topic, cfg.SpillDir, cfg.Durable = spec.Brokers, spec.Topic, spec.SpillDir, true
	cfg.Linger = 5 * time.Millisecond
	p, err := eventlog.NewPublisher(cfg, deps.Deps{})
	if err != nil {
		os.Stderr.WriteString(err.Error())
		os.Exit(2)
	}
	go p.Run(context.Background())
	evs := newEvents(spec.Keys)
	evs.publish(childTB{}, p, spec.Events)
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}

// TestDurablePublisherSurvivesSIGKILL: a child process publishes through a
// durable publisher to a live broker and kills itself with SIGKILL right
// after its last Publish; a new publisher on the same spill directory
// sends what was left, and every event is in Kafka, in per-key order.
func TestDurablePublisherSurvivesSIGKILL(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	topics := uniqueTopics(t)
	e := startEmbedded(t, "", 0, topics)
	spill := t.TempDir()
	const n, keys = 3000, 7
	b, err := json.Marshal(durableChild{Brokers: e.Brokers(), Topic: topics.Outcomes, SpillDir: spill, Events: n, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), durableChildEnv+"="+string(b))
	cmd.Stderr = os.Stderr
	err = cmd.Run()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child: got %v, want it killed by SIGKILL", err)
	}

	cfg := publisherConfig(t, e.Brokers(), topics.Outcomes)
	cfg.SpillDir, cfg.Durable = spill, true
	p, err := eventlog.NewPublisher(cfg, deps.Deps{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	left := p.Stats().SpillEvents
	wait := runPublisher(t, ctx, p)
	for _, k := range sentinelKeys(topics.OutcomesPartitions) {
		if err := p.Publish([]byte(k), []byte("end")); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	wait()
	t.Logf("the spill held %d of the %d events when the child was killed", left, n)

	r, err := eventlog.NewReader(readerConfig(e.Brokers(), topics.Outcomes, "g"), deps.Deps{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := readUntilSentinels(t, ctx, r, topics.OutcomesPartitions)
	want := newEvents(keys)
	for range n {
		k := want.keys[want.n%len(want.keys)]
		want.next[k]++
		want.n++
	}
	// Events acknowledged just before the kill may come again (their
	// acknowledgement did not reach the spill's cursor): order holds, and
	// nothing is missing.
	dups := checkOrder(t, got, want.next, true)
	t.Logf("%d events sent twice", dups)
}

// childTB is the testing.TB of the child process: a failure exits.
type childTB struct{ testing.TB }

func (childTB) Helper() {}
func (childTB) Fatalf(format string, args ...any) {
	os.Stderr.WriteString("durable child: " + format + "\n")
	os.Exit(3)
}
