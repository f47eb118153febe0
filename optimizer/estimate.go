package optimizer

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/loopgate/loopgate/event"
)

// classKey names a demand class.
type classKey struct{ capability, model string }

// ejection is an orchestrator held out until a time.
type ejection struct {
	until  time.Time
	reason string
}

// learnedCap is a capacity learned from busy answers, kept until a time.
type learnedCap struct {
	slots float64
	until time.Time
}

// state is what the optimizer remembers between rounds.
type state struct {
	ejected map[string]ejection
	learned map[string]learnedCap
	history []published // the policies published within the window, oldest first
	priors  *priorIndex // go-livepeer's own events (priors.go); nil without WithPriors
	// admitted: classes under an admission rate, with the rate (shaping.go).
	admitted map[classKey]float64
}

func newState() state {
	return state{ejected: map[string]ejection{}, learned: map[string]learnedCap{}, admitted: map[classKey]float64{}}
}

// obs accumulates observations at one level (orchestrator × class × region,
// orchestrator × class, class).
type obs struct {
	attempts, judged, succ, fails, busy float64
	errors, timeouts, refused           float64
	billedCost, billed                  float64
	// latency: success-weighted sums of the fitted mu and sigma.
	muSum, muN, sigSum, sigN float64
}

func (o *obs) add(s *Stat, lat lognormal, latOK bool) {
	o.attempts += float64(s.Attempts)
	o.judged += float64(judged(s))
	o.succ += float64(s.Successes)
	o.fails += float64(failures(s))
	o.busy += float64(s.Busy)
	o.errors += float64(s.Errors)
	o.timeouts += float64(s.Timeouts)
	o.refused += float64(s.Refused)
	o.billedCost += s.BilledCost
	o.billed += float64(s.BilledAttempts)
	if latOK && s.Successes > 0 {
		w := float64(s.Successes)
		o.muSum += w * lat.mu
		o.muN += w
		if !math.IsNaN(lat.sigma) {
			o.sigSum += w * lat.sigma
			o.sigN += w
		}
	}
}

func (o *obs) merge(p *obs) {
	o.attempts += p.attempts
	o.judged += p.judged
	o.succ += p.succ
	o.fails += p.fails
	o.busy += p.busy
	o.errors += p.errors
	o.timeouts += p.timeouts
	o.refused += p.refused
	o.billedCost += p.billedCost
	o.billed += p.billed
	o.muSum += p.muSum
	o.muN += p.muN
	o.sigSum += p.sigSum
	o.sigN += p.sigN
}

// success is the Beta-smoothed success probability with prior mean m and
// weight w.
func (o *obs) success(m, w float64) float64 { return (o.succ + m*w) / (o.judged + w) }

// latency shrinks the observed lognormal toward prior with weight w.
func (o *obs) latency(prior lognormal, w float64) lognormal {
	l := prior
	if o.muN > 0 {
		l.mu = (o.muSum + w*prior.mu) / (o.muN + w)
	}
	if o.sigN > 0 {
		l.sigma = (o.sigSum + w*prior.sigma) / (o.sigN + w)
	}
	return l
}

// orchInfo is one catalog orchestrator in one round.
type orchInfo struct {
	cfg      Orchestrator
	obs      obs     // every stat of it, pooled
	slots    float64 // effective concurrency
	learned  bool    // slots come from busy answers
	eligible bool    // not ejected
	pSucc    float64 // pooled smoothed success probability
}

// classInfo is one served class in one round.
type classInfo struct {
	key    classKey
	slo    float64 // seconds
	value  float64 // USD per miss, resolved
	units  float64
	orchs  []int     // serving orchestrators, catalog order
	prices []float64 // aligned with orchs; 0 = unknown
	cost   []float64 // USD per attempt, aligned with orchs
	work   []float64 // mean service seconds, aligned with orchs
	lat    []lognormal
	pOC    []float64 // (orchestrator, class) smoothed success
	pMean  []float64 // the prior mean pOC was shrunk toward
	oc     []obs     // (orchestrator, class) observations
	demand float64   // requests per second over all regions
	shed   float64   // of it shed at the edge, not in demand (addShed)
}

// round is everything one optimization round knows.
type round struct {
	now     time.Time
	windowS float64
	lambda  float64
	// classLambda overrides lambda for some classes (Config.ClassLambdas).
	classLambda map[classKey]float64
	orchs       []orchInfo
	byID        map[string]int
	classes     []classInfo
	byClass     map[classKey]int
	regions     []string // client regions with demand, sorted
	// cells holds the (class, region, orchestrator) observations.
	cells map[cellKey]*obs
	// demand per (class, region), requests per second.
	demand map[demandKey]float64
	// shed per (class, region): requests per second refused at the edge
	// before any attempt (addShed); shedKnown: they were read.
	shed      map[demandKey]float64
	shedKnown bool
	// ejections made or kept this round, catalog order.
	ejections []ejectionInfo
	// priors from go-livepeer's events, for orchestrators without outcomes.
	priors *priorIndex
	// prev is the last policy published, whose shares a round's move from
	// (damp.go); nil before the first.
	prev *published
}

// addShed adds the requests the admission rate refused (ShedReader) to
// the round: demand the attempts do not show because admission hid it,
// which admission counts as offered. Requests the edge queue shed (full,
// or unable to start in time) are not added: the queue sheds them inside
// a burst the fleet absorbs on average, and counting them would turn a
// burst into a sustained overload to admit against (on bursty, counting
// every shed raised loopgate's loss from 0.971 to 1.087 × round-robin's:
// the admission rate refused at the peaks what the queue would have
// served after them).
func (r *round) addShed(shed []event.ShedStats) {
	r.shed, r.shedKnown = map[demandKey]float64{}, true
	for _, s := range shed {
		ci, ok := r.byClass[classKey{s.Capability, s.Model}]
		if !ok || s.Requests <= 0 || s.Reason != event.ShedAdmission {
			continue
		}
		secs := s.Seconds
		if !(secs > 0) {
			secs = r.windowS
		}
		r.shed[demandKey{ci, s.ClientRegion}] += float64(s.Requests) / secs
	}
	keys := slices.SortedFunc(maps.Keys(r.shed), func(a, b demandKey) int { // deterministic sums
		return cmp.Or(cmp.Compare(a.class, b.class), strings.Compare(a.region, b.region))
	})
	for _, k := range keys {
		r.classes[k.class].shed += r.shed[k]
	}
}

type cellKey struct {
	class  int
	region string
	orch   int
}

type demandKey struct {
	class  int
	region string
}

type ejectionInfo struct {
	orch   int
	until  time.Time
	reason string
	fresh  bool
}

// newRound estimates the fleet from stats. It updates st (ejections,
// learned capacities) as of now.
func newRound(cfg *Config, cat *Catalog, stats []Stat, st *state, now time.Time, lambda float64) *round {
	r := &round{
		now: now, lambda: lambda, windowS: cfg.Window.Seconds(),
		byID: map[string]int{}, byClass: map[classKey]int{},
		cells: map[cellKey]*obs{}, demand: map[demandKey]float64{}, priors: st.priors,
	}
	maxS := 0.0
	for i := range stats {
		maxS = math.Max(maxS, stats[i].Seconds)
	}
	if maxS > 0 {
		r.windowS = maxS
	}
	for i, o := range cat.Orchestrators {
		r.byID[o.ID] = i
		r.orchs = append(r.orchs, orchInfo{cfg: o, eligible: true})
	}
	r.buildClasses(cfg, cat)

	// Observations and demand.
	regionSet := map[string]bool{}
	for i := range stats {
		s := &stats[i]
		c, okc := r.byClass[classKey{s.Capability, s.Model}]
		o, oko := r.byID[s.Orchestrator]
		if oko {
			lat, latOK := fitLognormal(s.LatencyP50Ms, s.LatencyP90Ms, s.LatencyP95Ms, s.LatencyP99Ms)
			r.orchs[o].obs.add(s, lat, latOK)
			if okc {
				k := cellKey{c, s.ClientRegion, o}
				cell := r.cells[k]
				if cell == nil {
					cell = &obs{}
					r.cells[k] = cell
				}
				cell.add(s, lat, latOK)
			}
		}
		if okc && s.Attempts > 0 {
			r.demand[demandKey{c, s.ClientRegion}] += float64(s.Attempts) / r.windowS
			regionSet[s.ClientRegion] = true
		}
	}
	for reg := range regionSet {
		r.regions = append(r.regions, reg)
	}
	sort.Strings(r.regions)
	for ci := range r.classes {
		for _, reg := range r.regions { // sorted: float sums are deterministic
			r.classes[ci].demand += r.demand[demandKey{ci, reg}]
		}
	}

	r.estimateClasses(cfg)
	r.updateCapacity(cfg, st)
	r.updateEjections(cfg, st)
	return r
}

// buildClasses lists the served classes, sorted, with their specs.
func (r *round) buildClasses(cfg *Config, cat *Catalog) {
	specs := map[classKey]Class{}
	for _, cl := range cat.Classes {
		k := classKey{cl.Capability, cl.Model}
		if _, dup := specs[k]; !dup {
			specs[k] = cl
		}
	}
	var keys []classKey
	served := map[classKey]bool{}
	for _, o := range cat.Orchestrators {
		for _, cp := range o.Classes {
			k := classKey{cp.Capability, cp.Model}
			if !served[k] {
				served[k] = true
				keys = append(keys, k)
			}
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].capability != keys[j].capability {
			return keys[i].capability < keys[j].capability
		}
		return keys[i].model < keys[j].model
	})
	for i, k := range keys {
		spec := specs[k]
		slo := spec.SLO
		if slo <= 0 {
			slo = cfg.DefaultSLO
		}
		r.byClass[k] = i
		r.classes = append(r.classes, classInfo{key: k, slo: slo.Seconds(), value: spec.Value, units: spec.Units})
	}
	for oi, o := range cat.Orchestrators {
		seen := map[classKey]bool{}
		for _, cp := range o.Classes {
			k := classKey{cp.Capability, cp.Model}
			if seen[k] {
				continue // the first price listed wins, as in the router
			}
			seen[k] = true
			c := &r.classes[r.byClass[k]]
			c.orchs = append(c.orchs, oi)
			c.prices = append(c.prices, cp.PricePerUnit)
		}
	}
}

// estimateClasses computes each (orchestrator, class) success, latency,
// service time and cost, and resolves class values.
func (r *round) estimateClasses(cfg *Config) {
	p := cfg.Prior
	for ci := range r.classes {
		c := &r.classes[ci]
		n := len(c.orchs)
		c.oc = make([]obs, n)
		c.cost = make([]float64, n)
		c.work = make([]float64, n)
		c.lat = make([]lognormal, n)
		c.pOC = make([]float64, n)
		c.pMean = make([]float64, n)
		var all obs // in catalog and region order: float sums are deterministic
		for j, o := range c.orchs {
			for _, reg := range r.regions {
				if cell := r.cells[cellKey{ci, reg, o}]; cell != nil {
					c.oc[j].merge(cell)
				}
			}
			all.merge(&c.oc[j])
		}
		def := lognormal{mu: math.Log(c.slo * p.LatencyMedian), sigma: p.LatencySigma}
		classLat := all.latency(def, p.LatencyWeight)
		// Empirical Bayes: an orchestrator's success is shrunk toward what
		// the class achieves across the fleet, set a little below it — so
		// three lucky requests do not make a champion, yet one that has
		// recovered and shows a clean record on its exploration share
		// catches up with its peers instead of being held back by a
		// fixed prior that only a large sample can overcome.
		pooled := all.success(p.SuccessMean, p.SuccessWeight)
		prior := pooled - 0.5*(1-pooled)
		var known []float64
		for j := range c.orchs {
			c.lat[j] = r.priorLatency(c, j, c.oc[j].latency(classLat, p.LatencyWeight))
			c.work[j] = c.lat[j].mean()
			// No evidence at all (new, or back from an ejection): the
			// configured, cautious prior.
			m := p.SuccessMean
			if c.oc[j].judged > 0 {
				m = prior
			}
			c.pMean[j] = m
			c.pOC[j] = c.oc[j].success(m, p.SuccessWeight)
			switch {
			case c.prices[j] > 0 && c.units > 0:
				c.cost[j] = c.prices[j] * c.units
			case c.oc[j].attempts > 0 && c.oc[j].billedCost > 0:
				c.cost[j] = c.oc[j].billedCost / c.oc[j].attempts
			case r.priorCost(c, j) > 0:
				c.cost[j] = r.priorCost(c, j)
			default:
				c.cost[j] = math.NaN()
				continue
			}
			known = append(known, c.cost[j])
		}
		med := median(known)
		for j := range c.cost {
			if math.IsNaN(c.cost[j]) {
				c.cost[j] = med
			}
		}
		if !(c.value > 0) {
			c.value = cfg.ValueMultiple * med
			if !(c.value > 0) {
				c.value = 1
			}
		}
	}
	for i := range r.orchs {
		o := &r.orchs[i]
		o.pSucc = o.obs.success(p.SuccessMean, p.SuccessWeight)
	}
}

// updateCapacity sets every orchestrator's slots: the catalog's (or the
// default), lowered to a capacity learned from busy answers.
func (r *round) updateCapacity(cfg *Config, st *state) {
	k := cfg.Capacity
	for i := range r.orchs {
		o := &r.orchs[i]
		slots := float64(o.cfg.MaxInFlight)
		if slots <= 0 {
			slots = float64(k.DefaultMaxInFlight)
		}
		if o.obs.judged >= float64(cfg.Ejection.MinAttempts) && o.obs.busy > k.BusyRate*o.obs.judged && k.Memory > 0 {
			// Full at its observed load: the work it took is its capacity.
			occupied := 0.0
			for ci := range r.classes {
				c := &r.classes[ci]
				for j, oi := range c.orchs {
					if oi == i {
						occupied += (c.oc[j].judged - c.oc[j].busy) / r.windowS * c.work[j]
					}
				}
			}
			st.learned[o.cfg.ID] = learnedCap{slots: math.Max(1, occupied), until: r.now.Add(k.Memory)}
		}
		if l, ok := st.learned[o.cfg.ID]; ok {
			if !r.now.Before(l.until) {
				delete(st.learned, o.cfg.ID)
			} else if l.slots < slots {
				slots, o.learned = l.slots, true
			}
		}
		o.slots = slots
	}
	for id := range st.learned {
		if _, ok := r.byID[id]; !ok {
			delete(st.learned, id)
		}
	}
}

// updateEjections expires finished cooldowns and ejects orchestrators
// failing too often, the worst first, up to Ejection.MaxFraction.
func (r *round) updateEjections(cfg *Config, st *state) {
	e := cfg.Ejection
	p := cfg.Prior
	for id, ej := range st.ejected {
		if _, ok := r.byID[id]; !ok || !r.now.Before(ej.until) {
			delete(st.ejected, id)
		}
	}
	limit := int(math.Floor(e.MaxFraction * float64(len(r.orchs))))
	type cand struct {
		orch int
		rate float64
	}
	var cands []cand
	for i := range r.orchs {
		o := &r.orchs[i]
		if _, ok := st.ejected[o.cfg.ID]; ok {
			continue
		}
		rate := (o.obs.fails + (1-p.SuccessMean)*p.SuccessWeight) / (o.obs.judged + p.SuccessWeight)
		if o.obs.judged >= float64(e.MinAttempts) && rate > e.FailureRate {
			cands = append(cands, cand{i, rate})
		}
	}
	sort.SliceStable(cands, func(a, b int) bool { return cands[a].rate > cands[b].rate })
	fresh := map[int]bool{}
	for _, c := range cands {
		if len(st.ejected) >= limit {
			break
		}
		o := &r.orchs[c.orch]
		st.ejected[o.cfg.ID] = ejection{until: r.now.Add(e.Cooldown), reason: failureReason(&o.obs, r.windowS)}
		fresh[c.orch] = true
	}
	for i := range r.orchs {
		o := &r.orchs[i]
		if ej, ok := st.ejected[o.cfg.ID]; ok {
			o.eligible = false
			r.ejections = append(r.ejections, ejectionInfo{orch: i, until: ej.until, reason: ej.reason, fresh: fresh[i]})
		}
	}
}

func failureReason(o *obs, windowS float64) string {
	s := fmt.Sprintf("failure rate %.2f over %d attempts in %s", o.fails/o.judged, int64(o.judged), time.Duration(windowS*float64(time.Second)).Round(time.Second))
	if o.errors+o.timeouts+o.refused > 0 {
		s += fmt.Sprintf(" (errors %d, timeouts %d, refused %d)", int64(o.errors), int64(o.timeouts), int64(o.refused))
	}
	return s
}

// arcEstimate is what is known of one orchestrator for one class from one
// client region, or pooled over the regions.
type arcEstimate struct {
	p     float64 // success probability
	lat   lognormal
	n     float64 // judged attempts behind it
	cost  float64 // USD per attempt
	work  float64 // mean service seconds (pooled over regions)
	slots float64
}

// estimate returns the arc estimate of the j-th serving orchestrator of
// class ci from client region reg, or pooled over the regions.
func (r *round) estimate(cfg *Config, ci, j int, reg string, pooled bool) arcEstimate {
	c := &r.classes[ci]
	o := c.orchs[j]
	a := arcEstimate{p: c.pOC[j], lat: c.lat[j], n: c.oc[j].judged, cost: c.cost[j], work: c.work[j], slots: r.orchs[o].slots}
	if pooled {
		return a
	}
	cell := r.cells[cellKey{ci, reg, o}]
	if cell == nil {
		a.n = 0
		return a
	}
	// Shrink the region's record toward what the orchestrator shows in its
	// other regions (not toward pOC, which already holds this cell: that
	// would count the same attempts twice).
	rest := obs{judged: c.oc[j].judged - cell.judged, succ: c.oc[j].succ - cell.succ}
	a.p = cell.success(rest.success(c.pMean[j], cfg.Prior.SuccessWeight), cfg.Prior.SuccessWeight)
	a.lat = cell.latency(c.lat[j], cfg.Prior.LatencyWeight)
	a.n = cell.judged
	return a
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
