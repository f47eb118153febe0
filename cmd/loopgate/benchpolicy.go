package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/optimizer"
	"github.com/loopgate/loopgate/router"
	"github.com/loopgate/loopgate/sim"
	"github.com/loopgate/loopgate/sim/scenario"
	"github.com/loopgate/loopgate/warehouse"
)

// benchPolicyName is the product's policy in bench reports.
const benchPolicyName = "loopgate"

// Virtual time of the loopgate bench policy: virtual offset t is the wall
// time benchEpoch + t, for outcomes, warehouse buckets and the optimizer's
// clock alike.
var benchEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

const (
	// benchFlushEvery is how often buffered outcomes are written to the
	// warehouse, in virtual time (the ingest consumer's batching).
	benchFlushEvery = time.Second
	// benchAttempts is the router's attempt limit (the first and two retries).
	benchAttempts = 3
)

// benchPolicy is loopgate in the simulator: the router's fast loop
// (router.Choose over the policy's shares, peak-EWMA latency, consecutive
// failure ejection) and the optimizer's slow loop (optimizer.Step every
// period on the virtual clock), joined only through the real data path:
// every finished request becomes an event.Outcome written with
// warehouse.WriteOutcomes to an embedded ClickHouse, and the optimizer
// reads it back through AttemptStats. The policy it publishes is applied
// like router.SetPolicy does. Kafka is left out: in virtual time there is
// no concurrency for it to absorb, and the warehouse writer is the same.
//
// Each run opens its own embedded store (own data directory, own
// database) and closes it in Err, which the simulator calls once when the
// run ends: the process holds at most one embedded engine at a time.
type benchPolicy struct {
	sc     *scenario.Scenario
	sel    router.SelectionConfig
	params router.Params
	rng    *rand.Rand
	ids    io.Reader // seeded source for event.NewID

	store *warehouse.Store
	dir   string // the store's data directory, removed at the end
	opt   *optimizer.Optimizer
	now   time.Duration // the virtual clock the optimizer reads

	orchIndex map[string]int
	fast      []router.Tracker // by orchestrator index: the router's own fast-loop state

	// The applied policy, resolved per (class, client region) like the
	// router's tables: shares by orchestrator index, nil = equal shares.
	version    uint64
	shares     map[benchShareKey][]float64
	ejectUntil []int64 // Unix ms (virtual), by orchestrator
	limit      []int   // in-flight limit by orchestrator, 0 = none

	pending   map[int]*benchRequest
	buf       []event.Outcome
	flushes   int
	written   int // outcomes written to the warehouse
	rounds    int // optimizer rounds that published a policy
	nextFlush time.Duration
	nextStep  time.Duration
	period    time.Duration // the optimizer's
	fleet     *sim.Fleet    // the router's view, for the catalog; nil before the first Pick
	catalog   optimizer.Catalog

	cands []router.Candidate
	idx   []int
	err   error
	ended bool
}

type benchShareKey struct {
	class  int
	region string
}

// benchRequest is a request whose outcome is not built yet.
type benchRequest struct {
	req      sim.Request // copied at the first Pick
	client   string
	version  uint64
	picks    []router.Choice // per attempt, in Seq order
	attempts []event.Attempt
	inflight int
	answered float64 // price per unit of the attempt that answered
}

// newBenchPolicy is the sim.Constructor of the loopgate policy. It needs
// libchdb (LOOPGATE_CHDB_LIB) for the embedded warehouse.
func newBenchPolicy(env sim.Env) (sim.Policy, error) {
	sc := env.Scenario
	sel := router.DefaultConfig().Selection
	p := &benchPolicy{
		sc: sc, sel: sel, params: sel.Params(), rng: env.Rand,
		orchIndex:  make(map[string]int, len(sc.Orchestrators)),
		fast:       make([]router.Tracker, len(sc.Orchestrators)),
		ejectUntil: make([]int64, len(sc.Orchestrators)),
		limit:      make([]int, len(sc.Orchestrators)),
		pending:    map[int]*benchRequest{},
		nextFlush:  benchFlushEvery,
	}
	var seed [32]byte
	for i := 0; i < len(seed); i += 8 {
		v := env.Rand.Uint64()
		for j := range 8 {
			seed[i+j] = byte(v >> (8 * j))
		}
	}
	p.ids = rand.NewChaCha8(seed)
	for i, o := range sc.Orchestrators {
		p.orchIndex[o.ID] = i
	}

	dir, err := os.MkdirTemp("", "loopgate-bench-chdb-")
	if err != nil {
		return nil, fmt.Errorf("create warehouse data dir: %w", err)
	}
	wcfg := warehouse.DefaultConfig()
	wcfg.Backend = warehouse.BackendEmbedded
	wcfg.DataDir = dir
	wcfg.Database = "loopgate_bench_" + sqlName(sc.Name)
	wcfg.LibPath = os.Getenv("LOOPGATE_CHDB_LIB")
	// Virtual timestamps start in 2026; TTLs must never drop them.
	wcfg.RawRetentionDays, wcfg.RollupRetentionDays, wcfg.FineRetentionDays = 0, 0, 0
	// The Policy interface carries no context; Open is bounded by the engine.
	store, err := warehouse.Open(context.Background(), wcfg, nil, nil)
	if err != nil {
		os.RemoveAll(dir)
		if errors.Is(err, warehouse.ErrNoChdb) {
			return nil, fmt.Errorf("the loopgate policy needs the embedded warehouse: set LOOPGATE_CHDB_LIB to libchdb.so (deploy/local/chdb.sh path): %w", err)
		}
		return nil, fmt.Errorf("open embedded warehouse: %w", err)
	}
	p.store, p.dir = store, dir

	ocfg := optimizer.DefaultConfig()
	ocfg.Catalog = benchCatalog(sc, func(i int) *scenario.Orchestrator { return &sc.Orchestrators[i] })
	p.catalog = ocfg.Catalog
	p.nextStep, p.period = ocfg.Period, ocfg.Period
	opt, err := optimizer.New(ocfg, warehouseStats{store}, benchPublisher{p}, nil, nil, func() time.Time { return benchEpoch.Add(p.now) })
	if err != nil {
		p.end()
		return nil, fmt.Errorf("optimizer: %w", err)
	}
	p.opt = opt
	return p, nil
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

// benchCatalog is the optimizer's catalog built from the scenario and
// what discovery advertises of each orchestrator (orch(i): id, region,
// address and the prices of the classes it serves; nothing hidden).
func benchCatalog(sc *scenario.Scenario, orch func(i int) *scenario.Orchestrator) optimizer.Catalog {
	var c optimizer.Catalog
	for i := range sc.Orchestrators {
		o := orch(i)
		oc := optimizer.Orchestrator{ID: o.ID, URL: "http://" + sqlName(o.ID) + ".sim", Address: o.Address, Region: o.Region, MaxInFlight: o.Capacity + o.Queue}
		for _, cl := range sc.Classes {
			if off, ok := o.Classes[cl.ID]; ok {
				oc.Classes = append(oc.Classes, optimizer.ClassPrice{Capability: cl.Capability, Model: cl.Model, PricePerUnit: off.Price})
			}
		}
		c.Orchestrators = append(c.Orchestrators, oc)
	}
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

// benchPublisher hands every policy the optimizer computes straight to the
// policy's fast loop, as the router's policy consumer does with SetPolicy.
type benchPublisher struct{ p *benchPolicy }

func (b benchPublisher) PublishPolicy(_ context.Context, pol event.Policy) error {
	b.p.apply(pol)
	return nil
}

func (p *benchPolicy) clock(now time.Duration) time.Time { return benchEpoch.Add(now) }

// apply resolves pol like the router's applyPolicy: shares per class and
// client region with the same fallbacks, ejections and in-flight limits.
func (p *benchPolicy) apply(pol event.Policy) {
	p.version = pol.Version
	nowMs := p.clock(p.now).UnixMilli()
	clear(p.ejectUntil)
	clear(p.limit)
	for _, l := range pol.Limits {
		if o, ok := p.orchIndex[l.Orchestrator]; ok && l.MaxInFlight > 0 && (p.limit[o] == 0 || l.MaxInFlight < p.limit[o]) {
			p.limit[o] = l.MaxInFlight
		}
	}
	for _, ej := range pol.Ejections {
		o, ok := p.orchIndex[ej.Orchestrator]
		if !ok {
			continue
		}
		until := ej.UntilMs
		if until == 0 {
			until = math.MaxInt64
		}
		if until > nowMs && until > p.ejectUntil[o] {
			p.ejectUntil[o] = until
		}
	}
	type entryKey struct{ capability, model, region string }
	entries := make(map[entryKey]*event.ClassPolicy, len(pol.Classes))
	for i := range pol.Classes {
		c := &pol.Classes[i]
		k := entryKey{c.Capability, c.Model, c.ClientRegion}
		if _, dup := entries[k]; len(c.Shares) > 0 && !dup {
			entries[k] = c
		}
	}
	p.shares = map[benchShareKey][]float64{}
	for ci, cl := range p.sc.Classes {
		for _, region := range p.sc.Regions {
			var c *event.ClassPolicy
			for _, ek := range []entryKey{{cl.Capability, cl.Model, region}, {cl.Capability, cl.Model, ""}, {cl.Capability, "", region}, {cl.Capability, "", ""}} {
				if e, ok := entries[ek]; ok {
					c = e
					break
				}
			}
			if c == nil {
				continue
			}
			sh := make([]float64, len(p.sc.Orchestrators))
			for _, s := range c.Shares {
				if o, ok := p.orchIndex[s.Orchestrator]; ok {
					sh[o] += s.Share
				}
			}
			p.shares[benchShareKey{ci, region}] = sh
		}
	}
}

// Limits implements sim.Policy: the router's attempts, no hedging.
func (p *benchPolicy) Limits(time.Duration, *sim.Request) sim.Limits {
	return sim.Limits{MaxAttempts: benchAttempts}
}

// Pick implements sim.Policy with the router's candidate filter and draw.
func (p *benchPolicy) Pick(now time.Duration, req *sim.Request, fleet *sim.Fleet) sim.Choice {
	p.fleet = fleet
	p.tick(now)
	nowT := p.clock(now)
	nowMs := nowT.UnixMilli()
	elig := fleet.Eligible(req.Class)
	shares := p.shares[benchShareKey{req.Class, req.Region}]
	p.cands, p.idx = p.cands[:0], p.idx[:0]
	for _, o := range elig {
		if p.ejectUntil[o] > nowMs || sim.Tried(req, o) {
			continue
		}
		inflight := fleet.InFlight(o)
		if p.limit[o] > 0 && inflight >= p.limit[o] {
			continue
		}
		share := 1 / float64(len(elig))
		if shares != nil {
			share = shares[o]
		}
		p.cands = append(p.cands, p.fast[o].Candidate(nowT, p.sel, router.Candidate{
			Share: share, InFlight: inflight, Capacity: p.limit[o],
		}))
		p.idx = append(p.idx, o)
	}
	r := p.pending[req.ID]
	ch, ok := router.Choose(p.params, p.cands, p.rng.Float64())
	if !ok {
		if r != nil && r.inflight == 0 {
			p.finish(now, r, event.StatusError)
		}
		return sim.GiveUp()
	}
	if r == nil {
		r = &benchRequest{req: *req, client: p.sc.Clients[req.Client].ID, version: p.version}
		r.req.Tried = nil
		p.pending[req.ID] = r
	}
	r.picks = append(r.picks, ch)
	r.inflight++
	return sim.Use(p.idx[ch.Index])
}

// Observe implements sim.Policy: the fast loop learns at once; the request's
// outcome is built when its last attempt is known.
func (p *benchPolicy) Observe(now time.Duration, a *sim.Attempt) {
	p.tick(now)
	nowT := p.clock(now)
	st := &p.fast[a.Orch]
	ms := float64(a.Latency) / float64(time.Millisecond)
	switch a.Outcome {
	case sim.OK:
		st.ObserveLatency(nowT, ms, p.sel.LatencyTau)
		st.Succeeded()
	case sim.TimedOut, sim.AttemptTimeout:
		st.ObserveLatency(nowT, ms, p.sel.LatencyTau)
		st.Failed(nowT, p.sel)
	case sim.Failed, sim.Rejected, sim.Refused, sim.Reset:
		st.Failed(nowT, p.sel)
	}
	r := p.pending[a.Request]
	if r == nil || a.Seq >= len(r.picks) {
		return
	}
	r.inflight--
	ch := r.picks[a.Seq]
	o := &p.sc.Orchestrators[a.Orch]
	res, status := benchResult(a.Outcome)
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
	case a.Seq+1 >= benchAttempts:
		p.finish(now, r, event.StatusError)
	case now >= r.req.Deadline:
		p.finish(now, r, event.StatusTimeout)
	}
}

func benchResult(o sim.Outcome) (event.AttemptResult, int) {
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

func benchUnitKind(capability string) event.UnitKind {
	switch capability {
	case "llm":
		return event.UnitTokens
	case "audio-to-text":
		return event.UnitMillis
	case "text-to-speech":
		return event.UnitCharacters
	}
	return event.UnitPixels
}

// finish builds r's outcome and buffers it for the next flush.
func (p *benchPolicy) finish(now time.Duration, r *benchRequest, status event.Status) {
	delete(p.pending, r.req.ID)
	if len(r.attempts) == 0 || p.err != nil {
		return
	}
	cl := &p.sc.Classes[r.req.Class]
	end := p.clock(now).UnixMilli()
	id, err := event.NewID(end, p.ids)
	if err != nil {
		p.fail(err)
		return
	}
	out := event.Outcome{
		ID: id, Schema: event.SchemaVersion, GatewayID: "bench", GatewayRegion: r.req.Region,
		ClientRegion: r.req.Region, Customer: r.client, Capability: cl.Capability, Model: cl.Model,
		Units: int64(cl.Units), UnitKind: benchUnitKind(cl.Capability),
		StartMs: p.clock(r.req.Arrival).UnixMilli(), EndMs: end, Status: status,
		LatencyMs: (now - r.req.Arrival).Milliseconds(), PolicyVersion: r.version, Attempts: r.attempts,
	}
	switch status {
	case event.StatusOK:
		out.HTTPStatus = 200
		out.PricePerUnit = r.answered
	case event.StatusTimeout:
		out.HTTPStatus, out.ErrorClass = 504, "timeout"
	default:
		out.HTTPStatus, out.ErrorClass = 502, "attempts_failed"
	}
	for _, a := range r.attempts {
		out.Cost += a.Cost
	}
	p.buf = append(p.buf, out)
}

// tick advances the virtual clock: every benchFlushEvery the buffered
// outcomes go to the warehouse, every optimizer period the optimizer runs
// a round on what the warehouse holds.
func (p *benchPolicy) tick(now time.Duration) {
	p.now = now
	if p.err != nil {
		return
	}
	if now >= p.nextFlush {
		p.flush(now)
		p.nextFlush = now - now%benchFlushEvery + benchFlushEvery
	}
	if now >= p.nextStep && p.err == nil {
		p.nextStep = now - now%p.period + p.period
		p.refreshCatalog()
		if _, err := p.opt.Step(context.Background()); err != nil {
			p.fail(fmt.Errorf("optimizer round at %s: %w", now, err))
			return
		}
		p.rounds++
	}
}

// refreshCatalog gives the optimizer the prices discovery advertises now,
// as the optimizer command does when the fleet's prices change.
func (p *benchPolicy) refreshCatalog() {
	if p.fleet == nil {
		return
	}
	c := benchCatalog(p.sc, p.fleet.Orchestrator)
	if reflect.DeepEqual(c, p.catalog) {
		return
	}
	if err := p.opt.SetCatalog(c); err != nil {
		p.fail(fmt.Errorf("optimizer catalog: %w", err))
		return
	}
	p.catalog = c
}

// flush ends requests the simulator ended without telling the policy (the
// deadline passed with no attempt in flight), then writes the buffer.
func (p *benchPolicy) flush(now time.Duration) {
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
	if len(p.buf) == 0 || p.err != nil {
		return
	}
	p.flushes++
	if err := p.store.WriteOutcomes(context.Background(), fmt.Sprintf("bench-%d", p.flushes), p.buf); err != nil {
		p.fail(fmt.Errorf("write %d outcomes: %w", len(p.buf), err))
		return
	}
	p.written += len(p.buf)
	p.buf = p.buf[:0]
}

func (p *benchPolicy) fail(err error) {
	if p.err == nil {
		p.err = err
	}
}

// Err reports the first error of the run. The simulator calls it once the
// run is over, so it also ends the run: it closes the store and removes
// its data directory.
func (p *benchPolicy) Err() error {
	p.end()
	return p.err
}

func (p *benchPolicy) end() {
	if p.ended {
		return
	}
	p.ended = true
	if err := p.store.Close(); err != nil {
		p.fail(err)
	}
	os.RemoveAll(p.dir)
}
