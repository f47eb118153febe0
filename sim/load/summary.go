package load

import (
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/loopgate/loopgate/sim/scenario"
)

// Summary is what a Run sent and what came back. For every Counts:
// Sent = Answered + TransportErrors, Answered = Succeeded + Failed, and
// TimedOut + Cancelled ≤ TransportErrors.
type Summary struct {
	Scenario    string  `json:"scenario"`
	Speed       float64 `json:"speed"`
	Target      string  `json:"target"`
	Seconds     float64 `json:"seconds"`     // wall-clock duration of the Run
	Interrupted bool    `json:"interrupted"` // ctx was cancelled before the scenario's end
	// Total over every client and class.
	Total Counts `json:"total"`
	// ByStatus counts answered requests by HTTP status code.
	ByStatus map[int]int64     `json:"by_status"`
	ByClass  map[string]Counts `json:"by_class"`
	ByClient map[string]Counts `json:"by_client"`
	// LatencyMs: wall-clock milliseconds from sending to the end of the
	// body, successful requests only. Scenario milliseconds are these × Speed.
	LatencyMs Latency `json:"latency_ms"`
}

// Counts of arrivals and what became of them.
type Counts struct {
	Dropped         int64 `json:"dropped"`          // not sent: MaxInFlight requests were outstanding
	Sent            int64 `json:"sent"`             // requests sent
	Answered        int64 `json:"answered"`         // an HTTP status came back
	Succeeded       int64 `json:"succeeded"`        // 2xx, body read whole
	Failed          int64 `json:"failed"`           // answered otherwise
	TransportErrors int64 `json:"transport_errors"` // no status: refused, reset, timed out, cancelled
	TimedOut        int64 `json:"timed_out"`        // of which: the class's timeout_ms/Speed passed
	Cancelled       int64 `json:"cancelled"`        // of which: still in flight when the drain ended
}

// Latency percentiles, nearest rank, in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

// Answered is the number of requests that got an HTTP status back. Behind
// a router each of them is one recorded request (one row of the requests
// table). A request that timed out or was cancelled on the client usually
// reached the router too and is recorded when the router ends it, so the
// router's count lies in [Answered, Total.Sent]; with no timeouts and no
// refused connections it is exactly Answered.
func (s Summary) Answered() int64 { return s.Total.Answered }

// WriteText prints the summary for people.
func (s Summary) WriteText(w io.Writer) error {
	var b strings.Builder
	t := s.Total
	fmt.Fprintf(&b, "scenario %s at speed %g against %s: %.1fs", s.Scenario, s.Speed, s.Target, s.Seconds)
	if s.Interrupted {
		b.WriteString(" (interrupted)")
	}
	fmt.Fprintf(&b, "\nsent %d, answered %d (succeeded %d, failed %d), transport errors %d (timed out %d, cancelled %d), dropped %d\n",
		t.Sent, t.Answered, t.Succeeded, t.Failed, t.TransportErrors, t.TimedOut, t.Cancelled, t.Dropped)
	codes := make([]int, 0, len(s.ByStatus))
	for c := range s.ByStatus {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	b.WriteString("status:")
	for _, c := range codes {
		fmt.Fprintf(&b, " %d×%d", c, s.ByStatus[c])
	}
	l := s.LatencyMs
	fmt.Fprintf(&b, "\nlatency ms (wall): p50 %.1f p95 %.1f p99 %.1f p999 %.1f max %.1f\n", l.P50, l.P95, l.P99, l.P999, l.Max)
	for _, id := range slices.Sorted(maps.Keys(s.ByClass)) {
		c := s.ByClass[id]
		fmt.Fprintf(&b, "class %s: sent %d succeeded %d failed %d transport errors %d dropped %d\n",
			id, c.Sent, c.Succeeded, c.Failed, c.TransportErrors, c.Dropped)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// recorder gathers results from the request goroutines.
type recorder struct {
	mu       sync.Mutex
	byStatus map[int]int64
	class    []Counts // by scenario class index
	client   []Counts // by scenario client index
	latency  []time.Duration
}

func newRecorder(sc *scenario.Scenario) *recorder {
	return &recorder{
		byStatus: map[int]int64{},
		class:    make([]Counts, len(sc.Classes)),
		client:   make([]Counts, len(sc.Clients)),
	}
}

// add applies f to the client's and the class's counts.
func (r *recorder) add(a arrival, f func(*Counts)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.class[a.class])
	f(&r.client[a.client])
}

func (r *recorder) dropped(a arrival) { r.add(a, func(c *Counts) { c.Dropped++ }) }

func (r *recorder) transport(a arrival, timedOut, cancelled bool) {
	r.add(a, func(c *Counts) {
		c.Sent++
		c.TransportErrors++
		if timedOut {
			c.TimedOut++
		}
		if cancelled {
			c.Cancelled++
		}
	})
}

func (r *recorder) answered(a arrival, status int, ok bool, lat time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byStatus[status]++
	for _, c := range []*Counts{&r.class[a.class], &r.client[a.client]} {
		c.Sent++
		c.Answered++
		if ok {
			c.Succeeded++
		} else {
			c.Failed++
		}
	}
	if ok {
		r.latency = append(r.latency, lat)
	}
}

// summary builds the Summary; call after every request has ended.
func (r *recorder) summary(sc *scenario.Scenario) Summary {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Summary{
		Scenario: sc.Name,
		ByStatus: make(map[int]int64, len(r.byStatus)),
		ByClass:  map[string]Counts{},
		ByClient: map[string]Counts{},
	}
	for k, v := range r.byStatus {
		s.ByStatus[k] = v
	}
	for i, c := range r.class {
		if c != (Counts{}) {
			s.ByClass[sc.Classes[i].ID] = c
		}
		s.Total = s.Total.plus(c)
	}
	for i, c := range r.client {
		if c != (Counts{}) {
			s.ByClient[sc.Clients[i].ID] = c
		}
	}
	s.LatencyMs = percentiles(r.latency)
	return s
}

func (c Counts) plus(d Counts) Counts {
	return Counts{
		Dropped: c.Dropped + d.Dropped, Sent: c.Sent + d.Sent, Answered: c.Answered + d.Answered,
		Succeeded: c.Succeeded + d.Succeeded, Failed: c.Failed + d.Failed,
		TransportErrors: c.TransportErrors + d.TransportErrors, TimedOut: c.TimedOut + d.TimedOut,
		Cancelled: c.Cancelled + d.Cancelled,
	}
}

func percentiles(lat []time.Duration) Latency {
	if len(lat) == 0 {
		return Latency{}
	}
	s := append([]time.Duration(nil), lat...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	rank := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(s)))) - 1
		return ms(s[min(max(i, 0), len(s)-1)])
	}
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return Latency{
		Count: int64(len(s)), Mean: ms(sum) / float64(len(s)),
		P50: rank(0.5), P95: rank(0.95), P99: rank(0.99), P999: rank(0.999), Max: ms(s[len(s)-1]),
	}
}
