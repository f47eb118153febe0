package router

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/internal/metrictest"
	"github.com/loopgate/loopgate/internal/testenv"
)

// served is a router behind Serve on a port of 127.0.0.1.
type served struct {
	*testRouter
	addr string
}

// newServed starts Serve with sc on 127.0.0.1 and stops it, checking it
// shut down cleanly, when the test ends.
func newServed(t *testing.T, cfg Config, sc ServerConfig) *served {
	t.Helper()
	cfg.Server = sc
	tr := newTestRouter(t, cfg)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &served{testRouter: tr, addr: ln.Addr().String()}
}

func (s *served) dial(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readJSONError reads one response from c and checks it is the one error
// shape with code and reason.
func readJSONError(t *testing.T, c net.Conn, br *bufio.Reader, code int, reason string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second)) // a bound on a hung test, not an assertion
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("want a %d answer: %v", code, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != code {
		t.Fatalf("got %d %q, want %d", resp.StatusCode, b, code)
	}
	if e := apiError(t, resp.Header, b); e.Reason != reason {
		t.Fatalf("got reason %q in %q, want %q", e.Reason, b, reason)
	}
}

// closedByServer reports whether the server has closed c: a read ends
// with EOF (or a reset), not with the test's own short deadline.
func closedByServer(c net.Conn) bool {
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	var b [256]byte
	for {
		_, err := c.Read(b[:])
		if err == nil {
			continue
		}
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}
}

// TestServeAnswersBelowTheHandlerInJSON: what net/http answers itself —
// in plain text (431, 400, 501) or not at all (a header cut short) — is
// answered in the one JSON error shape over a real TCP connection.
func TestServeAnswersBelowTheHandlerInJSON(t *testing.T) {
	sc := DefaultServerConfig()
	sc.ReadHeaderTimeout = 300 * time.Millisecond
	sc.MaxHeaderBytes = 1 << 10
	s := newServed(t, testConfig(orch("a", "http://127.0.0.1:1", t2i(1))), sc)
	tests := []struct {
		name   string
		send   string
		code   int
		reason string
	}{
		{"header cut short", "POST /text-to-image HTTP/1.1\r\nHost: x\r\nContent-Ty", 408, reasonHeaderTimeout},
		{"request line cut short", "POST /text-to", 408, reasonHeaderTimeout},
		{"headers too large", "POST /llm HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 16<<10) + "\r\n\r\n", 431, reasonHeaderTooLarge},
		{"not HTTP", "HELLO\r\n\r\n", 400, reasonBadRequest},
		{"no Host", "GET /llm HTTP/1.1\r\n\r\n", 400, reasonBadRequest},
		{"unknown transfer coding", "POST /llm HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: zip\r\n\r\n", 501, "not_implemented"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := metrictest.Lookup(t, s.reg, "loopgate_router_http_refused_total", "reason", tt.reason)
			c := s.dial(t)
			if _, err := io.WriteString(c, tt.send); err != nil {
				t.Fatal(err)
			}
			br := bufio.NewReader(c)
			readJSONError(t, c, br, tt.code, tt.reason)
			// The answer is the connection's last: nothing follows it
			// (net/http's own 400 for a cut-short header is dropped).
			if rest, _ := io.ReadAll(br); len(rest) > 0 {
				t.Fatalf("got %q after the answer, want the connection closed", rest)
			}
			if got := metrictest.Value(t, s.reg, "loopgate_router_http_refused_total", "reason", tt.reason); got != before+1 {
				t.Fatalf("got http_refused{reason=%q} %v, want %v", tt.reason, got, before+1)
			}
		})
	}
	// A connection that sends nothing is closed without an answer.
	c := s.dial(t)
	testenv.Eventually(t, 10*time.Second, "a silent connection closed", func() bool { return closedByServer(c) })
}

// TestServeClosesSlowBodies: bodies that trickle in are cut off at
// BodyTimeout — an authenticated request's with 408, a refused one's by
// closing — and the router keeps serving.
func TestServeClosesSlowBodies(t *testing.T) {
	up := newUpstream(t, okJSON(`{"images":[]}`))
	sc := DefaultServerConfig()
	sc.ReadHeaderTimeout, sc.BodyTimeout = 200*time.Millisecond, 300*time.Millisecond
	s := newServed(t, testConfig(orch("a", up.srv.URL, t2i(1))), sc)
	const authed, anonymous = 200, 100
	start := func(key string) net.Conn {
		c := s.dial(t)
		_, err := fmt.Fprintf(c, "POST /text-to-image HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"prompt\":", key)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	var conns []net.Conn
	for range authed {
		conns = append(conns, start(testKey))
	}
	var refused []net.Conn
	for range anonymous {
		refused = append(refused, start("not-a-key"))
	}
	for _, c := range conns {
		br := bufio.NewReader(c)
		readJSONError(t, c, br, http.StatusRequestTimeout, reasonBodyTimeout)
	}
	for _, c := range refused {
		readJSONError(t, c, bufio.NewReader(c), http.StatusForbidden, reasonWrongKey)
	}
	testenv.Eventually(t, 20*time.Second, "every slow connection closed", func() bool {
		for _, c := range append(conns, refused...) {
			if !closedByServer(c) {
				return false
			}
		}
		return metrictest.Value(t, s.reg, "loopgate_router_open_connections") == 0
	})
	if up.hits.Load() != 0 {
		t.Fatal("a partial body reached the orchestrator")
	}
	if n, _ := s.mem.inUse(testKey); n != 0 {
		t.Fatalf("got %d body bytes still reserved, want 0", n)
	}
	s.mustServe(t)
}

// mustServe checks that the router still answers a real request.
func (s *served) mustServe(t *testing.T) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.addr+"/v1/text-to-image", strings.NewReader(`{"prompt":"a cat","model_id":"m1"}`))
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("the router stopped serving: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("got %d %q, want 200", resp.StatusCode, b)
	}
}

// TestServeClosesIdleKeepAlives: keep-alive connections idle past
// IdleTimeout are closed by the server.
func TestServeClosesIdleKeepAlives(t *testing.T) {
	up := newUpstream(t, okJSON(`{"images":[]}`))
	sc := DefaultServerConfig()
	sc.IdleTimeout = 300 * time.Millisecond
	s := newServed(t, testConfig(orch("a", up.srv.URL, t2i(1))), sc)
	const n = 200
	conns := make([]net.Conn, n)
	for i := range conns {
		c := s.dial(t)
		conns[i] = c
		// A complete request on a keep-alive connection, answered (404).
		if _, err := io.WriteString(c, "GET /nothing-here HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		readJSONError(t, c, bufio.NewReader(c), http.StatusNotFound, reasonNotFound)
	}
	var closed atomic.Int64
	testenv.Eventually(t, 20*time.Second, "every idle keep-alive closed", func() bool {
		for i, c := range conns {
			if c != nil && closedByServer(c) {
				conns[i] = nil
				closed.Add(1)
			}
		}
		return closed.Load() == n
	})
	testenv.Eventually(t, 10*time.Second, "no connection counted open", func() bool {
		return metrictest.Value(t, s.reg, "loopgate_router_open_connections") == 0
	})
	s.mustServe(t)
}

// TestServeConnectionCap: past MaxConns a connection is answered 503 in
// JSON and closed; once one closes, a new one is served.
func TestServeConnectionCap(t *testing.T) {
	up := newUpstream(t, okJSON(`{"images":[]}`))
	sc := DefaultServerConfig()
	sc.MaxConns = 8
	s := newServed(t, testConfig(orch("a", up.srv.URL, t2i(1))), sc)
	held := make([]net.Conn, sc.MaxConns)
	for i := range held {
		held[i] = s.dial(t)
	}
	testenv.Eventually(t, 10*time.Second, "the held connections accepted", func() bool {
		return metrictest.Value(t, s.reg, "loopgate_router_open_connections") == float64(sc.MaxConns)
	})
	over := s.dial(t)
	_, _ = io.WriteString(over, "GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n")
	readJSONError(t, over, bufio.NewReader(over), http.StatusServiceUnavailable, reasonTooManyConns)
	if got := metrictest.Value(t, s.reg, "loopgate_router_http_refused_total", "reason", reasonTooManyConns); got != 1 {
		t.Fatalf("got http_refused{too_many_connections} %v, want 1", got)
	}
	held[0].Close()
	testenv.Eventually(t, 10*time.Second, "a slot freed", func() bool {
		return metrictest.Value(t, s.reg, "loopgate_router_open_connections") < float64(sc.MaxConns)
	})
	s.mustServe(t)
}

// TestServeBodyDeadlineDoesNotCutResponses: the body deadline bounds the
// body only; a response that takes longer than BodyTimeout still arrives.
func TestServeBodyDeadlineDoesNotCutResponses(t *testing.T) {
	release := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		<-release
		okJSON(`{"images":[]}`)(w, r)
	})
	sc := DefaultServerConfig()
	sc.ReadHeaderTimeout, sc.BodyTimeout = 100*time.Millisecond, 100*time.Millisecond
	s := newServed(t, testConfig(orch("a", up.srv.URL, t2i(1))), sc)
	got := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, "http://"+s.addr+"/text-to-image", strings.NewReader(`{"prompt":"a cat","model_id":"m1"}`))
		req.Header.Set("Authorization", "Bearer "+testKey)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			var v map[string]any
			err = json.NewDecoder(resp.Body).Decode(&v)
			resp.Body.Close()
			if err == nil && resp.StatusCode != http.StatusOK {
				err = fmt.Errorf("status %d", resp.StatusCode)
			}
		}
		got <- err
	}()
	testenv.Eventually(t, 10*time.Second, "the request at the orchestrator", func() bool { return up.hits.Load() == 1 })
	// Hold the response well past the read deadline (a wall-clock wait
	// is what is under test: the deadline is the kernel's).
	time.Sleep(5 * (sc.ReadHeaderTimeout + sc.BodyTimeout))
	close(release)
	if err := <-got; err != nil {
		t.Fatalf("a response slower than the body timeout: %v", err)
	}
	outs := s.pub.wait(t, 1)
	if outs[0].Status != event.StatusOK {
		t.Fatalf("got outcome status %q, want ok", outs[0].Status)
	}
}
