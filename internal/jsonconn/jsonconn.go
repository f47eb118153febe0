// Package jsonconn makes what net/http answers on its own — below any
// handler — come in loopgate's one JSON error shape (event.APIError), and
// caps the connections a server has open.
//
// net/http answers a request it cannot parse in plain text (431 for
// headers over MaxHeaderBytes, 400 for what is not HTTP, 501 for an
// unknown transfer coding) and closes a connection whose headers did not
// arrive within ReadHeaderTimeout without a word or, when part of them
// came, with a plain 400. A Listener's connections
// rewrite those plain-text answers into JSON and answer a header timeout
// with 408; past Config.MaxConns a new connection is answered 503 and
// closed at once.
//
//	jl := jsonconn.NewListener(ln, jsonconn.Config{MaxConns: 4096, MaxHeaderBytes: 64 << 10}, jsonconn.Hooks{Refused: counter.Inc})
//	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10}
//	jl.Configure(srv) // wraps srv.Handler, sets ConnState and ConnContext
//	err := srv.Serve(jl)
//	jl.Wait()         // the goroutines answering connections over the cap
//
// A connection knows it is below the handler when no handler has started
// since it opened or last went idle (Configure's handler wrapper and
// ConnState tell it); handlers' own answers pass untouched.
package jsonconn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/loopgate/loopgate/event"
)

// Reasons of the answers given below the handler (the JSON error's reason).
const (
	ReasonHeaderTimeout  = "header_timeout"       // 408
	ReasonHeaderTooLarge = "header_too_large"     // 431
	ReasonBadRequest     = "bad_request"          // 400
	ReasonTooManyConns   = "too_many_connections" // 503
)

// Reasons lists the reasons above, e.g. to initialise a metric's labels;
// net/http's rarer answers take their status text ("not_implemented").
func Reasons() []string {
	return []string{ReasonHeaderTimeout, ReasonHeaderTooLarge, ReasonBadRequest, ReasonTooManyConns}
}

// Config bounds a Listener.
type Config struct {
	// MaxConns caps the connections open at once; 0: no cap.
	MaxConns int
	// MaxHeaderBytes is the server's http.Server.MaxHeaderBytes, for the
	// 431's message.
	MaxHeaderBytes int
}

// Hooks tell the caller what happens; nil fields are skipped.
type Hooks struct {
	// Refused is called once per answer given below the handler.
	Refused func(reason string)
	// Open is called with +1 when a connection is accepted and -1 when it closes.
	Open func(delta int)
}

// Listener wraps a net.Listener; see the package documentation.
type Listener struct {
	net.Listener
	cfg      Config
	hooks    Hooks
	open     atomic.Int64
	refusing sync.WaitGroup
}

// NewListener wraps ln.
func NewListener(ln net.Listener, cfg Config, hooks Hooks) *Listener {
	if hooks.Refused == nil {
		hooks.Refused = func(string) {}
	}
	if hooks.Open == nil {
		hooks.Open = func(int) {}
	}
	return &Listener{Listener: ln, cfg: cfg, hooks: hooks}
}

// Configure wraps srv.Handler so connections know when a handler runs,
// and sets srv.ConnState and srv.ConnContext (calling any already set).
func (l *Listener) Configure(srv *http.Server) {
	h, state, cctx := srv.Handler, srv.ConnState, srv.ConnContext
	srv.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := r.Context().Value(connKey{}).(*conn); ok {
			c.setHandling()
		}
		h.ServeHTTP(w, r)
	})
	srv.ConnState = func(c net.Conn, st http.ConnState) {
		if tc, ok := c.(*conn); ok && st == http.StateIdle {
			tc.idle()
		}
		if state != nil {
			state(c, st)
		}
	}
	srv.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
		if cctx != nil {
			ctx = cctx(ctx, c)
		}
		return context.WithValue(ctx, connKey{}, c)
	}
}

// Wait waits for the goroutines answering connections over the cap; call
// it after the server's Serve returned.
func (l *Listener) Wait() { l.refusing.Wait() }

// connKey is the context key of a request's *conn.
type connKey struct{}

// Accept returns the next connection under the cap; those over it are
// answered 503 and closed on a goroutine Wait waits for.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.cfg.MaxConns > 0 && l.open.Add(1) > int64(l.cfg.MaxConns) {
			l.open.Add(-1)
			l.hooks.Refused(ReasonTooManyConns)
			l.refusing.Add(1)
			go l.refuse(c)
			continue
		}
		l.hooks.Open(1)
		return &conn{Conn: c, l: l}, nil
	}
}

// refuse answers a connection over the cap with 503 and closes it. It
// half-closes first and reads briefly, as net/http does after its own 431,
// so the client sees the answer rather than a reset.
func (l *Listener) refuse(c net.Conn) {
	defer l.refusing.Done()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	_, _ = c.Write(Response(http.StatusServiceUnavailable, ReasonTooManyConns,
		fmt.Sprintf("too many connections (max %d); retry shortly", l.cfg.MaxConns), "Retry-After: 1\r\n"))
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		var sink [512]byte
		for {
			if _, err := c.Read(sink[:]); err != nil {
				break
			}
		}
	}
	_ = c.Close()
}

// conn is one accepted connection.
type conn struct {
	net.Conn
	l      *Listener
	closed sync.Once

	mu       sync.Mutex
	read     int64 // bytes read since the connection opened or went idle
	handling bool  // a handler started for the current request
	answered bool  // conn wrote its own answer; the connection is done
}

func (c *conn) setHandling() {
	c.mu.Lock()
	c.handling = true
	c.mu.Unlock()
}

func (c *conn) idle() {
	c.mu.Lock()
	c.read, c.handling = 0, false
	c.mu.Unlock()
}

func (c *conn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.read += int64(n)
	partial := c.read > 0 && !c.handling && !c.answered
	var ne net.Error
	if err != nil && partial && errors.As(err, &ne) && ne.Timeout() {
		c.answered = true
		c.mu.Unlock()
		// net/http closes the connection without a word; say why first.
		c.l.hooks.Refused(ReasonHeaderTimeout)
		_ = c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = c.Conn.Write(Response(http.StatusRequestTimeout, ReasonHeaderTimeout, "request headers not received in time", ""))
		return n, err
	}
	c.mu.Unlock()
	return n, err
}

func (c *conn) Write(p []byte) (int, error) {
	c.mu.Lock()
	below, answered := !c.handling, c.answered
	c.mu.Unlock()
	if answered {
		// The 408 is out; net/http's own answer to the same cut-short
		// request (a 400, for a partial header) would be a second one.
		return len(p), nil
	}
	if below {
		if code, text, ok := plainServerError(p); ok {
			reason, msg := ReasonBadRequest, "bad request"
			switch {
			case code == http.StatusRequestHeaderFieldsTooLarge:
				reason, msg = ReasonHeaderTooLarge, fmt.Sprintf("request line and headers larger than %d bytes", c.l.cfg.MaxHeaderBytes)
			case code != http.StatusBadRequest:
				reason = strings.ReplaceAll(strings.ToLower(http.StatusText(code)), " ", "_")
				if msg = strings.ToLower(text); msg == "" {
					msg = strings.ToLower(http.StatusText(code))
				}
			case text != "":
				msg = text
			}
			c.l.hooks.Refused(reason)
			if _, err := c.Conn.Write(Response(code, reason, msg, "")); err != nil {
				return 0, err
			}
			return len(p), nil
		}
	}
	return c.Conn.Write(p)
}

// CloseWrite half-closes, as net/http does after its 431 so the client
// reads the answer.
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *conn) Close() error {
	c.closed.Do(func() {
		if c.l.cfg.MaxConns > 0 {
			c.l.open.Add(-1)
		}
		c.l.hooks.Open(-1)
	})
	return c.Conn.Close()
}

// netHTTPErrorHeaders is what net/http writes after the status line of the
// answers it gives below the handler (server.go's errorHeaders). A
// handler's answer never matches: net/http adds a Date header to those.
const netHTTPErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// plainServerError recognises one of net/http's own plain-text answers in
// p and returns its status and its detail, e.g. 400 and "missing required
// Host header".
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

// Response is a whole HTTP/1.1 response with the one error shape that
// closes its connection, for answers written on a connection itself;
// extra is more header lines, each ending in "\r\n".
func Response(code int, reason, msg, extra string) []byte {
	body, _ := json.Marshal(event.NewAPIErrorReason(reason, msg))
	body = append(body, '\n')
	return fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n%s\r\n%s",
		code, http.StatusText(code), len(body), extra, body)
}
