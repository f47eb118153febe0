package closedloop

import (
	"strconv"
	"time"

	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/router"
	"github.com/loopgate/loopgate/sim"
)

// shaping is the router's workload shaping in virtual time, through the
// router's own types: a router.Limiter per orchestrator under the
// policy's limit, router.Admission for the admission rates, and a
// router.EdgeQueue ranked by router.QueueTerms. A freed slot is handed to
// the first waiter the orchestrator serves, exactly as the router's
// releaseSlot does: reserved for it (so nothing else takes it) and the
// waiter woken with sim.Fleet.Wake.
type shaping struct {
	lim       []*router.Limiter // by orchestrator
	admission *router.Admission
	queue     *router.EdgeQueue[int] // request ids
	waiting   map[int]*router.QueueEntry[int]
	classOf   map[int]int   // class of each waiting request
	tried     map[int][]int // orchestrators each waiting retry already tried
	handed    map[int]int   // request id → orchestrator whose slot it holds
	evicted   map[int]bool
	reserved  []int // slots handed and not yet used, by orchestrator

	Shed     map[string]int // requests shed, by reason
	Handoffs int
}

func newShaping(cfg router.ShapingConfig, orchs int) shaping {
	d := router.DefaultShapingConfig()
	if cfg.Limit == (router.LimitConfig{}) {
		cfg.Limit = d.Limit
	}
	if cfg.QueueSize == 0 {
		cfg.QueueSize = d.QueueSize
	}
	if cfg.AdmissionBurst == 0 {
		cfg.AdmissionBurst = d.AdmissionBurst
	}
	if cfg.QueueDrainWindow == 0 {
		cfg.QueueDrainWindow = d.QueueDrainWindow
	}
	s := shaping{
		lim:       make([]*router.Limiter, orchs),
		admission: router.NewAdmission(cfg.AdmissionBurst),
		queue:     router.NewEdgeQueue[int](cfg.QueueSize, cfg.QueueDrainWindow),
		waiting:   map[int]*router.QueueEntry[int]{},
		classOf:   map[int]int{},
		tried:     map[int][]int{},
		handed:    map[int]int{},
		evicted:   map[int]bool{},
		reserved:  make([]int, orchs),
		Shed:      map[string]int{},
	}
	for i := range s.lim {
		s.lim[i] = router.NewLimiter(cfg.Limit)
	}
	return s
}

// queuedClass reports whether requests of class wait at the edge: a
// newcomer queues behind them.
func (s *shaping) queuedClass(class int) bool {
	if s.queue.Len() == 0 {
		return false
	}
	_, ok := s.queue.Find(func(id int) bool { return s.classOf[id] == class })
	return ok
}

// resume answers the Pick of a request the edge queue holds: the slot
// handed to it, its shedding (evicted, or its start-by has come), or
// more waiting. done is false for any other request.
func (s *shaping) resume(p *Policy, now time.Duration, req *sim.Request) (sim.Choice, bool) {
	if o, ok := s.handed[req.ID]; ok {
		delete(s.handed, req.ID)
		s.reserved[o]--
		r := p.request(now, req)
		lat, _ := p.fast[o].LatencyView(p.clock(now), p.sel.LatencyStale)
		r.picks = append(r.picks, router.Choice{Propensity: 1, Score: event.Score{
			Share: p.shareOf(req, o), LatencyMs: lat, InFlight: p.inFlight(o), Penalty: 1, Weight: 1,
		}})
		r.inflight++
		return p.use(o), true
	}
	if s.evicted[req.ID] {
		delete(s.evicted, req.ID)
		p.shed(now, req, router.ShedQueueFull)
		return sim.GiveUp(), true
	}
	e, ok := s.waiting[req.ID]
	if !ok {
		return sim.Choice{}, false
	}
	nowT := p.clock(now)
	if !nowT.Before(e.StartBy) {
		s.queue.Remove(e, nowT)
		s.leave(req.ID)
		p.shed(now, req, router.ShedDeadline)
		return sim.GiveUp(), true
	}
	return sim.Choice{Orch: -1, Wait: e.StartBy.Sub(nowT)}, true
}

func (s *shaping) leave(id int) {
	delete(s.waiting, id)
	delete(s.classOf, id)
	delete(s.tried, id)
}

// takes reports whether waiting request id may take a slot on o: o serves
// its class and it has not failed on o already (a retry waits for another
// orchestrator, as the router's waiter does).
func (s *shaping) takes(serves func(o, class int) bool, id, o int) bool {
	if !serves(o, s.classOf[id]) {
		return false
	}
	for _, t := range s.tried[id] {
		if t == o {
			return false
		}
	}
	return true
}

// shareOf is the applied policy's share of orchestrator o for req's class and region.
func (p *Policy) shareOf(req *sim.Request, o int) float64 {
	if sh := p.shares[shareKey{req.Class, req.Region}]; sh != nil {
		return sh[o]
	}
	return 1 / float64(len(p.fleet.Eligible(req.Class)))
}

// entry is the policy entry governing req's class and region, or nil.
func (p *Policy) entry(req *sim.Request) *event.ClassPolicy {
	if p.ix == nil {
		return nil
	}
	cl := &p.sc.Classes[req.Class]
	return p.ix.Entry(cl.Capability, cl.Model, req.Region)
}

// admit applies the class's admission rate to a first attempt; a refused
// request is shed.
func (p *Policy) admit(now time.Duration, req *sim.Request) bool {
	ok, _, _ := p.shaping.admission.Allow(p.entry(req), p.clock(now))
	if !ok {
		p.shed(now, req, router.ShedAdmission)
	}
	return ok
}

// park puts req in the edge queue (or sheds it when it cannot start in
// time or the queue is full) and asks to be called again at its start-by.
func (p *Policy) park(now time.Duration, req *sim.Request) sim.Choice {
	s := &p.shaping
	nowT := p.clock(now)
	elig := p.fleet.Eligible(req.Class)
	limits := make([]int, len(elig))
	lats := make([]float64, len(elig))
	for i, o := range elig {
		limits[i] = s.lim[o].Limit()
		if lat, fresh := p.fast[o].LatencyView(nowT, p.sel.LatencyStale); fresh > 0 {
			lats[i] = lat
		}
	}
	cl := &p.sc.Classes[req.Class]
	prio, startBy, drain := router.QueueTerms(p.clock(req.Arrival), p.entry(req), cl.Timeout, 1, limits, lats)
	e := &router.QueueEntry[int]{Priority: prio, StartBy: startBy, Key: strconv.Itoa(req.Class), Item: req.ID}
	ev, why, ok := s.queue.Push(e, nowT, drain)
	if ev != nil {
		s.leave(ev.Item)
		s.evicted[ev.Item] = true
		p.fleet.Wake(ev.Item)
	}
	if !ok {
		p.shed(now, req, why)
		return sim.GiveUp()
	}
	s.waiting[req.ID] = e
	s.classOf[req.ID] = req.Class
	if len(req.Tried) > 0 {
		s.tried[req.ID] = append([]int(nil), req.Tried...)
	}
	return sim.Choice{Orch: -1, Wait: startBy.Sub(nowT)}
}

// handOff gives the slot an attempt freed on o to the first waiter o
// serves, unless o is ejected or at its limit.
func (p *Policy) handOff(now time.Duration, o int) {
	s := &p.shaping
	if s.queue.Len() == 0 {
		return
	}
	nowT := p.clock(now)
	c, ok := p.fast[o].CandidateOf(nowT, p.sel.LatencyStale, 0, p.inFlight(o)+s.reserved[o], s.lim[o].Limit(), p.ejectUntil[o])
	if !ok || c.Ejected {
		return
	}
	e, ok := s.queue.Take(func(id int) bool { return s.takes(p.fleet.Serves, id, o) }, p.clock(now))
	if !ok {
		return
	}
	s.leave(e.Item)
	s.handed[e.Item] = o
	s.reserved[o]++
	s.Handoffs++
	p.fleet.Wake(e.Item)
}

// handTo gives the slot on o a newcomer drew to the first waiter o serves,
// as the router's handTo does; false when there is none.
func (p *Policy) handTo(now time.Duration, o int) bool {
	s := &p.shaping
	e, ok := s.queue.Take(func(id int) bool { return s.takes(p.fleet.Serves, id, o) }, p.clock(now))
	if !ok {
		return false
	}
	s.leave(e.Item)
	s.handed[e.Item] = o
	s.reserved[o]++
	s.Handoffs++
	p.fleet.Wake(e.Item)
	return true
}

// shed ends req at the edge, with its outcome (status shed).
func (p *Policy) shed(now time.Duration, req *sim.Request, reason string) {
	p.shaping.Shed[reason]++
	r := p.request(now, req)
	r.shedReason = reason
	p.finish(now, r, event.StatusShed)
}
