package event

// Policy is a versioned routing policy published by the optimizer. The
// router swaps to a newer version atomically; every outcome names the version
// it was routed under. Versions only grow.
type Policy struct {
	Schema    int           `json:"schema"`
	Version   uint64        `json:"version"`
	CreatedMs int64         `json:"created_ms"`
	Lambda    float64       `json:"lambda"`   // operator knob: 0 = cheapest, 1 = fastest
	WindowS   int           `json:"window_s"` // statistics window the policy was computed from
	Producer  string        `json:"producer"` // optimizer instance that computed it
	Classes   []ClassPolicy `json:"classes"`
	Ejections []Ejection    `json:"ejections,omitempty"`
	// Limits cap the attempts in flight per orchestrator, with the reason
	// (the optimizer derives them from capacity and latency by Little's
	// law; see package optimizer). The router never exceeds one and adapts
	// below it between policies (router.Limiter).
	Limits []Limit `json:"limits,omitempty"`
	// Frontier is what the optimizer predicted, on the estimates this
	// policy was computed from, for a sweep of λ (ascending, the policy's
	// own λ among them): the cost/latency trade-off the operator could
	// have chosen instead. Informational: routers ignore it. Optional; a
	// producer short of MaxPolicyEncodedSize may drop it.
	Frontier []FrontierPoint `json:"frontier,omitempty"`
}

// MaxFrontierPoints bounds a policy's frontier.
const MaxFrontierPoints = 64

// FrontierPoint is the optimizer's prediction for one value of the knob:
// what a policy computed at Lambda from the same estimates would cost and
// achieve. See package optimizer for the prediction model.
type FrontierPoint struct {
	Lambda         float64 `json:"lambda"`           // in [0, 1]
	CostPerRequest float64 `json:"cost_per_request"` // USD billed per client request
	SLOAttainment  float64 `json:"slo_attainment"`   // fraction of requests succeeding within their SLO, in [0, 1]
	P95Ms          float64 `json:"p95_ms"`           // 95th percentile latency of successful requests, ms
}

// ClassPolicy gives the traffic shares for one class from one client region.
// An empty ClientRegion applies to every region without its own entry.
type ClassPolicy struct {
	Capability   string `json:"capability"`
	Model        string `json:"model,omitempty"`
	ClientRegion string `json:"client_region,omitempty"`
	// AdmitPerS is an admission rate for the class from the region, in
	// requests per second; 0 = unlimited. The optimizer sets it under
	// overload, lowering low-value classes first; the router enforces it
	// with a token bucket and answers what exceeds it 503 (shed).
	AdmitPerS float64 `json:"admit_per_s,omitempty"`
	// AdmitReason says why AdmitPerS is set; empty when it is not.
	AdmitReason string `json:"admit_reason,omitempty"`
	// Value is what one SLO miss of the class costs, USD, as the
	// optimizer resolved it: the router's edge queue serves higher values
	// first. 0 = unknown (every class equal).
	Value float64 `json:"value,omitempty"`
	// SLOMs is the class's SLO, ms: a request waiting at the edge that
	// cannot start in time to meet it is shed at once. 0 = unknown (the
	// request's timeout bounds the wait).
	SLOMs  int64   `json:"slo_ms,omitempty"`
	Shares []Share `json:"shares"`
}

// Share is one orchestrator's share of a class's traffic, with the reason.
type Share struct {
	Orchestrator string  `json:"orchestrator"`
	Share        float64 `json:"share"`
	Reason       string  `json:"reason,omitempty"`
}

// Ejection removes an orchestrator from every class until UntilMs.
type Ejection struct {
	Orchestrator string `json:"orchestrator"`
	Reason       string `json:"reason"`
	UntilMs      int64  `json:"until_ms"`
}

// Limit caps the requests in flight to one orchestrator, with the reason.
type Limit struct {
	Orchestrator string `json:"orchestrator"`
	MaxInFlight  int    `json:"max_in_flight"`
	Reason       string `json:"reason,omitempty"`
}
