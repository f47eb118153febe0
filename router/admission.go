package router

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/loopgate/loopgate/event"
)

// Admission enforces a policy's admission rates (event.ClassPolicy's
// AdmitPerS) with one token bucket per policy entry (golang.org/x/time/rate):
// the entry that governs a request's class and client region, resolved as
// shares are (PolicyIndex.Entry), so a region without an entry of its own
// shares the bucket of the region-less entry. A bucket holds burst ×
// rate tokens (at least one) and keeps its tokens across policies while
// its entry keeps a rate. The router and the simulator's closed loop both
// admit through it. Safe for concurrent use.
type Admission struct {
	burst   time.Duration
	mu      sync.Mutex
	buckets map[policyKey]*bucket
}

type bucket struct {
	lim    *rate.Limiter
	perS   float64
	reason string
}

// NewAdmission returns an admission without rates (everything admitted);
// a bucket holds burst worth of its rate.
func NewAdmission(burst time.Duration) *Admission {
	return &Admission{burst: burst, buckets: map[policyKey]*bucket{}}
}

// Apply takes the admission rates of p at now: entries with a rate get or
// keep a bucket; the others lose theirs.
func (a *Admission) Apply(p *event.Policy, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	next := make(map[policyKey]*bucket, len(a.buckets))
	for i := range p.Classes {
		c := &p.Classes[i]
		k := policyKey{c.Capability, c.Model, c.ClientRegion}
		if !(c.AdmitPerS > 0) || len(c.Shares) == 0 {
			continue
		}
		if _, dup := next[k]; dup {
			continue // the first entry governs, as in PolicyIndex
		}
		burst := max(1, int(math.Ceil(c.AdmitPerS*a.burst.Seconds())))
		b := a.buckets[k]
		if b == nil {
			b = &bucket{lim: rate.NewLimiter(rate.Limit(c.AdmitPerS), burst)}
			b.lim.AllowN(now, 0) // start the bucket's clock at now, full
		} else if b.perS != c.AdmitPerS {
			b.lim.SetLimitAt(now, rate.Limit(c.AdmitPerS))
			b.lim.SetBurstAt(now, burst)
		}
		b.perS, b.reason = c.AdmitPerS, c.AdmitReason
		next[k] = b
	}
	a.buckets = next
}

// Allow takes a token for a request governed by entry (nil: no policy
// entry, admitted) at now. When there is none it returns false, the wait
// until the next token (a Retry-After) and a message saying why.
func (a *Admission) Allow(entry *event.ClassPolicy, now time.Time) (ok bool, retryAfter time.Duration, why string) {
	if entry == nil || !(entry.AdmitPerS > 0) {
		return true, 0, ""
	}
	a.mu.Lock()
	b := a.buckets[policyKey{entry.Capability, entry.Model, entry.ClientRegion}]
	a.mu.Unlock()
	if b == nil || b.lim.AllowN(now, 1) {
		return true, 0, ""
	}
	wait := time.Duration(float64(time.Second) / b.perS)
	why = fmt.Sprintf("admission: %s limited to %.3g requests/s", describeEntry(entry), b.perS)
	if b.reason != "" {
		why += " (" + b.reason + ")"
	}
	return false, wait, why
}

// Rates lists the admission rates in force, for the admin views.
func (a *Admission) Rates() []AdmissionRate {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]AdmissionRate, 0, len(a.buckets))
	for k, b := range a.buckets {
		out = append(out, AdmissionRate{Capability: k.capability, Model: k.model, ClientRegion: k.region, AdmitPerS: b.perS, Reason: b.reason})
	}
	sortRates(out)
	return out
}

// AdmissionRate is one admission rate in force.
type AdmissionRate struct {
	Capability   string  `json:"capability"`
	Model        string  `json:"model,omitempty"`
	ClientRegion string  `json:"client_region,omitempty"`
	AdmitPerS    float64 `json:"admit_per_s"`
	Reason       string  `json:"reason,omitempty"`
}

func sortRates(r []AdmissionRate) {
	slices.SortFunc(r, func(a, b AdmissionRate) int {
		return cmp.Or(cmp.Compare(a.Capability, b.Capability), cmp.Compare(a.Model, b.Model), cmp.Compare(a.ClientRegion, b.ClientRegion))
	})
}

func describeEntry(c *event.ClassPolicy) string {
	s := c.Capability
	if c.Model != "" {
		s += " model " + c.Model
	}
	if c.ClientRegion != "" {
		s += " from " + c.ClientRegion
	}
	return s
}
