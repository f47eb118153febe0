package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/loopgate/loopgate/admin"
	"github.com/loopgate/loopgate/event"
	"github.com/loopgate/loopgate/event/eventtest"
	"github.com/loopgate/loopgate/internal/testenv"
	"github.com/loopgate/loopgate/optimizer"
	"github.com/loopgate/loopgate/warehouse"
)

// devSurface is `loopgate dev`'s admin server (devAdmin) over an embedded
// warehouse holding a few outcomes, with one read and one admin token.
type devSurface struct {
	srv   *admin.Server
	h     http.Handler
	store *warehouse.Store
	osvc  *optimizerService
	rsvc  *routerService
	read  string // secrets
	adm   string
}

func newDevSurface(t *testing.T) *devSurface {
	t.Helper()
	cfg := DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.Warehouse.Backend, cfg.Warehouse.LibPath = warehouse.BackendEmbedded, testenv.ChdbLib(t)
	cfg.Kafka.Brokers = []string{"127.0.0.1:1"} // never reached: nothing here publishes
	read, readHash, err := admin.GenerateToken(strings.NewReader(strings.Repeat("r", 64)))
	if err != nil {
		t.Fatal(err)
	}
	adm, admHash, err := admin.GenerateToken(strings.NewReader(strings.Repeat("a", 64)))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Admin.TokenEnv = ""
	cfg.Admin.Tokens = []admin.TokenConfig{{ID: "grafana", Role: "read", SHA256: readHash}, {ID: "ops", Role: "admin", SHA256: admHash}}
	p := process{log: slog.New(slog.DiscardHandler), reg: prometheus.NewRegistry()}
	ctx := context.Background()
	store, err := openWarehouse(ctx, cfg, p.deps("warehouse"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	outs := make([]event.Outcome, 20)
	for i := range outs {
		outs[i] = eventtest.Outcome(1, i)
	}
	if err := store.WriteOutcomes(ctx, "seed", outs); err != nil {
		t.Fatal(err)
	}
	plog, err := policyLog(cfg, cfg.Kafka.Brokers, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plog.Close() })
	cfg.Orchestrators = []event.Orchestrator{{ID: "a", URL: "http://127.0.0.1:1", Classes: []event.ClassPrice{{Capability: event.CapLLM, Model: "m", PricePerUnit: 1e-6}}}}
	rsvc, err := newRouterService(cfg, cfg.RouterConfig(), cfg.Kafka.Brokers, plog, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := rsvc.enableKeys(ctx, cfg, store, p); err != nil { // as dev does
		t.Fatal(err)
	}
	osvc, err := newOptimizerService(cfg.OptimizerConfig(), cfg.Livepeer.Priors, plog, store, p)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := devAdmin(cfg, cfg.OptimizerConfig(), p, rsvc, osvc, store)
	if err != nil {
		t.Fatal(err)
	}
	return &devSurface{srv: srv, h: srv.Handler(), store: store, osvc: osvc, rsvc: rsvc, read: read, adm: adm}
}

func (d *devSurface) do(t *testing.T, method, target, token string, hdr map[string]string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	d.h.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

func jsonError(body string) string {
	var e event.APIError
	if json.Unmarshal([]byte(body), &e) != nil {
		return ""
	}
	return e.Error.Message
}

// TestDevAdminNeedsToken: every route of dev's admin server but the health
// checks answers 401 with a JSON error without a token, and admin routes
// answer 403 to a read token.
func TestDevAdminNeedsToken(t *testing.T) {
	d := newDevSurface(t)
	routes := d.srv.Routes()
	if len(routes) < 6 {
		t.Fatalf("got %d routes, want the router's, the optimizer's and /query: %v", len(routes), routes)
	}
	for _, r := range routes {
		method, path, _ := strings.Cut(r.Pattern, " ")
		path = strings.TrimSuffix(path, "/") + map[bool]string{true: "/webhook", false: ""}[strings.HasSuffix(path, "/")]
		code, body := d.do(t, method, path, "", nil)
		switch r.Role {
		case admin.RolePublic:
			if code == http.StatusUnauthorized {
				t.Errorf("%s is public but answered 401", r.Pattern)
			}
		default:
			if code != http.StatusUnauthorized || jsonError(body) == "" {
				t.Errorf("%s without a token: got %d %q, want 401 with a JSON error", r.Pattern, code, body)
			}
		}
		if r.Role == admin.RoleAdmin {
			if code, body := d.do(t, method, path, d.read, nil); code != http.StatusForbidden || jsonError(body) == "" {
				t.Errorf("%s with a read token: got %d %q, want 403 with a JSON error", r.Pattern, code, body)
			}
		}
	}
	if code, _ := d.do(t, http.MethodGet, "/healthz", "", nil); code != http.StatusOK {
		t.Errorf("healthz: got %d, want 200", code)
	}
}

// TestDevAdminAttacks are the attacks found when the dev admin port was
// probed: each is refused, and the tables are intact afterwards.
func TestDevAdminAttacks(t *testing.T) {
	d := newDevSurface(t)
	count := func() int64 {
		rows, err := d.store.Query(context.Background(), "SELECT count() FROM requests")
		if err != nil {
			t.Fatal(err)
		}
		return int64(rows.Values[0][0].(uint64))
	}
	before := count()
	secret := t.TempDir() + "/outfile"
	for _, sql := range []string{
		"SELECT 1; DROP TABLE requests",
		"DROP TABLE requests",
		"SELECT * FROM file('/etc/passwd', 'LineAsString', 'line String')",
		"SELECT * FROM url('http://127.0.0.1:1/', CSV, 'a String')",
		"SELECT 1 INTO OUTFILE '" + secret + "'",
		"SELECT * FROM remote('127.0.0.1', system.one)",
		"SELECT 1 SETTINGS readonly = 0",
	} {
		code, body := d.do(t, http.MethodGet, "/query?sql="+url.QueryEscape(sql), d.read, nil)
		if code != http.StatusBadRequest || jsonError(body) == "" {
			t.Errorf("%q: got %d %q, want 400 with the reason", sql, code, body)
		}
	}
	if _, err := os.Stat(secret); err == nil {
		t.Error("INTO OUTFILE wrote its file")
	}
	if got := count(); got != before {
		t.Errorf("requests: got %d rows after the attacks, want %d", got, before)
	}
	if code, body := d.do(t, http.MethodGet, "/query?sql="+url.QueryEscape("SELECT count() FROM requests"), d.read, nil); code != http.StatusOK || !strings.Contains(body, "rows") {
		t.Errorf("a plain SELECT with a read token: got %d %q, want 200", code, body)
	}

	// No state change by GET, and none from another site's page.
	lambda := d.osvc.opt.Lambda()
	d.do(t, http.MethodGet, "/lambda?lambda=0.9", d.adm, nil)
	for _, hdr := range []map[string]string{
		{"Origin": "https://evil.example"},
		{"Sec-Fetch-Site": "cross-site"},
	} {
		if code, _ := d.do(t, http.MethodPost, "/lambda?lambda=0.9", d.adm, hdr); code != http.StatusForbidden {
			t.Errorf("POST /lambda with %v: got %d, want 403", hdr, code)
		}
	}
	if got := d.osvc.opt.Lambda(); got != lambda {
		t.Fatalf("λ moved to %v by a GET or a cross-site POST, want %v", got, lambda)
	}

	// The operator's change goes through, audited with the token's id.
	if code, body := d.do(t, http.MethodPost, "/lambda?lambda=0.25", d.adm, nil); code != http.StatusOK {
		t.Fatalf("POST /lambda with the admin token: got %d %q", code, body)
	}
	if got := d.osvc.opt.Lambda(); got != 0.25 {
		t.Fatalf("λ: got %v, want 0.25", got)
	}
	var rows *warehouse.Rows
	testenv.Eventually(t, 10*time.Second, "one audit row for the λ change", func() bool {
		var err error
		rows, err = d.store.Query(context.Background(), "SELECT actor, action, detail FROM audit")
		return err == nil && rows.Len() == 1
	})
	if r := rows.Values[0]; r[0] != "ops" || r[1] != "config.lambda" || !strings.Contains(r[2].(string), `"new":0.25`) {
		t.Fatalf("audit row: got %v, want ops, config.lambda, new 0.25", r)
	}
}

// TestClassLambdaEndpoint: an admin sets one class's own λ and clears it,
// each change audited with the old and new value.
func TestClassLambdaEndpoint(t *testing.T) {
	d := newDevSurface(t)
	const class = "llm/m"
	if code, body := d.do(t, http.MethodPost, "/lambda?class="+url.QueryEscape(class)+"&lambda=0.9", d.adm, nil); code != http.StatusOK || !strings.Contains(body, `"lambda":0.9`) {
		t.Fatalf("set class λ: got %d %s", code, body)
	}
	if got := d.osvc.opt.ClassLambdas(); len(got) != 1 || got[0].Capability != "llm" || got[0].Model != "m" || got[0].Lambda != 0.9 {
		t.Fatalf("class λ: got %+v, want llm/m at 0.9", got)
	}
	for _, bad := range []string{"/lambda?class=nomodel&lambda=0.5", "/lambda?class=llm/m&lambda=2"} {
		if code, _ := d.do(t, http.MethodPost, bad, d.adm, nil); code != http.StatusBadRequest {
			t.Errorf("POST %s: got %d, want 400", bad, code)
		}
	}
	if code, body := d.do(t, http.MethodPost, "/lambda?class="+url.QueryEscape(class)+"&clear=1", d.adm, nil); code != http.StatusOK {
		t.Fatalf("clear class λ: got %d %s", code, body)
	}
	if got := d.osvc.opt.ClassLambdas(); len(got) != 0 {
		t.Fatalf("after clear: got %+v, want none", got)
	}
	var rows *warehouse.Rows
	testenv.Eventually(t, 10*time.Second, "two audit rows for the class λ", func() bool {
		var err error
		rows, err = d.store.Query(context.Background(), "SELECT actor, detail FROM audit WHERE action = 'config.lambda.class' ORDER BY time_ms")
		return err == nil && rows.Len() == 2
	})
	if rows.Values[0][0] != "ops" || !strings.Contains(rows.Values[0][1].(string), `"new":{"class":"llm/m","lambda":0.9}`) ||
		!strings.Contains(rows.Values[1][1].(string), `"new":{"class":"llm/m","lambda":null}`) {
		t.Errorf("audit rows: got %v", rows.Values)
	}
}

// TestReloadIsAudited: the optimizer's SIGHUP reload writes a config.reload
// row with the catalog before and after.
func TestReloadIsAudited(t *testing.T) {
	d := newDevSurface(t)
	old := optimizer.Catalog{Orchestrators: []event.Orchestrator{{ID: "a"}}}
	next := optimizer.Catalog{Orchestrators: []event.Orchestrator{{ID: "a"}, {ID: "b"}}}
	if err := auditReload(context.Background(), d.store, old, next); err != nil {
		t.Fatal(err)
	}
	rows, err := d.store.Query(context.Background(), "SELECT actor, detail FROM audit WHERE action = 'config.reload'")
	if err != nil {
		t.Fatal(err)
	}
	if rows.Len() != 1 || rows.Values[0][0] != "sighup" || !strings.Contains(rows.Values[0][1].(string), `"new":{"orchestrators":["a","b"]`) {
		t.Fatalf("audit: got %v, want one sighup row with the new orchestrators", rows.Values)
	}
}
