package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/eventlog"
	"github.com/loopgate/loopgate/ingest"
	"github.com/loopgate/loopgate/warehouse"
)

// childEnv carries a childSpec as JSON: when set, the test binary runs an
// ingester instead of the tests (see TestMain).
const childEnv = "LOOPGATE_E2E_CHILD"

// childSpec is what a child ingest process runs.
type childSpec struct {
	Brokers          []string
	Topics           eventlog.TopicsConfig
	Group            string
	Warehouse        warehouse.Config
	BatchRows        int
	CrashAfterWrites int // SIGKILL itself right after this many successful writes
}

// spawnChild runs the test binary as an ingest process and waits for it.
func spawnChild(t *testing.T, spec childSpec) error {
	t.Helper()
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(b))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

// killAfter is a Sink that lets writes through and kills the process right
// after the nth one succeeded: the rows are stored, the offsets are not
// committed, nothing is closed.
type killAfter struct {
	ingest.Sink
	n, done int
}

func (k *killAfter) WriteOutcomes(ctx context.Context, token string, outs []event.Outcome) error {
	if err := k.Sink.WriteOutcomes(ctx, token, outs); err != nil {
		return err
	}
	if k.done++; k.done == k.n {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // never returns: the signal is on its way
	}
	return nil
}

// runChild is the child process: ingest per the spec in the environment.
func runChild() int {
	var spec childSpec
	if err := json.Unmarshal([]byte(os.Getenv(childEnv)), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "child: bad spec:", err)
		return 2
	}
	ctx := context.Background()
	spec.Warehouse.RawRetentionDays, spec.Warehouse.RollupRetentionDays, spec.Warehouse.FineRetentionDays = 3650, 3650, 3650
	st, err := warehouse.Open(ctx, spec.Warehouse, deps.Deps{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: open warehouse:", err)
		return 1
	}
	rcfg := eventlog.DefaultReaderConfig()
	rcfg.Brokers, rcfg.Topic, rcfg.GroupID = spec.Brokers, spec.Topics.Outcomes, spec.Group
	rcfg.SessionTimeout, rcfg.HeartbeatInterval = 6*time.Second, time.Second
	reader, err := eventlog.NewReader(rcfg, deps.Deps{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: reader:", err)
		return 1
	}
	wcfg := eventlog.DefaultWriterConfig()
	wcfg.Brokers, wcfg.Topic = spec.Brokers, spec.Topics.DLQ
	dlq, err := eventlog.NewWriter(wcfg, deps.Deps{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: dlq:", err)
		return 1
	}
	icfg := ingest.DefaultConfig()
	icfg.BatchRows, icfg.BatchWait = spec.BatchRows, 300*time.Millisecond
	ing, err := ingest.New(icfg, reader, &killAfter{Sink: st, n: spec.CrashAfterWrites}, dlq, deps.Deps{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: ingest:", err)
		return 1
	}
	if err := ing.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "child: run:", err)
	}
	return 1 // the kill should have come first
}
