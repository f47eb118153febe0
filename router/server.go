package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loopgate/loopgate/internal/jsonconn"
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
	// BodyTimeout bounds reading a request's body: it must be in within
	// ReadHeaderTimeout + BodyTimeout of the request's first byte
	// (http.Server.ReadTimeout), or it is answered 408 (reason
	// body_timeout) and the connection closed. It bounds the body only:
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
	reasonHeaderTimeout  = jsonconn.ReasonHeaderTimeout
	reasonHeaderTooLarge = jsonconn.ReasonHeaderTooLarge
	reasonBadRequest     = jsonconn.ReasonBadRequest
	reasonTooManyConns   = jsonconn.ReasonTooManyConns
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
	for _, r := range jsonconn.Reasons() {
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
// header timeout) and the connection cap's 503 (package internal/jsonconn).
func (r *Router) Serve(ctx context.Context, ln net.Listener) error {
	cfg := r.snap.Load().cfg.Server.withDefaults()
	jl := jsonconn.NewListener(ln, jsonconn.Config{MaxConns: cfg.MaxConns, MaxHeaderBytes: cfg.MaxHeaderBytes}, jsonconn.Hooks{
		Refused: func(reason string) { r.sm.refused.WithLabelValues(reason).Inc() },
		Open:    func(delta int) { r.sm.open.Add(float64(delta)) },
	})
	srv := &http.Server{
		Handler:           r.engine,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		// net/http lifts this deadline itself once the body is read (its
		// background read has none), so it bounds the body, never the
		// response.
		ReadTimeout:    cfg.ReadHeaderTimeout + cfg.BodyTimeout,
		IdleTimeout:    cfg.IdleTimeout,
		MaxHeaderBytes: cfg.MaxHeaderBytes,
		// Client mistakes are answered and counted; they are not warnings.
		ErrorLog: slog.NewLogLogger(r.log.Handler(), slog.LevelDebug),
	}
	jl.Configure(srv)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(jl) }()
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
	jl.Wait()
	return err
}
