package router

import (
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
)

// fakeJournal records the calls in order.
type fakeJournal struct {
	mu       sync.Mutex
	calls    []string // "begin id", "attempt id", "done id"
	begin    map[string][]byte
	attempts map[string][][]byte
}

func newFakeJournal() *fakeJournal {
	return &fakeJournal{begin: map[string][]byte{}, attempts: map[string][][]byte{}}
}

func (j *fakeJournal) Begin(id string, rec []byte) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.calls = append(j.calls, "begin")
	j.begin[id] = append([]byte(nil), rec...)
	return nil
}

func (j *fakeJournal) Attempt(id string, rec []byte) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.calls = append(j.calls, "attempt")
	j.attempts[id] = append(j.attempts[id], append([]byte(nil), rec...))
	return nil
}

func (j *fakeJournal) Done(id string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.calls = append(j.calls, "done")
	return nil
}

// TestJournalRecordsAndRebuilds: a request that fails on one orchestrator
// and succeeds on the next is journaled begin, attempt, attempt, done; and
// what the journal kept rebuilds an interrupted outcome with both
// attempts, billed as the finished request was.
func TestJournalRecordsAndRebuilds(t *testing.T) {
	bad := newUpstream(t, status(http.StatusInternalServerError, `{"error":"boom"}`))
	good := newUpstream(t, okJSON(`{"images":[]}`))
	cfg := testConfig(orch("a", bad.srv.URL, t2i(1e-9)), orch("b", good.srv.URL, t2i(2e-9)))
	cfg.FastFailure = 0 // every failure is billed, so both attempts cost
	j := newFakeJournal()
	pub := &fakePublisher{}
	clock := newFakeClock()
	r, err := New(cfg, pub, deps.Deps{Registerer: prometheus.NewRegistry(), Rand: rand.New(rand.NewPCG(1, 2)), Clock: clock.Now}, WithJournal(j))
	if err != nil {
		t.Fatal(err)
	}
	// a first: shares give it all the traffic, then the retry goes to b.
	if err := r.SetPolicy(sharesPolicy(1, event.ClassPolicy{Capability: event.CapTextToImage, Model: "m1",
		Shares: []event.Share{{Orchestrator: "a", Share: 1}}})); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	tr := &testRouter{Router: r, pub: pub, clock: clock, srv: srv}
	var finished event.Outcome
	for range 20 { // exploration may pick b first; find a request that went a → b
		if code, _ := tr.postT2I(t); code != http.StatusOK {
			t.Fatalf("got %d, want 200", code)
		}
		eventually(t, "the outcome", func() bool { pub.mu.Lock(); defer pub.mu.Unlock(); return len(pub.outs) > 0 })
		pub.mu.Lock()
		finished = pub.outs[len(pub.outs)-1]
		pub.mu.Unlock()
		if len(finished.Attempts) == 2 {
			break
		}
	}
	if len(finished.Attempts) != 2 {
		t.Fatalf("no request took two attempts: %+v", finished)
	}
	j.mu.Lock()
	tail := j.calls[len(j.calls)-4:]
	begin, attempts := j.begin[finished.ID], j.attempts[finished.ID]
	j.mu.Unlock()
	if want := []string{"begin", "attempt", "attempt", "done"}; !slices.Equal(tail, want) {
		t.Fatalf("journal calls: got %v, want %v", tail, want)
	}

	got, err := r.Interrupted(begin, attempts)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != finished.ID || got.Status != event.StatusInterrupted || len(got.Attempts) != 2 {
		t.Fatalf("rebuilt: got id %s status %s with %d attempts, want %s interrupted with 2", got.ID, got.Status, len(got.Attempts), finished.ID)
	}
	for i := range got.Attempts {
		g, w := got.Attempts[i], finished.Attempts[i]
		if g.Orchestrator != w.Orchestrator || g.Result != w.Result || g.Billed != w.Billed || g.Cost != w.Cost {
			t.Errorf("attempt %d: got %s %s billed %v cost %v, want %s %s billed %v cost %v", i, g.Orchestrator, g.Result, g.Billed, g.Cost, w.Orchestrator, w.Result, w.Billed, w.Cost)
		}
	}
	if got.Cost != finished.Cost || got.Customer != "acme" || got.Units != finished.Units {
		t.Errorf("rebuilt: cost %v customer %q units %d, want %v acme %d", got.Cost, got.Customer, got.Units, finished.Cost, finished.Units)
	}
	if _, err := event.EncodeOutcome(got); err != nil {
		t.Errorf("the rebuilt outcome does not encode: %v", err)
	}
	if err := r.PublishInterrupted(finished.ID, begin, attempts); err != nil {
		t.Fatal(err)
	}
	pub.mu.Lock()
	last := pub.outs[len(pub.outs)-1]
	pub.mu.Unlock()
	if last.ID != finished.ID || last.Status != event.StatusInterrupted {
		t.Errorf("published: got %s %s, want the interrupted outcome of %s", last.ID, last.Status, finished.ID)
	}
	if _, err := r.Interrupted([]byte("not an outcome"), nil); err == nil {
		t.Error("a damaged begin record: got nil error")
	}
}
