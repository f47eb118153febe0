package sim

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/loopgate/loopgate/sim/scenario"
)

// lpScenario is n orchestrators in region X (rtt 0 there, so discovery
// takes no time) and one far one in Y when far is set; extra is spliced
// into orchestrator i's line.
func lpScenario(t *testing.T, n int, extra map[int]string) *scenario.Scenario {
	t.Helper()
	var b strings.Builder
	b.WriteString(`
name: lp
seed: 5
duration: 10s
warmup: 0s
regions: [X, Y]
rtt_ms: {same_region: 0, X-Y: 800}
classes:
  - {id: a, capability: llm, units: 1, slo_ms: 2000, timeout_ms: 5000, value: 1}
clients:
  - {id: c, region: X, rate: 1, mix: {a: 1}}
orchestrators:
`)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  - {id: o%d, region: X, stake: %d, capacity: 2, queue: 2, classes: {a: {price: 1, p50_ms: 100, p99_ms: 100}}, %s}\n", i, 100*(i+1), extra[i])
	}
	sc, err := scenario.Parse([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

// lpHarness drives the policy by hand: requests, picks and outcomes.
type lpHarness struct {
	t      *testing.T
	p      *Livepeer
	e      *engine
	reqs   map[int]*Request
	nextID int
}

func newLPHarness(t *testing.T, sc *scenario.Scenario) *lpHarness {
	t.Helper()
	p, err := NewLivepeer(NewEnv(sc, PolicyLivepeer), DefaultLivepeerConfig())
	if err != nil {
		t.Fatal(err)
	}
	return &lpHarness{t: t, p: p, e: newEngine(sc, p, Options{}), reqs: map[int]*Request{}}
}

// arrive starts a request at now and returns its id.
func (h *lpHarness) arrive(now time.Duration) int {
	id := h.nextID
	h.nextID++
	r := &Request{ID: id, Region: "X", Arrival: now, Deadline: now + 5*time.Second}
	h.reqs[id] = r
	h.p.Limits(now, r)
	return id
}

// pick asks for the next try of request id and records it as started.
func (h *lpHarness) pick(now time.Duration, id int) Choice {
	r := h.reqs[id]
	c := h.p.Pick(now, r, h.e.fleet)
	if c.Orch >= 0 {
		r.Tried = append(r.Tried, c.Orch)
		r.Attempts++
	}
	return c
}

// end reports the outcome of request id's last try.
func (h *lpHarness) end(now time.Duration, id int, out Outcome) {
	r := h.reqs[id]
	h.p.Observe(now, &Attempt{Request: id, Class: 0, Orch: r.Tried[len(r.Tried)-1], Seq: r.Attempts - 1, Outcome: out})
}

func (h *lpHarness) pool() *lpPool { return h.p.pools[0] }

func members(pool *lpPool) []int {
	var out []int
	for o, m := range pool.member {
		if m {
			out = append(out, o)
		}
	}
	return out
}

// TestLivepeerBusyLeavesPool: a selected session is out of the draw until
// it is idle again; with none idle the draw is uniform over the busy ones.
func TestLivepeerBusyLeavesPool(t *testing.T) {
	h := newLPHarness(t, lpScenario(t, 3, nil))
	seen := map[int]bool{}
	var ids []int
	for i := 0; i < 3; i++ {
		id := h.arrive(0)
		c := h.pick(0, id)
		if c.Orch < 0 || seen[c.Orch] {
			t.Fatalf("pick %d: got orchestrator %d (seen %v), want a new idle one", i, c.Orch, seen)
		}
		seen[c.Orch] = true
		ids = append(ids, id)
	}
	// All three busy: the draw falls back to them, uniformly.
	counts := map[int]int{}
	for i := 0; i < 3000; i++ {
		c := h.pick(0, h.arrive(0))
		counts[c.Orch]++
	}
	for o := 0; o < 3; o++ {
		if counts[o] < 850 || counts[o] > 1150 {
			t.Errorf("busy fallback: got %d of 3000 on orchestrator %d, want about 1000", counts[o], o)
		}
	}
	// The first one completes, but the fallback picks left it in flight.
	first := h.reqs[ids[0]].Tried[0]
	h.end(time.Millisecond, ids[0], OK)
	if slices.Contains(h.pool().idle, first) {
		t.Errorf("orchestrator %d idle with %d requests still in flight", first, h.pool().inflight[first])
	}
}

// TestLivepeerStakeDraw: the idle draw is 0.7·stake share + 0.3·uniform.
func TestLivepeerStakeDraw(t *testing.T) {
	sc := lpScenario(t, 3, nil) // stakes 100, 200, 300
	h := newLPHarness(t, sc)
	counts := make([]int, 3)
	const n = 30000
	for i := 0; i < n; i++ {
		id := h.arrive(0)
		c := h.pick(0, id)
		counts[c.Orch]++
		h.end(0, id, OK) // idle again at once
	}
	for o, c := range counts {
		want := 0.7*float64(100*(o+1))/600 + 0.3/3
		if got := float64(c) / n; got < want-0.01 || got > want+0.01 {
			t.Errorf("orchestrator %d: got share %.3f, want %.3f", o, got, want)
		}
	}
}

// TestLivepeerSuspension: a 500 suspends for 3 refreshes (the orchestrator
// rejoins at the 4th); a 503 "insufficient capacity" does not suspend and
// its session comes back when the request ends.
func TestLivepeerSuspension(t *testing.T) {
	h := newLPHarness(t, lpScenario(t, 8, nil))
	ms := time.Millisecond
	id := h.arrive(0)
	bad := h.pick(0, id).Orch
	h.end(ms, id, Failed)
	if h.pool().member[bad] {
		t.Fatalf("orchestrator %d still in the pool after a 500", bad)
	}
	if got, want := h.pool().suspended[bad], h.pool().count+3; got != want {
		t.Errorf("suspension mark: got %d, want count+3 = %d", got, want)
	}
	// Force refreshes through the TTL; the orchestrator sits out three.
	now := ms
	for k := 1; k <= 4; k++ {
		now += 11 * time.Minute
		id := h.arrive(now)
		h.pick(now, id)
		h.end(now, id, OK)
		if got, want := h.pool().member[bad], k == 4; got != want {
			t.Errorf("after refresh %d: got member %v, want %v", k, got, want)
		}
	}

	// 503: stays out of the idle list while the request goes on, is not
	// suspended, and is idle again once the request ends.
	id = h.arrive(now)
	busy := h.pick(now, id).Orch
	h.end(now, id, Rejected)
	if _, ok := h.pool().suspended[busy]; ok || !h.pool().member[busy] {
		t.Errorf("503 from %d: got suspended %v member %v, want not suspended, member", busy, ok, h.pool().member[busy])
	}
	if slices.Contains(h.pool().idle, busy) {
		t.Errorf("503 from %d: idle again before the request ended", busy)
	}
	next := h.pick(now, id).Orch
	h.end(now, id, OK)
	if !slices.Contains(h.pool().idle, busy) || !slices.Contains(h.pool().idle, next) {
		t.Errorf("request over: got idle %v, want %d and %d back", h.pool().idle, busy, next)
	}
}

// TestLivepeerRefreshWhenLow: with n = 8 the pool refreshes when fewer than
// min(8, ⌈8/2⌉) = 4 sessions are left; each refresh counts towards the
// suspensions, so the first suspended orchestrators come back after three
// more.
func TestLivepeerRefreshWhenLow(t *testing.T) {
	h := newLPHarness(t, lpScenario(t, 8, nil))
	now := time.Duration(0)
	for k := 0; k < 4; k++ { // four failures: 4 left, no refresh yet
		id := h.arrive(now)
		h.pick(now, id)
		h.end(now, id, Failed)
	}
	if got := len(members(h.pool())); got != 4 {
		t.Fatalf("after 4 failures: got %d members, want 4", got)
	}
	count := h.pool().count
	id := h.arrive(now)
	h.pick(now, id)
	h.end(now, id, Failed) // 3 left: the next try refreshes
	for k := 1; k <= 4; k++ {
		id := h.arrive(now)
		h.pick(now, id)
		h.end(now, id, OK)
		if got := h.pool().count; got != count+k {
			t.Errorf("try %d with %d members: got suspender count %d, want %d", k, len(members(h.pool())), got, count+k)
		}
		if len(members(h.pool())) >= 4 {
			break
		}
	}
	if got := len(members(h.pool())); got < 4 {
		t.Errorf("after refreshes: got %d members, want the suspended ones back", got)
	}
}

// TestLivepeerEmptyPoolReleases: with every orchestrator suspended the
// next try releases them all and refreshes.
func TestLivepeerEmptyPoolReleases(t *testing.T) {
	h := newLPHarness(t, lpScenario(t, 2, nil))
	for k := 0; k < 2; k++ {
		id := h.arrive(0)
		// min(8, ⌈2/2⌉) = 1: the first failure leaves 1, no refresh.
		h.pick(0, id)
		h.end(0, id, Failed)
	}
	if got := len(members(h.pool())); got != 0 {
		t.Fatalf("got %d members, want 0", got)
	}
	id := h.arrive(0)
	if c := h.pick(0, id); c.Orch < 0 {
		t.Fatalf("empty pool: got no orchestrator, want everyone released")
	}
	if got := len(members(h.pool())); got != 2 {
		t.Errorf("after the release: got %d members, want 2", got)
	}
}

// TestLivepeerRetries: up to 20 tries, each started within 2 s of the
// arrival, on any session (tried ones included).
func TestLivepeerRetries(t *testing.T) {
	if got := (DefaultLivepeerConfig()).MaxTries; got != 20 {
		t.Errorf("max tries: got %d, want 20", got)
	}
	h := newLPHarness(t, lpScenario(t, 1, nil))
	if got := h.p.Limits(0, &Request{ID: 99}).MaxAttempts; got != 20 {
		t.Errorf("limits: got %d attempts, want 20", got)
	}
	id := h.arrive(0)
	for k := 0; k < 3; k++ {
		c := h.pick(time.Duration(k)*500*time.Millisecond, id)
		if c.Orch != 0 {
			t.Fatalf("try %d: got %d, want 0 again (503s do not remove it)", k, c.Orch)
		}
		h.end(time.Duration(k)*500*time.Millisecond, id, Rejected)
	}
	if c := h.pick(2*time.Second, id); c.Orch >= 0 || c.Wait > 0 {
		t.Errorf("try at 2 s: got %+v, want give up (retry window over)", c)
	}
	if !slices.Contains(h.pool().idle, 0) {
		t.Errorf("after give-up: got idle %v, want the held session back", h.pool().idle)
	}
}

// TestLivepeerDiscovery: down and hung orchestrators do not join; a hung
// one makes discovery wait the 500 ms timeout, and the try waits with it;
// one past the timeout (800 ms away) does not join either.
func TestLivepeerDiscovery(t *testing.T) {
	sc := lpScenario(t, 4, map[int]string{0: "down: true", 1: "hang: true"})
	sc.Orchestrators[3].Region = "Y"
	h := newLPHarness(t, sc)
	id := h.arrive(0)
	c := h.pick(0, id)
	if c.Orch >= 0 || c.Wait != 500*time.Millisecond {
		t.Fatalf("first try: got %+v, want a 500 ms wait for discovery", c)
	}
	c = h.pick(c.Wait, id)
	if c.Orch != 2 {
		t.Errorf("after discovery: got %d, want 2", c.Orch)
	}
	if got := members(h.pool()); !slices.Equal(got, []int{2}) {
		t.Errorf("pool: got %v, want [2]", got)
	}
}

func BenchmarkLivepeerPick(b *testing.B) {
	sc := loadScenario(b, "steady-heterogeneous")
	p, err := NewLivepeer(NewEnv(sc, PolicyLivepeer), DefaultLivepeerConfig())
	if err != nil {
		b.Fatal(err)
	}
	e := newEngine(sc, p, Options{})
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		now := time.Duration(i) * time.Millisecond
		req := &Request{ID: i, Region: "FRA", Arrival: now, Deadline: now + 10*time.Second}
		p.Limits(now, req)
		c := p.Pick(now, req, e.fleet)
		for c.Orch < 0 && c.Wait > 0 {
			now += c.Wait
			c = p.Pick(now, req, e.fleet)
		}
		p.Observe(now, &Attempt{Request: i, Orch: c.Orch, Class: 0, Outcome: OK})
	}
}

// TestLivepeerCreationLock: while the first try of a class creates its
// selector (discovery under the session manager's lock), other tries wait
// for it instead of finding an empty pool.
func TestLivepeerCreationLock(t *testing.T) {
	sc := lpScenario(t, 3, map[int]string{2: "hang: true"}) // discovery waits 500 ms
	h := newLPHarness(t, sc)
	first, second := h.arrive(0), h.arrive(100*time.Millisecond)
	if c := h.pick(0, first); c.Wait != 500*time.Millisecond {
		t.Fatalf("first try: got %+v, want a 500 ms wait", c)
	}
	if c := h.pick(100*time.Millisecond, second); c.Orch >= 0 || c.Wait != 400*time.Millisecond {
		t.Fatalf("try during creation: got %+v, want a 400 ms wait for the lock", c)
	}
	if c := h.pick(500*time.Millisecond, first); c.Orch < 0 {
		t.Errorf("first try after discovery: got %+v, want an orchestrator", c)
	}
	if c := h.pick(500*time.Millisecond, second); c.Orch < 0 {
		t.Errorf("second try after the lock: got %+v, want an orchestrator", c)
	}
	if got := h.pool().count; got != 1 {
		t.Errorf("suspender count: got %d, want 1 (one refresh)", got)
	}
}
