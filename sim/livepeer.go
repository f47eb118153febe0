package sim

import (
	"errors"
	"math/rand/v2"
	"slices"
	"time"
)

// LivepeerConfig tunes the go-livepeer baseline; the defaults are
// go-livepeer's (server/ai_session.go, server/ai_process.go,
// server/broadcast.go, discovery/discovery.go, cmd/livepeer/starter).
type LivepeerConfig struct {
	// StakeWeight is the weight of the stake share in the draw; the rest is
	// uniform (price weight 0). Default 0.7 (-selectStakeWeight; -selectRandWeight 0.3).
	StakeWeight float64
	// MaxTries caps the tries of one request (maxTries). Default 20.
	MaxTries int
	// RetryWindow is how long after the request's arrival a new try may
	// start (-aiProcessingRetryTimeout). Default 2s.
	RetryWindow time.Duration
	// Penalty is how many pool refreshes a failing orchestrator sits out
	// (the AI session pool's penalty). Default 3.
	Penalty int
	// RefreshTTL refreshes the pool from discovery when this much time has
	// passed since the last refresh (AISessionManagerTTL). Default 10m.
	RefreshTTL time.Duration
	// RefreshThreshold refreshes the pool when fewer than
	// min(RefreshThreshold, ⌈n/2⌉) sessions are left
	// (maxRefreshSessionsThreshold). Default 8.
	RefreshThreshold int
	// DiscoveryTimeout is how long discovery waits for answers before it
	// settles for those it has (-discoveryTimeout); it doubles while none
	// has come, up to DiscoveryCutoff. Default 500ms.
	DiscoveryTimeout time.Duration
	// DiscoveryCutoff ends discovery whatever has answered
	// (maxGetOrchestratorCutoffTimeout). Default 6s.
	DiscoveryCutoff time.Duration
}

// DefaultLivepeerConfig returns the defaults written on each field.
func DefaultLivepeerConfig() LivepeerConfig {
	return LivepeerConfig{
		StakeWeight: 0.7, MaxTries: 20, RetryWindow: 2 * time.Second, Penalty: 3,
		RefreshTTL: 10 * time.Minute, RefreshThreshold: 8,
		DiscoveryTimeout: 500 * time.Millisecond, DiscoveryCutoff: 6 * time.Second,
	}
}

// Validate reports a config the policy cannot use.
func (c LivepeerConfig) Validate() error {
	switch {
	case c.StakeWeight < 0 || c.StakeWeight > 1:
		return errors.New("livepeer: want stake weight in [0, 1]")
	case c.MaxTries < 1 || c.Penalty < 0 || c.RefreshThreshold < 1:
		return errors.New("livepeer: want max tries ≥ 1, penalty ≥ 0, refresh threshold ≥ 1")
	case c.RetryWindow <= 0 || c.RefreshTTL <= 0 || c.DiscoveryTimeout <= 0 || c.DiscoveryCutoff < c.DiscoveryTimeout:
		return errors.New("livepeer: want positive retry window, refresh TTL and discovery timeout, cutoff ≥ timeout")
	}
	return nil
}

// Livepeer is go-livepeer's batch AI gateway selection with its defaults,
// one session pool per class (an AISessionSelector per capability and
// model), as the code does it:
//
//   - Draw. A try takes an idle session by a weighted draw,
//     P(o) = 0.7·stake share + 0.3·uniform over the idle sessions
//     (ProbabilitySelectionAlgorithm; uniform when no idle one has stake).
//     The chosen session leaves the idle list until its last request in
//     flight completes; with no idle session left the try takes one of the
//     busy sessions uniformly (selectInUse). With none at all the request
//     fails (503 "no orchestrators available").
//   - Errors. A 503 "insufficient capacity" (Rejected) does not suspend:
//     the session is held out until the request ends, then returned. Any
//     other failure (500, refused, reset, the client's timeout cancelling
//     the request) removes the session from the pool and suspends the
//     orchestrator for Penalty (3) refreshes: suspender.list = count + 3.
//   - Suspension is counted in refreshes, not time. A refresh signals the
//     suspender (count++) and re-discovers; an orchestrator is back once
//     count exceeds its mark. A refresh runs, synchronously inside the try
//     that finds it due, when RefreshTTL (10 min) has passed since the
//     last one, or when fewer than min(8, ⌈min(N, initial pool)/2⌉)
//     sessions are left (N the orchestrators known, initial pool the
//     sessions the last refresh found plus those suspended). An empty pool
//     first signals Penalty extra refreshes, releasing everyone.
//     Concurrent tries that find a refresh due each run one, as
//     go-livepeer's unlocked check lets them. The first try of a class
//     creates its selector, whose first refresh holds the session
//     manager's lock: tries of every class wait for it.
//   - Discovery queries every orchestrator; the refresh waits until all
//     have answered or DiscoveryTimeout (500 ms) has passed with at least
//     one usable answer (doubling while none, up to 6 s). Only those that
//     answered in that time, serve the class and are not suspended join;
//     sessions already in the pool stay (no auto-clear for batch AI). The
//     try that runs the refresh waits for it (Choice.Wait).
//   - Retries: up to MaxTries (20) tries, each started within RetryWindow
//     (2 s) of the request's arrival, on any session the draw gives, the
//     orchestrators already tried included.
//
// What stays simplified: a discovery probe's answer is read from the
// orchestrator's down/hang state and takes one round trip from the
// requesting client's region (the engine does not simulate the
// GetOrchestratorInfo RPC; this is the only hidden state the policy reads,
// and only as that probe's result); there is no warm/cold split (every
// offer is a warm model), no max-price or perf-score filter (off by
// default), no ticket or payment round trips (refreshSessionIfNeeded), and
// every orchestrator is on chain with the scenario's stake.
type Livepeer struct {
	cfg   LivepeerConfig
	rng   *rand.Rand
	pools []*lpPool // by class
	reqs  map[int]*lpReq
	// locked is when the session manager's lock, held while a class's
	// selector is created and first refreshed, is free again.
	locked time.Duration
	// waiting are requests parked at the edge; one whose deadline passes
	// there ends without an Observe, so it is swept.
	waiting []int
	w       []float64
}

// lpSess names one session: an orchestrator and the generation of its
// session in the pool (a removed and re-added orchestrator is a new one).
type lpSess struct{ orch, gen int }

// lpPool is one AISessionSelector: its AISessionPool and suspender.
type lpPool struct {
	started     bool
	member      []bool // in sessMap
	gen         []int
	inflight    []int
	idle        []int // the selector's sessions, in order
	inUse       []int
	suspended   map[int]int // suspender.list: refresh count until which o is out
	count       int         // suspender.count
	lastRefresh time.Duration
	initial     int // initialPoolSize
	members     int
	pending     []lpRefresh // refreshes under way, by end time
}

// lpRefresh is a discovery under way: who will have answered by its end.
type lpRefresh struct {
	end      time.Duration
	answered []int // orchestrators serving the class, in index order
}

type lpReq struct {
	class     int
	arrival   time.Duration
	deadline  time.Duration
	parked    bool     // waiting at the edge inside a try
	refreshed bool     // that wait is the try's own refresh: select next
	sess      []lpSess // by attempt Seq
	held      []lpSess // insufficient-capacity sessions returned when the request ends
}

// NewLivepeer returns the go-livepeer baseline.
func NewLivepeer(env Env, cfg LivepeerConfig) (*Livepeer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	n := len(env.Scenario.Orchestrators)
	p := &Livepeer{cfg: cfg, rng: env.Rand, reqs: map[int]*lpReq{}}
	for range env.Scenario.Classes {
		p.pools = append(p.pools, &lpPool{
			member: make([]bool, n), gen: make([]int, n), inflight: make([]int, n), suspended: map[int]int{},
		})
	}
	return p, nil
}

// Limits implements Policy.
func (p *Livepeer) Limits(now time.Duration, req *Request) Limits {
	p.reqs[req.ID] = &lpReq{class: req.Class, arrival: req.Arrival, deadline: req.Deadline}
	return Limits{MaxAttempts: p.cfg.MaxTries}
}

// Pick implements Policy.
func (p *Livepeer) Pick(now time.Duration, req *Request, fleet *Fleet) Choice {
	p.sweep(now)
	r := p.reqs[req.ID]
	pool := p.pools[req.Class]
	pool.settle(now)
	inTry := r.parked // back from a wait inside this try
	r.parked = false
	if !inTry && req.Attempts > 0 && now-r.arrival >= p.cfg.RetryWindow {
		// go-livepeer checks its retry context before each try, not after
		// the waits inside one.
		p.end(req.ID, r)
		return GiveUp()
	}
	switch {
	case r.refreshed:
		r.refreshed = false // the refresh this try ran is over: select
	case now < p.locked:
		// Another class's selector is being created under the session
		// manager's lock (getSelector): wait for it.
		return p.park(req.ID, r, p.locked-now, false)
	case !pool.started:
		// The selector's creation refreshes it, holding the lock.
		pool.started = true
		d := p.startRefresh(now, pool, req, fleet)
		p.locked = now + d
		if d > 0 {
			return p.park(req.ID, r, d, true)
		}
		pool.settle(now)
	case p.refreshDue(now, pool, fleet):
		if d := p.startRefresh(now, pool, req, fleet); d > 0 {
			return p.park(req.ID, r, d, true)
		}
		pool.settle(now)
	}
	o := p.draw(pool, fleet)
	if o < 0 {
		p.end(req.ID, r)
		return GiveUp()
	}
	pool.inflight[o]++
	r.sess = append(r.sess[:req.Attempts], lpSess{orch: o, gen: pool.gen[o]})
	return Use(o)
}

// park makes the request wait d at the edge inside its try; refreshed
// says the wait is its own refresh, after which it selects at once.
func (p *Livepeer) park(id int, r *lpReq, d time.Duration, refreshed bool) Choice {
	r.parked, r.refreshed = true, refreshed
	p.waiting = append(p.waiting, id)
	return Choice{Orch: -1, Wait: d}
}

// refreshDue is AISessionSelector.Select's shouldRefreshSelector.
func (p *Livepeer) refreshDue(now time.Duration, pool *lpPool, fleet *Fleet) bool {
	if pool.members == 0 {
		pool.count += p.cfg.Penalty // release everyone
	}
	known := min(fleet.Len(), pool.initial)
	if pool.members < min(p.cfg.RefreshThreshold, (known+1)/2) {
		return true
	}
	return now > pool.lastRefresh+p.cfg.RefreshTTL
}

// startRefresh signals the suspender and runs discovery from the region of
// req; it returns how long the discovery takes (the try waits for it).
func (p *Livepeer) startRefresh(now time.Duration, pool *lpPool, req *Request, fleet *Fleet) time.Duration {
	pool.count++
	type probe struct {
		o   int
		rtt time.Duration
	}
	var probes []probe
	all := time.Duration(0) // when every answer (or refusal) is in
	hung := false
	for o := 0; o < fleet.Len(); o++ {
		cfg := fleet.Orchestrator(o)
		rtt := fleet.RTT(req.Region, o)
		switch {
		case cfg.Hang && !cfg.Down:
			hung = true
			continue
		case !cfg.Down:
			probes = append(probes, probe{o: o, rtt: rtt})
		}
		all = max(all, rtt)
	}
	usable := func(pr probe) bool {
		return fleet.Serves(pr.o, req.Class) && pool.suspendedAt(pr.o) == 0
	}
	end := all
	if hung || all > p.cfg.DiscoveryTimeout {
		// The timer fires at timeout, 2·timeout, 4·timeout, … before the
		// cutoff; it ends discovery once at least one usable answer is in.
		end = p.cfg.DiscoveryCutoff
		for t := p.cfg.DiscoveryTimeout; t < p.cfg.DiscoveryCutoff; t *= 2 {
			if slices.ContainsFunc(probes, func(pr probe) bool { return usable(pr) && pr.rtt <= t }) {
				end = t
				break
			}
		}
		if !hung {
			end = min(end, all)
		}
	}
	ref := lpRefresh{end: now + end}
	for _, pr := range probes {
		if pr.rtt <= end && fleet.Serves(pr.o, req.Class) {
			ref.answered = append(ref.answered, pr.o)
		}
	}
	pool.pending = append(pool.pending, ref)
	slices.SortStableFunc(pool.pending, func(a, b lpRefresh) int { return int(a.end - b.end) })
	return end
}

// settle completes the refreshes whose discovery is over by now
// (AISessionSelector.Refresh after getSessions returns).
func (pool *lpPool) settle(now time.Duration) {
	for len(pool.pending) > 0 && pool.pending[0].end <= now {
		ref := pool.pending[0]
		pool.pending = pool.pending[1:]
		found := 0
		for _, o := range ref.answered {
			if pool.suspendedAt(o) > 0 {
				continue
			}
			found++
			if !pool.member[o] {
				pool.member[o] = true
				pool.members++
				pool.gen[o]++
				pool.inflight[o] = 0
				pool.idle = append(pool.idle, o)
			}
		}
		pool.initial = found + len(pool.suspended)
		pool.lastRefresh = ref.end
	}
}

// suspendedAt is suspender.Suspended: the mark of a suspended orchestrator,
// or 0, dropping a mark that has expired.
func (pool *lpPool) suspendedAt(o int) int {
	m, ok := pool.suspended[o]
	if ok && m < pool.count {
		delete(pool.suspended, o)
		return 0
	}
	return m
}

// draw is AISessionPool.Select: a weighted draw over the idle sessions, or
// a uniform one over the busy ones; -1 when the pool is empty.
func (p *Livepeer) draw(pool *lpPool, fleet *Fleet) int {
	if len(pool.idle) == 0 {
		if len(pool.inUse) == 0 {
			return -1
		}
		return pool.inUse[p.rng.IntN(len(pool.inUse))]
	}
	stake := 0.0
	for _, o := range pool.idle {
		stake += fleet.Orchestrator(o).Stake
	}
	p.w = p.w[:0]
	sum := 0.0
	for _, o := range pool.idle {
		w := 1 / float64(len(pool.idle))
		if stake > 0 {
			w = p.cfg.StakeWeight*fleet.Orchestrator(o).Stake/stake + (1-p.cfg.StakeWeight)*w
		}
		p.w = append(p.w, w)
		sum += w
	}
	i := len(p.w) - 1
	u := p.rng.Float64() * sum
	for k, w := range p.w {
		if u < w {
			i = k
			break
		}
		u -= w
	}
	o := pool.idle[i]
	pool.idle = slices.Delete(pool.idle, i, i+1)
	pool.inUse = append(pool.inUse, o)
	return o
}

// complete is AISessionPool.Complete: the session goes back to the idle
// list once nothing of it is in flight.
func (pool *lpPool) complete(s lpSess) {
	o := s.orch
	if !pool.member[o] || pool.gen[o] != s.gen {
		return // removed meanwhile: not this pool's session any more
	}
	pool.inflight[o]--
	if pool.inflight[o] > 0 {
		return
	}
	if i := slices.Index(pool.inUse, o); i >= 0 {
		pool.inUse = slices.Delete(pool.inUse, i, i+1)
	}
	pool.idle = append(pool.idle, o)
}

// remove is AISessionPool.Remove: out of the pool and suspended for
// Penalty refreshes from now.
func (pool *lpPool) remove(o, penalty int) {
	if pool.member[o] {
		pool.member[o] = false
		pool.members--
		if i := slices.Index(pool.inUse, o); i >= 0 {
			pool.inUse = slices.Delete(pool.inUse, i, i+1)
		}
		if i := slices.Index(pool.idle, o); i >= 0 {
			pool.idle = slices.Delete(pool.idle, i, i+1)
		}
	}
	pool.suspended[o] = pool.count + penalty
}

// Observe implements Policy.
func (p *Livepeer) Observe(now time.Duration, a *Attempt) {
	p.sweep(now)
	r := p.reqs[a.Request]
	if r == nil || a.Seq >= len(r.sess) {
		return
	}
	pool := p.pools[a.Class]
	pool.settle(now)
	s := r.sess[a.Seq]
	switch a.Outcome {
	case OK, Cancelled:
		pool.complete(s)
	case Rejected:
		r.held = append(r.held, s) // insufficient capacity: no suspension
	default:
		pool.remove(s.orch, p.cfg.Penalty)
	}
	if a.Outcome == OK || a.Outcome == TimedOut || a.Seq+1 >= p.cfg.MaxTries || now >= r.deadline {
		p.end(a.Request, r)
	}
}

// end returns the request's held sessions to the pool and forgets it.
func (p *Livepeer) end(id int, r *lpReq) {
	for _, s := range r.held {
		p.pools[r.class].complete(s)
	}
	delete(p.reqs, id)
}

// sweep ends the requests whose deadline passed while they waited at the
// edge for a refresh.
func (p *Livepeer) sweep(now time.Duration) {
	keep := p.waiting[:0]
	for _, id := range p.waiting {
		r, ok := p.reqs[id]
		switch {
		case !ok || !r.parked:
			// picked again (or over): no longer waiting
		case now >= r.deadline:
			p.end(id, r)
		default:
			keep = append(keep, id)
		}
	}
	p.waiting = keep
}
