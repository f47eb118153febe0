package eventlog_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/eventlog"
	"github.com/loopgate/loopgate/internal/testenv"
)

// leaseHolder runs one candidate and records its terms.
type leaseHolder struct {
	mu     sync.Mutex
	epochs []int64
	active bool
	cancel context.CancelFunc
	done   chan struct{}
}

func runCandidate(t *testing.T, brokers []string, group string) *leaseHolder {
	t.Helper()
	cfg := eventlog.DefaultLeaseConfig()
	cfg.Brokers, cfg.Group, cfg.Topic = brokers, group, group+".lease"
	l, err := eventlog.NewLease(cfg, deps.Deps{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	h := &leaseHolder{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		err := l.Run(ctx, func(ctx context.Context, epoch int64) error {
			h.mu.Lock()
			h.epochs, h.active = append(h.epochs, epoch), true
			h.mu.Unlock()
			<-ctx.Done()
			h.mu.Lock()
			h.active = false
			h.mu.Unlock()
			return nil
		})
		if err != nil {
			t.Errorf("lease run: %v", err)
		}
	}()
	t.Cleanup(func() { h.stop() })
	return h
}

func (h *leaseHolder) stop() {
	h.cancel()
	<-h.done
}

func (h *leaseHolder) state() (active bool, epochs []int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.active, append([]int64(nil), h.epochs...)
}

// TestLeaseOneHolderAndHandover: of two candidates one holds the lease; a
// second joining does not take it; when the holder stops, the other gets it
// under a larger epoch.
func TestLeaseOneHolderAndHandover(t *testing.T) {
	e := startEmbedded(t, t.TempDir(), 0, eventlog.DefaultTopicsConfig())
	a := runCandidate(t, e.Brokers(), "lease-test")
	testenv.Eventually(t, 30*time.Second, "the first candidate holding the lease", func() bool {
		active, _ := a.state()
		return active
	})
	b := runCandidate(t, e.Brokers(), "lease-test")
	time.Sleep(3 * time.Second) // b joins; the group rebalances
	testenv.Eventually(t, 30*time.Second, "the holder keeping the lease after a join", func() bool {
		aActive, _ := a.state()
		bActive, _ := b.state()
		return aActive && !bActive
	})
	_, aEpochs := a.state()
	a.stop()
	testenv.Eventually(t, 30*time.Second, "the standby taking the lease over", func() bool {
		active, _ := b.state()
		return active
	})
	_, bEpochs := b.state()
	if len(bEpochs) != 1 {
		t.Fatalf("got the standby's terms %v, want one", bEpochs)
	}
	if last := aEpochs[len(aEpochs)-1]; bEpochs[0] <= last {
		t.Errorf("got the new holder's epoch %d, want above the old holder's %d", bEpochs[0], last)
	}
}
