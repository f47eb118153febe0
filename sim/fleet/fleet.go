package fleet

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/sim/scenario"
)

// Log keys.
const (
	keyOrchestrator = "orchestrator"
	keyErr          = "err"
	keyURL          = "url"
	keyChange       = "change"
)

// Fleet is a scenario's orchestrators served over real HTTP.
type Fleet struct {
	sc      *scenario.Scenario
	cfg     Config
	logger  *slog.Logger
	m       *metrics
	clock   Clock
	classes classTable
	orchs   []*orch
	byID    map[string]*orch

	mu       sync.Mutex // guards the fields below and the WaitGroups' Add
	started  bool
	stopping bool
	origin   time.Time
	cancel   context.CancelFunc
	servers  sync.WaitGroup // http.Server.Serve goroutines
	handlers sync.WaitGroup // requests being handled
	done     chan struct{}  // closed when Start's goroutines have ended
	stop     chan struct{}  // closed when the fleet stops: held requests end
}

// New builds the fleet of sc; nothing listens until Start. logger and reg
// may be nil (no logs, metrics not registered).
func New(sc *scenario.Scenario, cfg Config, d deps.Deps) (*Fleet, error) {
	if sc == nil {
		return nil, errors.New("fleet: nil scenario")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("fleet config: %w", err)
	}
	for id := range cfg.Ports {
		if sc.OrchestratorIndex(id) < 0 {
			return nil, fmt.Errorf("fleet config: ports.%s: no such orchestrator in scenario %s", id, sc.Name)
		}
	}
	if cfg.RTTFrom != "" {
		if err := checkRTT(sc, cfg.RTTFrom); err != nil {
			return nil, fmt.Errorf("fleet config: rtt_from: %w", err)
		}
	}
	if cfg.BasePort > 0 && cfg.BasePort+len(sc.Orchestrators)-1 > 65535 {
		return nil, fmt.Errorf("fleet config: base_port %d leaves no room for %d orchestrators", cfg.BasePort, len(sc.Orchestrators))
	}
	logger := d.Log()
	m, err := newMetrics(d.Registerer)
	if err != nil {
		return nil, err
	}
	f := &Fleet{
		sc: sc, cfg: cfg, logger: logger, m: m, clock: cfg.Clock,
		classes: newClassTable(sc),
		byID:    map[string]*orch{},
		done:    make(chan struct{}),
		stop:    make(chan struct{}),
	}
	if f.clock == nil {
		f.clock = WallClock{}
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = sc.Seed
	}
	st := sc.Initial()
	for i, oc := range st.Orchestrators {
		port := cfg.Ports[oc.ID]
		if port == 0 && cfg.BasePort > 0 {
			port = cfg.BasePort + i
		}
		o := &orch{
			f: f, id: oc.ID, port: port, cfg: oc,
			rng:    rand.New(rand.NewPCG(uint64(seed), streamOf(oc.ID))),
			ev:     newEviction(),
			unhang: make(chan struct{}),
		}
		f.orchs = append(f.orchs, o)
		f.byID[oc.ID] = o
		m.up.WithLabelValues(oc.ID).Set(0)
	}
	return f, nil
}

// streamOf names an orchestrator's random stream by its id, so adding an
// orchestrator to a scenario leaves the others' draws alone.
func streamOf(id string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(id))
	return h.Sum64()
}

func checkRTT(sc *scenario.Scenario, from string) error {
	known := false
	for _, r := range sc.Regions {
		known = known || r == from
	}
	if !known {
		return fmt.Errorf("region %q is not in scenario %s (regions %v)", from, sc.Name, sc.Regions)
	}
	regions := map[string]bool{}
	for _, o := range sc.Orchestrators {
		regions[o.Region] = true
	}
	for _, ch := range sc.Timeline {
		if ch.Set.Region != nil && ch.Orchestrator != "" {
			regions[*ch.Set.Region] = true
		}
	}
	for r := range regions {
		if _, ok := sc.RTT.Between(from, r); !ok {
			return fmt.Errorf("scenario %s has no rtt_ms between %s and %s", sc.Name, from, r)
		}
	}
	return nil
}

// Start binds every orchestrator that is not down at time 0 (timeline
// entries at 0s included) and serves it, then plays the timeline from now
// on. Everything stops when ctx is cancelled; Run or Wait waits for that.
// An orchestrator that starts down still gets its port, so Addrs is
// complete once Start returns.
func (f *Fleet) Start(ctx context.Context) error {
	f.mu.Lock()
	if f.started {
		f.mu.Unlock()
		return errors.New("fleet: already started")
	}
	f.started = true
	ctx, f.cancel = context.WithCancel(ctx)
	f.mu.Unlock()

	if !f.cfg.DisableTimeline {
		for _, ch := range f.sc.Timeline {
			if ch.At > 0 {
				break
			}
			if o := f.byID[ch.Orchestrator]; o != nil {
				o.applyMu.Lock()
				err := o.applyState(ch)
				o.applyMu.Unlock()
				if err != nil {
					return f.abortStart(fmt.Errorf("timeline %s: %w", ch, err))
				}
			}
		}
	}
	for _, o := range f.orchs {
		o.applyMu.Lock()
		o.mu.Lock()
		down := o.cfg.Down
		o.mu.Unlock()
		var err error
		if down {
			err = o.reservePort(ctx)
		} else {
			err = o.open(ctx)
		}
		o.applyMu.Unlock()
		if err != nil {
			return f.abortStart(err)
		}
	}
	f.mu.Lock()
	f.origin = f.clock.Now()
	f.mu.Unlock()
	for _, o := range f.orchs {
		f.logger.Info("orchestrator listening", keyOrchestrator, o.id, keyURL, f.url(o))
	}
	go func() {
		defer close(f.done)
		if !f.cfg.DisableTimeline {
			f.playTimeline(ctx)
		}
		<-ctx.Done()
		f.shutdown()
	}()
	return nil
}

// abortStart undoes a Start that failed half way.
func (f *Fleet) abortStart(err error) error {
	f.cancel()
	f.shutdown()
	close(f.done)
	return err
}

// Run starts the fleet unless Start already did, and serves until ctx is
// cancelled. It returns nil after every server and request has ended:
// requests still held are closed unanswered.
func (f *Fleet) Run(ctx context.Context) error {
	f.mu.Lock()
	started := f.started
	f.mu.Unlock()
	if !started {
		if err := f.Start(ctx); err != nil {
			return err
		}
	}
	select {
	case <-ctx.Done():
		f.cancel()
	case <-f.done:
	}
	<-f.done
	return nil
}

// Wait blocks until a started fleet has stopped (its Start ctx cancelled).
func (f *Fleet) Wait() { <-f.done }

// Origin is the wall-clock time scenario time 0 maps to (set by Start):
// the timeline entry at t runs at Origin + t/Speed. Give it to the load
// generator so both play the same timeline.
func (f *Fleet) Origin() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.origin
}

// playTimeline applies the orchestrator changes at Origin + At/Speed.
func (f *Fleet) playTimeline(ctx context.Context) {
	origin := f.Origin()
	for _, ch := range f.sc.Timeline {
		o := f.byID[ch.Orchestrator]
		if ch.At <= 0 || o == nil {
			continue
		}
		if d := origin.Add(f.scale(ch.At)).Sub(f.clock.Now()); d > 0 {
			c, stop := f.clock.Timer(d)
			select {
			case <-c:
			case <-ctx.Done():
				stop()
				return
			}
		}
		if err := o.apply(ctx, ch); err != nil {
			f.logger.Error("timeline change not applied", keyChange, ch.String(), keyErr, err)
			continue
		}
		f.logger.Info("timeline change applied", keyChange, ch.String())
	}
}

// shutdown closes every server and ends every held request, then waits for
// them.
func (f *Fleet) shutdown() {
	f.mu.Lock()
	if f.stopping {
		f.mu.Unlock()
		return
	}
	f.stopping = true
	close(f.stop)
	f.mu.Unlock()
	for _, o := range f.orchs {
		o.applyMu.Lock()
		o.closed = true
		o.closeServer()
		o.applyMu.Unlock()
	}
	f.servers.Wait()
	f.handlers.Wait()
}

// enter registers a request; false once the fleet is stopping.
func (f *Fleet) enter() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopping {
		return false
	}
	f.handlers.Add(1)
	return true
}

func (f *Fleet) leave() { f.handlers.Done() }

// goServer runs fn as a server goroutine the fleet waits for; false once
// the fleet is stopping.
func (f *Fleet) goServer(fn func()) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopping {
		return false
	}
	f.servers.Add(1)
	go func() {
		defer f.servers.Done()
		fn()
	}()
	return true
}

// scale maps a scenario duration to wall-clock time.
func (f *Fleet) scale(d time.Duration) time.Duration {
	return time.Duration(float64(d) / f.cfg.Speed)
}

// Set applies a change to one orchestrator now, exactly as a timeline
// entry would (classes merge per class; see sim/scenario). It blocks only
// while an orchestrator coming back up rebinds its port. The timeline may
// later override what Set did.
func (f *Fleet) Set(ctx context.Context, id string, p scenario.Patch) error {
	o := f.byID[id]
	if o == nil {
		return fmt.Errorf("fleet: no orchestrator %q", id)
	}
	f.mu.Lock()
	started := f.started
	f.mu.Unlock()
	ch := scenario.Change{Orchestrator: id, Set: p}
	if !started {
		o.applyMu.Lock()
		defer o.applyMu.Unlock()
		return o.applyState(ch)
	}
	if err := o.apply(ctx, ch); err != nil {
		return err
	}
	f.logger.Info("orchestrator changed", keyChange, ch.String())
	return nil
}

// applyState changes an orchestrator that is not serving yet.
func (o *orch) applyState(ch scenario.Change) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	cur := o.cfg
	cur.Classes = maps.Clone(cur.Classes)
	st := scenario.State{Orchestrators: []scenario.Orchestrator{cur}}
	if err := st.Apply(ch); err != nil {
		return err
	}
	if err := o.f.check(st.Orchestrators[0]); err != nil {
		return fmt.Errorf("orchestrator %s: %w", o.id, err)
	}
	o.cfg = st.Orchestrators[0]
	return nil
}

// check validates an orchestrator's state after a change (Set takes any
// patch; the scenario's own timeline was validated by Parse).
func (f *Fleet) check(o scenario.Orchestrator) error {
	var errs []error
	if o.Capacity < 1 {
		errs = append(errs, fmt.Errorf("capacity: got %d, want ≥ 1", o.Capacity))
	}
	if o.Queue < 0 {
		errs = append(errs, fmt.Errorf("queue: got %d, want ≥ 0", o.Queue))
	}
	if !(o.Fail >= 0 && o.Fail <= 1) {
		errs = append(errs, fmt.Errorf("fail: got %v, want a probability in [0, 1]", o.Fail))
	}
	if o.FailMode != scenario.FailFast && o.FailMode != scenario.FailSlow {
		errs = append(errs, fmt.Errorf("fail_mode: got %q, want fast or slow", o.FailMode))
	}
	if f.cfg.RTTFrom != "" {
		if _, ok := f.sc.RTT.Between(f.cfg.RTTFrom, o.Region); !ok {
			errs = append(errs, fmt.Errorf("region: no rtt_ms between %s and %s", f.cfg.RTTFrom, o.Region))
		}
	}
	for _, id := range slices.Sorted(maps.Keys(o.Classes)) {
		off := o.Classes[id]
		if f.sc.ClassIndex(id) < 0 {
			errs = append(errs, fmt.Errorf("classes.%s: unknown class", id))
		}
		if off.P50 <= 0 || off.P99 < off.P50 {
			errs = append(errs, fmt.Errorf("classes.%s: want 0 < p50_ms ≤ p99_ms, got %v and %v", id, off.P50, off.P99))
		}
		if !(off.Price >= 0) {
			errs = append(errs, fmt.Errorf("classes.%s.price: got %v, want ≥ 0", id, off.Price))
		}
	}
	return errors.Join(errs...)
}

// State returns an orchestrator's current configuration (a copy).
func (f *Fleet) State(id string) (scenario.Orchestrator, bool) {
	o := f.byID[id]
	if o == nil {
		return scenario.Orchestrator{}, false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	c := o.cfg
	c.Classes = maps.Clone(c.Classes)
	return c, true
}

func (f *Fleet) url(o *orch) string {
	o.applyMu.Lock()
	port := o.port
	o.applyMu.Unlock()
	if port == 0 {
		return ""
	}
	return "http://" + net.JoinHostPort(f.cfg.Host, strconv.Itoa(port))
}

// MaxHeld is the most requests orchestrator id has held at once, in
// service and queued together, since the fleet started (0 for an unknown
// id): a router's in-flight limit bounds it.
func (f *Fleet) MaxHeld(id string) int {
	for _, o := range f.orchs {
		if o.id == id {
			o.mu.Lock()
			defer o.mu.Unlock()
			return o.maxHeld
		}
	}
	return 0
}

// Addrs maps each orchestrator id to its base URL ("http://127.0.0.1:PORT";
// a request for /llm goes to URL + "/llm"). Complete after Start; before,
// only pinned ports are known.
func (f *Fleet) Addrs() map[string]string {
	out := make(map[string]string, len(f.orchs))
	for _, o := range f.orchs {
		if u := f.url(o); u != "" {
			out[o.id] = u
		}
	}
	return out
}

// OrchestratorInfo is one simulated orchestrator as a gateway would know
// it (the embedded event.Orchestrator: id, URL, region, address, stake,
// concurrency and class prices, what the router's and the optimizer's
// configuration take as they are), with what the simulation knows besides.
type OrchestratorInfo struct {
	event.Orchestrator
	Capacity int
	Queue    int
	Down     bool
	Offers   []ClassOffer // the truth per scenario class, sorted by class id
}

// ClassOffer is one class an orchestrator serves.
type ClassOffer struct {
	ClassID    string
	Capability string
	Model      string
	Price      float64 // USD per unit
	P50, P99   time.Duration
}

// Orchestrators describes every orchestrator as it is now (timeline changes
// so far applied), in scenario order.
func (f *Fleet) Orchestrators() []OrchestratorInfo {
	out := make([]OrchestratorInfo, 0, len(f.orchs))
	for _, o := range f.orchs {
		url := f.url(o)
		o.mu.Lock()
		c := o.cfg
		info := OrchestratorInfo{Orchestrator: f.sc.Advertised(&c), Capacity: c.Capacity, Queue: c.Queue, Down: c.Down}
		info.URL = url
		for _, id := range slices.Sorted(maps.Keys(c.Classes)) {
			off := c.Classes[id]
			cl := f.sc.Classes[f.sc.ClassIndex(id)]
			info.Offers = append(info.Offers, ClassOffer{
				ClassID: id, Capability: cl.Capability, Model: cl.Model,
				Price: off.Price, P50: off.P50, P99: off.P99,
			})
		}
		o.mu.Unlock()
		out = append(out, info)
	}
	return out
}
