package eventlog_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/eventlog"
)

// TestEmbeddedRestartKeepsLogAndOffsets checks the embedded broker's DataDir:
// after a restart on the same port the log and the group's committed
// offsets are still there, so a reader resumes after its last commit.
func TestEmbeddedRestartKeepsLogAndOffsets(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t, 30*time.Second)
	topics := uniqueTopics(t)
	topics.OutcomesPartitions = 1
	dir := t.TempDir()
	e := startEmbedded(t, dir, 0, topics)
	w, err := eventlog.NewWriter(writerConfig(e.Brokers(), topics.Outcomes), deps.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	var msgs []eventlog.Message
	for i := range 10 {
		msgs = append(msgs, eventlog.Message{Key: []byte("k"), Value: fmt.Appendf(nil, "m%d", i)})
	}
	if err := w.Write(ctx, msgs...); err != nil {
		t.Fatal(err)
	}
	w.Close()
	r, err := eventlog.NewReader(readerConfig(e.Brokers(), topics.Outcomes, "g"), deps.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		m, err := r.Fetch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("m%d", i); string(m.Value) != want {
			t.Fatalf("got %q, want %q", m.Value, want)
		}
		if i == 4 {
			if err := r.Commit(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	port := e.Port()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}

	e2 := startEmbedded(t, dir, port, topics)
	if e2.Addr() != e.Addr() {
		t.Fatalf("restarted on %s, want %s", e2.Addr(), e.Addr())
	}
	r2, err := eventlog.NewReader(readerConfig(e2.Brokers(), topics.Outcomes, "g"), deps.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	for i := 5; i < 10; i++ {
		m, err := r2.Fetch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf("m%d", i); string(m.Value) != want || m.Offset != int64(i) {
			t.Fatalf("after restart got %q at offset %d, want %q at %d", m.Value, m.Offset, want, i)
		}
	}
}
