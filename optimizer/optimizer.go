package optimizer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
)

// Optimizer computes and publishes routing policies from warehouse
// statistics, and serves the go-livepeer advisor endpoints. Its methods are
// safe for concurrent use.
type Optimizer struct {
	cfg         Config
	stats       StatsReader
	pub         Publisher
	log         *slog.Logger
	m           *metrics
	now         func() time.Time
	lastVersion VersionSource
	lastPolicy  PolicySource
	shed        ShedReader

	standby atomic.Bool // RunStandby is running
	active  atomic.Bool // in standby: this optimizer holds the lease

	mu     sync.Mutex // guards lambda, knobMoved and catalog
	lambda float64
	// knobMoved: λ changed since the last round, which then takes its
	// solution as it is (no ShareStep): an operator's move applies at once.
	knobMoved bool
	classL    map[classKey]float64 // per-class λ (Config.ClassLambdas, SetClassLambda)
	catalog   Catalog

	step         sync.Mutex // one round at a time; guards the fields below
	st           state
	version      uint64 // last version used
	versionKnown bool
	epoch        uint64 // the standby lease's epoch (RunStandby), when epochSet
	epochSet     bool

	advisor atomic.Pointer[advisorView]
	sweep   atomic.Pointer[sweep] // the latest published round's, for Frontier and Preview
}

// Option configures an Optimizer beyond its Config.
type Option func(*Optimizer)

// WithLastVersion makes the first policy's version continue above the
// highest version ever published (read once, at the first round), for
// example from the warehouse policies table or the compacted policy topic.
// Without it, or when it fails, versions start above the clock in Unix ms.
func WithLastVersion(fn VersionSource) Option {
	return func(o *Optimizer) { o.lastVersion = fn }
}

// WithShed gives the optimizer the requests shed at the edge, so a class's
// demand is what was offered to it, admitted or not (see ShedReader).
func WithShed(r ShedReader) Option {
	return func(o *Optimizer) { o.shed = r }
}

// PolicySource returns the newest policy published anywhere, nil when
// there is none.
type PolicySource func(ctx context.Context) (*event.Policy, error)

// WithLastPolicy makes a standby optimizer that takes over continue with
// the λ of the newest policy its predecessor published (RunStandby), so an
// operator's λ survives a takeover.
func WithLastPolicy(fn PolicySource) Option {
	return func(o *Optimizer) { o.lastPolicy = fn }
}

// New returns an Optimizer reading stats and publishing through pub.
// d.Clock is the clock every window, timestamp, cooldown and version is
// taken from; a simulator passes its virtual clock and calls Step.
func New(cfg Config, stats StatsReader, pub Publisher, d deps.Deps, opts ...Option) (*Optimizer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if stats == nil || pub == nil {
		return nil, errors.New("optimizer: stats reader and publisher are required")
	}
	logger, now := d.Log(), d.Now
	m, err := newMetrics(d.Registerer)
	if err != nil {
		return nil, err
	}
	o := &Optimizer{
		cfg: cfg, stats: stats, pub: pub, log: logger, m: m, now: now,
		lambda: cfg.Lambda, catalog: cloneCatalog(cfg.Catalog), st: newState(), classL: map[classKey]float64{},
	}
	for _, cl := range cfg.ClassLambdas {
		o.classL[classKey{cl.Capability, cl.Model}] = cl.Lambda
	}
	for _, opt := range opts {
		opt(o)
	}
	o.advisor.Store(initialAdvisor(&o.catalog))
	m.lambda.Set(cfg.Lambda)
	return o, nil
}

// SetLambda sets the cost-versus-latency knob (0 = cheapest, 1 = fastest
// and most reliable) for the next rounds.
func (o *Optimizer) SetLambda(lambda float64) error {
	if !inUnit(lambda) {
		return fmt.Errorf("lambda %v: want in [0, 1]", lambda)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.lambda = lambda
	o.knobMoved = true
	return nil
}

// SetClassLambda sets λ for one class (capability, model) for the next
// rounds; clear removes it, so the class follows the global λ again.
func (o *Optimizer) SetClassLambda(capability, model string, lambda float64, clear bool) error {
	if capability == "" || model == "" {
		return errors.New("class lambda: capability and model are required")
	}
	if !clear && !inUnit(lambda) {
		return fmt.Errorf("lambda %v: want in [0, 1]", lambda)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if clear {
		delete(o.classL, classKey{capability, model})
		o.knobMoved = true
	} else {
		o.classL[classKey{capability, model}] = lambda
		o.knobMoved = true
	}
	return nil
}

// ClassLambdas returns the per-class λ in force, sorted by class.
func (o *Optimizer) ClassLambdas() []ClassLambda {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]ClassLambda, 0, len(o.classL))
	for k, l := range o.classL {
		out = append(out, ClassLambda{Capability: k.capability, Model: k.model, Lambda: l})
	}
	slices.SortFunc(out, func(a, b ClassLambda) int {
		return strings.Compare(a.Capability+"\x00"+a.Model, b.Capability+"\x00"+b.Model)
	})
	return out
}

// Lambda returns the current knob.
func (o *Optimizer) Lambda() float64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.lambda
}

// SetCatalog replaces the fleet for the next rounds (on a configuration
// reload). Ejections and learned capacities of orchestrators that remain
// are kept.
func (o *Optimizer) SetCatalog(c Catalog) error {
	if err := c.Validate(); err != nil {
		return fmt.Errorf("optimizer catalog: %w", err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.catalog = cloneCatalog(c)
	o.log.Info("optimizer catalog replaced", "orchestrators", len(c.Orchestrators), "classes", len(c.Classes))
	return nil
}

// Run computes and publishes a policy at once and then every Period until
// ctx is cancelled; it returns nil then. A round that fails (statistics
// unreadable, publish refused) is logged and counted, and the next period
// tries again with a newer policy. The period is measured in real time;
// the injected clock dates what each round reads and publishes.
func (o *Optimizer) Run(ctx context.Context) error {
	t := time.NewTicker(o.cfg.Period)
	defer t.Stop()
	o.m.leader.Set(1)
	defer o.m.leader.Set(0)
	for {
		if _, err := o.Step(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			o.log.Warn("optimizer round failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Step runs one round: read the window of statistics ending now, estimate,
// solve, publish. It returns the policy it computed, with an error if it
// could not be published (the policy is then returned anyway, and the next
// round publishes a newer one).
func (o *Optimizer) Step(ctx context.Context) (event.Policy, error) {
	o.step.Lock()
	defer o.step.Unlock()
	ctx, cancel := context.WithTimeout(ctx, o.cfg.Timeout)
	defer cancel()

	now := o.now()
	defer func() { o.m.runSeconds.Observe(math.Max(0, o.now().Sub(now).Seconds())) }()
	stats, err := o.stats.Stats(ctx, now.Add(-o.cfg.Window), now)
	if err != nil {
		o.m.runs.WithLabelValues(resultStatsError).Inc()
		return event.Policy{}, fmt.Errorf("read statistics: %w", err)
	}
	var shed []event.ShedStats
	shedKnown := false
	if o.shed != nil {
		if shed, err = o.shed.Shed(ctx, now.Add(-o.cfg.Window), now); err != nil {
			// Shaping works without: the hysteresis stands in for the demand it cannot see.
			o.log.Warn("read shed requests; admission uses what was admitted", "err", err)
			o.m.shedReadErrors.Inc()
		} else {
			shedKnown = true
		}
	}
	o.mu.Lock()
	lambda, cat := o.lambda, o.catalog
	classL := maps.Clone(o.classL)
	moved := o.knobMoved
	o.knobMoved = false
	o.mu.Unlock()

	r := newRound(&o.cfg, &cat, stats, &o.st, now, lambda)
	if !moved {
		r.prev = o.st.lastPublished()
	}
	if shedKnown {
		r.addShed(shed)
	}
	r.classLambda = classL
	pl := r.plan(&o.cfg)
	for _, e := range r.ejections {
		if e.fresh {
			o.log.Info("orchestrator ejected", "orchestrator", r.orchs[e.orch].cfg.ID, "reason", e.reason, "until", e.until)
		}
	}
	if pl.sol.lpFailures > 0 {
		o.log.Warn("allocation LP failed; used the greedy fallback", "failures", pl.sol.lpFailures)
	}

	p := event.Policy{
		Schema:    event.SchemaVersion,
		Version:   o.nextVersion(ctx, now),
		CreatedMs: now.UnixMilli(),
		Lambda:    lambda,
		WindowS:   int(math.Round(r.windowS)),
		Producer:  o.cfg.Producer,
		Classes:   pl.classes,
		Ejections: pl.ejections,
	}
	p.Limits = r.shape(&o.cfg, &o.st, p.Classes) // shaping.go: limits, admission, class values
	pl.pr.bend = o.st.bends(pl.pr, now, o.cfg.Window)
	sw := newSweep(pl.pr, lambda, p.Version, p.CreatedMs)
	p.Frontier = slices.Clone(sw.frontier.Points)
	o.advisor.Store(pl.advisor)
	o.m.observe(r, pl)
	encoded, trimmed, err := fitPolicy(&p) // validates too; the one encoding
	size := len(encoded)
	if err != nil {
		o.m.runs.WithLabelValues(resultInvalid).Inc()
		return p, fmt.Errorf("computed policy %d cannot be published: %w", p.Version, err)
	}
	o.m.policyBytes.Set(float64(size))
	if trimmed > 0 {
		o.log.Warn("policy trimmed to fit the event size limit", "version", p.Version, "bytes", size, "steps", trimmed)
	}
	if err := o.pub.PublishPolicy(ctx, p, encoded); err != nil {
		o.m.runs.WithLabelValues(resultPublishError).Inc()
		o.m.publishErrors.Inc()
		return p, fmt.Errorf("publish policy %d: %w", p.Version, err)
	}
	o.sweep.Store(sw)
	o.st.remember(&p, now, o.cfg.Window)
	o.m.runs.WithLabelValues(resultOK).Inc()
	o.m.version.Set(float64(p.Version))
	return p, nil
}

// nextVersion returns a version above every one used before: above the
// source's last version (asked once), the previous one, and the clock in
// Unix ms. A version is used up even when its publish fails, so a policy
// that reached some consumers is never contradicted under the same number.
func (o *Optimizer) nextVersion(ctx context.Context, now time.Time) uint64 {
	if !o.versionKnown {
		o.versionKnown = true
		if o.lastVersion != nil {
			v, err := o.lastVersion(ctx)
			if err != nil {
				o.log.Warn("last policy version unknown; versions start from the clock", "err", err)
			} else {
				o.version = max(o.version, v)
			}
		}
	}
	v := o.version
	if ms := now.UnixMilli(); ms > 0 && uint64(ms) > v {
		v = uint64(ms)
	}
	o.version = o.inEpoch(v + 1)
	return o.version
}

func cloneCatalog(c Catalog) Catalog {
	out := Catalog{Orchestrators: make([]Orchestrator, len(c.Orchestrators)), Classes: slices.Clone(c.Classes)}
	for i, orch := range c.Orchestrators {
		orch.Classes = slices.Clone(orch.Classes)
		out.Orchestrators[i] = orch
	}
	return out
}
