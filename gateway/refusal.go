package gateway

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/loopgate/loopgate/event"
)

// Refusal codes (APIErrorDetail.Code and the refused metric's limit label).
const (
	CodeRateLimited        = "rate_limited"        // 429: requests per second over the bucket
	CodeConcurrencyLimited = "concurrency_limited" // 429: too many requests in flight
	CodeUnitsLimited       = "units_limited"       // 429: units per minute
	CodeBudgetExceeded     = "budget_exceeded"     // 402: the request would take spend over a budget
	CodeBudgetPending      = "budget_pending"      // 429: near a budget, this router's share of the rest is in flight
	CodeIPNotAllowed       = "ip_not_allowed"      // 403: the client's address is not in an allowlist
)

// Refusal is why a request was not admitted. The router answers it with
// HTTPStatus, a Retry-After of RetryAfterSeconds (when positive) and
// APIError as the JSON body; it names the limit, its value (per router,
// as enforced, and in total) and when it resets.
type Refusal struct {
	Status int
	Code   string
	// Scope is "key", "customer" or "global"; ScopeID the key or customer id.
	Scope, ScopeID string
	// Limit names what was hit: requests_per_second, concurrency,
	// units_per_minute.<kind>, budget.<period>.<of>, allow_cidrs.
	Limit string
	// Value is the configured limit (for all routers together); Local is
	// this router's share of it (Value / Routers).
	Value, Local float64
	// ResetAt is when the limit lets the request through again at the
	// earliest (zero: unknown, e.g. concurrency or an address).
	ResetAt time.Time
	// RetryAfter is ResetAt − now, rounded up to whole seconds in the header.
	RetryAfter time.Duration
	msg        string
}

func (r *Refusal) Error() string { return r.msg }

// HTTPStatus is the status to answer with.
func (r *Refusal) HTTPStatus() int { return r.Status }

// RetryAfterSeconds is the Retry-After header value; 0 = send none.
func (r *Refusal) RetryAfterSeconds() int {
	if r.RetryAfter <= 0 {
		return 0
	}
	return int(math.Ceil(r.RetryAfter.Seconds()))
}

// APIError is the JSON body of the refusal.
func (r *Refusal) APIError() event.APIError {
	e := event.NewAPIError(r.msg)
	e.Error.Reason = r.Code
	lim := &event.APILimit{Scope: r.Scope, ID: r.ScopeID, Name: r.Limit, Value: r.Value, Local: r.Local}
	if !r.ResetAt.IsZero() {
		lim.ResetMs = r.ResetAt.UnixMilli()
	}
	e.Error.Limit = lim
	return e
}

func fmtNum(v float64) string { return strconv.FormatFloat(v, 'g', 6, 64) }

func (r *Refusal) describe(what string) *Refusal {
	who := r.Scope
	if r.ScopeID != "" {
		who += " " + strconv.Quote(r.ScopeID)
	}
	r.msg = fmt.Sprintf("%s of %s: %s", what, who, r.Limit)
	if r.Value != 0 {
		r.msg += " " + fmtNum(r.Value)
		if r.Local != r.Value {
			r.msg += " (" + fmtNum(r.Local) + " on this router)"
		}
	}
	if !r.ResetAt.IsZero() {
		r.msg += "; resets at " + r.ResetAt.UTC().Format(time.RFC3339Nano)
	}
	return r
}
