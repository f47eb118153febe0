package optimizer

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"time"

	"github.com/loopgate/loopgate/event"
)

// Config tunes an Optimizer. DefaultConfig returns the defaults written on
// each field; Validate reports settings that cannot work.
type Config struct {
	// Producer names this optimizer instance in every policy. Default "optimizer".
	Producer string `yaml:"producer"`
	// Period between rounds in Run. Default 5s.
	Period time.Duration `yaml:"period"`
	// Window of statistics a round reads, ending at the injected clock's
	// now. Default 60s.
	Window time.Duration `yaml:"window"`
	// Timeout bounds one round's statistics read and publish. Default 5s.
	Timeout time.Duration `yaml:"timeout"`
	// Lambda is the initial cost-versus-latency knob in [0, 1]: 0 = cheapest,
	// 1 = fastest and most reliable; SetLambda changes it at runtime. Default 0.5.
	Lambda float64 `yaml:"lambda"`
	// ClassLambdas set λ for some classes (SLA tiers by class: a premium
	// model held to latency while the rest go cheap); other classes follow
	// Lambda. SetClassLambda changes them at runtime. The frontier sweeps
	// the global λ with these held fixed. Default none.
	ClassLambdas []ClassLambda `yaml:"class_lambdas"`

	// Catalog is the configured fleet; SetCatalog replaces it at runtime.
	Catalog Catalog `yaml:"catalog"`
	// DefaultSLO applies to classes the catalog gives no SLO. Default 10s.
	DefaultSLO time.Duration `yaml:"default_slo"`
	// ValueMultiple prices an SLO miss of a class whose Value is 0 at
	// ValueMultiple × the class's median cost per request (1 USD when that
	// is 0 too). Default 10.
	ValueMultiple float64 `yaml:"value_multiple"`

	// Prior shrinks sparse observations toward what is already known.
	Prior PriorConfig `yaml:"prior"`
	// Exploration is the share every eligible orchestrator keeps in every
	// (class, region), so a recovered or new one is observed again.
	// Default 0.02.
	Exploration float64 `yaml:"exploration"`
	// MaxExploration caps the exploration shares of one (class, region)
	// together: with n orchestrators each gets min(Exploration,
	// MaxExploration/n). Default 0.2.
	MaxExploration float64 `yaml:"max_exploration"`
	// ShareStep is how far one round moves each (class, client region)'s
	// shares from the last published policy's toward the new solution:
	// shares = last + ShareStep × (solved − last), over the orchestrators
	// still eligible (an ejected one leaves at once), renormalised. Noise in
	// the estimates flips the solution between near-equal orchestrators;
	// the step keeps the slow loop from moving a region's traffic back and
	// forth with it, while the fast loop absorbs the noise. 1 follows every
	// solution at once. Default 0.5.
	ShareStep float64 `yaml:"share_step"`
	// Ejection removes failing orchestrators for a cooldown.
	Ejection EjectionConfig `yaml:"ejection"`
	// Capacity says how much work an orchestrator can take.
	Capacity CapacityConfig `yaml:"capacity"`
	// Solver tunes the allocation.
	Solver SolverConfig `yaml:"solver"`
	// Shaping tunes the concurrency limits and admission rates (shaping.go).
	Shaping ShapingConfig `yaml:"shaping"`
	// Frontier tunes the λ sweep every round predicts (see the package
	// documentation).
	Frontier FrontierConfig `yaml:"frontier"`
	// AdvisorMinShare: the advisor webhook lists an orchestrator when its
	// largest share in any (class, region) reaches this. Default 0.05.
	AdvisorMinShare float64 `yaml:"advisor_min_share"`
	// AdvisorRegions are always scored in /orchestrators/perf-stats, besides
	// the client regions seen in the window (go-livepeer's -region codes).
	// Default none.
	AdvisorRegions []string `yaml:"advisor_regions"`

	// Standby makes this optimizer one of several that share a lease: it
	// runs rounds only while it holds the lease (RunStandby) and waits
	// otherwise, so two replicas give one active optimizer and a hot
	// standby. Default false: always active (Run).
	Standby bool `yaml:"standby"`
	// Lease tunes the standby lease.
	Lease LeaseConfig `yaml:"lease"`
}

// PriorConfig is the Bayesian prior every estimate starts from.
type PriorConfig struct {
	// SuccessMean is the prior probability that an attempt succeeds on an
	// orchestrator with no attempts in the window (new, or back from an
	// ejection): deliberately below what a good one achieves, so it is
	// neither trusted nor doomed and earns traffic with evidence. One with
	// evidence is shrunk toward the class's pooled rate less half its
	// failure rate instead. Default 0.9.
	SuccessMean float64 `yaml:"success_mean"`
	// SuccessWeight is the prior's weight in attempts. Default 10.
	SuccessWeight float64 `yaml:"success_weight"`
	// LatencyWeight is the weight, in successful attempts, of the latency
	// prior (the orchestrator's other regions, then the class, then the
	// SLO-based default). Default 20.
	LatencyWeight float64 `yaml:"latency_weight"`
	// LatencyMedian is the median latency of a class nothing is known
	// about, as a fraction of its SLO. Default 0.5.
	LatencyMedian float64 `yaml:"latency_median"`
	// LatencySigma is the lognormal σ of a class nothing is known about.
	// Default 0.5.
	LatencySigma float64 `yaml:"latency_sigma"`
}

// EjectionConfig says when an orchestrator is ejected.
type EjectionConfig struct {
	// FailureRate ejects an orchestrator whose smoothed failure rate
	// (errors, timeouts and refusals over attempts that were judged, with
	// the success prior) exceeds it. Default 0.5.
	FailureRate float64 `yaml:"failure_rate"`
	// MinAttempts judged in the window before an orchestrator can be
	// ejected. Default 20.
	MinAttempts int64 `yaml:"min_attempts"`
	// Cooldown an ejected orchestrator stays out; it comes back with the
	// exploration share. Must be at least Window, so the failures that
	// ejected it have left the window when it returns. Default 2m.
	Cooldown time.Duration `yaml:"cooldown"`
	// MaxFraction of the catalog's orchestrators ejected at once (the worst
	// first); the rest stay in even if failing. Default 0.5.
	MaxFraction float64 `yaml:"max_fraction"`
}

// CapacityConfig says how much work an orchestrator can take.
type CapacityConfig struct {
	// DefaultMaxInFlight is the concurrency of an orchestrator whose
	// catalog entry gives no MaxInFlight. Default 8.
	DefaultMaxInFlight int `yaml:"default_max_in_flight"`
	// Utilisation caps the planned utilisation of every orchestrator.
	// Default 0.9.
	Utilisation float64 `yaml:"utilisation"`
	// BusyRate: an orchestrator answering busy (503) to more than this
	// fraction of at least Ejection.MinAttempts attempts is taken to be
	// full at its observed load, which becomes its capacity for Memory.
	// Default 0.05.
	BusyRate float64 `yaml:"busy_rate"`
	// Memory keeps a capacity learned from busy answers. Default 5m.
	Memory time.Duration `yaml:"memory"`
}

// SolverConfig tunes the allocation (see the package documentation).
type SolverConfig struct {
	// Queueing adds the M/M/c waiting time at the planned utilisation to the
	// miss probability. Default true.
	Queueing bool `yaml:"queueing"`
	// Spread is the congestion premium: a request's cost grows by Spread ×
	// utilisation × (the round's mean cost per server-second × its service
	// time), so equal orchestrators are loaded equally. Default 0.05.
	Spread float64 `yaml:"spread"`
	// MaxIterations of the Frank–Wolfe loop; each solves one or a few LPs.
	// Default 20.
	MaxIterations int `yaml:"max_iterations"`
	// Tolerance stops the loop when the duality gap, a bound on the
	// distance to the optimum, is below this fraction of the objective
	// above its zero-load lower bound. Default 0.05.
	Tolerance float64 `yaml:"tolerance"`
}

// FrontierConfig tunes the cost/latency frontier: after its own solve,
// every round re-solves the same estimates at other values of λ and
// predicts what each would do.
type FrontierConfig struct {
	// Points is how many λ, log-spaced from MinLambda to 1, the sweep
	// solves besides 0 and the round's own λ; 0 turns the sweep off (the
	// frontier holds the round's own λ only). Default 10.
	Points int `yaml:"points"`
	// MinLambda is the smallest positive λ swept. Default 0.01.
	MinLambda float64 `yaml:"min_lambda"`
	// MaxIterations bounds the Frank–Wolfe iterations of each swept λ,
	// which starts from its neighbour's allocation. Previews use
	// Solver.MaxIterations. Default 10.
	MaxIterations int `yaml:"max_iterations"`
	// MoveThreshold: a preview lists the shares that would change by more
	// than this (absolute). Default 0.01.
	MoveThreshold float64 `yaml:"move_threshold"`
}

// Catalog is the configured fleet: the orchestrators, the classes they
// serve at what price, and what each class's SLO is worth. It should list
// what the router is configured with.
type Catalog struct {
	// Orchestrators are the binary's one `orchestrators:` list, shared
	// with the router; they are not configured here.
	Orchestrators []Orchestrator `yaml:"-"`
	// Classes gives SLO, value and units per (capability, model); classes
	// served but not listed take DefaultSLO and ValueMultiple.
	Classes []Class `yaml:"classes"`
}

// Orchestrator is one upstream, in the fleet vocabulary
// (event.Orchestrator). The optimizer reads its id, URL and address (for
// the advisor endpoints), its MaxInFlight (0 = Capacity.DefaultMaxInFlight)
// and its class prices.
type Orchestrator = event.Orchestrator

// ClassPrice is a class an orchestrator serves and its price.
type ClassPrice = event.ClassPrice

// ClassLambda is λ for one class (capability, model).
type ClassLambda struct {
	Capability string  `yaml:"capability" json:"capability"`
	Model      string  `yaml:"model" json:"model"`
	Lambda     float64 `yaml:"lambda" json:"lambda"`
}

// Class is a demand class with its service objective.
type Class struct {
	Capability string `yaml:"capability"`
	Model      string `yaml:"model"`
	// SLO: a request succeeding within it meets it. 0 = DefaultSLO.
	SLO time.Duration `yaml:"slo"`
	// Value is the USD lost when a request misses its SLO. 0 = see
	// Config.ValueMultiple.
	Value float64 `yaml:"value"`
	// Units is the typical units of one request (pixels, tokens, ...);
	// price × units is the cost of a request. 0 = unknown (the observed
	// cost per attempt is used).
	Units float64 `yaml:"units"`
}

// DefaultConfig returns the defaults written on each field, with an empty
// catalog.
func DefaultConfig() Config {
	return Config{
		Producer:      "optimizer",
		Period:        5 * time.Second,
		Window:        60 * time.Second,
		Timeout:       5 * time.Second,
		Lambda:        0.5,
		DefaultSLO:    10 * time.Second,
		ValueMultiple: 10,
		Prior: PriorConfig{
			SuccessMean: 0.9, SuccessWeight: 10, LatencyWeight: 20, LatencyMedian: 0.5, LatencySigma: 0.5,
		},
		Exploration:     0.02,
		MaxExploration:  0.2,
		ShareStep:       0.5,
		Ejection:        EjectionConfig{FailureRate: 0.5, MinAttempts: 20, Cooldown: 2 * time.Minute, MaxFraction: 0.5},
		Capacity:        CapacityConfig{DefaultMaxInFlight: 8, Utilisation: 0.9, BusyRate: 0.05, Memory: 5 * time.Minute},
		Solver:          SolverConfig{Queueing: true, Spread: 0.05, MaxIterations: 20, Tolerance: 0.05},
		Frontier:        FrontierConfig{Points: 10, MinLambda: 0.01, MaxIterations: 10, MoveThreshold: 0.01},
		AdvisorMinShare: 0.05,
		Lease:           DefaultLeaseConfig(),
		Shaping:         DefaultShapingConfig(),
	}
}

// Validate reports every setting that cannot work.
func (c Config) Validate() error {
	var errs []error
	seenCL := map[classKey]bool{}
	for i, cl := range c.ClassLambdas {
		k := classKey{cl.Capability, cl.Model}
		switch {
		case cl.Capability == "" || cl.Model == "":
			errs = append(errs, fmt.Errorf("class_lambdas[%d]: capability and model are required", i))
		case !inUnit(cl.Lambda):
			errs = append(errs, fmt.Errorf("class_lambdas[%d].lambda %v: want in [0, 1]", i, cl.Lambda))
		case seenCL[k]:
			errs = append(errs, fmt.Errorf("class_lambdas[%d]: %s/%s listed twice", i, cl.Capability, cl.Model))
		}
		seenCL[k] = true
	}
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Standby {
		if err := c.Lease.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Producer == "" {
		bad("producer is required")
	}
	if err := c.Shaping.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.Period <= 0 || c.Window <= 0 || c.Timeout <= 0 {
		bad("period %v, window %v and timeout %v must be positive", c.Period, c.Window, c.Timeout)
	}
	if !inUnit(c.Lambda) {
		bad("lambda %v: want in [0, 1]", c.Lambda)
	}
	if c.DefaultSLO <= 0 {
		bad("default_slo %v: want positive", c.DefaultSLO)
	}
	if !(c.ValueMultiple > 0) || math.IsInf(c.ValueMultiple, 0) {
		bad("value_multiple %v: want positive", c.ValueMultiple)
	}
	p := c.Prior
	if !(p.SuccessMean > 0 && p.SuccessMean < 1) {
		bad("prior.success_mean %v: want in (0, 1)", p.SuccessMean)
	}
	if !(p.SuccessWeight > 0) || !(p.LatencyWeight > 0) {
		bad("prior.success_weight %v and prior.latency_weight %v must be positive", p.SuccessWeight, p.LatencyWeight)
	}
	if !(p.LatencyMedian > 0) || !(p.LatencySigma > 0) {
		bad("prior.latency_median %v and prior.latency_sigma %v must be positive", p.LatencyMedian, p.LatencySigma)
	}
	if !(c.ShareStep > 0 && c.ShareStep <= 1) {
		bad("share_step %v: want in (0, 1]", c.ShareStep)
	}
	if !inUnit(c.Exploration) || !inUnit(c.MaxExploration) || c.Exploration > c.MaxExploration {
		bad("exploration %v and max_exploration %v: want 0 ≤ exploration ≤ max_exploration ≤ 1", c.Exploration, c.MaxExploration)
	}
	e := c.Ejection
	if !(e.FailureRate > 0 && e.FailureRate <= 1) {
		bad("ejection.failure_rate %v: want in (0, 1]", e.FailureRate)
	}
	if e.MinAttempts < 1 {
		bad("ejection.min_attempts %d: want ≥ 1", e.MinAttempts)
	}
	if e.Cooldown < c.Window {
		bad("ejection.cooldown %v: want ≥ window %v, or the failures that ejected an orchestrator eject it again on its return", e.Cooldown, c.Window)
	}
	if !inUnit(e.MaxFraction) {
		bad("ejection.max_fraction %v: want in [0, 1]", e.MaxFraction)
	}
	k := c.Capacity
	if k.DefaultMaxInFlight < 1 {
		bad("capacity.default_max_in_flight %d: want ≥ 1", k.DefaultMaxInFlight)
	}
	if !(k.Utilisation > 0 && k.Utilisation < 1) {
		bad("capacity.utilisation %v: want in (0, 1)", k.Utilisation)
	}
	if !(k.BusyRate > 0 && k.BusyRate <= 1) || k.Memory < 0 {
		bad("capacity.busy_rate %v (want in (0, 1]) or capacity.memory %v (want ≥ 0)", k.BusyRate, k.Memory)
	}
	s := c.Solver
	if !(s.Spread >= 0) || math.IsInf(s.Spread, 0) || s.MaxIterations < 1 || !(s.Tolerance > 0) {
		bad("solver.spread %v (want ≥ 0), solver.max_iterations %d (want ≥ 1), solver.tolerance %v (want > 0)", s.Spread, s.MaxIterations, s.Tolerance)
	}
	f := c.Frontier
	if f.Points < 0 || f.Points > event.MaxFrontierPoints-2 {
		bad("frontier.points %d: want in [0, %d]", f.Points, event.MaxFrontierPoints-2)
	}
	if !(f.MinLambda > 0 && f.MinLambda <= 1) || f.MaxIterations < 1 || !inUnit(f.MoveThreshold) {
		bad("frontier.min_lambda %v (want in (0, 1]), frontier.max_iterations %d (want ≥ 1), frontier.move_threshold %v (want in [0, 1])", f.MinLambda, f.MaxIterations, f.MoveThreshold)
	}
	if !inUnit(c.AdvisorMinShare) {
		bad("advisor_min_share %v: want in [0, 1]", c.AdvisorMinShare)
	}
	if err := c.Catalog.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("optimizer config: %w", err)
	}
	return nil
}

var addressRE = regexp.MustCompile(`^0x[0-9a-fA-F]{40}$`)

// Validate reports every catalog entry that cannot work.
func (c Catalog) Validate() error {
	var errs []error
	ids := map[string]bool{}
	for i, o := range c.Orchestrators {
		if o.ID == "" {
			errs = append(errs, fmt.Errorf("orchestrators[%d].id is required", i))
		} else if ids[o.ID] {
			errs = append(errs, fmt.Errorf("orchestrators[%d].id %q is not unique", i, o.ID))
		}
		ids[o.ID] = true
		if o.Address != "" && !addressRE.MatchString(o.Address) {
			errs = append(errs, fmt.Errorf("orchestrators[%d].address %q: want 0x and 40 hex digits", i, o.Address))
		}
		if o.MaxInFlight < 0 {
			errs = append(errs, fmt.Errorf("orchestrators[%d].max_in_flight %d: want ≥ 0", i, o.MaxInFlight))
		}
		for j, cp := range o.Classes {
			if cp.Capability == "" {
				errs = append(errs, fmt.Errorf("orchestrators[%d].classes[%d].capability is required", i, j))
			}
			if !(cp.PricePerUnit >= 0) || math.IsInf(cp.PricePerUnit, 0) {
				errs = append(errs, fmt.Errorf("orchestrators[%d].classes[%d].price_per_unit %v: want finite ≥ 0", i, j, cp.PricePerUnit))
			}
		}
	}
	for i, cl := range c.Classes {
		if cl.Capability == "" {
			errs = append(errs, fmt.Errorf("catalog.classes[%d].capability is required", i))
		}
		if cl.SLO < 0 || !(cl.Value >= 0) || math.IsInf(cl.Value, 0) || !(cl.Units >= 0) || math.IsInf(cl.Units, 0) {
			errs = append(errs, fmt.Errorf("catalog.classes[%d]: slo %v, value %v and units %v must be finite and ≥ 0", i, cl.SLO, cl.Value, cl.Units))
		}
	}
	return errors.Join(errs...)
}

func inUnit(v float64) bool { return v >= 0 && v <= 1 }
