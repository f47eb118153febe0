package router

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/loopgate/loopgate/event"
)

// errAttemptTimeout is the cancel cause of an attempt whose response headers
// did not arrive within the attempt timeout.
var errAttemptTimeout = errors.New("attempt timeout")

// maxErrorBody bounds the body kept from a failed attempt, to relay it if
// no retry follows.
const maxErrorBody = 64 << 10

// failure is a failed attempt's answer, kept to relay if it is the last.
type failure struct {
	result event.AttemptResult
	class  string
	status int // 0: no HTTP response
	header http.Header
	body   []byte
}

// proxy runs the attempts of one request and writes the response.
//
// Retry rules: an attempt that fails before a byte reached the client with
// a retryable result (refused or reset connection, 5xx, 503 busy, timeout
// before the response headers) is retried on another orchestrator, at most
// MaxAttempts in all and only while the retry budget allows. A 4xx is
// relayed as is and never retried. Once response bytes have gone to the
// client nothing is retried.
//
// Shaping comes first: the class's admission rate (admit), then, when
// every eligible orchestrator is at its in-flight limit, the edge queue
// (wait) for the first attempt and for a retry (which spends the retry
// budget before it waits).
func (r *Router) proxy(ctx context.Context, x *exchange, w http.ResponseWriter) {
	if x.table != nil && !r.admit(x, w) {
		return
	}
	tried := slices.Clone(x.excluded) // over the key's max price: never chosen
	var last *failure
	for n := 0; n < x.s.cfg.MaxAttempts; n++ {
		if ctx.Err() != nil {
			break
		}
		var p pick
		var reason string
		ok, budgeted := false, false
		p, reason, ok = r.choose(x.s, x.table, x.region, tried)
		if n == 0 && ok && r.queued(x) && r.handTo(p) {
			// Waiters of the class go first: the slot went to one of them.
			ok, reason = false, reasonAtLimit
		}
		if !ok {
			queue := reason == reasonAtLimit && !x.s.cfg.Shaping.QueueDisabled
			if n > 0 && !queue {
				break // nobody left to retry on: answer with the last failure
			}
			if reason != reasonAtLimit {
				r.reject(x, w, reason)
				return
			}
			if !queue {
				r.reject(x, w, reasonNoCapacity)
				return
			}
			if n > 0 {
				// A retry waits at the edge, as a first attempt does, when
				// every orchestrator left is at its limit: failing a
				// request that still has time is a certain loss. It
				// spends the retry budget before it waits.
				if !r.budget.tryRetry(r.now()) {
					r.m.budgetExhausted.Inc()
					break
				}
				budgeted = true
			}
			if p, ok = r.wait(ctx, x, w, tried); !ok {
				return
			}
		}
		if n > 0 && !budgeted {
			if !r.budget.tryRetry(r.now()) {
				r.releaseSlot(p.m.o)
				r.m.budgetExhausted.Inc()
				break
			}
			r.m.retries.WithLabelValues(x.ci.spec.name).Inc()
		}
		tried = append(tried, p.m.o)
		f, done := r.attempt(ctx, x, p, n > 0, w)
		r.journalAttempt(x)
		if done {
			return
		}
		last = f
		if !retryable(f.result) {
			break
		}
	}
	r.answerFailure(ctx, x, w, last)
}

// queued reports whether requests of x's class wait in the edge queue:
// a newcomer then hands the slot it drew to the first of them (handTo) and
// queues behind them, so arrivals drain the queue even when no release
// comes to wake it.
func (r *Router) queued(x *exchange) bool {
	if r.edge.n.Load() == 0 || x.table == nil {
		return false
	}
	r.edge.mu.Lock()
	defer r.edge.mu.Unlock()
	_, found := r.edge.q.Find(func(w *waiter) bool { return w.key == x.table.key })
	return found
}

func retryable(res event.AttemptResult) bool {
	switch res {
	case event.AttemptError, event.AttemptBusy, event.AttemptRefused, event.AttemptTimeout:
		return true
	}
	return false
}

// reject answers a request no orchestrator can take (503) and records it.
func (r *Router) reject(x *exchange, w http.ResponseWriter, reason string) {
	r.m.rejected.WithLabelValues(reason).Inc()
	x.final, x.errorClass = event.StatusRejected, reason
	msg := "no orchestrator serves " + x.table.describe(x)
	if reason == reasonNoCapacity {
		msg = "no orchestrator available for " + x.table.describe(x)
	}
	r.writeErr(x, w, http.StatusServiceUnavailable, msg)
}

func (t *classTable) describe(x *exchange) string {
	return x.ci.spec.name + " model " + strconv.Quote(x.info.model)
}

// writeErr answers a request that has an outcome; the error's reason is
// the outcome's error class, set before.
func (r *Router) writeErr(x *exchange, w http.ResponseWriter, code int, msg string) {
	w.Header().Set(HeaderRequestID, x.id)
	writeErrorReason(w, code, x.errorClass, msg)
	x.wrote, x.status, x.ttfb = true, code, r.now().Sub(x.start)
}

// answerFailure answers a request whose attempts all failed.
func (r *Router) answerFailure(ctx context.Context, x *exchange, w http.ResponseWriter, last *failure) {
	switch {
	case last != nil && last.result == event.AttemptCanceled:
		x.final, x.errorClass = event.StatusCanceled, last.class
		return // the client is gone; nothing to write
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		x.final, x.errorClass = event.StatusTimeout, "deadline"
		r.writeErr(x, w, http.StatusGatewayTimeout, "request timed out")
		return
	case ctx.Err() != nil:
		x.final, x.errorClass = event.StatusCanceled, "client_gone"
		return
	case last == nil:
		// Not reached: the loop rejects or attempts before it can end
		// without a failure. Answer rather than crash.
		x.final, x.errorClass = event.StatusError, "no_attempt"
		r.writeErr(x, w, http.StatusServiceUnavailable, "no orchestrator available")
		return
	}
	x.final, x.errorClass = event.StatusError, last.class
	if last.result == event.AttemptTimeout {
		x.final = event.StatusTimeout
	}
	if last.status != 0 {
		// Relay the orchestrator's own error, as go-livepeer's gateway does.
		h := w.Header()
		copyHeader(h, last.header)
		h.Del("Content-Length")
		h.Set(HeaderRequestID, x.id)
		w.WriteHeader(last.status)
		x.wrote, x.status, x.ttfb = true, last.status, r.now().Sub(x.start)
		n, _ := w.Write(last.body)
		x.bytesOut = int64(n)
		return
	}
	switch last.result {
	case event.AttemptTimeout:
		r.writeErr(x, w, http.StatusGatewayTimeout, "orchestrator timed out")
	case event.AttemptRefused:
		r.writeErr(x, w, http.StatusServiceUnavailable, "no orchestrator available")
	default:
		r.writeErr(x, w, http.StatusBadGateway, "orchestrator failed")
	}
}

// attempt sends the request to the chosen orchestrator. It returns done
// when a response was relayed to the client (success, a 4xx, or a response
// that broke after its first byte); otherwise the failure, for a retry or
// to answer with.
func (r *Router) attempt(ctx context.Context, x *exchange, p pick, retry bool, w http.ResponseWriter) (*failure, bool) {
	o := p.m.o
	defer r.releaseSlot(o)
	start := r.now()
	x.attempts = append(x.attempts, event.Attempt{
		Orchestrator: o.cfg.ID, OrchRegion: o.cfg.Region, StartMs: start.UnixMilli(), Retry: retry,
		Propensity: p.choice.Propensity, Score: p.choice.Score,
	})
	x.prices = append(x.prices, p.m.price)
	att := &x.attempts[len(x.attempts)-1]
	sc := x.s.cfg.Selection
	finish := func(res event.AttemptResult, class string, status int) {
		att.Result, att.ErrorClass, att.HTTPStatus = res, class, status
		att.LatencyMs = max(r.now().Sub(start).Milliseconds(), 0)
		r.m.attempts.WithLabelValues(x.ci.spec.name, string(res)).Inc()
		if o.state.lim != nil {
			o.state.lim.Observe(signalOf(res), float64(att.LatencyMs), int(o.state.inFlight.Load()))
		}
		switch res {
		case event.AttemptOK:
			o.state.succeeded()
		case event.AttemptError, event.AttemptRefused, event.AttemptTimeout:
			// A busy answer (503) is a load signal for the limit, not a
			// failure that ejects: the orchestrator is healthy and full.
			if until, ej := o.state.failed(r.now(), sc); ej {
				r.m.ejections.Inc()
				r.log.Warn("orchestrator ejected", logKeyOrchestrator, o.cfg.ID, logKeyUntil, until, logKeyFailures, o.state.failures.Load())
			}
		}
	}

	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// The request's deadline is RequestTimeout after it arrived (handler).
	remaining := x.start.Add(x.ci.cfg.RequestTimeout).Sub(start)
	attemptTimeout := r.timeouts.timeout(x.s.cfg.DerivedTimeout, o.cfg.ID, x.table.key, remaining, x.ci.cfg.AttemptTimeout)
	timer := time.AfterFunc(attemptTimeout, func() { cancel(errAttemptTimeout) })
	req, err := http.NewRequestWithContext(actx, http.MethodPost, target(o.baseURL, x), bytes.NewReader(x.body))
	if err != nil {
		timer.Stop()
		finish(event.AttemptError, "request", 0)
		return &failure{result: event.AttemptError, class: "request"}, false
	}
	req.ContentLength = int64(len(x.body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(x.body)), nil }
	forwardHeader(req.Header, x.req.Header)
	req.Header.Set(HeaderRequestID, x.id)

	resp, err := r.transport.RoundTrip(req)
	inTime := timer.Stop()
	if err == nil && !inTime {
		// The headers raced the timer and lost: the body is cancelled anyway.
		drain(resp.Body)
		err = errAttemptTimeout
	}
	if err != nil {
		res, class := r.classify(ctx, actx, err)
		if res == event.AttemptTimeout {
			o.state.observeLatency(r.now(), float64(attemptTimeout.Milliseconds()), sc.LatencyTau)
		}
		finish(res, class, 0)
		return &failure{result: res, class: class}, false
	}
	ttfb := r.now().Sub(start)

	switch code := resp.StatusCode; {
	case code >= 500:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		drain(resp.Body)
		res, class := event.AttemptError, "http_"+strconv.Itoa(code)
		if code == http.StatusServiceUnavailable {
			res, class = event.AttemptBusy, "busy"
		}
		finish(res, class, code)
		return &failure{result: res, class: class, status: code, header: resp.Header, body: body}, false
	case code >= 400:
		err := r.relay(ctx, x, w, resp)
		res, class := event.AttemptClient, "http_"+strconv.Itoa(code)
		if err != nil {
			res, class = r.streamFailure(ctx, err)
		}
		finish(res, class, code)
		x.final, x.errorClass = statusOf(res, event.StatusError), class
		return nil, true
	default:
		o.state.observeLatency(r.now(), float64(ttfb.Microseconds())/1000, sc.LatencyTau)
		r.timeouts.observe(x.s.cfg.DerivedTimeout, o.cfg.ID, x.table.key, ttfb)
		err := r.relay(ctx, x, w, resp)
		res, class := event.AttemptOK, ""
		if err != nil {
			res, class = r.streamFailure(ctx, err)
		}
		finish(res, class, code)
		x.final, x.errorClass = statusOf(res, event.StatusOK), class
		return nil, true
	}
}

// statusOf maps the result of the attempt that answered to the request status.
func statusOf(res event.AttemptResult, otherwise event.Status) event.Status {
	switch res {
	case event.AttemptTimeout:
		return event.StatusTimeout
	case event.AttemptCanceled:
		return event.StatusCanceled
	case event.AttemptError:
		return event.StatusError
	}
	return otherwise
}

// classify names a transport error (no response at all).
func (r *Router) classify(reqCtx, attemptCtx context.Context, err error) (event.AttemptResult, string) {
	switch {
	case errors.Is(reqCtx.Err(), context.DeadlineExceeded):
		return event.AttemptTimeout, "deadline"
	case reqCtx.Err() != nil:
		return event.AttemptCanceled, "client_gone"
	case errors.Is(err, errAttemptTimeout) || errors.Is(context.Cause(attemptCtx), errAttemptTimeout):
		return event.AttemptTimeout, "timeout"
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" || errors.Is(err, syscall.ECONNREFUSED) {
		return event.AttemptRefused, "connect"
	}
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.EPIPE) {
		return event.AttemptRefused, "reset"
	}
	return event.AttemptError, "transport"
}

// streamFailure names an error while relaying a response already started.
func (r *Router) streamFailure(ctx context.Context, err error) (event.AttemptResult, string) {
	var we *clientWriteError
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return event.AttemptTimeout, "deadline"
	case ctx.Err() != nil || errors.As(err, &we):
		return event.AttemptCanceled, "client_gone"
	}
	return event.AttemptError, "broken_response"
}

// clientWriteError marks a failure to write to the client (as opposed to
// reading from the orchestrator).
type clientWriteError struct{ err error }

func (e *clientWriteError) Error() string { return "write to client: " + e.err.Error() }
func (e *clientWriteError) Unwrap() error { return e.err }

// relay streams resp to the client. Streaming responses (no
// Content-Length, e.g. LLM server-sent events) are flushed as they arrive.
func (r *Router) relay(ctx context.Context, x *exchange, w http.ResponseWriter, resp *http.Response) error {
	defer resp.Body.Close()
	h := w.Header()
	copyHeader(h, resp.Header)
	h.Set(HeaderRequestID, x.id)
	w.WriteHeader(resp.StatusCode)
	x.wrote, x.status, x.ttfb = true, resp.StatusCode, r.now().Sub(x.start)
	flusher, _ := w.(http.Flusher)
	stream := resp.ContentLength < 0 && flusher != nil
	if stream {
		flusher.Flush()
	}
	capture := x.info.units < 0 && resp.StatusCode < 300
	bp := r.buffers.Get().(*[]byte)
	defer r.buffers.Put(bp)
	buf := *bp
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if capture && len(x.captured)+n <= maxCaptureBytes {
				x.captured = append(x.captured, buf[:n]...)
			}
			k, werr := w.Write(buf[:n])
			x.bytesOut += int64(k)
			if werr != nil {
				return &clientWriteError{werr}
			}
			if stream {
				flusher.Flush()
			}
		}
		if errors.Is(rerr, io.EOF) {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// target is the orchestrator URL for the request: base + "/" + capability,
// with the client's query string.
func target(base string, x *exchange) string {
	u := base + "/" + x.ci.spec.name
	if q := x.req.URL.RawQuery; q != "" {
		u += "?" + q
	}
	return u
}

// isHop reports a per-connection header, never forwarded (RFC 9110 §7.6.1).
func isHop(h http.Header, name string) bool {
	switch http.CanonicalHeaderKey(name) {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	for _, v := range h["Connection"] {
		for _, f := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(f), name) {
				return true
			}
		}
	}
	return false
}

// forwardHeader copies the client's end-to-end headers, minus its
// credentials and loopgate's own headers: the API key never reaches an
// orchestrator.
func forwardHeader(dst, src http.Header) {
	for k, vv := range src {
		if isHop(src, k) {
			continue
		}
		switch http.CanonicalHeaderKey(k) {
		case "Authorization", "Cookie", "Content-Length", "Host", "Expect", HeaderClientRegion, HeaderRequestID:
			continue
		}
		dst[k] = append(dst[k][:0:0], vv...)
	}
}

// copyHeader copies an orchestrator's end-to-end response headers.
func copyHeader(dst, src http.Header) {
	for k, vv := range src {
		if isHop(src, k) {
			continue
		}
		dst[k] = append(dst[k][:0:0], vv...)
	}
}
