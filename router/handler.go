package router

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/loopgate/loopgate/event"
)

// Header names the router reads or sets.
const (
	// HeaderClientRegion carries the client's region when
	// Config.TrustClientRegionHeader is set.
	HeaderClientRegion = "X-Loopgate-Client-Region"
	// HeaderRequestID carries the outcome id, to the orchestrator and back to the client.
	HeaderRequestID = "X-Loopgate-Request-Id"
)

// Reasons a request is refused before any attempt (the rejected metric's label).
const (
	reasonNotFound    = "not_found"
	reasonMissingKey  = "missing_key"
	reasonWrongKey    = "wrong_key"
	reasonTooLarge    = "body_too_large"
	reasonReadError   = "read_error"
	reasonInternal    = "internal"
	capabilityUnknown = "unknown"
)

func (r *Router) newEngine() *gin.Engine {
	e := gin.New()
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	e.HandleMethodNotAllowed = false
	e.Use(r.recoverPanics)
	for _, name := range event.Capabilities() {
		e.POST("/"+name, r.serve(name))
	}
	e.NoRoute(func(c *gin.Context) {
		r.refuse(c.Writer, capabilityUnknown, http.StatusNotFound, reasonNotFound, "not found: "+c.Request.Method+" "+c.Request.URL.Path)
	})
	return e
}

// recoverPanics answers 500 instead of dropping the connection, and counts it.
func (r *Router) recoverPanics(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			r.log.Error("panic serving request", logKeyPath, c.Request.URL.Path, logKeyPanic, fmt.Sprint(v))
			r.m.rejected.WithLabelValues(reasonInternal).Inc()
			if !c.Writer.Written() {
				writeError(c.Writer, http.StatusInternalServerError, "internal error")
			}
		}
	}()
	c.Next()
}

// writeError answers code with the one error shape (event.APIError).
func writeError(w http.ResponseWriter, code int, msg string) {
	out, _ := json.Marshal(event.NewAPIError(msg))
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(out)+1))
	w.WriteHeader(code)
	_, _ = w.Write(append(out, '\n'))
}

// refuse answers a request the router will not serve and counts it. No
// outcome event is emitted for these (see the package documentation).
func (r *Router) refuse(w http.ResponseWriter, capability string, code int, reason, msg string) {
	r.m.rejected.WithLabelValues(reason).Inc()
	r.m.requests.WithLabelValues(capability, strconv.Itoa(code)).Inc()
	writeError(w, code, msg)
}

// authenticate finds the API key of a request. The presented key is hashed
// and compared with every configured hash in constant time, without early
// exit, so timing tells nothing about which or how many bytes matched.
func authenticate(s *snapshot, req *http.Request) (*apiKey, int, string, string) {
	h := req.Header.Get("Authorization")
	if h == "" {
		return nil, http.StatusUnauthorized, reasonMissingKey, "missing API key: send Authorization: Bearer <key>"
	}
	scheme, key, ok := strings.Cut(h, " ")
	key = strings.TrimSpace(key)
	if !ok || !strings.EqualFold(scheme, "Bearer") || key == "" {
		return nil, http.StatusUnauthorized, reasonMissingKey, "malformed Authorization header: want Bearer <key>"
	}
	d := sha256.Sum256([]byte(key))
	var found *apiKey
	for i := range s.keys {
		if subtle.ConstantTimeCompare(d[:], s.keys[i].hash[:]) == 1 {
			found = &s.keys[i]
		}
	}
	if found == nil {
		return nil, http.StatusForbidden, reasonWrongKey, "invalid API key"
	}
	return found, 0, "", ""
}

// readBody buffers the body up to limit, so it can be sent again on a retry.
func readBody(w http.ResponseWriter, req *http.Request, limit int64) ([]byte, int, string, string) {
	tooLarge := fmt.Sprintf("request body larger than %d bytes", limit)
	if req.ContentLength > limit {
		return nil, http.StatusRequestEntityTooLarge, reasonTooLarge, tooLarge
	}
	var buf bytes.Buffer
	if req.ContentLength > 0 {
		buf.Grow(int(req.ContentLength))
	}
	_, err := buf.ReadFrom(http.MaxBytesReader(w, req.Body, limit))
	var tl *http.MaxBytesError
	switch {
	case errors.As(err, &tl):
		return nil, http.StatusRequestEntityTooLarge, reasonTooLarge, tooLarge
	case err != nil:
		return nil, http.StatusBadRequest, reasonReadError, "reading request body: " + err.Error()
	}
	return buf.Bytes(), 0, "", ""
}

// validRegion accepts a short region code from a header.
func validRegion(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, c := range s {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// serve handles one capability's endpoint.
func (r *Router) serve(name string) gin.HandlerFunc {
	return func(c *gin.Context) {
		w, req := c.Writer, c.Request
		s := r.snap.Load()
		ci := s.caps[name]
		start := r.now()
		r.m.inFlight.Inc()
		defer r.m.inFlight.Dec()

		key, code, reason, msg := authenticate(s, req)
		if key == nil {
			r.refuse(w, name, code, reason, msg)
			return
		}
		body, code, reason, msg := readBody(w, req, s.cfg.MaxBodyBytes)
		if code != 0 {
			r.refuse(w, name, code, reason, msg)
			return
		}
		info, err := parseRequest(ci.spec, ci.cfg, req.Header.Get("Content-Type"), body)
		if err != nil {
			var br *badRequest
			if !errors.As(err, &br) {
				br = &badRequest{reason: "invalid_body", msg: err.Error()}
			}
			r.refuse(w, name, http.StatusBadRequest, br.reason, br.msg)
			return
		}
		region := key.cfg.ClientRegion
		if hv := req.Header.Get(HeaderClientRegion); s.cfg.TrustClientRegionHeader && validRegion(hv) {
			region = hv
		}
		id, err := event.NewID(start.UnixMilli(), rngReader{r})
		if err != nil { // cannot happen with rngReader; answer rather than crash
			r.refuse(w, name, http.StatusInternalServerError, reasonInternal, "internal error")
			return
		}
		x := &exchange{
			s: s, ci: ci, key: key, region: region, body: body, info: info, id: id, start: start,
			req: req, table: s.classes[classKey{name, info.model}],
		}
		r.budget.request(start)
		r.journalBegin(x)
		ctx, cancel := context.WithTimeout(req.Context(), ci.cfg.RequestTimeout)
		r.proxy(ctx, x, w)
		cancel()
		if x.wrote {
			w.Flush()
		}
		end := r.now()
		r.m.requests.WithLabelValues(name, strconv.Itoa(x.httpStatus())).Inc()
		r.m.latency.WithLabelValues(name).Observe(end.Sub(start).Seconds())
		// The response is written; Publish does not block.
		if r.publish(x.outcome(end)) {
			r.journalDone(x)
		}
	}
}

// publish encodes and hands over one outcome, and reports whether the
// publisher took it.
func (r *Router) publish(o event.Outcome) bool {
	b, err := event.EncodeOutcome(o)
	if err == nil {
		err = r.pub.Publish([]byte(o.ID), b)
	}
	if err != nil {
		r.m.publishErrors.Inc()
		r.log.Warn("outcome not published", logKeyID, o.ID, logKeyErr, err)
		return false
	}
	r.m.published.Inc()
	return true
}

// drain discards what remains of a body we do not relay, bounded so a
// huge error page cannot hold the connection.
func drain(rc io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, rc, 64<<10)
	_ = rc.Close()
}
