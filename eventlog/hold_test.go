package eventlog_test

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/eventlog"
)

// TestReaderHoldKeepsPartitionsUntilReleased: member A fetches a record
// and holds it; member B joins. The group asks A to give partitions up
// (the Hold's context ends), but B reads nothing while A still holds; once
// A releases, A's Hold and Commit of the record are refused (ErrRevoked),
// and the record, never committed, is read again by its partition's new
// owner.
func TestReaderHoldKeepsPartitionsUntilReleased(t *testing.T) {
	for _, b := range brokers() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t, 40*time.Second)
			topics := uniqueTopics(t)
			bs := b.start(t, topics)
			group := "g-" + topics.Outcomes
			w, err := eventlog.NewWriter(writerConfig(bs, topics.Outcomes), deps.Deps{})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			var msgs []eventlog.Message
			for i := range 40 {
				msgs = append(msgs, eventlog.Message{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)})
			}
			if err := w.Write(ctx, msgs...); err != nil {
				t.Fatal(err)
			}

			ra, err := eventlog.NewReader(readerConfig(bs, topics.Outcomes, group), deps.Deps{Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			defer ra.Close()
			m, err := ra.Fetch(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if m.Generation == 0 {
				t.Fatalf("fetched record has generation 0, want the group's")
			}
			hctx, release, err := ra.Hold(ctx, []eventlog.Message{m})
			if err != nil {
				t.Fatalf("hold: %v", err)
			}

			var held atomic.Bool
			held.Store(true)
			var duringHold atomic.Int64
			again := make(chan string, 2)
			fetchLoop := func(name string, r *eventlog.Reader) {
				for {
					got, err := r.Fetch(ctx)
					if err != nil {
						return
					}
					if held.Load() {
						duringHold.Add(1)
					}
					if got.Partition == m.Partition && got.Offset == m.Offset {
						again <- name
						return
					}
				}
			}
			rb, err := eventlog.NewReader(readerConfig(bs, topics.Outcomes, group), deps.Deps{Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			defer rb.Close()
			go fetchLoop("B", rb)

			select {
			case <-hctx.Done():
			case <-ctx.Done():
				t.Fatal("the hold's context did not end when B joined")
			}
			// Give B the chance to read while A still holds; it must not.
			time.Sleep(2 * time.Second)
			held.Store(false)
			release()

			if _, _, err := ra.Hold(ctx, []eventlog.Message{m}); !errors.Is(err, eventlog.ErrRevoked) {
				t.Errorf("hold after the generation ended: got %v, want ErrRevoked", err)
			}
			if err := ra.Commit(ctx, m); !errors.Is(err, eventlog.ErrRevoked) {
				t.Errorf("commit after the generation ended: got %v, want ErrRevoked", err)
			}
			go fetchLoop("A", ra)
			select {
			case who := <-again:
				t.Logf("record %d/%d read again by %s", m.Partition, m.Offset, who)
			case <-ctx.Done():
				t.Fatalf("record %d/%d, never committed, was not read again", m.Partition, m.Offset)
			}
			if n := duringHold.Load(); n != 0 {
				t.Errorf("B read %d records while A held its batch, want 0", n)
			}
		})
	}
}
