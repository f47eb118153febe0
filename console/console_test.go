package console

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/loopgate/loopgate/admin"
	"github.com/loopgate/loopgate/dashboards"
	"github.com/loopgate/loopgate/deps"
)

const testSecret = "console-unit-test-secret-0123456789"

// newServer is an admin server with the console mounted and one read token.
func newServer(t *testing.T) *admin.Server {
	t.Helper()
	acfg := admin.DefaultConfig()
	acfg.TokenEnv = ""
	acfg.Tokens = []admin.TokenConfig{{ID: "viewer", Role: "read", SHA256: admin.HashSecret(testSecret)}}
	srv, err := admin.New(acfg, admin.Hooks{}, deps.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c, err := New(DefaultConfig(), deps.Deps{Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	c.Mount(srv)
	return srv
}

func TestRoutes(t *testing.T) {
	srv := newServer(t)
	for _, tc := range []struct {
		name, path string
		token      bool
		code       int
		ctype      string // prefix
		body       string // substring
	}{
		{"page without a token", "/console/", false, 200, "text/html", `<input id="token" type="password"`},
		{"page asked without its slash", "/console", false, 307, "", ""},
		{"index.html is the page's one URL", "/console/index.html", false, 301, "", ""},
		{"script", "/console/console.js", false, 200, "text/javascript", `"use strict"`},
		{"style", "/console/console.css", false, 200, "text/css", "--preview"},
		{"vendored uPlot", "/console/vendor/uplot/uPlot.iife.min.js", false, 200, "text/javascript", "uPlot"},
		{"vendored uPlot's licence", "/console/vendor/uplot/LICENSE", false, 200, "", "MIT License"},
		{"unknown asset", "/console/nope.js", false, 404, "", ""},
		{"charts need a token", "/console/charts.json", false, 401, "application/json", "bearer token is required"},
		{"charts with a read token", "/console/charts.json", true, 200, "application/json", `"charts":[`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, tc.path, nil)
			if tc.token {
				req.Header.Set("Authorization", "Bearer "+testSecret)
			}
			rec := httptest.NewRecorder()
			srv.Handler().ServeHTTP(rec, req)
			if rec.Code != tc.code {
				t.Fatalf("GET %s: got %d, want %d (%s)", tc.path, rec.Code, tc.code, rec.Body.String())
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, tc.ctype) {
				t.Errorf("GET %s: Content-Type %q, want %q…", tc.path, ct, tc.ctype)
			}
			if !strings.Contains(rec.Body.String(), tc.body) {
				t.Errorf("GET %s: body lacks %q", tc.path, tc.body)
			}
			if tc.code == 200 && !tc.token {
				if got := rec.Header().Get("Content-Security-Policy"); !strings.Contains(got, "frame-ancestors 'none'") || !strings.Contains(got, "default-src 'self'") {
					t.Errorf("GET %s: Content-Security-Policy %q, want self only and no frames", tc.path, got)
				}
			}
		})
	}
}

// TestRolesOnTheAdminServer: the page and its assets are the only public
// routes the console adds.
func TestRolesOnTheAdminServer(t *testing.T) {
	want := map[string]admin.Role{"GET /console/": admin.RolePublic, "GET /console/charts.json": admin.RoleRead}
	got := map[string]admin.Role{}
	for _, r := range newServer(t).Routes() {
		if strings.Contains(r.Pattern, "/console") {
			got[r.Pattern] = r.Role
		}
	}
	if len(got) != len(want) {
		t.Fatalf("console routes %v, want %v", got, want)
	}
	for p, role := range want {
		if got[p] != role {
			t.Errorf("%s: role %v, want %v", p, got[p], role)
		}
	}
}

func TestChartsJSON(t *testing.T) {
	req := httptest.NewRequest(http.MethodGet, "/console/charts.json", nil)
	req.Header.Set("Authorization", "Bearer "+testSecret)
	rec := httptest.NewRecorder()
	newServer(t).Handler().ServeHTTP(rec, req)
	var body struct {
		PollMs int64 `json:"poll_ms"`
		SLOMs  int64 `json:"slo_ms"`
		StepS  int64 `json:"step_s"`
		FromMs int64 `json:"from_ms"`
		ToMs   int64 `json:"to_ms"`
		Charts []struct{ ID, Kind, SQL string }
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	to := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	if body.ToMs != to.UnixMilli() || body.FromMs != to.Add(-15*time.Minute).UnixMilli() {
		t.Errorf("window %d..%d, want the last 15 minutes before %v", body.FromMs, body.ToMs, to)
	}
	if body.PollMs != 3000 || body.SLOMs != 2000 || body.StepS != 60 {
		t.Errorf("poll %d ms, slo %d ms, step %d s: want 3000, 2000, 60", body.PollMs, body.SLOMs, body.StepS)
	}
	if len(body.Charts) != len(Charts()) {
		t.Fatalf("got %d charts, want %d", len(body.Charts), len(Charts()))
	}
	for _, c := range body.Charts {
		if strings.Contains(c.SQL, "$") {
			t.Errorf("chart %s: SQL not expanded: %s", c.ID, c.SQL)
		}
		if c.Kind != "series" && c.Kind != "table" {
			t.Errorf("chart %s: kind %q", c.ID, c.Kind)
		}
	}
}

// TestChartsAreThePanels: a chart that names a Grafana panel has that
// panel's SQL, byte for byte.
func TestChartsAreThePanels(t *testing.T) {
	panels := map[string]string{}
	for _, d := range dashboards.All() {
		for _, p := range d.Panels {
			panels[d.UID+" / "+p.Title] = p.SQL
		}
	}
	for _, c := range Charts() {
		if c.Panel == "" {
			continue
		}
		t.Run(c.ID, func(t *testing.T) {
			want, ok := panels[c.Panel]
			if !ok {
				t.Fatalf("no panel %q in the dashboards", c.Panel)
			}
			if c.SQL != want {
				t.Errorf("SQL differs from the panel's:\ngot  %s\nwant %s", c.SQL, want)
			}
		})
	}
}

// TestExpandIsThePlugins: the console fills the macros in as the Grafana
// plugin does (dashboards.ExpandMacros after the frontend's
// $__conditionalAll with All selected and the slo_ms variable).
func TestExpandIsThePlugins(t *testing.T) {
	w := window{From: time.Unix(1767000000, 0), To: time.Unix(1767000900, 0), Step: time.Minute, SLO: "2500"}
	for _, c := range Charts() {
		t.Run(c.ID, func(t *testing.T) {
			got, err := expand(c.SQL, w)
			if err != nil {
				t.Fatal(err)
			}
			front := dashboards.ConditionalAll(c.SQL, map[string]string{"capability": "$__all"})
			front = strings.ReplaceAll(front, "$slo_ms", "2500")
			want, err := dashboards.ExpandMacros(front, dashboards.QueryContext{From: w.From, To: w.To, Interval: w.Step})
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("expanded:\ngot  %s\nwant %s", got, want)
			}
		})
	}
}

func TestExpandRefusesWhatItDoesNotKnow(t *testing.T) {
	w := window{From: time.Unix(0, 0), To: time.Unix(60, 0), Step: time.Minute, SLO: "1000"}
	for _, sql := range []string{
		"SELECT $__timeFilter_ms(t)",
		"SELECT 1 WHERE x = $customer",
		"SELECT $__conditionalAll(a IN (1, 2), $v",
	} {
		if got, err := expand(sql, w); err == nil {
			t.Errorf("expand(%q) = %q, want an error", sql, got)
		}
	}
}

func TestSLOExpr(t *testing.T) {
	for _, tc := range []struct {
		name    string
		classes []ClassSLO
		want    string
	}{
		{"the dashboard's one target", nil, "2000"},
		{"per class, others the default", []ClassSLO{
			{Capability: "text-to-image", Model: "stabilityai/sdxl-turbo", SLO: 3 * time.Second},
			{Capability: "llm", SLO: 2500 * time.Millisecond},
		}, "multiIf(capability = 'text-to-image' AND model = 'stabilityai/sdxl-turbo', 3000, capability = 'llm', 2500, 2000)"},
		{"quotes escaped", []ClassSLO{{Capability: `a'b\c`, SLO: time.Second}}, `multiIf(capability = 'a\'b\\c', 1000, 2000)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.ClassSLOs = tc.classes
			if got := sloExpr(cfg); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		ok   bool
	}{
		{"defaults", func(*Config) {}, true},
		{"step under a second", func(c *Config) { c.Step = 500 * time.Millisecond }, false},
		{"step not whole seconds", func(c *Config) { c.Step = 1500 * time.Millisecond }, false},
		{"window under a step", func(c *Config) { c.Window = 30 * time.Second }, false},
		{"no slo", func(c *Config) { c.SLO = 0 }, false},
		{"poll too fast", func(c *Config) { c.Poll = 100 * time.Millisecond }, false},
		{"ten-second buckets", func(c *Config) { c.Step = 10 * time.Second }, true},
		{"a class without a capability", func(c *Config) { c.ClassSLOs = []ClassSLO{{Model: "m", SLO: time.Second}} }, false},
		{"a class without an slo", func(c *Config) { c.ClassSLOs = []ClassSLO{{Capability: "llm"}} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			if err := c.Validate(); (err == nil) != tc.ok {
				t.Errorf("Validate() = %v, want ok %v", err, tc.ok)
			}
		})
	}
}
