package router

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/internal/testenv"
)

// TestEveryRouterErrorIsTheOneShape enumerates the errors the router
// answers itself — refusals before any attempt, the HTTP server's own
// answers below the handler, the caps, and the answers after failed
// attempts, and the edge queue's shedding — over a real TCP connection to
// Serve, and checks that each is
// application/json in the one shape (event.APIError) with its reason.
// (A 500 from a panic is TestPanicIsAnswered500's; an orchestrator's own
// 4xx is relayed as it sent it, by design.)
func TestEveryRouterErrorIsTheOneShape(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	held := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { <-release; okJSON(`{}`)(w, r) })
	t.Cleanup(func() { once.Do(func() { close(release) }) }) // before the upstream closes
	hung := newUpstream(t, hang)
	broken := newUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
		c, _, _ := http.NewResponseController(w).Hijack()
		c.Close() // a reset before any response
	})
	garbage := newUpstream(t, func(w http.ResponseWriter, _ *http.Request) {
		c, _, _ := http.NewResponseController(w).Hijack()
		_, _ = io.WriteString(c, "NOT HTTP AT ALL\r\n\r\n")
		c.Close()
	})
	heldOrch := orch("held", held.srv.URL, ClassPrice{Capability: event.CapTextToImage, Model: "held"})
	heldOrch.MaxInFlight = 2 // the two held requests fill it
	cfg := testConfig(
		orch("garbage", garbage.srv.URL, ClassPrice{Capability: event.CapTextToImage, Model: "garbage"}),
		heldOrch,
		orch("hung", hung.srv.URL, ClassPrice{Capability: event.CapLLM, Model: "hung"}),
		orch("broken", broken.srv.URL, ClassPrice{Capability: event.CapTextToImage, Model: "broken"}),
		orch("refused", refusedURL(t), ClassPrice{Capability: event.CapTextToImage, Model: "refused"}),
	)
	cfg.AttemptTimeout, cfg.RequestTimeout = time.Minute, time.Minute // held requests wait for release
	llm := cfg.Capabilities[event.CapLLM]
	llm.AttemptTimeout = 200 * time.Millisecond // the hung orchestrator's
	cfg.Capabilities[event.CapLLM] = llm
	cfg.MaxBodyBytes, cfg.BodyMemoryPerKey, cfg.BodyMemory = 1000, 1000, 1900
	cfg.Shaping.QueueSize = 1
	const key2, key3 = "lg-test-key-two-0123456789", "lg-test-key-three-0123456789"
	cfg.APIKeys = append(cfg.APIKeys, APIKeyConfig{ID: "key-2", SHA256: keyHash(key2)}, APIKeyConfig{ID: "key-3", SHA256: keyHash(key3)})
	sc := DefaultServerConfig()
	sc.ReadHeaderTimeout, sc.BodyTimeout, sc.MaxHeaderBytes, sc.MaxConns = 300*time.Millisecond, 300*time.Millisecond, 2<<10, 64
	s := newServed(t, cfg, sc)

	// Two requests that hold body memory until release: key-1's whole
	// allowance, and key-2's 800 bytes: 1800 of the router's 1900.
	post := func(key, model string, pad int) string {
		b := fmt.Sprintf(`{"prompt":"%s","model_id":%q}`, strings.Repeat("x", pad), model)
		return fmt.Sprintf("POST /text-to-image HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", key, len(b), b)
	}
	for i, key := range []string{testKey, key2} {
		c := s.dial(t)
		pad := 1000 - len(`{"prompt":"","model_id":"held"}`) - 200*i
		if _, err := io.WriteString(c, post(key, "held", pad)); err != nil {
			t.Fatal(err)
		}
		testenv.Eventually(t, 10*time.Second, "a held request at the orchestrator", func() bool { return held.hits.Load() == int64(i+1) })
	}

	auth := "Authorization: Bearer " + testKey + "\r\n"
	tests := []struct {
		name   string
		send   string
		code   int
		reason string
	}{
		{"no key", "POST /llm HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", 401, reasonMissingKey},
		{"wrong key", "POST /llm HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\nContent-Length: 2\r\n\r\n{}", 403, reasonWrongKey},
		{"unknown path", "POST /text-to-music HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: 2\r\n\r\n{}", 404, reasonNotFound},
		{"wrong method", "GET /v1/text-to-image HTTP/1.1\r\nHost: x\r\n\r\n", 405, reasonMethodNotAllowed},
		{"not JSON", "POST /llm HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}", 415, reasonMediaType},
		{"body too large", "POST /llm HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key3 + "\r\nContent-Length: 5000\r\n\r\n{", 413, reasonTooLarge},
		{"bad JSON", post(key3, "m1", 0)[:len(post(key3, "m1", 0))-1] + " ", 400, "invalid_json"},
		{"unknown model", post(key3, "m2", 0), 404, reasonUnknownModel},
		{"key over its body memory", post(testKey, "m1", 10), 429, reasonBodyMemoryKey},
		{"router over its body memory", post(key3, "m1", 100), 503, reasonBodyMemory},
		{"body too slow", "POST /llm HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key3 + "\r\nContent-Length: 100\r\n\r\n{", 408, reasonBodyTimeout},
		{"headers too slow", "POST /llm HTTP/1.1\r\nHost: x\r\n", 408, reasonHeaderTimeout},
		{"headers too large", "POST /llm HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 8<<10) + "\r\n\r\n", 431, reasonHeaderTooLarge},
		{"not HTTP", "HELLO\r\n\r\n", 400, reasonBadRequest},
		{"orchestrator refuses", post(key3, "refused", 0), 503, "connect"},
		{"orchestrator resets", post(key3, "broken", 0), 503, "reset"},
		{"orchestrator speaks no HTTP", post(key3, "garbage", 0), 502, "transport"},
		{"orchestrator too slow", "POST /llm HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key3 + "\r\nContent-Length: 30\r\n\r\n{\"messages\":[],\"model\":\"hung\"}", 504, "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A handler releases its body after the answer is out: wait
			// for the previous case's, so only the held 1800 bytes count.
			testenv.Eventually(t, 10*time.Second, "only the held bodies reserved", func() bool {
				_, all := s.mem.inUse("")
				return all == 1800
			})
			c := s.dial(t)
			if _, err := io.WriteString(c, tt.send); err != nil {
				t.Fatal(err)
			}
			readJSONError(t, c, bufio.NewReader(c), tt.code, tt.reason)
		})
	}

	// Shed at the edge: the held orchestrator is at its limit of 2, one
	// more request waits in the edge queue (size 1), the next is shed.
	queued := s.dial(t)
	if _, err := io.WriteString(queued, post(key3, "held", 0)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 10*time.Second, "a request in the edge queue", func() bool {
		return value(t, s.m.queueLength) == 1
	})
	c := s.dial(t)
	if _, err := io.WriteString(c, post(key3, "held", 0)); err != nil {
		t.Fatal(err)
	}
	readJSONError(t, c, bufio.NewReader(c), http.StatusServiceUnavailable, ShedQueueFull)

	// Past the connection cap (64, three held): 503 too_many_connections.
	var conns []net.Conn
	for range sc.MaxConns {
		conns = append(conns, s.dial(t))
	}
	answered := 0
	testenv.Eventually(t, 10*time.Second, "a connection over the cap answered", func() bool {
		for i, c := range conns {
			if c == nil {
				continue
			}
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				continue // an accepted connection: nothing to read
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if e := apiError(t, resp.Header, b); resp.StatusCode != http.StatusServiceUnavailable || e.Reason != reasonTooManyConns {
				t.Fatalf("over the cap: got %d %q, want 503 too_many_connections", resp.StatusCode, b)
			}
			conns[i] = nil
			answered++
		}
		return answered > 0
	})
	once.Do(func() { close(release) })
}
