package router

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
)

// Publisher takes encoded outcome events. eventlog's durable publisher
// satisfies it. Publish must not block: the router calls it on the request
// goroutine after the response has been written.
type Publisher interface {
	Publish(key, value []byte) error
}

// PolicySource delivers encoded routing policies, in log order, starting
// from the newest: eventlog.PolicyLog is one. The router decodes and
// validates each policy once, on receipt; it never imports the optimizer
// or the warehouse.
type PolicySource interface {
	// Follow calls apply with the newest policy and every later one until
	// ctx is cancelled. It blocks; it returns nil on cancellation.
	Follow(ctx context.Context, apply func(encoded []byte)) error
}

// Journal keeps the requests in flight on local disk, so that a crash
// leaves a trace of each (eventlog.Journal is one). The router records a
// request when it accepts it (before any orchestrator works on it), each
// attempt as it ends, and Done once the outcome is with the Publisher.
type Journal interface {
	Begin(id string, rec []byte) error
	Attempt(id string, rec []byte) error
	Done(id string) error
}

// Option sets an optional collaborator of New.
type Option func(*Router)

// WithJournal makes the router journal its requests in flight in j; the
// outcomes of those a crash interrupted are rebuilt with Interrupted.
func WithJournal(j Journal) Option { return func(r *Router) { r.journal = j } }

// Log keys, defined once.
const (
	logKeyErr           = "err"
	logKeyID            = "id"
	logKeyPath          = "path"
	logKeyPanic         = "panic"
	logKeyOrchestrator  = "orchestrator"
	logKeyUntil         = "until"
	logKeyFailures      = "failures"
	logKeyOrchestrators = "orchestrators"
	logKeyAPIKeys       = "api_keys"
	logKeyVersion       = "version"
	logKeyClasses       = "classes"
	logKeyEjections     = "ejections"
	logKeyAddr          = "addr"
	logKeyPeer          = "peer"
	logKeyForwardedFor  = "forwarded_for"
	logKeyKeyPrefix     = "key_sha256_prefix"
)

// ErrStalePolicy is returned by SetPolicy for a policy whose version is not
// newer than the one in use (a replayed or out-of-order message).
var ErrStalePolicy = errors.New("policy is not newer than the current one")

// Router is the HTTP front of the gateway: it authenticates, chooses an
// orchestrator, proxies with retries, and emits one outcome per request.
// It owns no goroutines; every method is safe for concurrent use.
type Router struct {
	log       *slog.Logger
	pub       Publisher
	journal   Journal // nil: none
	gate      Gate    // nil: every request is admitted
	now       func() time.Time
	m         *metrics
	transport *http.Transport
	budget    *retryBudget
	timeouts  *attemptTimeouts
	engine    *gin.Engine
	openapi   []byte      // WithOpenAPI; nil: not served
	mem       *bodyMemory // bytes of request bodies buffered, per key and in all
	sm        *serverMetrics
	admission *Admission
	edge      edge

	rngMu sync.Mutex
	rng   *rand.Rand

	snap    atomic.Pointer[snapshot]
	writeMu sync.Mutex // serialises Reload, SetPolicy and SetAPIKeys
	// cfgKeys are the configured keys, apiKeys those made through the
	// admin API (SetAPIKeys); the snapshot holds both. Guarded by writeMu.
	cfgKeys, apiKeys []APIKeyConfig

	scratch sync.Pool // *decisionScratch
	buffers sync.Pool // *[]byte of relayBufSize, for relaying responses
}

const relayBufSize = 32 << 10

// New validates cfg and returns a Router. pub receives outcome events.
// d.Rand is required: it drives selection and the random half of outcome
// ids, so seed it from the OS in production (deps.SeededRand) and with a
// fixed seed in tests; d.Clock is the clock.
func New(cfg Config, pub Publisher, d deps.Deps, opts ...Option) (*Router, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if pub == nil || d.Rand == nil {
		return nil, errors.New("router: publisher and random source are required")
	}
	log, rng, now := d.Log(), d.Rand, d.Now
	m, err := newMetrics(d.Registerer)
	if err != nil {
		return nil, err
	}
	sm, err := newServerMetrics(d.Registerer)
	if err != nil {
		return nil, err
	}
	r := &Router{
		log: log, pub: pub, now: now, m: m, sm: sm, rng: rng, mem: newBodyMemory(),
		budget:   newRetryBudget(cfg.RetryBudget),
		timeouts: newAttemptTimeouts(),
		transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost: cfg.MaxIdleConnsPerHost,
			IdleConnTimeout:     90 * time.Second,
			TLSHandshakeTimeout: 10 * time.Second,
			ForceAttemptHTTP2:   true,
			// Bytes pass through as the orchestrator sent them; the client
			// negotiates compression with the orchestrator.
			DisableCompression: true,
		},
	}
	shaping := cfg.Shaping.normalized()
	r.admission = NewAdmission(shaping.AdmissionBurst)
	r.edge.q = NewEdgeQueue[*waiter](shaping.QueueSize, shaping.QueueDrainWindow)
	r.scratch.New = func() any { return &decisionScratch{} }
	r.buffers.New = func() any { b := make([]byte, relayBufSize); return &b }
	for _, o := range opts {
		o(r)
	}
	r.cfgKeys = cfg.APIKeys
	r.snap.Store(buildSnapshot(cfg, nil, nil, now().UnixMilli()))
	r.engine = r.newEngine()
	return r, nil
}

// Handler returns the client-facing HTTP handler (the Livepeer AI API).
func (r *Router) Handler() http.Handler { return r.engine }

// Close releases idle upstream connections. In-flight requests are not
// affected; stop the HTTP server (Shutdown) first so they finish and
// publish their outcomes.
func (r *Router) Close() error {
	r.transport.CloseIdleConnections()
	return nil
}

// Reload validates cfg and swaps it in atomically. Orchestrators that keep
// their ID keep their fast-loop state (in-flight count, latency estimate,
// failure streak, ejection); the current policy is re-applied to the new
// set. On error the old configuration stays. DialTimeout and
// MaxIdleConnsPerHost keep their values from New.
func (r *Router) Reload(cfg Config) error {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	base := cfg.APIKeys
	cfg.APIKeys = mergeKeys(base, r.apiKeys) // keys made through the admin API stay
	if err := cfg.Validate(); err != nil {
		r.m.reloads.WithLabelValues("invalid").Inc()
		return err
	}
	r.cfgKeys = base
	prev := r.snap.Load()
	r.snap.Store(buildSnapshot(cfg, prev.policy, prev, r.now().UnixMilli()))
	r.budget.setConfig(cfg.RetryBudget)
	r.m.reloads.WithLabelValues("ok").Inc()
	r.log.Info("router config reloaded", logKeyOrchestrators, len(cfg.Orchestrators), logKeyAPIKeys, len(cfg.APIKeys))
	return nil
}

// SetPolicy applies p atomically if its version is newer than the current
// one. It returns ErrStalePolicy for an older or equal version and a
// validation error for an invalid policy; the current policy stays in both
// cases.
func (r *Router) SetPolicy(p event.Policy) error {
	if p.Schema == 0 {
		p.Schema = event.SchemaVersion
	}
	if err := p.Validate(); err != nil {
		r.m.policyUpdates.WithLabelValues("invalid").Inc()
		return fmt.Errorf("policy %d: %w", p.Version, err)
	}
	return r.applyPolicy(p)
}

// applyPolicy swaps in p, already validated, if it is newer.
func (r *Router) applyPolicy(p event.Policy) error {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	prev := r.snap.Load()
	if prev.policy != nil && p.Version <= prev.policy.Version {
		r.m.policyUpdates.WithLabelValues("stale").Inc()
		return fmt.Errorf("policy %d, current %d: %w", p.Version, prev.policy.Version, ErrStalePolicy)
	}
	p = clonePolicy(p)
	r.snap.Store(buildSnapshot(prev.cfg, &p, prev, r.now().UnixMilli()))
	r.admission.Apply(&p, r.now())
	r.m.policyUpdates.WithLabelValues("applied").Inc()
	r.m.policyVersion.Set(float64(p.Version))
	r.log.Info("routing policy applied", logKeyVersion, p.Version, logKeyClasses, len(p.Classes), logKeyEjections, len(p.Ejections))
	return nil
}

// FollowPolicies applies every policy src delivers until ctx is cancelled:
// each is decoded and validated once (event.DecodePolicy) and applied if
// newer. Undecodable, invalid and stale policies are logged, counted and
// skipped. Run it in the caller's errgroup; it returns src's error, or nil
// on cancellation.
func (r *Router) FollowPolicies(ctx context.Context, src PolicySource) error {
	return src.Follow(ctx, func(b []byte) {
		p, err := event.DecodePolicy(b)
		if err != nil {
			r.m.policyUpdates.WithLabelValues("invalid").Inc()
			r.log.Warn("undecodable routing policy skipped", logKeyErr, err)
			return
		}
		err = r.applyPolicy(p)
		switch {
		case errors.Is(err, ErrStalePolicy):
			r.log.Debug("stale routing policy skipped", logKeyVersion, p.Version)
		case err != nil:
			r.log.Warn("invalid routing policy skipped", logKeyVersion, p.Version, logKeyErr, err)
		}
	})
}

// Policy returns the policy in use and whether there is one.
func (r *Router) Policy() (event.Policy, bool) {
	s := r.snap.Load()
	if s.policy == nil {
		return event.Policy{}, false
	}
	return clonePolicy(*s.policy), true
}

func clonePolicy(p event.Policy) event.Policy {
	p.Classes = slices.Clone(p.Classes)
	for i := range p.Classes {
		p.Classes[i].Shares = slices.Clone(p.Classes[i].Shares)
	}
	p.Ejections = slices.Clone(p.Ejections)
	p.Limits = slices.Clone(p.Limits)
	return p
}

// uniform draws from the injected source.
func (r *Router) uniform() float64 {
	r.rngMu.Lock()
	defer r.rngMu.Unlock()
	return r.rng.Float64()
}

// rngReader feeds event.NewID from the injected source.
type rngReader struct{ r *Router }

func (rr rngReader) Read(p []byte) (int, error) {
	rr.r.rngMu.Lock()
	defer rr.r.rngMu.Unlock()
	for i := 0; i < len(p); i += 8 {
		v := rr.r.rng.Uint64()
		for j := 0; j < 8 && i+j < len(p); j++ {
			p[i+j] = byte(v >> (8 * j))
		}
	}
	return len(p), nil
}

var _ io.Reader = rngReader{}

// decisionScratch is reused across decisions so a decision allocates nothing.
type decisionScratch struct {
	cands   []Candidate
	idx     []int
	atLimit bool // a member was left out for being at its in-flight limit
}

// pick is a chosen member with the slot it holds.
type pick struct {
	m      member
	choice Choice
}

// Reasons a class has no candidate, used as error class and metric label.
const (
	reasonNoOrchestrator = "no_orchestrator" // nobody serves the class
	reasonNoCapacity     = "no_capacity"     // servers exist but all are tried, ejected by policy or at their limit
	// reasonAtLimit: no candidate, and some were left out for being at
	// their in-flight limit: a first attempt waits in the edge queue.
	reasonAtLimit = "at_limit"
)

// choose draws a member of t for a client in region, skipping those in
// skip, and takes an in-flight slot on it. The caller must release the slot.
func (r *Router) choose(s *snapshot, t *classTable, region string, skip []*orchEntry) (pick, string, bool) {
	if t == nil || len(t.members) == 0 {
		return pick{}, reasonNoOrchestrator, false
	}
	start := r.now()
	defer func() { r.m.decision.Observe(r.now().Sub(start).Seconds()) }()
	sc := r.scratch.Get().(*decisionScratch)
	defer r.scratch.Put(sc)
	params := s.cfg.Selection.Params()
	// A lost race for the last slot excludes that member and draws again.
	lost := make([]*orchEntry, 0, 2)
	for range 4 {
		ch, ok := r.chooseInGroup(sc, s, t, region, skip, lost, start, params)
		if !ok {
			// One stage over the whole class: small classes always, large
			// ones when the drawn group had no usable candidate.
			fillCandidates(sc, s, t, region, skip, lost, start, 0, len(t.members))
			if ch, ok = Choose(params, sc.cands, r.uniform()); !ok {
				if sc.atLimit || len(lost) > 0 {
					return pick{}, reasonAtLimit, false
				}
				return pick{}, reasonNoCapacity, false
			}
			if ch.Panic && (sc.atLimit || len(lost) > 0) {
				// Panic routing is for when nothing healthy is left, not
				// when the healthy ones are at their limit: one frees a
				// slot soon, an ejected one has just failed. (With an
				// outage the healthy ones fill up, and every newcomer
				// went to the dead orchestrator.)
				return pick{}, reasonAtLimit, false
			}
		}
		m := t.members[sc.idx[ch.Index]]
		if m.st.tryAcquire(m.st.effLimit(m.limit)) {
			return pick{m: m, choice: ch}, "", true
		}
		lost = append(lost, m.o)
	}
	return pick{}, reasonAtLimit, false
}

// chooseInGroup is the two-stage draw of a large class (groups.go): a
// group by its policy mass, then a member of it by Choose. It reports
// false for a class decided in one stage, and when the group has no
// candidate or only locally ejected ones (the caller then decides over
// the whole class). The choice's index is into sc.idx, its propensity
// P(g)·P(i | g).
func (r *Router) chooseInGroup(sc *decisionScratch, s *snapshot, t *classTable, region string, skip, lost []*orchEntry, now time.Time, params Params) (Choice, bool) {
	d := t.groups(region)
	if d == nil {
		return Choice{}, false
	}
	g, pg := d.pick(r.uniform())
	lo, hi := groupBounds(g, len(t.members))
	fillCandidates(sc, s, t, region, skip, lost, now, lo, hi)
	ch, ok := Choose(params, sc.cands, r.uniform())
	if !ok || ch.Panic {
		return Choice{}, false
	}
	ch.Propensity *= pg
	return ch, true
}

// fillCandidates builds the candidate list of one decision into sc, from
// the class's members [lo, hi).
func fillCandidates(sc *decisionScratch, s *snapshot, t *classTable, region string, skip, lost []*orchEntry, now time.Time, lo, hi int) {
	sc.cands, sc.idx, sc.atLimit = sc.cands[:0], sc.idx[:0], false
	shares := t.shares(region)
	equal := 1 / float64(len(t.members))
	stale := s.cfg.Selection.LatencyStale
	for i := lo; i < hi; i++ {
		m := &t.members[i]
		if len(skip)+len(lost) > 0 && (slices.Contains(skip, m.o) || slices.Contains(lost, m.o)) {
			continue
		}
		share := equal
		if shares != nil {
			share = shares[i]
		}
		limit, inFlight := m.st.effLimit(m.limit), int(m.st.inFlight.Load())
		c, ok := m.st.candidateOf(now, stale, share, inFlight, limit, m.policyEjectUntilMs)
		if !ok {
			if limit > 0 && inFlight >= limit && m.policyEjectUntilMs <= now.UnixMilli() {
				sc.atLimit = true
			}
			continue
		}
		sc.cands = append(sc.cands, c)
		sc.idx = append(sc.idx, i)
	}
}
