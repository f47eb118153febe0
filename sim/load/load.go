package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/sim/scenario"
)

// Headers every request carries besides Content-Type and Authorization.
const (
	// HeaderClientRegion is the client's region (its current one: the
	// timeline may move it). The router reads it when
	// trust_client_region_header is set (router.HeaderClientRegion).
	HeaderClientRegion = "X-Loopgate-Client-Region"
	// HeaderClass names the request's scenario class, for the simulated
	// fleet only (fleet.HeaderClass); the router forwards it untouched.
	HeaderClass = "X-Loopgate-Sim-Class"
)

// never is the scenario time of an arrival that will not come.
const never = time.Duration(math.MaxInt64)

// Generator sends a scenario's client demand over HTTP.
type Generator struct {
	sc       *scenario.Scenario
	cfg      Config
	target   string
	logger   *slog.Logger
	m        *metrics
	rng      *rand.Rand // used by Run's scheduling loop only
	clock    Clock
	client   *http.Client
	own      *http.Transport // nil when Config.Transport was given
	payloads []payload       // by class index
	keys     []string        // by client index
	active   []bool          // by client index: Config.Clients
	drain    time.Duration
	ran      atomic.Bool
}

// New prepares a generator (and every request body) for sc. rng draws the
// arrivals and classes; nil means a PCG seeded with the scenario's seed.
// logger and reg may be nil.
func New(sc *scenario.Scenario, cfg Config, d deps.Deps) (*Generator, error) {
	if sc == nil {
		return nil, errors.New("load: nil scenario")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("load config: %w", err)
	}
	for id := range cfg.APIKeys {
		if sc.ClientIndex(id) < 0 {
			return nil, fmt.Errorf("load config: api_keys.%s: no such client in scenario %s", id, sc.Name)
		}
	}
	active := make([]bool, len(sc.Clients))
	for i := range active {
		active[i] = len(cfg.Clients) == 0
	}
	for _, id := range cfg.Clients {
		i := sc.ClientIndex(id)
		if i < 0 {
			return nil, fmt.Errorf("load config: clients: no such client %q in scenario %s", id, sc.Name)
		}
		active[i] = true
	}
	logger, rng := d.Log(), d.Rand
	if rng == nil {
		rng = rand.New(rand.NewPCG(uint64(sc.Seed), 0x10ad))
	}
	m, err := newMetrics(d.Registerer)
	if err != nil {
		return nil, err
	}
	g := &Generator{
		sc: sc, cfg: cfg, target: strings.TrimRight(cfg.Target, "/"), logger: logger, m: m,
		rng: rng, clock: cfg.Clock, active: active,
		keys: make([]string, len(sc.Clients)),
	}
	if g.clock == nil {
		g.clock = WallClock{}
	}
	if g.cfg.Duration == 0 {
		g.cfg.Duration = sc.Duration
	}
	for i, c := range sc.Clients {
		g.keys[i] = cfg.APIKeys[c.ID]
	}
	var longest time.Duration
	for _, cls := range sc.Classes {
		p, err := buildPayload(cls)
		if err != nil {
			return nil, fmt.Errorf("load: class %s: %w", cls.ID, err)
		}
		g.payloads = append(g.payloads, p)
		longest = max(longest, cls.Timeout)
	}
	g.drain = cfg.DrainTimeout
	if g.drain == 0 {
		g.drain = g.scale(longest) + time.Second
	}
	rt := cfg.Transport
	if rt == nil {
		g.own = &http.Transport{
			Proxy:               nil, // loopback demos must not go through an environment proxy
			DialContext:         (&net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        cfg.MaxInFlight,
			MaxIdleConnsPerHost: cfg.MaxInFlight,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		}
		rt = g.own
	}
	g.client = &http.Client{
		Transport: rt,
		// The router answers; a redirect would be a misconfigured Target.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return g, nil
}

// arrival is one request to send.
type arrival struct {
	client int
	class  int
	region string
}

// Run sends the scenario's demand from Origin (or now) until Duration of
// scenario time has passed or ctx is cancelled, then waits for requests in
// flight (at most DrainTimeout, then cancels them) and returns what
// happened. Every goroutine it started has ended when it returns. A
// cancelled ctx is not an error: the Summary says Interrupted. Run may be
// called once.
func (g *Generator) Run(ctx context.Context) (Summary, error) {
	if !g.ran.CompareAndSwap(false, true) {
		return Summary{}, errors.New("load: Run called twice")
	}
	start := g.clock.Now()
	origin := g.cfg.Origin
	if origin.IsZero() {
		origin = start
	}
	rec := newRecorder(g.sc)
	// Requests outlive a cancel of ctx (they are drained), not the drain.
	reqCtx, cancelReqs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelReqs()
	var wg sync.WaitGroup
	sem := make(chan struct{}, g.cfg.MaxInFlight)
	g.logger.Info("load started", "scenario", g.sc.Name, "target", g.target, "speed", g.cfg.Speed)

	completed := g.schedule(ctx, origin, func(a arrival) {
		select {
		case sem <- struct{}{}:
		default:
			rec.dropped(a)
			g.m.requests.WithLabelValues(g.sc.Clients[a.client].ID, g.sc.Classes[a.class].ID, ResultDropped).Inc()
			return
		}
		wg.Add(1)
		g.m.inFlight.Inc()
		go func() {
			defer wg.Done()
			defer func() { <-sem; g.m.inFlight.Dec() }()
			g.send(reqCtx, a, rec)
		}()
	})

	drained := make(chan struct{})
	go func() { wg.Wait(); close(drained) }()
	c, stop := g.clock.Timer(g.drain)
	select {
	case <-drained:
		stop()
	case <-c:
		cancelReqs()
		<-drained
	}
	if g.own != nil {
		g.own.CloseIdleConnections()
	}
	s := rec.summary(g.sc)
	s.Speed, s.Target, s.Interrupted = g.cfg.Speed, g.target, !completed
	s.Seconds = g.clock.Now().Sub(start).Seconds()
	g.logger.Info("load done", "sent", s.Total.Sent, "answered", s.Total.Answered,
		"succeeded", s.Total.Succeeded, "transport_errors", s.Total.TransportErrors,
		"dropped", s.Total.Dropped, "interrupted", s.Interrupted)
	return s, nil
}

// schedule plays the clients' Poisson arrivals in scenario time, mapped to
// the wall clock as origin + t/Speed, calling fire for each; the timeline's
// client entries change rates, mixes and regions at their times (a rate
// change restarts the client's exponential clock, exact by
// memorylessness). When it falls behind, late arrivals are sent at once.
// It returns false if ctx was cancelled before the end.
func (g *Generator) schedule(ctx context.Context, origin time.Time, fire func(arrival)) bool {
	end := g.cfg.Duration
	st := g.sc.Initial()
	var tl []scenario.Change
	for _, ch := range g.sc.Timeline {
		if ch.Client != "" {
			tl = append(tl, ch)
		}
	}
	// Join a timeline already in progress (an origin in the past).
	t0 := max(time.Duration(float64(g.clock.Now().Sub(origin))*g.cfg.Speed), 0)
	k := 0
	for ; k < len(tl) && tl[k].At <= t0; k++ {
		_ = st.Apply(tl[k]) // validated by scenario.Parse
	}
	next := make([]time.Duration, len(st.Clients))
	for i := range next {
		next[i] = g.nextArrival(st.Clients[i], i, t0)
	}
	for {
		t, who, change := end, -1, false
		if k < len(tl) && tl[k].At < t {
			t, change = tl[k].At, true
		}
		for i, n := range next {
			if n < t {
				t, who, change = n, i, false
			}
		}
		if !g.sleepUntil(ctx, origin.Add(g.scale(t))) {
			return false
		}
		switch {
		case change:
			ch := tl[k]
			k++
			_ = st.Apply(ch)
			i := g.sc.ClientIndex(ch.Client)
			next[i] = g.nextArrival(st.Clients[i], i, t)
			g.logger.Info("timeline change applied", "change", ch.String())
		case who >= 0:
			c := st.Clients[who]
			fire(arrival{client: who, class: g.sc.PickClass(c.Mix, g.rng.Float64()), region: c.Region})
			next[who] = g.nextArrival(c, who, t)
		default:
			return true
		}
	}
}

// nextArrival draws the scenario time of client i's next arrival after t.
func (g *Generator) nextArrival(c scenario.Client, i int, t time.Duration) time.Duration {
	if !g.active[i] {
		return never
	}
	return nextArrival(g.rng, c, t)
}

// nextArrival draws the time of c's next Poisson arrival after t at c's
// rate, which for an on/off client changes at each switch: a gap that
// crosses the next switch is dropped and drawn again from the switch at the
// new rate, which is exact for a Poisson process (it is memoryless).
func nextArrival(rng *rand.Rand, c scenario.Client, t time.Duration) time.Duration {
	if !(c.Rate > 0) && !(c.Bursty() && c.OffRate > 0) {
		return never
	}
	for {
		sw := never
		if c.Bursty() {
			period := c.On + c.Off
			start := t - t%period
			if t%period < c.On {
				sw = start + c.On
			} else {
				sw = start + period
			}
		}
		if rate := c.RateAt(t); rate > 0 {
			gap := rng.ExpFloat64() / rate * float64(time.Second)
			if gap < float64(sw-t) {
				return t + time.Duration(gap)
			}
		}
		if sw == never {
			return never
		}
		t = sw
	}
}

// sleepUntil waits for wall time at; false if ctx ends first.
func (g *Generator) sleepUntil(ctx context.Context, at time.Time) bool {
	d := at.Sub(g.clock.Now())
	if d <= 0 {
		return ctx.Err() == nil
	}
	c, stop := g.clock.Timer(d)
	select {
	case <-c:
		return true
	case <-ctx.Done():
		stop()
		return false
	}
}

// send makes one request and records what came of it.
func (g *Generator) send(ctx context.Context, a arrival, rec *recorder) {
	cls := g.sc.Classes[a.class]
	client := g.sc.Clients[a.client].ID
	p := g.payloads[a.class]
	ctx, cancel := context.WithTimeout(ctx, g.scale(cls.Timeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.target+p.path, bytes.NewReader(p.body))
	if err != nil { // the target was validated; only a broken scenario path gets here
		rec.transport(a, false, false)
		g.m.requests.WithLabelValues(client, cls.ID, ResultError).Inc()
		return
	}
	req.Header.Set("Content-Type", p.contentType)
	if key := g.keys[a.client]; key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set(HeaderClientRegion, a.region)
	req.Header.Set(HeaderClass, cls.ID)
	start := g.clock.Now()
	resp, err := g.client.Do(req)
	if err != nil {
		timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded)
		cancelled := !timedOut && ctx.Err() != nil
		rec.transport(a, timedOut, cancelled)
		result := ResultError
		switch {
		case timedOut:
			result = ResultTimeout
		case cancelled:
			result = ResultCancelled
		}
		g.m.requests.WithLabelValues(client, cls.ID, result).Inc()
		return
	}
	_, bodyErr := io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	lat := g.clock.Now().Sub(start)
	ok := resp.StatusCode/100 == 2 && bodyErr == nil
	rec.answered(a, resp.StatusCode, ok, lat)
	result := ResultOther
	switch {
	case ok:
		result = Result2xx
	case resp.StatusCode/100 == 4:
		result = Result4xx
	case resp.StatusCode/100 == 5:
		result = Result5xx
	}
	g.m.requests.WithLabelValues(client, cls.ID, result).Inc()
	g.m.latency.WithLabelValues(cls.ID).Observe(lat.Seconds())
}

// scale maps a scenario duration to wall-clock time.
func (g *Generator) scale(d time.Duration) time.Duration {
	return time.Duration(float64(d) / g.cfg.Speed)
}
