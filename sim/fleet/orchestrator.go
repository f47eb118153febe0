package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/loopgate/loopgate/sim/scenario"
)

// orch is one simulated orchestrator: an HTTP server while up, and the
// admission state (servers busy, FIFO queue) that survives down periods.
type orch struct {
	f  *Fleet
	id string

	// applyMu serialises changes (and owns srv, port, closed): a change may
	// close or reopen the listener, which must not interleave with another.
	applyMu sync.Mutex
	srv     *http.Server // nil while down
	port    int
	closed  bool // the fleet stopped; never reopen

	mu    sync.Mutex
	cfg   scenario.Orchestrator
	rng   *rand.Rand
	busy  int       // requests in service
	queue []*waiter // FIFO
	// maxHeld is the most requests held at once (in service + queued):
	// what a router with an in-flight limit must never push past it.
	maxHeld int
	gen     uint64    // bumped at every eviction; a slot from an older gen is gone
	ev      *eviction // closed at the next eviction
	unhang  chan struct{}
}

// eviction tells the requests an orchestrator held why it dropped them: it
// went down (their connections are closed) or started hanging (they are
// held without an answer until unhang is closed).
type eviction struct {
	done   chan struct{}
	down   bool          // written before done is closed
	unhang chan struct{} // written before done is closed
}

type waiter struct {
	ready chan struct{} // closed when a server is free for it
}

func newEviction() *eviction { return &eviction{done: make(chan struct{})} }

// ServeHTTP admits a request as the scenario format says: refused while
// down (the listener is closed; this covers the race), held while hanging,
// 4xx for a class not served, a fast failure at once, else a server, a
// queue place or an immediate 503.
func (o *orch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !o.f.enter() {
		abort(w)
		return
	}
	defer o.f.leave()
	p, herr := o.f.classes.parse(w, r, o.f.cfg.MaxBodyBytes, o.f.sc)
	if herr != nil {
		o.count(OutcomeBadRequest)
		o.reply(w, r, herr.status, errorBody(herr.msg))
		return
	}

	o.mu.Lock()
	if o.cfg.Down {
		o.mu.Unlock()
		o.count(OutcomeReset)
		abort(w)
		return
	}
	if o.cfg.Hang {
		unhang := o.unhang
		o.mu.Unlock()
		o.silent(w, r, unhang)
		return
	}
	ci := o.pick(p)
	if ci < 0 {
		o.mu.Unlock()
		o.count(OutcomeBadRequest)
		o.reply(w, r, http.StatusBadRequest, errorBody(fmt.Sprintf("orchestrator %s does not serve %s model %s", o.id, p.capability, p.model)))
		return
	}
	cls := o.f.sc.Classes[ci]
	offer := o.cfg.Classes[cls.ID]
	failed := o.cfg.Fail > 0 && o.rng.Float64() < o.cfg.Fail
	if failed && o.cfg.FailMode != scenario.FailSlow {
		o.mu.Unlock()
		o.count(OutcomeFailed)
		o.reply(w, r, http.StatusInternalServerError, errorBody("simulated failure"))
		return
	}
	service := o.f.scale(serviceTime(offer, o.rng.NormFloat64()))
	seed := o.rng.Int64N(1 << 31)
	gen, ev := o.gen, o.ev
	var wt *waiter
	switch {
	case o.busy < o.cfg.Capacity && len(o.queue) == 0:
		o.busy++
	case len(o.queue) < o.cfg.Queue:
		wt = &waiter{ready: make(chan struct{})}
		o.queue = append(o.queue, wt)
	default:
		o.mu.Unlock()
		o.count(OutcomeRejected)
		o.reply(w, r, http.StatusServiceUnavailable, errorBody("insufficient capacity"))
		return
	}
	o.maxHeld = max(o.maxHeld, o.busy+len(o.queue))
	o.mu.Unlock()

	ctx := r.Context()
	if wt != nil {
		g := o.f.m.inProgress.WithLabelValues(o.id, stateQueued)
		g.Inc()
		select {
		case <-wt.ready:
			g.Dec()
		case <-ev.done:
			g.Dec()
			o.evicted(w, r, ev)
			return
		case <-ctx.Done():
			g.Dec()
			o.leaveQueue(wt, gen)
			o.count(OutcomeAbandoned)
			abort(w)
			return
		case <-o.f.stop:
			g.Dec()
			o.leaveQueue(wt, gen)
			o.count(OutcomeReset)
			abort(w)
			return
		}
	}

	g := o.f.m.inProgress.WithLabelValues(o.id, stateServing)
	g.Inc()
	c, stop := o.f.clock.Timer(service)
	select {
	case <-c:
		g.Dec()
		o.release(gen)
	case <-ev.done:
		stop()
		g.Dec()
		o.evicted(w, r, ev)
		return
	case <-ctx.Done():
		stop()
		g.Dec()
		o.release(gen)
		o.count(OutcomeAbandoned)
		abort(w)
		return
	case <-o.f.stop:
		stop()
		g.Dec()
		o.release(gen)
		o.count(OutcomeReset)
		abort(w)
		return
	}
	if failed { // slow failure: after the service time
		o.count(OutcomeFailed)
		o.reply(w, r, http.StatusInternalServerError, errorBody("simulated failure"))
		return
	}
	o.count(OutcomeServed)
	body := successBody(p, cls, o.id, seed, o.f.clock.Now())
	if p.stream && p.capability == "llm" {
		o.replyStream(w, r, body)
		return
	}
	o.reply(w, r, http.StatusOK, body)
}

// pick chooses the request's class among its candidates: the one the
// HeaderClass hint names, else the first this orchestrator serves. -1: none
// is served. Called with o.mu held.
func (o *orch) pick(p parsed) int {
	first := -1
	for _, ci := range p.candidates {
		id := o.f.sc.Classes[ci].ID
		if _, ok := o.cfg.Classes[id]; !ok {
			continue
		}
		if id == p.hint {
			return ci
		}
		if first < 0 {
			first = ci
		}
	}
	return first
}

// serviceTime draws a lognormal service time from a standard normal z.
func serviceTime(off scenario.Offer, z float64) time.Duration {
	return time.Duration(math.Round(float64(off.P50) * math.Exp(off.Sigma()*z)))
}

// release frees the server a request held, if the orchestrator has not
// evicted everything since, and starts the next queued request.
func (o *orch) release(gen uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if gen != o.gen {
		return
	}
	o.busy--
	o.dispatch()
}

// leaveQueue takes a waiter out of the queue; if a server was already
// handed to it, the server is released.
func (o *orch) leaveQueue(wt *waiter, gen uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if gen != o.gen {
		return
	}
	select {
	case <-wt.ready:
		o.busy--
		o.dispatch()
		return
	default:
	}
	if i := slices.Index(o.queue, wt); i >= 0 {
		o.queue = slices.Delete(o.queue, i, i+1)
	}
}

// dispatch starts queued requests while servers are free. o.mu held.
func (o *orch) dispatch() {
	for o.busy < o.cfg.Capacity && len(o.queue) > 0 {
		wt := o.queue[0]
		o.queue = slices.Delete(o.queue, 0, 1)
		o.busy++
		close(wt.ready)
	}
}

// evict drops every request held (as the simulator does when an
// orchestrator goes down or starts hanging): servers and queue are free at
// once, and the requests learn why through the eviction. o.mu held.
func (o *orch) evict(down bool) {
	ev := o.ev
	ev.down = down
	ev.unhang = o.unhang
	close(ev.done)
	o.ev = newEviction()
	o.gen++
	o.busy = 0
	o.queue = nil
}

// evicted ends a request its orchestrator dropped.
func (o *orch) evicted(w http.ResponseWriter, r *http.Request, ev *eviction) {
	if ev.down {
		o.count(OutcomeReset)
		abort(w)
		return
	}
	o.silent(w, r, ev.unhang)
}

// silent holds a request without an answer until the client gives up, the
// hang ends or the fleet stops; then the connection is closed unanswered.
func (o *orch) silent(w http.ResponseWriter, r *http.Request, unhang <-chan struct{}) {
	g := o.f.m.inProgress.WithLabelValues(o.id, stateHung)
	g.Inc()
	select {
	case <-r.Context().Done():
	case <-unhang:
	case <-o.f.stop:
	}
	g.Dec()
	o.count(OutcomeHung)
	abort(w)
}

// reply answers after the round trip (RTTFrom), unless the client or the
// fleet gives up first.
func (o *orch) reply(w http.ResponseWriter, r *http.Request, status int, body any) {
	if !o.travel(r) {
		abort(w)
		return
	}
	b, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// replyStream answers an llm request that asked to stream: one
// server-sent event with the whole answer, then [DONE].
func (o *orch) replyStream(w http.ResponseWriter, r *http.Request, body any) {
	if !o.travel(r) {
		abort(w)
		return
	}
	b, _ := json.Marshal(body)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprintf(w, "data: %s\n\ndata: [DONE]\n\n", b)
}

// travel waits the round trip; false if the request ended meanwhile.
func (o *orch) travel(r *http.Request) bool {
	d := o.rtt()
	if d <= 0 {
		return true
	}
	c, stop := o.f.clock.Timer(d)
	defer stop()
	select {
	case <-c:
		return true
	case <-r.Context().Done():
		return false
	case <-o.f.stop:
		return false
	}
}

func (o *orch) rtt() time.Duration {
	if o.f.cfg.RTTFrom == "" {
		return 0
	}
	o.mu.Lock()
	region := o.cfg.Region
	o.mu.Unlock()
	d, _ := o.f.sc.RTT.Between(o.f.cfg.RTTFrom, region) // checked by New for every region
	return o.f.scale(d)
}

func (o *orch) count(outcome string) {
	o.f.m.requests.WithLabelValues(o.id, outcome).Inc()
}

// abort closes the connection without an answer: the client sees it reset
// (or an EOF), never a status.
func abort(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler) // net/http closes the connection quietly
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // a reset, as a crashed or unplugged process gives
	}
	_ = conn.Close()
}

// apply applies one change now: state, evictions, and the listener.
func (o *orch) apply(ctx context.Context, ch scenario.Change) error {
	o.applyMu.Lock()
	defer o.applyMu.Unlock()
	o.mu.Lock()
	prev := o.cfg
	cur := prev
	cur.Classes = maps.Clone(prev.Classes)
	st := scenario.State{Orchestrators: []scenario.Orchestrator{cur}}
	if err := st.Apply(ch); err != nil {
		o.mu.Unlock()
		return err
	}
	next := st.Orchestrators[0]
	if err := o.f.check(next); err != nil {
		o.mu.Unlock()
		return fmt.Errorf("orchestrator %s: %w", o.id, err)
	}
	o.cfg = next
	if prev.Hang && !next.Hang {
		close(o.unhang)
		o.unhang = make(chan struct{})
	}
	switch {
	case next.Down && !prev.Down:
		o.evict(true)
	case next.Hang && !next.Down && !prev.Hang:
		o.evict(false)
	default:
		o.dispatch()
	}
	o.mu.Unlock()

	switch {
	case next.Down && o.srv != nil:
		o.closeServer()
	case !next.Down && o.srv == nil:
		return o.open(ctx)
	}
	return nil
}

// open binds the orchestrator's port (retrying for ReopenTimeout if it is
// taken) and serves it. applyMu held.
func (o *orch) open(ctx context.Context) error {
	if o.closed {
		return nil
	}
	addr := net.JoinHostPort(o.f.cfg.Host, strconv.Itoa(o.port))
	deadline := o.f.clock.Now().Add(o.f.cfg.ReopenTimeout)
	var lc net.ListenConfig
	for {
		ln, err := lc.Listen(ctx, "tcp", addr)
		if err == nil {
			o.port = ln.Addr().(*net.TCPAddr).Port
			o.serve(ln)
			return nil
		}
		if o.port == 0 || !o.f.clock.Now().Before(deadline) {
			return fmt.Errorf("orchestrator %s: listen on %s: %w", o.id, addr, err)
		}
		c, stop := o.f.clock.Timer(20 * time.Millisecond)
		select {
		case <-c:
		case <-ctx.Done():
			stop()
			return fmt.Errorf("orchestrator %s: listen on %s: %w", o.id, addr, ctx.Err())
		}
	}
}

// serve starts an http.Server on ln, owned by the fleet. applyMu held.
func (o *orch) serve(ln net.Listener) {
	srv := &http.Server{
		Handler:           o,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(o.f.logger.Handler(), slog.LevelDebug),
	}
	if !o.f.goServer(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			o.f.logger.Error("orchestrator server stopped", keyOrchestrator, o.id, keyErr, err)
		}
	}) {
		_ = ln.Close()
		return
	}
	o.srv = srv
	o.f.m.up.WithLabelValues(o.id).Set(1)
}

// closeServer closes the listener and every connection at once (refused
// from now on, held requests reset). applyMu held.
func (o *orch) closeServer() {
	if o.srv == nil {
		return
	}
	_ = o.srv.Close()
	o.srv = nil
	o.f.m.up.WithLabelValues(o.id).Set(0)
}

// reservePort picks a free port for an orchestrator that starts down, so
// its URL is known before it first comes up. applyMu held.
func (o *orch) reservePort(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", net.JoinHostPort(o.f.cfg.Host, strconv.Itoa(o.port)))
	if err != nil {
		return fmt.Errorf("orchestrator %s: reserve a port: %w", o.id, err)
	}
	o.port = ln.Addr().(*net.TCPAddr).Port
	return ln.Close()
}
