package eventlog_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/eventlog"
)

// TestReaderGroupSharesPartitions runs two members of one group at once:
// between them (with a rebalance when the second joins) they read every
// record; a record may come twice across the rebalance (at-least-once) but
// none is missing.
func TestReaderGroupSharesPartitions(t *testing.T) {
	for _, b := range brokers() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t, 60*time.Second)
			topics := uniqueTopics(t)
			bs := b.start(t, topics)
			group := "g-" + topics.Outcomes

			var (
				mu      sync.Mutex
				seen    = map[string]int{} // value -> times
				perRdr  = [2]int{}
				ends    = map[int]bool{}
				allDone = make(chan struct{})
			)
			rctx, cancel := context.WithCancel(ctx)
			defer cancel()
			var wg sync.WaitGroup
			for i := range 2 {
				r, err := eventlog.NewReader(readerConfig(bs, topics.Outcomes, group), deps.Deps{Logger: testLogger(t)})
				if err != nil {
					t.Fatal(err)
				}
				wg.Go(func() {
					defer r.Close()
					for {
						m, err := r.Fetch(rctx)
						if errors.Is(err, context.Canceled) {
							return
						}
						if err != nil {
							t.Errorf("reader %d: %v", i, err)
							return
						}
						mu.Lock()
						if isSentinel(m) {
							ends[m.Partition] = true
							if len(ends) == topics.OutcomesPartitions {
								close(allDone)
							}
						} else {
							seen[string(m.Value)]++
							perRdr[i]++
						}
						mu.Unlock()
						// ErrRevoked: the partition moved on between the
						// fetch and the commit; its new owner reads m again.
						if err := r.Commit(rctx, m); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, eventlog.ErrRevoked) {
							t.Errorf("reader %d commit: %v", i, err)
						}
					}
				})
			}

			w, err := eventlog.NewWriter(writerConfig(bs, topics.Outcomes), deps.Deps{})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			const n = 400
			var msgs []eventlog.Message
			for i := range n {
				msgs = append(msgs, eventlog.Message{Key: fmt.Appendf(nil, "k%d", i%13), Value: fmt.Appendf(nil, "v%d", i)})
			}
			for _, k := range sentinelKeys(topics.OutcomesPartitions) {
				msgs = append(msgs, eventlog.Message{Key: []byte(k), Value: []byte("end")})
			}
			if err := w.Write(ctx, msgs...); err != nil {
				t.Fatal(err)
			}
			select {
			case <-allDone:
			case <-ctx.Done():
				t.Fatalf("readers did not reach every sentinel: %v", ctx.Err())
			}
			cancel()
			wg.Wait()
			dups := 0
			for i := range n {
				c := seen[fmt.Sprintf("v%d", i)]
				if c == 0 {
					t.Fatalf("record v%d never read", i)
				}
				dups += c - 1
			}
			t.Logf("reader split %v, %d records read twice", perRdr, dups)
		})
	}
}
