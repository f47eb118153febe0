package event

// APIError is the JSON body of every error loopgate answers over HTTP —
// the router's Livepeer AI API, the admin port, the simulated
// orchestrators — in go-livepeer's shape, {"error": {"message": "..."}},
// with an optional machine-readable reason beside the message:
//
//	{"error": {"message": "no orchestrator serves text-to-image model \"x\"", "reason": "unknown_model"}}
//
// Clients branch on reason (a stable snake_case word, the same as the
// router's loopgate_router_rejected_total label) and show message.
type APIError struct {
	Error APIErrorDetail `json:"error"`
}

// APIErrorDetail is what an APIError says.
type APIErrorDetail struct {
	Message string `json:"message"`
	// Reason is a stable snake_case word for programs (e.g. unknown_model,
	// body_too_large, method_not_allowed); empty when there is none.
	Reason string `json:"reason,omitempty"`
	// Limit is the limit a refusal hit (429, 402). Optional.
	Limit *APILimit `json:"limit,omitempty"`
}

// APILimit names the limit a request was refused by: whose it is, what,
// its value and when it resets.
type APILimit struct {
	Scope   string  `json:"scope"`              // key, customer or global
	ID      string  `json:"id,omitempty"`       // the key's or customer's id
	Name    string  `json:"name"`               // e.g. requests_per_second, budget.day.charge
	Value   float64 `json:"value,omitempty"`    // the configured limit, all routers together
	Local   float64 `json:"local,omitempty"`    // this router's share of it
	ResetMs int64   `json:"reset_ms,omitempty"` // Unix ms when it lets the request through at the earliest
}

// NewAPIError is the error body with message msg.
func NewAPIError(msg string) APIError { return APIError{Error: APIErrorDetail{Message: msg}} }

// NewAPIErrorReason is the error body with message msg and reason.
func NewAPIErrorReason(reason, msg string) APIError {
	return APIError{Error: APIErrorDetail{Message: msg, Reason: reason}}
}
