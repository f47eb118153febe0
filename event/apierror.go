package event

// APIError is the JSON body of every error loopgate answers over HTTP —
// the router's Livepeer AI API, the admin port, the simulated
// orchestrators — in go-livepeer's shape: {"error": {"message": "..."}}.
type APIError struct {
	Error APIErrorDetail `json:"error"`
}

// APIErrorDetail is what an APIError says.
type APIErrorDetail struct {
	Message string `json:"message"`
}

// NewAPIError is the error body with message msg.
func NewAPIError(msg string) APIError { return APIError{Error: APIErrorDetail{Message: msg}} }
