package optimizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strconv"
)

// FrontierHandler serves GET /frontier: the latest Frontier as JSON
// ({"version", "lambda", "points": [{"lambda", "cost_per_request",
// "slo_attainment", "p95_ms"}], "computed_ms"}); version 0 and no points
// before the first round. Mount it behind the read role.
func (o *Optimizer) FrontierHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, o.Frontier())
	})
}

// PreviewHandler serves GET /frontier/preview?lambda=x: the Preview at x
// as JSON ({"lambda", "cost_per_request", "slo_attainment", "p95_ms",
// "current": {...}, "moves": [{"capability", "model", "client_region",
// "orchestrator", "from", "to"}]}). It changes nothing. A missing or bad
// λ answers 400, no round yet 503, both with {"error":{"message"}} as
// the admin server's errors. Mount it behind the read role.
func (o *Optimizer) PreviewHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := strconv.ParseFloat(r.URL.Query().Get("lambda"), 64)
		if err != nil || math.IsNaN(v) || !inUnit(v) {
			writeError(w, http.StatusBadRequest, "want ?lambda= a number in [0, 1]")
			return
		}
		pv, err := o.Preview(v)
		if errors.Is(err, ErrNoRound) {
			writeError(w, http.StatusServiceUnavailable, "no frontier yet: the optimizer has not published a policy")
			return
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, pv)
	})
}

// writeError answers code with the admin surface's JSON error shape.
func writeError(w http.ResponseWriter, code int, msg string) {
	var body struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	body.Error.Message = msg
	writeJSON(w, code, body)
}

// writeJSON answers code with v as JSON, as package admin does (this
// package does not import it); nothing it serves may be cached.
func writeJSON(w http.ResponseWriter, code int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		code = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":{"message":"encode response"}}` + "\n")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}
