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
}

// NewAPIError is the error body with message msg.
func NewAPIError(msg string) APIError { return APIError{Error: APIErrorDetail{Message: msg}} }

// NewAPIErrorReason is the error body with message msg and reason.
func NewAPIErrorReason(reason, msg string) APIError {
	return APIError{Error: APIErrorDetail{Message: msg, Reason: reason}}
}
