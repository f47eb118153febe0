package closedloop

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/optimizer"
	"github.com/loopgate/loopgate/router"
	"github.com/loopgate/loopgate/sim"
	"github.com/loopgate/loopgate/sim/scenario"
	"github.com/loopgate/loopgate/warehouse"
)

// Name is the product's policy in bench reports.
const Name = "loopgate"

// Epoch is where virtual time starts on the clock that outcomes,
// warehouse buckets and the optimizer read: virtual offset t is Epoch() + t.
func Epoch() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }

// Config tunes the policy. DefaultConfig gives the product's defaults.
type Config struct {
	// Router is the fast loop's configuration: MaxAttempts and Selection
	// are read. Default router.DefaultConfig().
	Router router.Config
	// Optimizer is the slow loop's configuration; its catalog is built
	// from what the scenario's orchestrators advertise. Default
	// optimizer.DefaultConfig().
	Optimizer optimizer.Config
	// FlushEvery is how often finished requests' outcomes are written to
	// the warehouse, in virtual time: the ingest consumer's batching.
	// Default 1s.
	FlushEvery time.Duration
	// LibPath is libchdb.so for the embedded warehouse. Default: found as
	// the warehouse finds it (LOOPGATE_CHDB_LIB, CHDB_LIB_PATH, then the
	// copy `make run` and `make test` cache).
	LibPath string
	// TempDir holds each run's warehouse data directory, removed by
	// Close. Default: the system's temporary directory.
	TempDir string
	// Discovery is how often the optimizer's catalog is refreshed from
	// what discovery reports (prices), in virtual time, on its own period
	// and never at a timeline instant: a deployed gateway learns a new
	// price when it next asks, and faults only from outcomes. Default 1m
	// (go-livepeer's webhook pool is refreshed at most once a minute).
	Discovery time.Duration
	// StepTime models how long one optimizer step takes; the policy it
	// computes from the window ending at t reaches the fast loop at
	// t + StepTime.Of(...). Default DefaultStepTime().
	StepTime StepTime
	// Routers is how many routers share the slow loop (routers.go): each
	// has its own fast loop and sees only its own requests. Default 1.
	Routers int
	// AttemptTimeout derives each attempt's timeout from the latency its
	// orchestrator has shown for the class (router.LatencyDist; a cold
	// orchestrator borrows the class's estimate over every orchestrator),
	// so a hung or failing orchestrator is abandoned, counted as failing
	// and retried elsewhere well before the client's timeout. Default
	// router.DefaultTimeoutConfig().
	AttemptTimeout router.TimeoutConfig
}

// StepTime is a deterministic model of one optimizer step's duration
// (read statistics, estimate, solve, build the policy): Base plus PerArc
// for each (orchestrator, class, client region) the step plans over. The
// bench charges it in virtual time instead of measuring wall time, so a
// report stays byte-for-byte the same for a seed on any machine while a
// slow solver still shows up as a stale policy.
type StepTime struct {
	// Base is the fixed part: the statistics query and the policy's
	// encoding. Default in DefaultStepTime.
	Base time.Duration
	// PerArc is the cost of one orchestrator × class × client region.
	// Default in DefaultStepTime.
	PerArc time.Duration
}

// DefaultStepTime is fitted to the optimizer's step times measured on this
// project's reference machine (2 vCPU KVM, shared): Base 150 ms, between
// the median (80–95 ms) and the 90th percentile (370–480 ms) of the
// closed loop's own steps (statistics from chDB included) on
// steady-heterogeneous and fault-storm; PerArc 9 µs per orchestrator ×
// class × region, the CPU time of BenchmarkStepScale at 1,000
// orchestrators × 100 classes × 8 regions (7.2 s). See docs/BENCHMARKS.md
// ("Optimizer and oracle at scale").
func DefaultStepTime() StepTime {
	return StepTime{Base: 150 * time.Millisecond, PerArc: 9 * time.Microsecond}
}

// Of is the modelled duration of a step over orchs orchestrators, classes
// classes and regions client regions.
func (m StepTime) Of(orchs, classes, regions int) time.Duration {
	return m.Base + time.Duration(orchs*classes*regions)*m.PerArc
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{
		Router: router.DefaultConfig(), Optimizer: optimizer.DefaultConfig(), FlushEvery: time.Second,
		Discovery: time.Minute, StepTime: DefaultStepTime(), Routers: 1,
		AttemptTimeout: router.DefaultTimeoutConfig(),
	}
}

// Validate reports settings that cannot work.
func (c Config) Validate() error {
	var errs []error
	if c.FlushEvery <= 0 {
		errs = append(errs, fmt.Errorf("closedloop: flush_every %v must be positive", c.FlushEvery))
	}
	if c.Discovery <= 0 {
		errs = append(errs, fmt.Errorf("closedloop: discovery %v must be positive", c.Discovery))
	}
	if c.StepTime.Base < 0 || c.StepTime.PerArc < 0 {
		errs = append(errs, fmt.Errorf("closedloop: step time %+v must not be negative", c.StepTime))
	}
	if c.Routers < 1 {
		errs = append(errs, fmt.Errorf("closedloop: routers %d must be at least 1", c.Routers))
	}
	if c.Router.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("closedloop: router max_attempts %d must be at least 1", c.Router.MaxAttempts))
	}
	if err := c.AttemptTimeout.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("closedloop: %w", err))
	}
	if err := c.Optimizer.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Constructor is the sim.Constructor of the policy with cfg: register it
// under Name beside the baselines.
func Constructor(cfg Config) sim.Constructor {
	return func(ctx context.Context, env sim.Env) (sim.Policy, error) {
		if cfg.Routers > 1 {
			return NewRouters(ctx, cfg, env)
		}
		return New(ctx, cfg, env)
	}
}

// Policy is loopgate in the simulator. See the package doc.
type Policy struct {
	sc     *scenario.Scenario
	cfg    Config
	sel    router.SelectionConfig
	params router.Params
	rng    *rand.Rand
	ids    io.Reader // seeded source for event.NewID

	store *warehouse.Store
	dir   string // the store's data directory, removed by Close
	opt   *optimizer.Optimizer
	now   time.Duration // the virtual clock the optimizer reads

	orchIDs []string
	fast    []router.Tracker // by orchestrator index: the router's own fast-loop state
	// Latency per orchestrator × class (index o·classes + class) and per
	// class over all orchestrators, for the derived attempt timeout.
	lat      []router.LatencyDist
	classLat []router.LatencyDist

	// The applied policy, resolved per (class, client region) through the
	// router's PolicyIndex: shares by orchestrator index, nil = equal.
	version    uint64
	shares     map[shareKey][]float64
	ejectUntil []int64 // Unix ms (virtual), by orchestrator
	ix         *router.PolicyIndex

	shaping shaping // limits, edge queue and admission: the router's own (shaping.go)

	pending     map[int]*request
	budget      *router.RetryBudget // the router's retry budget, same code
	retries     int                 // retries the budget allowed
	refused     int                 // retries the budget refused
	buf         []event.Outcome
	flushes     int
	written     int          // outcomes written to the warehouse
	rounds      int          // optimizer rounds that published a policy
	predictions []Prediction // each round's prediction for its own λ
	nextFlush   time.Duration
	nextStep    time.Duration
	// A policy the optimizer computed but whose step has not ended yet in
	// virtual time: it is applied at applyAt.
	computed    *event.Policy
	applyAt     time.Duration
	stepTime    time.Duration // the modelled duration of every step
	nextCatalog time.Duration // the next discovery refresh
	fleet       *sim.Fleet    // the router's view, for prices; nil before the first Pick
	maxInFlight []int         // advertised at start, by orchestrator: static
	catalog     optimizer.Catalog
	refreshes   []time.Duration // when the catalog changed, for tests

	gate *gate // the scenario's gateway section (gateway.go); nil: none

	// With several routers (routers.go): the leader holds the slow loop
	// and each follower's finished outcomes; a follower counts its own
	// attempts in flight (own), as a router knows only its own.
	leader    *Policy
	followers []*Policy
	own       []int

	cands  []router.Candidate
	idx    []int
	last   router.Choice // draw's choice
	err    error         // the first error outside Advance, returned by the next Advance
	closed bool
}

type shareKey struct {
	class  int
	region string
}

// request is a request whose outcome is not built yet.
type request struct {
	req      sim.Request // copied at the first Pick
	client   string
	version  uint64
	picks    []router.Choice // per attempt, in Seq order
	attempts []event.Attempt
	inflight int
	answered float64 // price per unit of the attempt that answered
	// shedReason is the error class of a request shed at the edge.
	shedReason string
	settle     func(*event.Outcome) // the gateway's, called with the outcome; nil: none
}

// New builds the policy for one run of env's scenario: it opens an
// embedded warehouse of its own (own data directory, own database) and an
// optimizer reading it. Close releases both; the process holds at most one
// embedded engine at a time, so a run must be closed before the next opens.
func New(ctx context.Context, cfg Config, env sim.Env) (*Policy, error) {
	p, err := newFast(cfg, env)
	if err != nil {
		return nil, err
	}
	if err := p.openSlow(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// newFast is a policy's fast loop: the router's state, shaping, retry
// budget and gateway, with no warehouse or optimizer yet.
func newFast(cfg Config, env sim.Env) (*Policy, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sc := env.Scenario
	sel := cfg.Router.Selection
	p := &Policy{
		sc: sc, cfg: cfg, sel: sel, params: sel.Params(), rng: env.Rand,
		orchIDs:     make([]string, len(sc.Orchestrators)),
		fast:        make([]router.Tracker, len(sc.Orchestrators)),
		ejectUntil:  make([]int64, len(sc.Orchestrators)),
		lat:         make([]router.LatencyDist, len(sc.Orchestrators)*len(sc.Classes)),
		classLat:    make([]router.LatencyDist, len(sc.Classes)),
		pending:     map[int]*request{},
		nextFlush:   cfg.FlushEvery,
		budget:      router.NewRetryBudget(cfg.Router.RetryBudget),
		stepTime:    cfg.StepTime.Of(len(sc.Orchestrators), len(sc.Classes), len(sc.Regions)),
		nextCatalog: cfg.Discovery,
	}
	p.shaping = newShaping(cfg.Router.Shaping, len(sc.Orchestrators))
	var seed [32]byte
	for i := 0; i < len(seed); i += 8 {
		v := env.Rand.Uint64()
		for j := range 8 {
			seed[i+j] = byte(v >> (8 * j))
		}
	}
	p.ids = rand.NewChaCha8(seed)
	p.maxInFlight = make([]int, len(sc.Orchestrators))
	var err error
	if p.gate, err = newGate(sc); err != nil {
		return nil, err
	}
	for i, o := range sc.Orchestrators {
		p.orchIDs[i] = o.ID
		p.maxInFlight[i] = sc.Advertised(&sc.Orchestrators[i]).MaxInFlight
	}
	return p, nil
}

// openSlow opens the slow loop: an embedded warehouse of p's own and the
// optimizer reading it.
func (p *Policy) openSlow(ctx context.Context) error {
	sc, cfg := p.sc, p.cfg
	dir, err := os.MkdirTemp(cfg.TempDir, "loopgate-bench-chdb-")
	if err != nil {
		return fmt.Errorf("create warehouse data dir: %w", err)
	}
	p.dir = dir
	wcfg := warehouse.DefaultConfig()
	wcfg.Backend = warehouse.BackendEmbedded
	wcfg.DataDir = dir
	wcfg.Database = "loopgate_bench_" + sqlName(sc.Name)
	wcfg.LibPath = cfg.LibPath
	// Virtual timestamps start in 2026; TTLs must never drop them.
	wcfg.RawRetentionDays, wcfg.RollupRetentionDays, wcfg.FineRetentionDays = 0, 0, 0
	store, err := warehouse.Open(ctx, wcfg, deps.Deps{})
	if err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("the loopgate policy needs the embedded warehouse: %w", err)
	}
	p.store = store

	ocfg := cfg.Optimizer
	ocfg.Catalog = p.discover(func(i int) *scenario.Orchestrator { return &sc.Orchestrators[i] })
	p.catalog = ocfg.Catalog
	p.nextStep = ocfg.Period
	opt, err := optimizer.New(ocfg, store, publisher{p}, deps.Deps{Clock: func() time.Time { return Epoch().Add(p.now) }}, optimizer.WithShed(store))
	if err != nil {
		p.Close()
		return fmt.Errorf("optimizer: %w", err)
	}
	p.opt = opt
	return nil
}

// sqlName keeps the letters, digits and underscores a database name allows.
func sqlName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

// discover is the optimizer's catalog as discovery reports it when asked:
// each orchestrator's id, region and prices now (orch(i): its state after
// the timeline so far), its advertised capacity as at the start (static,
// as go-livepeer's capabilities are: a fault does not re-advertise), and a
// made-up URL. Nothing else of orch(i) is read.
func (p *Policy) discover(orch func(i int) *scenario.Orchestrator) optimizer.Catalog {
	orchs := make([]event.Orchestrator, len(p.sc.Orchestrators))
	for i := range p.sc.Orchestrators {
		orchs[i] = p.sc.Advertised(orch(i))
		orchs[i].MaxInFlight = p.maxInFlight[i]
		orchs[i].URL = "http://" + sqlName(orchs[i].ID) + ".sim"
	}
	return Catalog(p.sc, orchs)
}

// Catalog is the optimizer's catalog for a simulated fleet: the
// orchestrators as discovery reports them, and the scenario's classes with
// their SLO, value and units. `loopgate dev` gives its optimizer the same.
func Catalog(sc *scenario.Scenario, orchs []event.Orchestrator) optimizer.Catalog {
	c := optimizer.Catalog{Orchestrators: orchs}
	seen := map[[2]string]bool{}
	for _, cl := range sc.Classes {
		k := [2]string{cl.Capability, cl.Model}
		if !seen[k] {
			seen[k] = true
			c.Classes = append(c.Classes, optimizer.Class{Capability: cl.Capability, Model: cl.Model, SLO: cl.SLO, Value: cl.Value, Units: cl.Units})
		}
	}
	return c
}

// publisher hands every policy the optimizer computes straight to the
// fast loop, as the router does with a policy from the log.
// The step that computed it is still running in virtual time, so the
// policy is held until the step's modelled end (Advance applies it).
type publisher struct{ p *Policy }

func (b publisher) PublishPolicy(_ context.Context, pol event.Policy, _ []byte) error {
	b.p.computed = &pol
	return nil
}

func (p *Policy) clock(now time.Duration) time.Time { return Epoch().Add(now) }

// apply resolves pol through the router's PolicyIndex, as the router's
// tables do: shares per class and client region with the same fallbacks,
// ejections and in-flight limits.
func (p *Policy) apply(pol event.Policy) {
	p.version = pol.Version
	ix := router.NewPolicyIndex(&pol, p.clock(p.now).UnixMilli())
	p.ix = ix
	for o, id := range p.orchIDs {
		p.shaping.lim[o].SetCeiling(ix.Limit(id))
		ej, _ := ix.Ejection(id)
		p.ejectUntil[o] = ej.UntilMs
	}
	p.shaping.admission.Apply(&pol, p.clock(p.now))
	for _, f := range p.followers {
		f.now = p.now
		f.apply(pol)
	}
	p.shares = map[shareKey][]float64{}
	for ci, cl := range p.sc.Classes {
		for _, region := range p.sc.Regions {
			if sh := router.Shares(ix.Entry(cl.Capability, cl.Model, region), p.orchIDs); sh != nil {
				p.shares[shareKey{ci, region}] = sh
			}
		}
	}
}

// Limits implements sim.Policy: the router's attempts, no hedging.
func (p *Policy) Limits(time.Duration, *sim.Request) sim.Limits {
	return sim.Limits{MaxAttempts: p.cfg.Router.MaxAttempts}
}

// Pick implements sim.Policy with the router's shaping, candidates and
// draw: a slot handed over from the edge queue, else (a first attempt)
// admission and the queue's precedence, else the router's draw, parking
// the request at the edge when every eligible orchestrator is at its limit.
// The attempt gets the timeout derived from its orchestrator's latency
// (Config.AttemptTimeout).
func (p *Policy) Pick(now time.Duration, req *sim.Request, fleet *sim.Fleet) sim.Choice {
	c := p.pick(now, req, fleet)
	if c.Orch >= 0 {
		c.Timeout = p.attemptTimeout(now, req, c.Orch)
	}
	return c
}

// attemptTimeout is the derived timeout of req's attempt on orchestrator
// o: from o's own latency for the class, else (o is cold) the class's.
func (p *Policy) attemptTimeout(now time.Duration, req *sim.Request, o int) time.Duration {
	return p.cfg.AttemptTimeout.TimeoutFor(&p.lat[o*len(p.sc.Classes)+req.Class], &p.classLat[req.Class], req.Deadline-now)
}

func (p *Policy) pick(now time.Duration, req *sim.Request, fleet *sim.Fleet) sim.Choice {
	p.fleet = fleet
	nowT := p.clock(now)
	if c, done := p.shaping.resume(p, now, req); done {
		return c
	}
	if req.Attempts == 0 && p.pending[req.ID] == nil && !p.gate.admit(now, p.sc, req) {
		return sim.GiveUp() // 429/402 from the gateway (gateway.go), before any attempt
	}
	if req.Attempts == 0 {
		if ok := p.admit(now, req); !ok {
			return sim.GiveUp()
		}
	}
	for tries := 0; ; tries++ {
		o, ok, atLimit := p.draw(nowT, req, fleet)
		if !ok {
			if atLimit && !p.cfg.Router.Shaping.QueueDisabled && p.retryMayWait(nowT, req) {
				// Every orchestrator left is at its limit: a retry waits at
				// the edge for a slot, as a first attempt does, instead of
				// failing a request that still has time.
				return p.park(now, req)
			}
			r := p.pending[req.ID]
			if r != nil && r.inflight == 0 {
				p.finish(now, r, event.StatusError)
			}
			if r == nil {
				p.gate.release(req.ID) // admitted, then no orchestrator: settled as rejected
			}
			return sim.GiveUp()
		}
		// Waiters of the class go first: the slot goes to one of them and
		// the newcomer draws again (as the router's proxy does).
		if req.Attempts == 0 && tries < 4 && p.shaping.queuedClass(req.Class) && p.handTo(now, p.idx[o]) {
			continue
		}
		r := p.request(now, req)
		r.picks = append(r.picks, p.last)
		r.inflight++
		return p.use(p.idx[o])
	}
}

// draw is the router's decision for req: candidates from the fast-loop
// state under the limits in force, then router.Choose. It returns the
// index into p.idx, and whether some candidate was left out at its limit.
func (p *Policy) draw(nowT time.Time, req *sim.Request, fleet *sim.Fleet) (int, bool, bool) {
	elig := fleet.Eligible(req.Class)
	shares := p.shares[shareKey{req.Class, req.Region}]
	p.cands, p.idx = p.cands[:0], p.idx[:0]
	atLimit := false
	for _, o := range elig {
		if sim.Tried(req, o) {
			continue
		}
		share := 1 / float64(len(elig))
		if shares != nil {
			share = shares[o]
		}
		inFlight, limit := p.inFlight(o)+p.shaping.reserved[o], p.shaping.lim[o].Limit()
		c, ok := p.fast[o].CandidateOf(nowT, p.sel.LatencyStale, share, inFlight, limit, p.ejectUntil[o])
		if !ok {
			if limit > 0 && inFlight >= limit && p.ejectUntil[o] <= nowT.UnixMilli() {
				atLimit = true
			}
			continue
		}
		p.cands = append(p.cands, c)
		p.idx = append(p.idx, o)
	}
	ch, ok := router.Choose(p.params, p.cands, p.rng.Float64())
	if ok && ch.Panic && atLimit {
		// Only locally ejected orchestrators are under their limit: a
		// healthy one at its limit frees a slot soon, so wait for it
		// (as the router's choose does) rather than send to one that has failed.
		return 0, false, true
	}
	if ok && req.Attempts > 0 {
		// A retry, which the router makes only while its budget allows.
		if ok = p.budget.TryRetry(nowT); ok {
			p.retries++
		} else {
			p.refused++
			atLimit = false // refused by the budget, not for want of a slot
		}
	}
	if !ok {
		return 0, false, atLimit
	}
	p.last = ch
	return ch.Index, true, atLimit
}

// retryMayWait reports whether req may wait at the edge: a first attempt
// always; a retry when it is pending (not already ended) and the retry
// budget allows it, which it spends.
func (p *Policy) retryMayWait(nowT time.Time, req *sim.Request) bool {
	if req.Attempts == 0 {
		return true
	}
	if r := p.pending[req.ID]; r == nil || r.inflight > 0 {
		return false
	}
	if !p.budget.TryRetry(nowT) {
		p.refused++
		return false
	}
	p.retries++
	return true
}

// request is req's pending record, made at its first attempt or shedding.
func (p *Policy) request(now time.Duration, req *sim.Request) *request {
	r := p.pending[req.ID]
	if r == nil {
		p.budget.Request(p.clock(now))
		r = &request{req: *req, client: p.sc.Clients[req.Client].ID, version: p.version, settle: p.gate.take(req.ID)}
		r.req.Tried = nil
		p.pending[req.ID] = r
	}
	return r
}

// Observe implements sim.Policy: the fast loop learns at once; the
// request's outcome is built when its last attempt is known.
func (p *Policy) Observe(now time.Duration, a *sim.Attempt) {
	if p.own != nil {
		p.own[a.Orch]--
	}
	nowT := p.clock(now)
	st := &p.fast[a.Orch]
	ms := float64(a.Latency) / float64(time.Millisecond)
	switch a.Outcome {
	case sim.OK:
		st.ObserveLatency(nowT, ms, p.sel.LatencyTau)
		st.Succeeded()
		p.lat[a.Orch*len(p.sc.Classes)+a.Class].Observe(ms, p.cfg.AttemptTimeout)
		p.classLat[a.Class].Observe(ms, p.cfg.AttemptTimeout)
	case sim.TimedOut, sim.AttemptTimeout:
		st.ObserveLatency(nowT, ms, p.sel.LatencyTau)
		st.Failed(nowT, p.sel)
	case sim.Failed, sim.Refused, sim.Reset:
		st.Failed(nowT, p.sel) // a busy answer (Rejected) is a load signal, not a failure
	}
	res0, _ := attemptResult(a.Outcome)
	// In flight as the router counts it when an attempt ends: this one included.
	p.shaping.lim[a.Orch].Observe(router.SignalOf(res0), ms, p.inFlight(a.Orch)+p.shaping.reserved[a.Orch]+1)
	p.handOff(now, a.Orch) // the slot it held goes to the edge queue first
	r := p.pending[a.Request]
	if r == nil || a.Seq >= len(r.picks) {
		return
	}
	r.inflight--
	ch := r.picks[a.Seq]
	o := &p.sc.Orchestrators[a.Orch]
	res, status := attemptResult(a.Outcome)
	r.attempts = append(r.attempts, event.Attempt{
		Orchestrator: o.ID, OrchRegion: o.Region, StartMs: p.clock(a.Sent).UnixMilli(),
		LatencyMs: a.Latency.Milliseconds(), Result: res, HTTPStatus: status, Retry: a.Seq > 0, Hedged: a.Hedge,
		Billed: a.Service > 0 || a.Cost > 0, Cost: a.Cost, Propensity: ch.Propensity, Score: ch.Score,
	})
	switch {
	case a.Outcome == sim.OK:
		if off, ok := o.Classes[p.sc.Classes[a.Class].ID]; ok {
			r.answered = off.Price
		}
		p.finish(now, r, event.StatusOK)
	case a.Outcome == sim.TimedOut:
		p.finish(now, r, event.StatusTimeout)
	case a.Outcome == sim.Cancelled || r.inflight > 0:
	case a.Seq+1 >= p.cfg.Router.MaxAttempts:
		p.finish(now, r, event.StatusError)
	case now >= r.req.Deadline:
		p.finish(now, r, event.StatusTimeout)
	}
}

// attemptResult is how the router records an attempt that ended so.
func attemptResult(o sim.Outcome) (event.AttemptResult, int) {
	switch o {
	case sim.OK:
		return event.AttemptOK, 200
	case sim.Failed, sim.Reset:
		return event.AttemptError, 500
	case sim.Rejected:
		return event.AttemptBusy, 503
	case sim.Refused:
		return event.AttemptRefused, 0
	case sim.Unsupported:
		return event.AttemptClient, 400
	case sim.TimedOut, sim.AttemptTimeout:
		return event.AttemptTimeout, 0
	}
	return event.AttemptCanceled, 0
}

// finish builds r's outcome and buffers it for the next flush.
func (p *Policy) finish(now time.Duration, r *request, status event.Status) {
	delete(p.pending, r.req.ID)
	if len(r.attempts) == 0 && status != event.StatusShed {
		if r.settle != nil {
			r.settle(&event.Outcome{Status: status})
		}
		return
	}
	cl := &p.sc.Classes[r.req.Class]
	end := p.clock(now).UnixMilli()
	id, err := event.NewID(end, p.ids)
	if err != nil {
		p.err = cmp.Or(p.err, fmt.Errorf("outcome id: %w", err))
		return
	}
	kind, _ := event.UnitKindOf(cl.Capability)
	out := event.Outcome{
		ID: id, Schema: event.SchemaVersion, GatewayID: "bench", GatewayRegion: r.req.Region,
		ClientRegion: r.req.Region, Customer: r.client, Capability: cl.Capability, Model: cl.Model,
		Units: int64(cl.Units), UnitKind: kind,
		StartMs: p.clock(r.req.Arrival).UnixMilli(), EndMs: end, Status: status,
		LatencyMs: (now - r.req.Arrival).Milliseconds(), PolicyVersion: r.version, Attempts: r.attempts,
	}
	switch status {
	case event.StatusOK:
		out.HTTPStatus = 200
		out.PricePerUnit = r.answered
	case event.StatusTimeout:
		out.HTTPStatus, out.ErrorClass = 504, "timeout"
	case event.StatusShed:
		out.HTTPStatus, out.ErrorClass = 503, r.shedReason
	default:
		out.HTTPStatus, out.ErrorClass = 502, "attempts_failed"
	}
	for _, a := range r.attempts {
		out.Cost += a.Cost
	}
	if r.settle != nil {
		r.settle(&out)
	}
	sink := p
	if p.leader != nil {
		sink = p.leader
	}
	sink.buf = append(sink.buf, out)
}

// Advance implements sim.Clocked, the slow loop in virtual time: every
// FlushEvery the buffered outcomes go to the warehouse, every optimizer
// period the optimizer runs a round on what the warehouse holds.
func (p *Policy) Advance(ctx context.Context, now time.Duration) error {
	p.now = now
	if p.err != nil {
		return p.err
	}
	if now >= p.nextFlush {
		if err := p.flush(ctx, now); err != nil {
			return err
		}
		every := p.cfg.FlushEvery
		p.nextFlush = now - now%every + every
	}
	if p.computed != nil && now >= p.applyAt {
		p.apply(*p.computed)
		p.computed = nil
	}
	if now >= p.nextCatalog {
		every := p.cfg.Discovery
		p.nextCatalog = now - now%every + every
		if err := p.refreshCatalog(now); err != nil {
			return err
		}
	}
	if now >= p.nextStep && p.computed == nil {
		// A step starts on the period's tick, and not while the last one
		// runs: a step longer than the period skips ticks, as a ticker does.
		period := p.cfg.Optimizer.Period
		end := now + p.stepTime
		p.nextStep = end - end%period + period
		if _, err := p.opt.Step(ctx); err != nil {
			return fmt.Errorf("optimizer round at %s: %w", now, err)
		}
		p.applyAt = end
		if p.computed != nil && p.stepTime == 0 {
			p.apply(*p.computed)
			p.computed = nil
		}
		p.rounds++
		p.record(now)
	}
	return nil
}

// refreshCatalog gives the optimizer the prices discovery reports now, as
// the optimizer command does when the fleet's prices change.
func (p *Policy) refreshCatalog(now time.Duration) error {
	if p.fleet == nil {
		return nil
	}
	c := p.discover(p.fleet.Orchestrator)
	if reflect.DeepEqual(c, p.catalog) {
		return nil
	}
	if err := p.opt.SetCatalog(c); err != nil {
		return fmt.Errorf("optimizer catalog: %w", err)
	}
	p.catalog = c
	p.refreshes = append(p.refreshes, now)
	return nil
}

// flush ends requests the simulator ended without telling the policy (the
// deadline passed with no attempt in flight), then writes the buffer.
func (p *Policy) flush(ctx context.Context, now time.Duration) error {
	p.endStale(now)
	if len(p.buf) == 0 {
		return nil
	}
	p.flushes++
	if err := p.store.WriteOutcomes(ctx, fmt.Sprintf("bench-%d", p.flushes), p.buf); err != nil {
		return fmt.Errorf("write %d outcomes: %w", len(p.buf), err)
	}
	p.written += len(p.buf)
	p.buf = p.buf[:0]
	return nil
}

// endStale ends the requests the simulator ended without telling the
// policy: the deadline passed with no attempt in flight.
func (p *Policy) endStale(now time.Duration) {
	var stale []int
	for id, r := range p.pending {
		if r.inflight == 0 && now >= r.req.Deadline {
			stale = append(stale, id)
		}
	}
	slices.Sort(stale)
	for _, id := range stale {
		p.finish(now, p.pending[id], event.StatusTimeout)
	}
}

// Stats are what a run did through the warehouse, for tests and reports.
type Stats struct {
	Written        int           // outcomes written to the warehouse
	Rounds         int           // optimizer rounds that published a policy
	Version        uint64        // the policy version in use
	StepTime       time.Duration // the modelled duration of each step
	Retries        int           // retries the retry budget allowed
	RetriesRefused int           // retries the retry budget refused
	// Shed counts requests shed at the edge, by reason (router.Shed*).
	Shed map[string]int
	// Handoffs counts slots handed from a finished attempt to a waiter.
	Handoffs int
	// Limits are the in-flight limits in force, by orchestrator (0 = none).
	Limits []int
}

// Stats reports what the run did so far.
func (p *Policy) Stats() Stats {
	st := Stats{
		Written: p.written, Rounds: p.rounds, Version: p.version, StepTime: p.stepTime,
		Retries: p.retries, RetriesRefused: p.refused,
		Shed: maps.Clone(p.shaping.Shed), Handoffs: p.shaping.Handoffs,
	}
	for _, l := range p.shaping.lim {
		st.Limits = append(st.Limits, l.Limit())
	}
	return st
}

// Share is the applied policy's share of orchestrator id for a scenario
// class and client region; ok is false when no entry governs them (equal
// shares) or id is unknown.
func (p *Policy) Share(class int, region, id string) (share float64, ok bool) {
	o := slices.Index(p.orchIDs, id)
	sh := p.shares[shareKey{class, region}]
	if o < 0 || sh == nil {
		return 0, false
	}
	return sh[o], true
}

// Ejected reports whether the applied policy ejects orchestrator id at
// virtual time now.
func (p *Policy) Ejected(id string, now time.Duration) bool {
	o := slices.Index(p.orchIDs, id)
	return o >= 0 && p.ejectUntil[o] > p.clock(now).UnixMilli()
}

// Close ends the run: it closes the warehouse and removes its data
// directory. It is safe to call more than once; the simulator calls it
// when the run is over, however it ended.
func (p *Policy) Close() error {
	if p.closed {
		return nil
	}
	p.closed = true
	var err error
	if p.store != nil {
		err = p.store.Close()
	}
	return errors.Join(err, os.RemoveAll(p.dir))
}

var (
	_ sim.Policy  = (*Policy)(nil)
	_ sim.Clocked = (*Policy)(nil)
	_ io.Closer   = (*Policy)(nil)
)
