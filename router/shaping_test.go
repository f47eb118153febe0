package router

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/loopgate/loopgate/event"
)

func TestEdgeQueueOrder(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	type push struct {
		name    string
		prio    float64
		startBy int // ms after t0
		class   string
		drain   float64
	}
	tests := []struct {
		name     string
		size     int
		pushes   []push
		refused  map[string]string // name → reason
		evicted  []string
		wantTake []string // Take order with every item eligible
	}{
		{
			name: "value first, then earliest deadline, then arrival",
			size: 8,
			pushes: []push{
				{"cheap-late", 1, 900, "c", 0}, {"cheap-early", 1, 300, "c", 0}, {"gold", 50, 2000, "g", 0},
				{"cheap-early-2", 1, 300, "c", 0},
			},
			wantTake: []string{"gold", "cheap-early", "cheap-early-2", "cheap-late"},
		},
		{
			name:     "full: a higher rank evicts the last, a lower one is refused",
			size:     2,
			pushes:   []push{{"c1", 1, 500, "c", 0}, {"c2", 1, 600, "c", 0}, {"gold", 50, 500, "g", 0}, {"c3", 1, 700, "c", 0}},
			refused:  map[string]string{"c3": ShedQueueFull},
			evicted:  []string{"c2"},
			wantTake: []string{"gold", "c1"},
		},
		{
			name:     "past its start-by: refused at once",
			size:     4,
			pushes:   []push{{"late", 1, 0, "c", 0}, {"ok", 1, 10, "c", 0}},
			refused:  map[string]string{"late": ShedDeadline},
			wantTake: []string{"ok"},
		},
		{
			// drain 10/s: the n-th waiter of a class expects n/10 s.
			name:     "expected wait past start-by: refused at once; other classes do not count",
			size:     8,
			pushes:   []push{{"a1", 1, 150, "c", 10}, {"b1", 1, 150, "d", 10}, {"a2", 1, 150, "c", 10}, {"a3", 1, 1000, "c", 10}},
			refused:  map[string]string{"a2": ShedDeadline},
			wantTake: []string{"a1", "b1", "a3"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := NewEdgeQueue[push](tc.size, 0)
			refused := map[string]string{}
			var evicted []string
			for _, p := range tc.pushes {
				ev, why, ok := q.Push(&QueueEntry[push]{Priority: p.prio, StartBy: at(p.startBy), Key: p.class, Item: p}, t0, p.drain)
				if !ok {
					refused[p.name] = why
				}
				if ev != nil {
					evicted = append(evicted, ev.Item.name)
				}
			}
			if len(refused) != len(tc.refused) {
				t.Fatalf("got refused %v, want %v", refused, tc.refused)
			}
			for k, v := range tc.refused {
				if refused[k] != v {
					t.Fatalf("got refused %v, want %v", refused, tc.refused)
				}
			}
			if strconv.Quote(join(evicted)) != strconv.Quote(join(tc.evicted)) {
				t.Fatalf("got evicted %v, want %v", evicted, tc.evicted)
			}
			var got []string
			for q.Len() > 0 {
				e, _ := q.Take(func(push) bool { return true }, t0)
				got = append(got, e.Item.name)
			}
			if join(got) != join(tc.wantTake) {
				t.Fatalf("got order %v, want %v", got, tc.wantTake)
			}
		})
	}
}

// TestEdgeQueueMeasuresDrainRate: once a class's waiters have been handed
// slots for a while, the queue predicts a newcomer's start from the rate
// they really were, not from the caller's static guess, in both
// directions; another class's hand-offs do not count.
func TestEdgeQueueMeasuresDrainRate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name        string
		takeEvery   time.Duration // hand-offs of class c while it waits
		otherEvery  time.Duration // hand-offs of class d meanwhile (0: none)
		static      float64       // the caller's guess, per s
		startByMs   int           // the newcomer's, between hand-offs, behind 4 waiters
		drainFirst  bool          // the class's waiters give up before the newcomer comes
		wantRefused bool
	}{
		// 4 ahead + 1 at 10/s: 0.5 s; the static 2/s would say 2.5 s.
		{name: "faster than the static guess: kept", takeEvery: 100 * time.Millisecond, static: 2, startByMs: 800},
		{name: "static guess alone would refuse", takeEvery: 0, static: 2, startByMs: 800, wantRefused: true},
		// 5 at 1/s: 5 s; the static 10/s would say 0.5 s.
		{name: "slower than the static guess: refused", takeEvery: time.Second, static: 10, startByMs: 800, wantRefused: true},
		{name: "another class's hand-offs do not count", takeEvery: 0, otherEvery: 100 * time.Millisecond, static: 2, startByMs: 800, wantRefused: true},
		// The slow measurement does not outlive the busy period: with
		// nobody of the class waiting, the static 10/s says 0.1 s.
		{name: "idle class: the static guess, not a stale measurement", takeEvery: time.Second, static: 10, startByMs: 800, drainFirst: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := NewEdgeQueue[int](64, 5*time.Second)
			now := t0
			far := t0.Add(time.Hour)
			push := func(key string) {
				t.Helper()
				item := 0
				if key == "d" {
					item = 1
				}
				if _, why, ok := q.Push(&QueueEntry[int]{Priority: 1, StartBy: far, Key: key, Item: item}, now, tc.static); !ok {
					t.Fatalf("filling push refused: %s", why)
				}
			}
			for range 4 {
				push("c")
			}
			every := tc.takeEvery
			key := "c"
			if every == 0 && tc.otherEvery > 0 {
				every, key = tc.otherEvery, "d"
				push("d")
			}
			// 30 hand-offs, each replaced by a new waiter: the class never stops waiting.
			for i := 0; every > 0 && i < 30; i++ {
				now = now.Add(every)
				if _, ok := q.Take(func(i int) bool { return (i == 1) == (key == "d") }, now); !ok {
					t.Fatal("take: queue empty")
				}
				push(key)
			}
			now = now.Add(every / 2) // a newcomer comes between hand-offs
			if every > 0 && key == "c" {
				if got := q.DrainRate("c", now); math.Abs(got-float64(time.Second)/float64(every)) > 0.05*float64(time.Second)/float64(every) {
					t.Errorf("measured drain %.3f/s, want %.3f/s", got, float64(time.Second)/float64(every))
				}
			}
			if tc.drainFirst {
				for q.Len() > 0 { // they give up: no hand-off to count
					e, _ := q.Find(func(int) bool { return true })
					q.Remove(e, now)
				}
			}
			// Lower priority: it queues behind the 4 waiters of its class.
			_, why, ok := q.Push(&QueueEntry[int]{Priority: 0.5, StartBy: now.Add(time.Duration(tc.startByMs) * time.Millisecond), Key: "c"}, now, tc.static)
			if ok == tc.wantRefused {
				t.Fatalf("got ok %v (%s), want refused %v", ok, why, tc.wantRefused)
			}
			if !ok && why != ShedDeadline {
				t.Fatalf("got reason %q, want %q", why, ShedDeadline)
			}
		})
	}
}

func join(s []string) string {
	out := ""
	for _, v := range s {
		out += v + ","
	}
	return out
}

func TestEdgeQueueTakeEligible(t *testing.T) {
	t0 := time.Unix(1000, 0)
	q := NewEdgeQueue[string](4, 0)
	for _, it := range []struct {
		name string
		prio float64
	}{{"gold-llm", 50}, {"cheap-t2i", 1}, {"gold-t2i", 50}} {
		q.Push(&QueueEntry[string]{Priority: it.prio, StartBy: t0.Add(time.Second), Item: it.name}, t0, 0)
	}
	// A slot freed on an orchestrator serving only t2i goes to the best t2i waiter.
	e, ok := q.Take(func(s string) bool { return s != "gold-llm" }, t0)
	if !ok || e.Item != "gold-t2i" {
		t.Fatalf("got %v %v, want gold-t2i", e, ok)
	}
	if f, ok := q.Find(func(s string) bool { return s == "cheap-t2i" }); !ok || f.Item != "cheap-t2i" || q.Len() != 2 {
		t.Fatalf("Find: got %v %v (len %d), want cheap-t2i left queued", f, ok, q.Len())
	}
	if q.Remove(e, t0) {
		t.Fatal("Remove of a taken entry: got true, want false")
	}
}

func TestDrainRate(t *testing.T) {
	// 4 slots at 500 ms + 2 at 1 s: 8 + 2 per second; no estimate or no limit counts nothing.
	if got := DrainRate([]int{4, 2, 3, 0}, []float64{500, 1000, 0, 100}); got != 10 {
		t.Fatalf("got %v, want 10", got)
	}
}

func TestAdmission(t *testing.T) {
	t0 := time.Unix(5000, 0)
	a := NewAdmission(time.Second)
	entry := event.ClassPolicy{Capability: event.CapTextToImage, Model: "m1", AdmitPerS: 2, AdmitReason: "overload: cheap class",
		Shares: []event.Share{{Orchestrator: "a", Share: 1}}}
	p := event.Policy{Version: 1, Classes: []event.ClassPolicy{entry}}
	a.Apply(&p, t0)
	allowed := 0
	for range 5 {
		if ok, _, _ := a.Allow(&entry, t0); ok {
			allowed++
		}
	}
	if allowed != 2 {
		t.Fatalf("got %d admitted at once, want the burst of 2", allowed)
	}
	ok, wait, why := a.Allow(&entry, t0)
	if ok || wait != 500*time.Millisecond || why == "" {
		t.Fatalf("got ok=%v wait %v why %q, want refused, 500ms, a reason", ok, wait, why)
	}
	if ok, _, _ := a.Allow(&entry, t0.Add(500*time.Millisecond)); !ok {
		t.Fatal("got refused after 500 ms at 2/s, want one token")
	}
	// A new policy with the same rate keeps the bucket (no fresh burst).
	p.Version = 2
	a.Apply(&p, t0.Add(500*time.Millisecond))
	if ok, _, _ := a.Allow(&entry, t0.Add(500*time.Millisecond)); ok {
		t.Fatal("got a fresh burst from a re-applied policy, want the bucket kept")
	}
	if r := a.Rates(); len(r) != 1 || r[0].AdmitPerS != 2 || r[0].Reason != entry.AdmitReason {
		t.Fatalf("got rates %+v", r)
	}
	// Without the rate, everything goes.
	free := entry
	free.AdmitPerS = 0
	p.Classes = []event.ClassPolicy{free}
	a.Apply(&p, t0)
	for range 10 {
		if ok, _, _ := a.Allow(&free, t0); !ok {
			t.Fatal("got refused without a rate")
		}
	}
	if r := a.Rates(); len(r) != 0 {
		t.Fatalf("got rates %+v, want none", r)
	}
}

// gate is an upstream that holds every request until released.
type gate struct {
	mu      sync.Mutex
	release chan struct{}
	started chan struct{}
}

func newGate() *gate { return &gate{release: make(chan struct{}), started: make(chan struct{}, 64)} }

func (g *gate) handler(w http.ResponseWriter, r *http.Request) {
	g.started <- struct{}{}
	select {
	case <-g.release:
	case <-r.Context().Done():
		return
	}
	okJSON(`{"images":[]}`)(w, r)
}

func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.release)
}

func TestEdgeQueueServesWhenASlotFrees(t *testing.T) {
	g := newGate()
	up := newUpstream(t, g.handler)
	o := orch("a", up.srv.URL, t2i(1))
	o.MaxInFlight = 1
	tr := newTestRouter(t, testConfig(o))
	codes := make(chan int, 2)
	go func() { c, _ := tr.postT2I(t); codes <- c }()
	<-g.started // the first holds the only slot
	go func() { c, _ := tr.postT2I(t); codes <- c }()
	eventually(t, "the second request waits in the edge queue", func() bool { return value(t, tr.m.queueLength) == 1 })
	if n := up.hits.Load(); n != 1 {
		t.Fatalf("got %d requests at the orchestrator, want 1 (its limit)", n)
	}
	g.open()
	for range 2 {
		if c := <-codes; c != http.StatusOK {
			t.Fatalf("got %d, want 200 for both", c)
		}
	}
	outs := tr.pub.wait(t, 2)
	for _, out := range outs {
		if out.Status != event.StatusOK || len(out.Attempts) != 1 {
			t.Fatalf("got %s with %d attempts, want ok with 1", out.Status, len(out.Attempts))
		}
	}
	if value(t, tr.m.queueLength) != 0 {
		t.Fatal("queue not empty after both were served")
	}
}

func TestEdgeQueueShedsWhatCannotStartInTime(t *testing.T) {
	g := newGate()
	up := newUpstream(t, g.handler)
	o := orch("a", up.srv.URL, t2i(1))
	o.MaxInFlight = 1
	tr := newTestRouter(t, testConfig(o))
	p := sharesPolicy(1, event.ClassPolicy{Capability: event.CapTextToImage, Model: "m1", SLOMs: 150, Value: 0.5,
		Shares: []event.Share{{Orchestrator: "a", Share: 1}}})
	if err := tr.SetPolicy(p); err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	go func() { c, _ := tr.postT2I(t); done <- c }()
	<-g.started
	code, h, body := tr.post(t, "/text-to-image", "application/json", []byte(`{"prompt":"x","model_id":"m1"}`), nil)
	if code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
		t.Fatalf("got %d Retry-After %q, want 503 with Retry-After", code, h.Get("Retry-After"))
	}
	if msg := errorMessage(t, body); msg == "" {
		t.Fatal("got no error message")
	}
	g.open()
	if c := <-done; c != http.StatusOK {
		t.Fatalf("first request: got %d, want 200", c)
	}
	var shed *event.Outcome
	for _, out := range tr.pub.wait(t, 2) {
		if out.Status == event.StatusShed {
			shed = &out
		}
	}
	if shed == nil || shed.ErrorClass != ShedDeadline || shed.HTTPStatus != 503 || len(shed.Attempts) != 0 {
		t.Fatalf("got %+v, want a shed outcome (queue_deadline, 503, no attempt)", shed)
	}
	if up.hits.Load() != 1 {
		t.Fatalf("got %d requests at the orchestrator, want 1: the shed one is never sent", up.hits.Load())
	}
}

func TestAdmissionShedsAndTierIsExempt(t *testing.T) {
	up := newUpstream(t, okJSON(`{"images":[]}`))
	cfg := testConfig(orch("a", up.srv.URL, t2i(1)))
	const paidKey = "lg-paid-key-0123456789"
	cfg.APIKeys = append(cfg.APIKeys, APIKeyConfig{ID: "key-paid", SHA256: keyHash(paidKey), Customer: "bigco", ClientRegion: "LON", Tier: "paid"})
	cfg.Shaping.TierPriority = map[string]float64{"paid": 10}
	tr := newTestRouter(t, cfg)
	p := sharesPolicy(1, event.ClassPolicy{Capability: event.CapTextToImage, Model: "m1", AdmitPerS: 1, AdmitReason: "predicted demand over capacity",
		Shares: []event.Share{{Orchestrator: "a", Share: 1}}})
	if err := tr.SetPolicy(p); err != nil {
		t.Fatal(err)
	}
	if c, _ := tr.postT2I(t); c != http.StatusOK {
		t.Fatalf("first: got %d, want 200 (the bucket's one token)", c)
	}
	code, h, body := tr.post(t, "/text-to-image", "application/json", []byte(`{"prompt":"x","model_id":"m1"}`), nil)
	if code != http.StatusServiceUnavailable || h.Get("Retry-After") != "1" {
		t.Fatalf("second: got %d Retry-After %q, want 503 Retry-After 1", code, h.Get("Retry-After"))
	}
	if msg := errorMessage(t, body); msg == "" {
		t.Fatal("no reason in the error")
	}
	for range 3 {
		code, _, _ := tr.post(t, "/text-to-image", "application/json", []byte(`{"prompt":"x","model_id":"m1"}`), map[string]string{"Authorization": "Bearer " + paidKey})
		if code != http.StatusOK {
			t.Fatalf("paid tier: got %d, want 200 (exempt from the class's rate)", code)
		}
	}
	outs := tr.pub.wait(t, 5)
	shed := 0
	for _, o := range outs {
		if o.Status == event.StatusShed {
			shed++
			if o.ErrorClass != ShedAdmission || o.APIKeyID != "key-1" {
				t.Fatalf("got shed %+v, want admission on key-1", o)
			}
		}
	}
	if shed != 1 {
		t.Fatalf("got %d shed, want 1", shed)
	}
}

// TestWaiterTakesOnlyUntried: a slot freed on an orchestrator goes to a
// waiter whose class it serves, and never back to a retry that already
// failed on it.
func TestWaiterTakesOnlyUntried(t *testing.T) {
	a, b, other := &orchEntry{state: &orchState{}}, &orchEntry{state: &orchState{}}, &orchEntry{state: &orchState{}}
	table := &classTable{pos: map[*orchState]int{a.state: 0, b.state: 1}}
	first := &waiter{table: table}
	retry := &waiter{table: table, tried: []*orchEntry{a}}
	for _, tc := range []struct {
		name string
		w    *waiter
		o    *orchEntry
		want bool
	}{
		{"first attempt, a", first, a, true},
		{"first attempt, b", first, b, true},
		{"not its class", first, other, false},
		{"retry, on the one it failed on", retry, a, false},
		{"retry, on another", retry, b, true},
	} {
		if got := tc.w.takes(tc.o.state); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
}
