package router

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
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
	reasonNotFound         = "not_found"
	reasonMethodNotAllowed = "method_not_allowed"
	reasonMissingKey       = "missing_key"
	reasonWrongKey         = "wrong_key"
	reasonTooLarge         = "body_too_large"
	reasonReadError        = "read_error"
	reasonBodyTimeout      = "body_timeout"
	reasonMediaType        = "unsupported_media_type"
	reasonUnknownModel     = "unknown_model"
	reasonInternal         = "internal"
	capabilityUnknown      = "unknown"
)

// VersionPrefix is the versioned API surface: every endpoint of the
// Livepeer AI API is also served under it (/v1/text-to-image is
// /text-to-image). The unprefixed paths stay, as go-livepeer serves them.
const VersionPrefix = "/v1"

// OpenAPIPath is where WithOpenAPI's document is served, on the public
// port (and under VersionPrefix).
const OpenAPIPath = "/openapi.json"

// WithOpenAPI serves doc, an OpenAPI document, at GET /openapi.json and
// GET /v1/openapi.json without a key (package openapi has loopgate's).
func WithOpenAPI(doc []byte) Option { return func(r *Router) { r.openapi = doc } }

func (r *Router) newEngine() *gin.Engine {
	e := gin.New()
	e.RedirectTrailingSlash = false
	e.RedirectFixedPath = false
	// A known path asked with another method is 405 with Allow (gin sets
	// it), not 404.
	e.HandleMethodNotAllowed = true
	e.Use(r.recoverPanics)
	for _, name := range event.Capabilities() {
		h := r.serve(name)
		e.POST("/"+name, h)
		e.POST(VersionPrefix+"/"+name, h)
	}
	if r.openapi != nil {
		doc := func(c *gin.Context) { c.Data(http.StatusOK, "application/json", r.openapi) }
		e.GET(OpenAPIPath, doc)
		e.GET(VersionPrefix+OpenAPIPath, doc)
	}
	e.NoRoute(func(c *gin.Context) {
		closeIfUnread(c.Writer, c.Request)
		r.refuse(c.Writer, capabilityUnknown, http.StatusNotFound, reasonNotFound, "not found: "+c.Request.Method+" "+c.Request.URL.Path)
	})
	e.NoMethod(func(c *gin.Context) {
		closeIfUnread(c.Writer, c.Request)
		r.refuse(c.Writer, capabilityUnknown, http.StatusMethodNotAllowed, reasonMethodNotAllowed,
			"method "+c.Request.Method+" not allowed on "+c.Request.URL.Path+"; allowed: "+c.Writer.Header().Get("Allow"))
	})
	return e
}

// Route is a method and path the client-facing handler serves.
type Route struct{ Method, Path string }

// Routes lists what Handler serves, for the test that checks them
// against the OpenAPI document.
func (r *Router) Routes() []Route {
	var out []Route
	for _, ri := range r.engine.Routes() {
		out = append(out, Route{Method: ri.Method, Path: ri.Path})
	}
	return out
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
				writeErrorReason(c.Writer, http.StatusInternalServerError, reasonInternal, "internal error")
			}
		}
	}()
	c.Next()
}

// writeError answers code with the one error shape (event.APIError).
func writeError(w http.ResponseWriter, code int, msg string) { writeErrorReason(w, code, "", msg) }

// writeErrorReason is writeError with the error's reason (event.APIErrorDetail.Reason).
func writeErrorReason(w http.ResponseWriter, code int, reason, msg string) {
	writeAPIError(w, code, event.NewAPIErrorReason(reason, msg))
}

// writeAPIError answers code with body.
func writeAPIError(w http.ResponseWriter, code int, body event.APIError) {
	out, _ := json.Marshal(body)
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
	writeErrorReason(w, code, reason, msg)
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

// readChunk is the first allocation of a body of unknown length; the
// buffer doubles from there, each step reserved before it is allocated.
const readChunk = 32 << 10

// readBody buffers the body up to s.cfg.MaxBodyBytes, so it can be sent
// again on a retry. Every byte of buffer is reserved in r.mem against the
// key's and the router's caps before it is allocated; the caller releases
// the returned reservation when the request ends. The buffer is not
// pooled: once the request ends nothing references it and the GC frees it.
func (r *Router) readBody(w http.ResponseWriter, req *http.Request, s *snapshot, keyID string) (body []byte, reserved int64, code int, reason, msg string) {
	limit := s.cfg.MaxBodyBytes
	tooLarge := fmt.Sprintf("request body larger than %d bytes", limit)
	if req.ContentLength > limit {
		return nil, 0, http.StatusRequestEntityTooLarge, reasonTooLarge, tooLarge
	}
	grow := func(n int64) (int, string, string) {
		if why := r.mem.reserve(keyID, n, s.cfg.BodyMemoryPerKey, s.cfg.BodyMemory); why != "" {
			if why == reasonBodyMemoryKey {
				return http.StatusTooManyRequests, why, fmt.Sprintf("too many request bytes in flight for this key (body_memory_per_key %d bytes); retry when earlier requests finish", s.cfg.BodyMemoryPerKey)
			}
			return http.StatusServiceUnavailable, why, fmt.Sprintf("the router holds too many request bytes (body_memory %d bytes); retry shortly", s.cfg.BodyMemory)
		}
		reserved += n
		return 0, "", ""
	}
	src := http.MaxBytesReader(w, req.Body, limit)
	var buf []byte
	if req.ContentLength >= 0 {
		// The length is known: net/http's body ends there, so read exactly it.
		if code, reason, msg = grow(req.ContentLength); code != 0 {
			return nil, reserved, code, reason, msg
		}
		buf = make([]byte, req.ContentLength)
		n, err := io.ReadFull(src, buf)
		if err == io.EOF { // nothing at all of a non-empty body
			err = io.ErrUnexpectedEOF
		}
		if code, reason, msg = bodyReadError(err, tooLarge); code != 0 {
			return nil, reserved, code, reason, msg
		}
		return buf[:n], reserved, 0, "", ""
	}
	for {
		if len(buf) == cap(buf) {
			if int64(cap(buf)) == limit {
				// Full at the limit: one byte more is too large.
				var probe [1]byte
				n, err := src.Read(probe[:])
				if n > 0 {
					return nil, reserved, http.StatusRequestEntityTooLarge, reasonTooLarge, tooLarge
				}
				if err == io.EOF {
					return buf, reserved, 0, "", ""
				}
				if code, reason, msg = bodyReadError(err, tooLarge); code != 0 {
					return nil, reserved, code, reason, msg
				}
				continue
			}
			next := min(max(2*int64(cap(buf)), readChunk), limit)
			if code, reason, msg = grow(next - int64(cap(buf))); code != 0 {
				return nil, reserved, code, reason, msg
			}
			nb := make([]byte, len(buf), next)
			copy(nb, buf)
			buf = nb
		}
		n, err := src.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, reserved, 0, "", ""
		}
		if code, reason, msg = bodyReadError(err, tooLarge); code != 0 {
			return nil, reserved, code, reason, msg
		}
	}
}

// bodyReadError classifies an error reading a request body: too large
// (413), too slow (408: the body deadline of Serve passed) or broken (400).
func bodyReadError(err error, tooLarge string) (int, string, string) {
	var tl *http.MaxBytesError
	var ne net.Error
	switch {
	case err == nil:
		return 0, "", ""
	case errors.As(err, &tl):
		return http.StatusRequestEntityTooLarge, reasonTooLarge, tooLarge
	case errors.As(err, &ne) && ne.Timeout():
		return http.StatusRequestTimeout, reasonBodyTimeout, "request body not received in time"
	}
	return http.StatusBadRequest, reasonReadError, "reading request body: " + err.Error()
}

// closeIfUnread makes the answer to a request whose body was not read to
// its end the connection's last: net/http would otherwise read the rest
// (up to 256 KiB) before answering, at the client's pace.
func closeIfUnread(w http.ResponseWriter, req *http.Request) {
	if req.ContentLength != 0 {
		w.Header().Set("Connection", "close")
	}
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
			closeIfUnread(w, req)
			if reason == reasonWrongKey {
				r.log.Warn("authentication failed", logKeyPeer, req.RemoteAddr, logKeyForwardedFor, req.Header.Get("X-Forwarded-For"), logKeyKeyPrefix, keyFingerprint(req))
			}
			r.refuse(w, name, code, reason, msg)
			return
		}
		if err := checkMediaType(ci.spec, req.Header.Get("Content-Type")); err != nil {
			closeIfUnread(w, req)
			r.refuse(w, name, http.StatusUnsupportedMediaType, reasonMediaType, err.Error())
			return
		}
		body, reserved, code, reason, msg := r.readBody(w, req, s, key.cfg.ID)
		defer r.mem.release(key.cfg.ID, reserved)
		if code != 0 {
			if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
				w.Header().Set("Retry-After", "1")
			}
			closeIfUnread(w, req)
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
		table := s.classes[classKey{name, info.model}]
		if table == nil || len(table.members) == 0 {
			// No configured orchestrator serves this model: the client's
			// mistake, so 404 and not a retryable 503.
			r.refuse(w, name, http.StatusNotFound, reasonUnknownModel, fmt.Sprintf("unknown model: no orchestrator serves %s model %q", name, info.model))
			return
		}
		if code, reason, msg := checkScope(&key.cfg, name, info.model); code != 0 {
			r.refuse(w, name, code, reason, msg)
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
			req: req, table: table,
		}
		done, admitted := r.passGate(x, w)
		if admitted {
			r.budget.request(start)
			r.journalBegin(x)
			ctx, cancel := context.WithTimeout(req.Context(), ci.cfg.RequestTimeout)
			r.proxy(ctx, x, w)
			cancel()
		}
		if x.wrote {
			w.Flush()
		}
		end := r.now()
		r.m.requests.WithLabelValues(name, strconv.Itoa(x.httpStatus())).Inc()
		r.m.latency.WithLabelValues(name).Observe(end.Sub(start).Seconds())
		o := x.outcome(end)
		if done != nil {
			done(&o)
		}
		// The response is written; Publish does not block.
		if r.publish(o) && admitted {
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
