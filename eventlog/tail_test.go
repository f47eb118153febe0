package eventlog_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/loopgate/loopgate/deps"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loopgate/loopgate/eventlog"
)

// TestTailReadsWholePartition: two tails on the policy topic each read every
// record from the first, in order, with no group between them.
func TestTailReadsWholePartition(t *testing.T) {
	for _, b := range brokers() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t, 30*time.Second)
			topics := uniqueTopics(t)
			bs := b.start(t, topics)
			w, err := eventlog.NewWriter(writerConfig(bs, topics.Policy), deps.Deps{Logger: testLogger(t), Registerer: prometheus.NewRegistry()})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			const n = 5
			for i := range n {
				if err := w.Write(ctx, eventlog.Message{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)}); err != nil {
					t.Fatal(err)
				}
			}
			for reader := range 2 {
				tail, err := eventlog.NewTail(bs, topics.Policy, 0, testLogger(t))
				if err != nil {
					t.Fatal(err)
				}
				for i := range n {
					m, err := tail.Fetch(ctx)
					if err != nil {
						t.Fatalf("tail %d record %d: %v", reader, i, err)
					}
					if want := fmt.Sprintf("v%d", i); string(m.Value) != want {
						t.Fatalf("tail %d record %d: got %q, want %q", reader, i, m.Value, want)
					}
				}
				tail.Close()
			}
			if _, err := eventlog.NewTail(nil, topics.Policy, 0, nil); err == nil {
				t.Error("tail without brokers: got nil error")
			}
		})
	}
}
