package router

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode) // gin's own global; keeps route listings out of test output
	os.Exit(m.Run())
}

// testKey is the API key the tests present; the config holds its hash.
const testKey = "lg-test-key-0123456789"

func keyHash(k string) string {
	d := sha256.Sum256([]byte(k))
	return hex.EncodeToString(d[:])
}

// fakeClock is a settable clock; tests advance it to make latencies and
// ejection expiry deterministic.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fakePublisher records what the router publishes. The router publishes
// after the response is written, so a test that has its response waits for
// the outcome (wait) rather than reading it at once.
type fakePublisher struct {
	mu    sync.Mutex
	calls int
	keys  []string
	outs  []event.Outcome
	bad   []error // outcomes that did not decode
	err   error
	ch    chan struct{}
}

func (p *fakePublisher) Publish(key, value []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	if p.ch != nil {
		close(p.ch)
		p.ch = nil
	}
	if p.err != nil {
		return p.err
	}
	o, err := event.DecodeOutcome(value)
	if err != nil {
		p.bad = append(p.bad, err)
		return err
	}
	p.keys = append(p.keys, string(key))
	p.outs = append(p.outs, o)
	return nil
}

// wait blocks until Publish has been called n times (failing the test
// after 10 s) and returns the outcomes.
func (p *fakePublisher) wait(t *testing.T, n int) []event.Outcome {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		p.mu.Lock()
		if p.calls >= n {
			outs, bad := append([]event.Outcome(nil), p.outs...), p.bad
			p.mu.Unlock()
			if len(bad) > 0 {
				t.Fatalf("published outcomes that do not decode: %v", bad)
			}
			return outs
		}
		if p.ch == nil {
			p.ch = make(chan struct{})
		}
		ch := p.ch
		p.mu.Unlock()
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("waited 10 s for %d outcomes", n)
		}
	}
}

// outcomes returns what was published so far, without waiting.
func (p *fakePublisher) outcomes() []event.Outcome {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]event.Outcome(nil), p.outs...)
}

// upstream is a fake orchestrator: an httptest server whose behaviour a
// test sets, counting the requests it receives.
type upstream struct {
	srv  *httptest.Server
	hits atomic.Int64
	mu   sync.Mutex
	fn   http.HandlerFunc
	last *http.Request // last request, with its body read into lastBody
	body []byte
}

func newUpstream(t *testing.T, fn http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{fn: fn}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.last, u.body = r, b
		fn := u.fn
		u.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
		fn(w, r)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) set(fn http.HandlerFunc) {
	u.mu.Lock()
	u.fn = fn
	u.mu.Unlock()
}

func (u *upstream) lastRequest() (*http.Request, []byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last, u.body
}

// Behaviours of fake orchestrators.
func okJSON(body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}
}

func status(code int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}
}

// hang blocks until the router gives up on the request.
func hang(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

// advancing answers 200 after moving the fake clock, so the attempt has a
// deterministic latency.
func advancing(c *fakeClock, d time.Duration, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c.Advance(d)
		okJSON(body)(w, r)
	}
}

// refusedURL returns a URL on which nothing listens: connections are refused.
func refusedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return "http://" + addr
}

func orch(id, url string, classes ...ClassPrice) OrchestratorConfig {
	return OrchestratorConfig{ID: id, URL: url, Region: "FRA", Classes: classes}
}

// t2i is the class most tests use.
func t2i(price float64) ClassPrice {
	return ClassPrice{Capability: event.CapTextToImage, Model: "m1", PricePerUnit: price}
}

func testConfig(orchs ...OrchestratorConfig) Config {
	cfg := DefaultConfig()
	cfg.GatewayID, cfg.GatewayRegion = "gw-test", "FRA"
	cfg.Orchestrators = orchs
	cfg.APIKeys = []APIKeyConfig{{ID: "key-1", SHA256: keyHash(testKey), Customer: "acme", ClientRegion: "LON"}}
	cfg.AttemptTimeout = 2 * time.Second
	cfg.RequestTimeout = 5 * time.Second
	cfg.FastFailure = 100 * time.Millisecond
	cc := cfg.Capabilities[event.CapTextToImage]
	cc.CustomerPricePerUnit = 2e-9
	cfg.Capabilities[event.CapTextToImage] = cc
	return cfg
}

type testRouter struct {
	*Router
	pub   *fakePublisher
	clock *fakeClock
	reg   *prometheus.Registry
	srv   *httptest.Server
}

func newTestRouter(t *testing.T, cfg Config) *testRouter {
	t.Helper()
	tr := &testRouter{pub: &fakePublisher{}, clock: newFakeClock(), reg: prometheus.NewRegistry()}
	r, err := New(cfg, tr.pub, deps.Deps{Registerer: tr.reg, Rand: rand.New(rand.NewPCG(1, 2)), Clock: tr.clock.Now})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	tr.Router = r
	tr.srv = httptest.NewServer(r.Handler())
	t.Cleanup(func() { tr.srv.Close(); _ = r.Close() })
	return tr
}

// post sends a request to the router and returns status, headers and body.
func (tr *testRouter) post(t *testing.T, path, contentType string, body []byte, header map[string]string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, tr.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := tr.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// postT2I sends a text-to-image request for model m1.
func (tr *testRouter) postT2I(t *testing.T) (int, []byte) {
	t.Helper()
	code, _, b := tr.post(t, "/text-to-image", "application/json", []byte(`{"prompt":"a cat","model_id":"m1"}`), nil)
	return code, b
}

// eventually waits, up to 10 s, for cond: for effects that follow the
// response (metrics counted after the outcome is handed over).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10 s for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// value reads a counter or gauge.
func value(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	if err := (<-ch).Write(&m); err != nil {
		t.Fatal(err)
	}
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatal("not a counter or gauge")
	return 0
}

// errorMessage decodes a {"error":{"message":...}} body.
func errorMessage(t *testing.T, b []byte) string {
	t.Helper()
	var e event.APIError
	if err := json.Unmarshal(b, &e); err != nil || e.Error.Message == "" {
		t.Fatalf("got body %q, want {\"error\":{\"message\":...}}", b)
	}
	return e.Error.Message
}

// apiError decodes the one error shape and checks its Content-Type.
func apiError(t *testing.T, h http.Header, b []byte) event.APIErrorDetail {
	t.Helper()
	if ct := h.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("got Content-Type %q for %q, want application/json", ct, b)
	}
	var e event.APIError
	if err := json.Unmarshal(b, &e); err != nil || e.Error.Message == "" {
		t.Fatalf("got body %q, want {\"error\":{\"message\":...}}", b)
	}
	return e.Error
}
