package admin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/loopgate/loopgate/deps"
	"github.com/loopgate/loopgate/event"
)

const (
	readSecret  = "read-secret-0123456789"
	adminSecret = "admin-secret-0123456789"
)

// fakeAuditor records audit records, or fails.
type fakeAuditor struct {
	mu   sync.Mutex
	recs []AuditRecord
	err  error
}

func (a *fakeAuditor) WriteAudit(_ context.Context, rec AuditRecord) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.err != nil {
		return a.err
	}
	a.recs = append(a.recs, rec)
	return nil
}

// fixture is a server with a read and an admin token, GET /policy (read),
// POST /lambda (admin, audited) and its log.
type fixture struct {
	srv     *Server
	reg     *prometheus.Registry
	logs    *bytes.Buffer
	auditor *fakeAuditor
	lambda  *float64
}

func newFixture(t *testing.T, mut func(*Config, *Hooks)) *fixture {
	t.Helper()
	f := &fixture{reg: prometheus.NewRegistry(), logs: &bytes.Buffer{}, auditor: &fakeAuditor{}, lambda: new(float64)}
	*f.lambda = 0.5
	cfg := DefaultConfig()
	cfg.Tokens = []TokenConfig{
		{ID: "grafana", Role: "read", SHA256: HashSecret(readSecret)},
		{ID: "ops", Role: "admin", SHA256: HashSecret(adminSecret)},
	}
	cfg.TokenEnv = ""
	cfg.AllowedOrigins = []string{"https://console.example.com"}
	hooks := Hooks{Gatherer: f.reg, Auditor: f.auditor}
	d := deps.Deps{
		Logger:     slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer: f.reg,
		Clock:      func() time.Time { return time.Unix(1700000000, 0) },
	}
	if mut != nil {
		mut(&cfg, &hooks)
	}
	srv, err := New(cfg, hooks, d)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv.Handle("GET /policy", RoleRead, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteJSON(w, http.StatusOK, map[string]any{"lambda": *f.lambda, "who": TokenID(r.Context())})
	}))
	srv.Handle("POST /lambda", RoleAdmin, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v float64
		if _, err := fmt.Sscan(r.URL.Query().Get("lambda"), &v); err != nil {
			WriteError(w, http.StatusBadRequest, "want ?lambda= a number")
			return
		}
		if !AuditOrRefuse(w, r, "config.lambda", *f.lambda, v) {
			return
		}
		*f.lambda = v
		WriteJSON(w, http.StatusOK, map[string]float64{"lambda": v})
	}))
	f.srv = srv
	t.Cleanup(func() {
		// No secret ever reaches the log.
		for _, s := range []string{readSecret, adminSecret, "wrong-secret-0123456789"} {
			if strings.Contains(f.logs.String(), s) {
				t.Errorf("log contains a secret: %s", f.logs.String())
			}
		}
	})
	return f
}

type call struct {
	method, path string
	header       map[string]string
}

func (f *fixture) do(c call) *httptest.ResponseRecorder {
	req := httptest.NewRequest(c.method, "http://127.0.0.1:9464"+c.path, nil)
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	f.srv.Handler().ServeHTTP(rec, req)
	return rec
}

func bearer(s string) string { return "Bearer " + s }

// errorMessage decodes {"error":{"message":...}} and fails on another body.
func errorMessage(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type: got %q, want application/json", ct)
	}
	var b event.APIError
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || b.Error.Message == "" {
		t.Errorf("body: got %q, want a JSON error", rec.Body.String())
	}
	return b.Error.Message
}

func TestGuard(t *testing.T) {
	tests := []struct {
		name   string
		call   call
		code   int
		reason string // the refusal counted; "" for none
	}{
		{"no token", call{"GET", "/policy", nil}, 401, reasonMissingToken},
		{"empty bearer", call{"GET", "/policy", map[string]string{"Authorization": "Bearer "}}, 401, reasonMissingToken},
		{"unknown scheme", call{"GET", "/policy", map[string]string{"Authorization": "Token " + readSecret}}, 401, reasonMissingToken},
		{"wrong token", call{"GET", "/policy", map[string]string{"Authorization": bearer("wrong-secret-0123456789")}}, 401, reasonInvalidToken},
		{"hash as token", call{"GET", "/policy", map[string]string{"Authorization": bearer(HashSecret(readSecret))}}, 401, reasonInvalidToken},
		{"read token reads", call{"GET", "/policy", map[string]string{"Authorization": bearer(readSecret)}}, 200, ""},
		{"lower-case scheme", call{"GET", "/policy", map[string]string{"Authorization": "bearer " + readSecret}}, 200, ""},
		{"HEAD is a read", call{"HEAD", "/policy", map[string]string{"Authorization": bearer(readSecret)}}, 200, ""},
		{"admin token reads", call{"GET", "/policy", map[string]string{"Authorization": bearer(adminSecret)}}, 200, ""},
		{"basic with the secret as password", call{"GET", "/policy", map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte("x:"+readSecret))}}, 200, ""},
		{"basic with a wrong password", call{"GET", "/policy", map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(readSecret+":x"))}}, 401, reasonInvalidToken},
		{"read token cannot change", call{"POST", "/lambda?lambda=0.2", map[string]string{"Authorization": bearer(readSecret)}}, 403, reasonRole},
		{"admin token changes", call{"POST", "/lambda?lambda=0.2", map[string]string{"Authorization": bearer(adminSecret)}}, 200, ""},
		{"mutation without token", call{"POST", "/lambda?lambda=0.2", nil}, 401, reasonMissingToken},
		{"mutation from its own origin", call{"POST", "/lambda?lambda=0.2", map[string]string{"Authorization": bearer(adminSecret), "Origin": "http://127.0.0.1:9464", "Sec-Fetch-Site": "same-origin"}}, 200, ""},
		{"mutation from an allowed origin", call{"POST", "/lambda?lambda=0.2", map[string]string{"Authorization": bearer(adminSecret), "Origin": "https://console.example.com", "Sec-Fetch-Site": "cross-site"}}, 200, ""},
		{"read from an allowed origin", call{"GET", "/policy", map[string]string{"Authorization": bearer(readSecret), "Origin": "https://console.example.com", "Sec-Fetch-Site": "cross-site"}}, 200, ""},
		{"mutation from an allowed origin, no fetch metadata", call{"POST", "/lambda?lambda=0.2", map[string]string{"Authorization": bearer(adminSecret), "Origin": "https://console.example.com"}}, 200, ""},
		{"mutation from another origin", call{"POST", "/lambda?lambda=0.2", map[string]string{"Authorization": bearer(adminSecret), "Origin": "http://evil.example"}}, 403, reasonCrossSite},
		{"mutation from a null origin", call{"POST", "/lambda?lambda=0.2", map[string]string{"Authorization": bearer(adminSecret), "Origin": "null"}}, 403, reasonCrossSite},
		{"mutation cross-site", call{"POST", "/lambda?lambda=0.2", map[string]string{"Authorization": bearer(adminSecret), "Sec-Fetch-Site": "cross-site"}}, 403, reasonCrossSite},
		{"mutation same-site from another port", call{"POST", "/lambda?lambda=0.2", map[string]string{"Authorization": bearer(adminSecret), "Sec-Fetch-Site": "same-site", "Origin": "http://127.0.0.1:3000"}}, 403, reasonCrossSite},
		{"read cross-site", call{"GET", "/policy", map[string]string{"Authorization": bearer(readSecret), "Sec-Fetch-Site": "cross-site"}}, 403, reasonCrossSite},
		{"mutation by GET", call{"GET", "/lambda?lambda=0.2", map[string]string{"Authorization": bearer(adminSecret)}}, 405, ""},
		{"unknown path", call{"GET", "/nope", nil}, 404, ""},
		{"health without token", call{"GET", "/healthz", nil}, 200, ""},
		{"health cross-site", call{"GET", "/healthz", map[string]string{"Sec-Fetch-Site": "cross-site"}}, 200, ""},
		{"metrics without token", call{"GET", "/metrics", nil}, 401, reasonMissingToken},
		{"metrics with a read token", call{"GET", "/metrics", map[string]string{"Authorization": bearer(readSecret)}}, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, nil)
			rec := f.do(tc.call)
			if rec.Code != tc.code {
				t.Fatalf("%s %s: got %d %s, want %d", tc.call.method, tc.call.path, rec.Code, rec.Body.String(), tc.code)
			}
			if tc.code >= 400 {
				msg := errorMessage(t, rec)
				for _, s := range []string{readSecret, adminSecret} {
					if strings.Contains(msg, s) {
						t.Errorf("error message %q contains a secret", msg)
					}
				}
			}
			if got := rec.Header().Get("WWW-Authenticate"); (tc.code == 401) != strings.HasPrefix(got, "Bearer") {
				t.Errorf("WWW-Authenticate: got %q, want Bearer on 401 only", got)
			}
			for _, r := range []string{reasonMissingToken, reasonInvalidToken, reasonRole, reasonCrossSite, reasonAudit} {
				want := 0.0
				if r == tc.reason {
					want = 1
				}
				if got := counterValue(t, f.srv.refused.WithLabelValues(r)); got != want {
					t.Errorf("loopgate_admin_refused_total{reason=%q}: got %v, want %v", r, got, want)
				}
			}
			changed := *f.lambda != 0.5
			if wantChange := tc.call.method == "POST" && tc.code == 200; changed != wantChange {
				t.Errorf("λ changed: got %v, want %v", changed, wantChange)
			}
		})
	}
}

func TestRefusalLogs(t *testing.T) {
	f := newFixture(t, nil)
	req := httptest.NewRequest("GET", "/policy", nil)
	req.RemoteAddr = "192.0.2.7:5555"
	req.Header.Set("Authorization", bearer("wrong-secret-0123456789"))
	f.srv.Handler().ServeHTTP(httptest.NewRecorder(), req)
	req = httptest.NewRequest("POST", "/lambda?lambda=1", nil)
	req.RemoteAddr = "192.0.2.8:5555"
	req.Header.Set("Authorization", bearer(readSecret))
	f.srv.Handler().ServeHTTP(httptest.NewRecorder(), req)
	logs := f.logs.String()
	for _, want := range []string{
		"reason=invalid_token remote=192.0.2.7", "fingerprint=" + fingerprint("wrong-secret-0123456789"),
		"reason=role remote=192.0.2.8", "token=grafana",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log: got %s, want it to contain %q", logs, want)
		}
	}
}

func TestPublicMetrics(t *testing.T) {
	f := newFixture(t, func(c *Config, _ *Hooks) { c.PublicMetrics = true })
	rec := f.do(call{"GET", "/metrics", nil})
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "loopgate_admin_refused_total") {
		t.Errorf("GET /metrics: got %d %q, want 200 with loopgate_admin_refused_total", rec.Code, rec.Body.String())
	}
}

// TestEveryProtectedRouteNeedsToken walks Routes: every route but the
// public ones answers 401 with a JSON error to a request without a token.
func TestEveryProtectedRouteNeedsToken(t *testing.T) {
	f := newFixture(t, nil)
	f.srv.Handle("DELETE /keys/{id}", RoleAdmin, http.NotFoundHandler())
	f.srv.Handle("POST /query", RoleRead, http.NotFoundHandler())
	var protected int
	for _, r := range f.srv.Routes() {
		method, path, _ := strings.Cut(r.Pattern, " ")
		path = strings.NewReplacer("{id}", "k1").Replace(path)
		rec := f.do(call{method, path, nil})
		if r.Role == RolePublic {
			if rec.Code != 200 {
				t.Errorf("%s (public): got %d, want 200", r.Pattern, rec.Code)
			}
			continue
		}
		protected++
		if rec.Code != 401 {
			t.Errorf("%s without a token: got %d, want 401", r.Pattern, rec.Code)
		}
		errorMessage(t, rec)
	}
	if protected != 5 {
		t.Errorf("protected routes: got %d, want 5 (metrics, policy, lambda, keys, query)", protected)
	}
}

func TestHealthAndReady(t *testing.T) {
	var notReady error
	f := newFixture(t, func(_ *Config, d *Hooks) {
		d.Ready = func(context.Context) error { return notReady }
	})
	for _, tc := range []struct {
		path  string
		ready error
		code  int
		body  string
	}{
		{"/healthz", nil, 200, `{"status":"ok"}`},
		{"/readyz", nil, 200, `{"status":"ready"}`},
		{"/readyz", errors.New("warehouse unreachable"), 503, `{"error":{"message":"not ready: warehouse unreachable"}}`},
	} {
		notReady = tc.ready
		rec := f.do(call{"GET", tc.path, nil})
		if rec.Code != tc.code || strings.TrimSpace(rec.Body.String()) != tc.body {
			t.Errorf("GET %s (ready %v): got %d %s, want %d %s", tc.path, tc.ready, rec.Code, rec.Body.String(), tc.code, tc.body)
		}
	}
}

func TestHandleRefusesUnsafeRoutes(t *testing.T) {
	tests := []struct {
		pattern string
		role    Role
	}{
		{"/lambda", RoleAdmin},       // no method: GET would reach it
		{"GET /lambda", RoleAdmin},   // a state change by GET
		{"HEAD /lambda", RoleAdmin},  // likewise
		{"POST /login", RolePublic},  // public routes are GET only
		{"GET /x", Role(7)},          // unknown role
		{"GET /healthz", RolePublic}, // already registered
	}
	for _, tc := range tests {
		t.Run(tc.pattern, func(t *testing.T) {
			f := newFixture(t, nil)
			defer func() {
				if recover() == nil {
					t.Errorf("Handle(%q, %v): got no panic, want one", tc.pattern, tc.role)
				}
			}()
			f.srv.Handle(tc.pattern, tc.role, http.NotFoundHandler())
		})
	}
	f := newFixture(t, nil)
	for _, p := range []string{"PUT /a", "PATCH /b", "DELETE /c"} {
		f.srv.Handle(p, RoleAdmin, http.NotFoundHandler()) // must not panic
	}
}

func TestTokenIDInContext(t *testing.T) {
	f := newFixture(t, nil)
	for secret, want := range map[string]string{readSecret: "grafana", adminSecret: "ops"} {
		rec := f.do(call{"GET", "/policy", map[string]string{"Authorization": bearer(secret)}})
		var body struct{ Who string }
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Who != want {
			t.Errorf("TokenID: got %q (%v), want %q", body.Who, err, want)
		}
	}
	if got := TokenID(context.Background()); got != "" {
		t.Errorf("TokenID outside a request: got %q, want empty", got)
	}
}

func TestAudit(t *testing.T) {
	t.Run("written before the change", func(t *testing.T) {
		f := newFixture(t, nil)
		rec := f.do(call{"POST", "/lambda?lambda=0.25", map[string]string{"Authorization": bearer(adminSecret)}})
		if rec.Code != 200 || *f.lambda != 0.25 {
			t.Fatalf("POST /lambda: got %d, λ %v; want 200, 0.25", rec.Code, *f.lambda)
		}
		want := AuditRecord{Time: time.Unix(1700000000, 0), Actor: "ops", Action: "config.lambda", Old: "0.5", New: "0.25"}
		if len(f.auditor.recs) != 1 || f.auditor.recs[0] != want {
			t.Errorf("audit records: got %+v, want [%+v]", f.auditor.recs, want)
		}
	})
	t.Run("refused when the record cannot be written", func(t *testing.T) {
		f := newFixture(t, nil)
		f.auditor.err = errors.New("clickhouse down")
		rec := f.do(call{"POST", "/lambda?lambda=0.25", map[string]string{"Authorization": bearer(adminSecret)}})
		if rec.Code != 503 || *f.lambda != 0.5 {
			t.Fatalf("POST /lambda with a failing audit log: got %d, λ %v; want 503, 0.5 unchanged", rec.Code, *f.lambda)
		}
		if msg := errorMessage(t, rec); strings.Contains(msg, "clickhouse down") {
			t.Errorf("message %q shows the audit log's internal error", msg)
		}
		if got := counterValue(t, f.srv.refused.WithLabelValues(reasonAudit)); got != 1 {
			t.Errorf("refused{reason=audit}: got %v, want 1", got)
		}
	})
	t.Run("refused without an auditor", func(t *testing.T) {
		f := newFixture(t, func(_ *Config, d *Hooks) { d.Auditor = nil })
		rec := f.do(call{"POST", "/lambda?lambda=0.25", map[string]string{"Authorization": bearer(adminSecret)}})
		if rec.Code != 503 || *f.lambda != 0.5 {
			t.Fatalf("POST /lambda without an auditor: got %d, λ %v; want 503, 0.5 unchanged", rec.Code, *f.lambda)
		}
	})
	t.Run("refused outside the server", func(t *testing.T) {
		if err := Audit(context.Background(), "config.lambda", 1, 2); !errors.Is(err, ErrAuditUnavailable) {
			t.Errorf("Audit without a request: got %v, want ErrAuditUnavailable", err)
		}
	})
	t.Run("unencodable value", func(t *testing.T) {
		f := newFixture(t, nil)
		var err error
		f.srv.Handle("POST /bad", RoleAdmin, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			err = Audit(r.Context(), "bad", make(chan int), 1)
		}))
		f.do(call{"POST", "/bad", map[string]string{"Authorization": bearer(adminSecret)}})
		if !errors.Is(err, ErrAuditUnavailable) || len(f.auditor.recs) != 0 {
			t.Errorf("Audit of a channel: got %v, %d records; want ErrAuditUnavailable, none", err, len(f.auditor.recs))
		}
	})
}

func TestServe(t *testing.T) {
	f := newFixture(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.srv.Serve(ctx, ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"status":"ok"}` {
		t.Errorf("GET /healthz: got %d %s, want 200 {\"status\":\"ok\"}", resp.StatusCode, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after cancel: got %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after cancel")
	}
}

func TestRunDisabled(t *testing.T) {
	f := newFixture(t, func(c *Config, _ *Hooks) { c.Addr = "" })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.srv.Run(ctx); err != nil {
		t.Errorf("Run with no addr: got %v, want nil", err)
	}
}

func TestNewRegistersOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := DefaultConfig()
	if _, err := New(cfg, Hooks{}, deps.Deps{Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg, Hooks{}, deps.Deps{Registerer: reg}); err == nil {
		t.Error("second New on one registry: got nil, want an error")
	}
}

// counterValue reads a counter (client_golang's testutil would add a
// module to go.mod for one call).
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestServeAnswersBelowTheHandlerInJSON: what net/http answers on its own
// on the admin port (431, 400, a header cut short) is the one JSON shape.
func TestServeAnswersBelowTheHandlerInJSON(t *testing.T) {
	f := newFixture(t, func(c *Config, _ *Hooks) { c.ReadHeaderTimeout = 300 * time.Millisecond })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	tests := []struct {
		name   string
		send   string
		code   int
		reason string
	}{
		{"header cut short", "GET /healthz HTTP/1.1\r\nHost: x\r\n", 408, "header_timeout"},
		{"headers too large", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", http.DefaultMaxHeaderBytes+8<<10) + "\r\n\r\n", 431, "header_too_large"},
		{"not HTTP", "HELLO\r\n\r\n", 400, "bad_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			go func() { _, _ = io.WriteString(c, tt.send) }()       // the server may answer before it has read all
			_ = c.SetReadDeadline(time.Now().Add(20 * time.Second)) // a bound on a hung test
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("want a %d answer: %v", tt.code, err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var e event.APIError
			if resp.StatusCode != tt.code || resp.Header.Get("Content-Type") != "application/json" || json.Unmarshal(b, &e) != nil || e.Error.Reason != tt.reason || e.Error.Message == "" {
				t.Fatalf("got %d %s %q, want %d application/json with reason %s", resp.StatusCode, resp.Header.Get("Content-Type"), b, tt.code, tt.reason)
			}
		})
	}
}
