package event

// SchemaVersion is the schema version this package writes.
const SchemaVersion = 1

// MinSchemaVersion is the oldest schema version this package still reads.
const MinSchemaVersion = 1

// MaxEncodedSize is the largest encoded event accepted by the decoders. An
// outcome is a few hundred bytes per attempt; anything near this size is a
// bug or an attack and goes to the dead-letter topic instead.
const MaxEncodedSize = 256 << 10

// MaxPolicyEncodedSize is the largest encoded policy accepted by
// EncodePolicy and DecodePolicy. A policy names every serving orchestrator
// in every (class, client region), so it grows with the fleet: at 5,000
// orchestrators × 100 classes × 8 regions it is about 1.3 MB even without
// its exploration-floor shares. It is a bound of its own so that the
// outcome decoders keep MaxEncodedSize; the policy topic is created to
// accept it (eventlog.PolicyMaxMessageBytes) and the router decodes with it.
const MaxPolicyEncodedSize = 4 << 20

// MaxAttempts bounds the attempts one outcome may carry.
const MaxAttempts = 64

// Status is how a request ended, as the client saw it.
type Status string

// Request statuses.
const (
	StatusOK       Status = "ok"       // a successful response was returned
	StatusError    Status = "error"    // every attempt failed; an error was returned
	StatusTimeout  Status = "timeout"  // the overall deadline passed
	StatusRejected Status = "rejected" // refused before any attempt (no orchestrator, admission)
	StatusCanceled Status = "canceled" // the client went away
	// StatusShed: refused at the edge to protect the rest under overload —
	// by the admission rate, a full edge queue, or a wait that could not
	// end in time — answered at once with 503 and Retry-After. It may
	// carry no attempt.
	StatusShed Status = "shed"
	// StatusInterrupted: the router stopped (crashed) while the request was
	// in flight; the outcome was rebuilt from its journal with the attempts
	// known at that point.
	StatusInterrupted Status = "interrupted"
)

// Error classes of a shed outcome: why the edge refused it.
const (
	ShedAdmission = "admission"      // over its class's admission rate
	ShedQueueFull = "queue_full"     // the edge queue is full of requests that rank above it
	ShedDeadline  = "queue_deadline" // it cannot start in time to meet its SLO (or its deadline)
)

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	switch s {
	case StatusOK, StatusError, StatusTimeout, StatusRejected, StatusCanceled, StatusInterrupted, StatusShed:
		return true
	}
	return false
}

// AttemptResult is how one attempt on one orchestrator ended.
type AttemptResult string

// Attempt results.
const (
	AttemptOK       AttemptResult = "ok"       // 2xx from the orchestrator
	AttemptError    AttemptResult = "error"    // 5xx or a broken response
	AttemptBusy     AttemptResult = "busy"     // 503: queue full, nothing started
	AttemptRefused  AttemptResult = "refused"  // connection refused or reset before a byte
	AttemptTimeout  AttemptResult = "timeout"  // the per-attempt timeout passed
	AttemptClient   AttemptResult = "client"   // 4xx: the request itself was bad
	AttemptCanceled AttemptResult = "canceled" // abandoned: a hedge lost, or the client left
)

// Valid reports whether r is a known attempt result.
func (r AttemptResult) Valid() bool {
	switch r {
	case AttemptOK, AttemptError, AttemptBusy, AttemptRefused, AttemptTimeout, AttemptClient, AttemptCanceled:
		return true
	}
	return false
}

// UnitKind names what Units counts.
type UnitKind string

// Unit kinds, as go-livepeer prices them.
const (
	UnitPixels     UnitKind = "pixels"     // height × width × images
	UnitTokens     UnitKind = "tokens"     // max_tokens for llm
	UnitMillis     UnitKind = "ms"         // milliseconds of audio or video
	UnitCharacters UnitKind = "characters" // text-to-speech input
	UnitRequests   UnitKind = "requests"   // flat price per request
)

// Valid reports whether k is a known unit kind.
func (k UnitKind) Valid() bool {
	switch k {
	case UnitPixels, UnitTokens, UnitMillis, UnitCharacters, UnitRequests:
		return true
	}
	return false
}

// Outcome is one client request, emitted once when it ends, with every
// attempt the router made for it. It is the event the whole loop learns from.
type Outcome struct {
	ID     string `json:"id"`     // time-ordered unique id (see NewID)
	Schema int    `json:"schema"` // SchemaVersion at the time of writing

	GatewayID     string `json:"gateway_id"`
	GatewayRegion string `json:"gateway_region,omitempty"`
	ClientRegion  string `json:"client_region,omitempty"`
	APIKeyID      string `json:"api_key_id,omitempty"` // an identifier, never the key
	Customer      string `json:"customer,omitempty"`

	Capability string   `json:"capability"` // pipeline, e.g. "text-to-image"
	Model      string   `json:"model,omitempty"`
	Units      int64    `json:"units"`
	UnitKind   UnitKind `json:"unit_kind"`

	StartMs    int64  `json:"start_ms"`
	EndMs      int64  `json:"end_ms"`
	Status     Status `json:"status"`
	ErrorClass string `json:"error_class,omitempty"`
	HTTPStatus int    `json:"http_status"`
	LatencyMs  int64  `json:"latency_ms"` // end − start as the client saw it
	TTFBMs     int64  `json:"ttfb_ms"`    // time to first byte of the response; 0 if none
	BytesIn    int64  `json:"bytes_in"`
	BytesOut   int64  `json:"bytes_out"`

	PricePerUnit float64 `json:"price_per_unit"` // USD per unit of the attempt that answered
	Cost         float64 `json:"cost"`           // USD paid to orchestrators, all attempts
	Charge       float64 `json:"charge"`         // USD billed to the customer
	// Margin is Charge − Cost, USD (negative when a request cost more than
	// it was billed, e.g. a failure that was paid for). Absent in events
	// written before it existed; readers then take Charge − Cost.
	Margin float64 `json:"margin,omitempty"`

	PolicyVersion uint64    `json:"policy_version"` // 0: routed without a published policy
	Attempts      []Attempt `json:"attempts"`
}

// Attempt is one try of a request on one orchestrator.
type Attempt struct {
	Orchestrator string        `json:"orchestrator"`
	OrchRegion   string        `json:"orch_region,omitempty"`
	StartMs      int64         `json:"start_ms"`
	LatencyMs    int64         `json:"latency_ms"`
	Result       AttemptResult `json:"result"`
	ErrorClass   string        `json:"error_class,omitempty"`
	HTTPStatus   int           `json:"http_status"`
	Retry        bool          `json:"retry,omitempty"`  // a retry after an earlier failure
	Hedged       bool          `json:"hedged,omitempty"` // a hedge racing an earlier attempt
	Billed       bool          `json:"billed,omitempty"` // started service, so it was paid for
	Cost         float64       `json:"cost"`             // USD paid for this attempt
	Propensity   float64       `json:"propensity"`       // probability this orchestrator was chosen
	Score        Score         `json:"score"`
}

// Score is what the selector saw when it made a choice; it explains the
// decision and lets a new policy be evaluated offline on logged traffic.
type Score struct {
	Share     float64 `json:"share"`      // policy traffic share for the class
	LatencyMs float64 `json:"latency_ms"` // local latency estimate (peak EWMA)
	InFlight  int     `json:"in_flight"`  // requests in flight from this router
	Penalty   float64 `json:"penalty"`    // multiplier from recent failures, 1 = none
	Weight    float64 `json:"weight"`     // final weight the draw used
}

// Class is the demand class key: what is asked for.
func (o *Outcome) Class() string {
	if o.Model == "" {
		return o.Capability
	}
	return o.Capability + "/" + o.Model
}
