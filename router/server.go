package router

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loopgate/loopgate/event"
)

// ServerConfig is the client-facing HTTP server's (Serve). A zero
// duration or count means "the default written beside it"; there is no
// way to switch a bound off.
type ServerConfig struct {
	// ReadHeaderTimeout bounds reading a request's line and headers, from
	// the connection's start or the end of the previous response. A
	// connection that sent part of a request in that time is answered 408
	// (reason header_timeout) and closed; one that sent nothing is closed.
	// Default 10s.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// BodyTimeout bounds reading a request's body, from the end of its
	// headers; a body not in by then is answered 408 (reason
	// body_timeout), and the connection closed. It bounds the body only:
	// the response may stream for as long as RequestTimeout allows.
	// Default 60s (32 MiB at about 4.5 Mbit/s).
	BodyTimeout time.Duration `yaml:"body_timeout"`
	// IdleTimeout closes a keep-alive connection that waits this long for
	// its next request. Default 60s.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// MaxHeaderBytes caps a request's line and headers; beyond it the
	// answer is 431 (reason header_too_large). net/http allows 4 KiB of
	// slack above it. Default 64 KiB.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxConns caps the client connections open at once; one more is
	// answered 503 (reason too_many_connections) and closed at once.
	// Default 4096.
	MaxConns int `yaml:"max_conns"`
	// ShutdownTimeout is how long Serve, once its context ends, waits for
	// the requests in flight before it closes their connections. Default 15s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// DefaultServerConfig returns the documented defaults.
func DefaultServerConfig() ServerConfig {
	return ServerConfig{
		ReadHeaderTimeout: 10 * time.Second,
		BodyTimeout:       60 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		MaxConns:          4096,
		ShutdownTimeout:   15 * time.Second,
	}
}

// withDefaults fills the zero fields.
func (c ServerConfig) withDefaults() ServerConfig {
	d := DefaultServerConfig()
	if c.ReadHeaderTimeout == 0 {
		c.ReadHeaderTimeout = d.ReadHeaderTimeout
	}
	if c.BodyTimeout == 0 {
		c.BodyTimeout = d.BodyTimeout
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = d.IdleTimeout
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if c.MaxConns == 0 {
		c.MaxConns = d.MaxConns
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = d.ShutdownTimeout
	}
	return c
}

// Validate reports a setting that cannot work.
func (c ServerConfig) Validate() error {
	if c.ReadHeaderTimeout < 0 || c.BodyTimeout < 0 || c.IdleTimeout < 0 || c.ShutdownTimeout < 0 || c.MaxHeaderBytes < 0 || c.MaxConns < 0 {
		return fmt.Errorf("router: server: negative timeout or limit in %+v", c)
	}
	return nil
}

// Reasons of the answers the server gives below the handler (the
// loopgate_router_http_refused_total label and the JSON error's reason).
const (
	reasonHeaderTimeout  = "header_timeout"
	reasonHeaderTooLarge = "header_too_large"
	reasonBadRequest     = "bad_request"
	reasonTooManyConns   = "too_many_connections"
)

// serverMetrics are Serve's.
type serverMetrics struct {
	open    prometheus.Gauge
	refused *prometheus.CounterVec
}

func newServerMetrics(reg prometheus.Registerer) (*serverMetrics, error) {
	m := &serverMetrics{
		open: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "loopgate_router_open_connections", Help: "Client connections open.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "loopgate_router_http_refused_total", Help: "Answers the HTTP server gave below the handler, by reason: header_timeout, header_too_large, bad_request, too_many_connections, and net/http's others.",
		}, []string{"reason"}),
	}
	for _, r := range []string{reasonHeaderTimeout, reasonHeaderTooLarge, reasonBadRequest, reasonTooManyConns} {
		m.refused.WithLabelValues(r)
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.open, m.refused} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register router server metrics: %w", err)
		}
	}
	return m, nil
}

// Serve serves Handler on ln with the bounds of Config.Server (read at
// Serve) until ctx ends, then shuts down gracefully: it stops accepting,
// lets the requests in flight finish (each publishes its outcome) for up to
// ShutdownTimeout, and closes ln. Every answer it gives is JSON in the one
// error shape, also those net/http gives below the handler (431, 400, a
// header timeout) and the connection cap's 503.
func (r *Router) Serve(ctx context.Context, ln net.Listener) error {
	cfg := r.snap.Load().cfg.Server.withDefaults()
	cl := &connLimiter{Listener: ln, max: int64(cfg.MaxConns), maxHeader: cfg.MaxHeaderBytes, m: r.sm}
	srv := &http.Server{
		Handler:           r.bodyDeadline(cfg.BodyTimeout, r.engine),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ConnState:         connState,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
		// Client mistakes are answered and counted; they are not warnings.
		ErrorLog: slog.NewLogLogger(r.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(cl) }()
	r.log.Info("listening", logKeyAddr, ln.Addr().String())
	var err error
	select {
	case err = <-errc:
		err = fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
		if serr := srv.Shutdown(sctx); serr != nil {
			_ = srv.Close()
			err = fmt.Errorf("shut down %s: %w", ln.Addr(), serr)
		}
		cancel()
		if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
			err = fmt.Errorf("serve %s: %w", ln.Addr(), serr)
		}
	}
	cl.refusing.Wait()
	return err
}

// connKey is the context key of a request's *trackedConn.
type connKey struct{}

// bodyDeadline gives every request BodyTimeout to send its body: the
// deadline is set before the handler runs, so it also bounds what net/http
// reads of an unread body after the handler (a refused request's), and
// serve clears it once the body is in (endBodyDeadline) so the response
// can stream. It also marks the connection as in a handler, so the
// connection's own JSON answers (trackedConn) stay out of the way.
//
// Deadlines are the wall clock's (time.Now): they are the kernel's, not
// the injected clock's.
func (r *Router) bodyDeadline(d time.Duration, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if c, ok := req.Context().Value(connKey{}).(*trackedConn); ok {
			c.setHandling()
		}
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(d))
		h.ServeHTTP(w, req)
	})
}

// endBodyDeadline lifts bodyDeadline's deadline once the body is read:
// without it net/http's background read (which watches for the client
// going away) would time out and cancel a long response. Outside Serve
// (httptest, no deadline) it does nothing.
func endBodyDeadline(w http.ResponseWriter) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
}

// connState resets a connection's request tracking when it goes idle
// between requests.
func connState(c net.Conn, st http.ConnState) {
	if tc, ok := c.(*trackedConn); ok && st == http.StateIdle {
		tc.idle()
	}
}

// connLimiter is Serve's listener: it caps the connections open at once
// and wraps each in a trackedConn.
type connLimiter struct {
	net.Listener
	max       int64
	maxHeader int
	m         *serverMetrics
	open      atomic.Int64
	refusing  sync.WaitGroup // the goroutines answering connections over the cap
}

func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > l.max {
			l.open.Add(-1)
			l.m.refused.WithLabelValues(reasonTooManyConns).Inc()
			l.refusing.Add(1)
			go l.refuse(c)
			continue
		}
		l.m.open.Inc()
		return &trackedConn{Conn: c, l: l}, nil
	}
}

// refuse answers a connection over the cap with 503 and closes it. It
// half-closes first and reads briefly, as net/http does for its own 431,
// so the client sees the answer rather than a reset.
func (l *connLimiter) refuse(c net.Conn) {
	defer l.refusing.Done()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	_, _ = c.Write(rawJSONError(http.StatusServiceUnavailable, reasonTooManyConns,
		fmt.Sprintf("too many connections (max_conns %d); retry shortly", l.max), "Retry-After: 1\r\n"))
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
		var sink [512]byte
		for {
			if _, err := c.Read(sink[:]); err != nil {
				break
			}
		}
	}
	_ = c.Close()
}

// trackedConn is one client connection. Below the handler net/http
// answers in plain text (431, 400, 501) or not at all (a request cut short
// by ReadHeaderTimeout); trackedConn turns those into the one JSON error
// shape. It knows it is below the handler when no handler has started
// since the connection opened or last went idle.
type trackedConn struct {
	net.Conn
	l      *connLimiter
	closed sync.Once

	mu       sync.Mutex
	read     int64 // bytes read since the connection opened or went idle
	handling bool  // a handler started for the current request
	answered bool  // trackedConn wrote its own answer; the connection is done
}

func (c *trackedConn) setHandling() {
	c.mu.Lock()
	c.handling = true
	c.mu.Unlock()
}

func (c *trackedConn) idle() {
	c.mu.Lock()
	c.read, c.handling = 0, false
	c.mu.Unlock()
}

func (c *trackedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.read += int64(n)
	partial := c.read > 0 && !c.handling && !c.answered
	var ne net.Error
	if err != nil && partial && errors.As(err, &ne) && ne.Timeout() {
		c.answered = true
		c.mu.Unlock()
		// net/http closes the connection without a word; say why first.
		c.l.m.refused.WithLabelValues(reasonHeaderTimeout).Inc()
		_ = c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = c.Conn.Write(rawJSONError(http.StatusRequestTimeout, reasonHeaderTimeout, "request headers not received in time", ""))
		return n, err
	}
	c.mu.Unlock()
	return n, err
}

func (c *trackedConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	below := !c.handling
	c.mu.Unlock()
	if below {
		if code, text, ok := plainServerError(p); ok {
			reason, msg := reasonBadRequest, "bad request"
			switch {
			case code == http.StatusRequestHeaderFieldsTooLarge:
				reason, msg = reasonHeaderTooLarge, fmt.Sprintf("request line and headers larger than %d bytes", c.l.maxHeader)
			case code != http.StatusBadRequest:
				reason, msg = strings.ReplaceAll(strings.ToLower(http.StatusText(code)), " ", "_"), strings.ToLower(text)
				if msg == "" {
					msg = strings.ToLower(http.StatusText(code))
				}
			case text != "":
				msg = text
			}
			c.l.m.refused.WithLabelValues(reason).Inc()
			if _, err := c.Conn.Write(rawJSONError(code, reason, msg, "")); err != nil {
				return 0, err
			}
			return len(p), nil
		}
	}
	return c.Conn.Write(p)
}

// CloseWrite half-closes, as net/http does after its 431 so the client
// reads the answer.
func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *trackedConn) Close() error {
	c.closed.Do(func() {
		c.l.open.Add(-1)
		c.l.m.open.Dec()
	})
	return c.Conn.Close()
}

// netHTTPErrorHeaders is what net/http writes after the status line of the
// answers it gives below the handler (server.go's errorHeaders). A
// handler's answer never matches: net/http adds a Date header to those.
const netHTTPErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// plainServerError recognises one of net/http's own plain-text answers in
// p and returns its status and the text after the status, e.g. 400 and
// "missing required Host header".
func plainServerError(p []byte) (int, string, bool) {
	rest, ok := bytes.CutPrefix(p, []byte("HTTP/1.1 "))
	if !ok {
		return 0, "", false
	}
	line, body, ok := bytes.Cut(rest, []byte(netHTTPErrorHeaders))
	if !ok || len(line) < 3 {
		return 0, "", false
	}
	code, err := strconv.Atoi(string(line[:3]))
	if err != nil || code < 400 || code > 599 {
		return 0, "", false
	}
	// "400 Bad Request: missing required Host header" → the part after
	// ": "; else a body that is not the status again ("Unsupported
	// transfer encoding").
	_, detail, _ := strings.Cut(string(line[3:]), ": ")
	if detail == "" && !bytes.HasPrefix(body, line[:3]) {
		detail = string(body)
	}
	return code, detail, true
}

// rawJSONError is a whole HTTP/1.1 response with the one error shape, for
// answers written on the connection itself; extra is more header lines.
func rawJSONError(code int, reason, msg, extra string) []byte {
	body, _ := json.Marshal(event.NewAPIErrorReason(reason, msg))
	body = append(body, '\n')
	return fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n%s\r\n%s",
		code, http.StatusText(code), len(body), extra, body)
}
