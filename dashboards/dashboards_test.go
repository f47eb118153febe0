package dashboards

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if store != nil {
		store.Close()
	}
	if storeDir != "" {
		os.RemoveAll(storeDir)
	}
	os.Exit(code)
}

// TestCommittedJSONIsGenerated fails when the JSON under dashboards/json
// is not what the code generates: run `go generate ./dashboards` (or
// `make dashboards`) and commit the result.
func TestCommittedJSONIsGenerated(t *testing.T) {
	for _, d := range All() {
		t.Run(d.UID, func(t *testing.T) {
			want, err := d.JSON()
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join("json", d.File))
			if err != nil {
				t.Fatalf("read committed dashboard: %v (run `make dashboards`)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("json/%s differs from what the code generates (%d bytes committed, %d generated): run `make dashboards` and commit", d.File, len(got), len(want))
			}
		})
	}
	// No stale file either: every JSON file is a dashboard of All.
	files, _ := filepath.Glob(filepath.Join("json", "*.json"))
	for _, f := range files {
		if !slices.ContainsFunc(All(), func(d Dashboard) bool { return d.File == filepath.Base(f) }) {
			t.Errorf("%s is committed but no dashboard generates it", f)
		}
	}
}

// grafanaJSON is the part of a dashboard's JSON the lint rules read.
type grafanaJSON struct {
	UID        string `json:"uid"`
	Title      string `json:"title"`
	Editable   bool   `json:"editable"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Label      string          `json:"label"`
			Query      json.RawMessage `json:"query"`
			Refresh    int             `json:"refresh"`
			Datasource *dsRef          `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panelJSON `json:"panels"`
}

type dsRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panelJSON struct {
	ID          int    `json:"id"`
	Type        string `json:"type"`
	Title       string `json:"title"`
	Description string `json:"description"`
	Datasource  *dsRef `json:"datasource"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
		Overrides []struct {
			Properties []struct {
				ID    string `json:"id"`
				Value any    `json:"value"`
			} `json:"properties"`
		} `json:"overrides"`
	} `json:"fieldConfig"`
	Targets []targetJSON `json:"targets"`
}

type targetJSON struct {
	RefID      string `json:"refId"`
	Datasource *dsRef `json:"datasource"`
	// ClickHouse
	EditorType string `json:"editorType"`
	RawSQL     string `json:"rawSql"`
	Format     *int   `json:"format"`
	// Prometheus
	Expr string `json:"expr"`
}

// committed reads every committed dashboard JSON.
func committed(t *testing.T) map[string]grafanaJSON {
	t.Helper()
	out := map[string]grafanaJSON{}
	for _, d := range All() {
		raw, err := os.ReadFile(filepath.Join("json", d.File))
		if err != nil {
			t.Fatalf("read %s: %v", d.File, err)
		}
		var g grafanaJSON
		if err := json.Unmarshal(raw, &g); err != nil {
			t.Fatalf("decode %s: %v", d.File, err)
		}
		out[d.File] = g
	}
	return out
}

// validUnits are Grafana's unit ids that the panels use, from
// dashboard-linter's panel-units-rule list (a subset: the rule accepts
// these and more).
var validUnits = []string{"none", "short", "percent", "percentunit", "currencyUSD", "ms", "s", "ops", "reqps", "rps", "dateTimeAsIso"}

// lintRule is one rule of grafana/dashboard-linter (or loopgate's own, for
// the ClickHouse plugin the linter does not know), ported: it returns the
// problems it finds, empty when the dashboard passes.
type lintRule struct {
	name  string
	check func(d Dashboard, g grafanaJSON) []string
}

var lintRules = []lintRule{
	{"template-datasource-rule", func(d Dashboard, g grafanaJSON) []string {
		// Exactly one datasource variable, named datasource, labelled
		// "Data source", of the dashboard's plugin type.
		var out []string
		n := 0
		for _, v := range g.Templating.List {
			if v.Type != "datasource" {
				continue
			}
			n++
			var q string
			_ = json.Unmarshal(v.Query, &q)
			if v.Name != DatasourceVar {
				out = append(out, fmt.Sprintf("datasource variable named %q, want %q", v.Name, DatasourceVar))
			}
			if v.Label != "Data source" {
				out = append(out, fmt.Sprintf("datasource variable labelled %q, want %q", v.Label, "Data source"))
			}
			if q != d.DatasourceType {
				out = append(out, fmt.Sprintf("datasource variable of type %q, want %q", q, d.DatasourceType))
			}
		}
		if n != 1 {
			out = append(out, fmt.Sprintf("%d datasource variables, want 1", n))
		}
		return out
	}},
	{"template-on-time-change-reload-rule", func(_ Dashboard, g grafanaJSON) []string {
		var out []string
		for _, v := range g.Templating.List {
			if v.Type == "query" && v.Refresh != 2 {
				out = append(out, fmt.Sprintf("variable %s refreshes %d, want 2 (on time range change)", v.Name, v.Refresh))
			}
		}
		return out
	}},
	{"uneditable-dashboard", func(_ Dashboard, g grafanaJSON) []string {
		if g.Editable {
			return []string{"dashboard is editable; provisioned dashboards change in code"}
		}
		return nil
	}},
	{"panel-title-description-rule", func(_ Dashboard, g grafanaJSON) []string {
		var out []string
		for _, p := range g.Panels {
			if strings.TrimSpace(p.Title) == "" || strings.TrimSpace(p.Description) == "" {
				out = append(out, fmt.Sprintf("panel %d %q has no title or no description", p.ID, p.Title))
			}
		}
		return out
	}},
	{"panel-units-rule", func(_ Dashboard, g grafanaJSON) []string {
		var out []string
		for _, p := range g.Panels {
			if !slices.Contains(validUnits, p.FieldConfig.Defaults.Unit) {
				out = append(out, fmt.Sprintf("panel %q has no or invalid unit %q", p.Title, p.FieldConfig.Defaults.Unit))
			}
			for _, o := range p.FieldConfig.Overrides {
				for _, pr := range o.Properties {
					if u, _ := pr.Value.(string); pr.ID == "unit" && !slices.Contains(validUnits, u) {
						out = append(out, fmt.Sprintf("panel %q overrides with invalid unit %q", p.Title, u))
					}
				}
			}
		}
		return out
	}},
	{"panel-no-targets-rule", func(_ Dashboard, g grafanaJSON) []string {
		var out []string
		for _, p := range g.Panels {
			if len(p.Targets) == 0 {
				out = append(out, fmt.Sprintf("panel %q has no targets", p.Title))
			}
		}
		return out
	}},
	{"panel-datasource-rule", func(d Dashboard, g grafanaJSON) []string {
		// Every panel, target and query variable uses ${datasource}: no
		// hard-coded uid anywhere.
		var out []string
		check := func(where string, ref *dsRef) {
			switch {
			case ref == nil:
				out = append(out, where+" has no datasource")
			case ref.UID != "${"+DatasourceVar+"}" && ref.UID != "$"+DatasourceVar:
				out = append(out, fmt.Sprintf("%s uses datasource uid %q, want ${%s}", where, ref.UID, DatasourceVar))
			case ref.Type != d.DatasourceType:
				out = append(out, fmt.Sprintf("%s uses datasource type %q, want %q", where, ref.Type, d.DatasourceType))
			}
		}
		for _, p := range g.Panels {
			check(fmt.Sprintf("panel %q", p.Title), p.Datasource)
			for _, tg := range p.Targets {
				check(fmt.Sprintf("panel %q target %s", p.Title, tg.RefID), tg.Datasource)
			}
		}
		for _, v := range g.Templating.List {
			if v.Type == "query" {
				check("variable "+v.Name, v.Datasource)
			}
		}
		return out
	}},
	{"target-rate-interval-rule", func(_ Dashboard, g grafanaJSON) []string {
		var out []string
		rangeRe := regexp.MustCompile(`\[([^\]]*)\]`)
		for _, p := range g.Panels {
			for _, tg := range p.Targets {
				for _, m := range rangeRe.FindAllStringSubmatch(tg.Expr, -1) {
					if m[1] != "$__rate_interval" {
						out = append(out, fmt.Sprintf("panel %q: range [%s], want [$__rate_interval]", p.Title, m[1]))
					}
				}
			}
		}
		return out
	}},
	{"target-promql-rule", func(d Dashboard, g grafanaJSON) []string {
		// Without the PromQL parser: the expression is non-empty, its
		// brackets balance, and it names loopgate metrics only.
		if d.DatasourceType != PrometheusType {
			return nil
		}
		var out []string
		for _, p := range g.Panels {
			for _, tg := range p.Targets {
				if tg.Expr == "" || strings.Count(tg.Expr, "(") != strings.Count(tg.Expr, ")") || strings.Count(tg.Expr, "[") != strings.Count(tg.Expr, "]") {
					out = append(out, fmt.Sprintf("panel %q: malformed PromQL %q", p.Title, tg.Expr))
				}
				if len(metricRe.FindAllString(tg.Expr, -1)) == 0 {
					out = append(out, fmt.Sprintf("panel %q: PromQL %q names no loopgate metric", p.Title, tg.Expr))
				}
			}
		}
		return out
	}},
	{"target-clickhouse-rule", func(d Dashboard, g grafanaJSON) []string {
		// loopgate's rule for the ClickHouse plugin: raw SQL targets, a
		// format of 0 or 1, time filtered by the plugin's macro on the
		// table's time column, never by now().
		if d.DatasourceType != ClickHouseType {
			return nil
		}
		var out []string
		for _, p := range g.Panels {
			for _, tg := range p.Targets {
				switch {
				case tg.EditorType != "sql":
					out = append(out, fmt.Sprintf("panel %q: editorType %q, want sql", p.Title, tg.EditorType))
				case tg.Format == nil || *tg.Format != FormatTimeSeries && *tg.Format != FormatTable:
					out = append(out, fmt.Sprintf("panel %q: format %v, want 0 or 1", p.Title, tg.Format))
				case !strings.Contains(tg.RawSQL, "$__timeFilter("):
					out = append(out, fmt.Sprintf("panel %q: SQL without $__timeFilter(...)", p.Title))
				case strings.Contains(strings.ToLower(tg.RawSQL), "now()"):
					out = append(out, fmt.Sprintf("panel %q: SQL uses now() instead of the dashboard's time range", p.Title))
				case *tg.Format == FormatTimeSeries && !strings.Contains(tg.RawSQL, " AS time"):
					out = append(out, fmt.Sprintf("panel %q: a time series without a time column", p.Title))
				}
			}
		}
		return out
	}},
}

// metricRe finds loopgate metric names in PromQL.
var metricRe = regexp.MustCompile(`\bloopgate_[a-z0-9_]+`)

// TestLint runs the ported dashboard-linter rules on the committed JSON.
func TestLint(t *testing.T) {
	js := committed(t)
	for _, d := range All() {
		for _, r := range lintRules {
			t.Run(d.UID+"/"+r.name, func(t *testing.T) {
				for _, p := range r.check(d, js[d.File]) {
					t.Errorf("%s: %s", d.File, p)
				}
			})
		}
	}
}

// TestLintRulesCatch shows each rule fails a dashboard that breaks it.
func TestLintRulesCatch(t *testing.T) {
	bad := grafanaJSON{Title: "bad", Editable: true}
	bad.Panels = []panelJSON{{ID: 1, Type: "timeseries", Targets: []targetJSON{{Expr: "rate(x[5m])", RawSQL: "SELECT now()", Datasource: &dsRef{UID: "P1234"}}}}}
	for _, r := range lintRules {
		for _, typ := range []string{ClickHouseType, PrometheusType} {
			if r.name == "target-clickhouse-rule" && typ != ClickHouseType || r.name == "target-promql-rule" && typ != PrometheusType ||
				r.name == "template-on-time-change-reload-rule" || r.name == "panel-no-targets-rule" {
				continue
			}
			if got := r.check(Dashboard{DatasourceType: typ}, bad); len(got) == 0 {
				t.Errorf("%s on a %s dashboard: got no problem, want at least one", r.name, typ)
			}
		}
	}
}

// panelVars are the variable values the SQL tests render the panels with:
// All, then one value, as a viewer would pick them.
var panelVars = []struct {
	name string
	vars map[string][]string
}{
	{"all", map[string][]string{"capability": {"$__all"}, "customer": {"$__all"}, "slo_ms": {"2000"}}},
	{"one", map[string][]string{"capability": {"text-to-image"}, "customer": {"acme"}, "slo_ms": {"1500"}}},
}

// render turns a panel's SQL into what the plugin sends ClickHouse: the
// frontend's $__conditionalAll, then Grafana's variable interpolation,
// then the backend's macros.
func render(t *testing.T, sql string, vars map[string][]string, q QueryContext) string {
	t.Helper()
	flat := map[string]string{}
	for k, v := range vars {
		flat[k] = strings.Join(v, ",")
	}
	sql = ConditionalAll(sql, flat)
	sql = interpolateVars(sql, vars)
	out, err := ExpandMacros(sql, q)
	if err != nil {
		t.Fatalf("expand macros: %v\n%s", err, sql)
	}
	if strings.Contains(out, "$") {
		t.Fatalf("unexpanded $ left in the query:\n%s", out)
	}
	return out
}

var varRe = regexp.MustCompile(`\$\{(\w+)(?::(\w+))?\}|\$(\w+)`)

// interpolateVars is the part of Grafana's template service the panels
// use: $name and ${name}, and ${name:singlequote}; values of a multi-value
// variable are quoted and comma-joined as the plugin formats them. Built-in
// $__ names are left for the plugin.
func interpolateVars(sql string, vars map[string][]string) string {
	return varRe.ReplaceAllStringFunc(sql, func(m string) string {
		s := varRe.FindStringSubmatch(m)
		name, format := s[1]+s[3], s[2]
		vals, ok := vars[name]
		if !ok || strings.HasPrefix(name, "__") {
			return m
		}
		if format == "singlequote" || len(vals) > 1 {
			return "'" + strings.Join(vals, "','") + "'"
		}
		return vals[0]
	})
}

// TestPanelsReturnRows runs every ClickHouse panel's SQL, as committed, on
// the embedded engine against the simulated run, with All and with one
// value selected, and checks it returns rows with the columns the panel
// declares.
func TestPanelsReturnRows(t *testing.T) {
	st := simulatedStore(t)
	js := committed(t)
	q := QueryContext{From: runStart, To: runEnd, Interval: 30 * time.Second}
	for _, d := range All() {
		if d.DatasourceType != ClickHouseType {
			continue
		}
		g := js[d.File]
		for i, p := range d.Panels {
			sql := g.Panels[i].Targets[0].RawSQL
			for _, pv := range panelVars {
				t.Run(d.UID+"/"+p.Title+"/"+pv.name, func(t *testing.T) {
					final := render(t, sql, pv.vars, q)
					rows, err := st.Query(context.Background(), final)
					if err != nil {
						t.Fatalf("query: %v\n%s", err, final)
					}
					if rows.Len() == 0 {
						t.Fatalf("got 0 rows, want some\n%s", final)
					}
					if !slices.Equal(rows.Columns, p.Columns) {
						t.Errorf("got columns %v, want %v", rows.Columns, p.Columns)
					}
					if g.Panels[i].Targets[0].Format != nil && *g.Panels[i].Targets[0].Format == FormatTimeSeries {
						if !strings.HasPrefix(rows.Types[0], "DateTime") {
							t.Errorf("got first column of type %s, want a DateTime (time series)", rows.Types[0])
						}
						for j := 1; j < len(rows.Columns); j++ {
							if isText(rows.Types[j]) && j == len(rows.Columns)-1 {
								t.Errorf("got last column %s of type %s, want a number", rows.Columns[j], rows.Types[j])
							}
						}
					}
				})
			}
		}
		for _, v := range d.Variables {
			if v.Query == "" {
				continue
			}
			t.Run(d.UID+"/variable "+v.Name, func(t *testing.T) {
				rows, err := st.Query(context.Background(), render(t, v.Query, nil, q))
				if err != nil {
					t.Fatal(err)
				}
				if rows.Len() == 0 || len(rows.Columns) != 1 {
					t.Errorf("got %d rows of %d columns, want rows of 1 column", rows.Len(), len(rows.Columns))
				}
			})
		}
	}
}

func isText(typ string) bool { return strings.Contains(typ, "String") }

// TestRollupPanelsReadRollups: a panel that aggregates attempts reads
// attempts_1m or attempts_10s, never the raw attempts table.
func TestRollupPanelsReadRollups(t *testing.T) {
	raw := regexp.MustCompile(`loopgate\.attempts\b[^_]`)
	for _, d := range All() {
		for _, p := range d.Panels {
			if raw.MatchString(p.SQL + " ") {
				t.Errorf("%s / %s reads the raw attempts table; use attempts_1m or attempts_10s", d.UID, p.Title)
			}
		}
	}
}

// TestFaultToTrafficMoving checks the loop dashboard's reaction panel on
// the simulated fault: lax-1 fails from faultAt, and the policy 30 s later
// cuts its share from 0.25 to 0.05 (under half), so the panel must report
// lax-1 with 30 s, give or take the 10 s buckets and policy period.
func TestFaultToTrafficMoving(t *testing.T) {
	st := simulatedStore(t)
	var sql string
	for _, p := range theLoop().Panels {
		if p.Title == "Time from fault to traffic moving" {
			sql = p.SQL
		}
	}
	rows, err := st.Query(context.Background(), render(t, sql, nil, QueryContext{From: runStart, To: runEnd, Interval: time.Minute}))
	if err != nil {
		t.Fatal(err)
	}
	if rows.Len() != 1 {
		t.Fatalf("got %d rows %v, want one (lax-1)", rows.Len(), rows.Values)
	}
	m := rows.Maps()[0]
	t.Logf("reaction: %v", m)
	if m["orchestrator"] != "lax-1" {
		t.Errorf("got orchestrator %v, want lax-1", m["orchestrator"])
	}
	secs, _ := m["seconds"].(float64)
	if secs < 20 || secs > 50 {
		t.Errorf("got %v s from fault to traffic moving, want about 30 (fault at %v, moved at %v)", m["seconds"], m["fault_at"], m["moved_at"])
	}
}

// TestDocListsEveryPanel keeps the package documentation's list of
// dashboards and panels in step with the code.
func TestDocListsEveryPanel(t *testing.T) {
	raw, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	doc := strings.Join(strings.Fields(strings.ReplaceAll(string(raw), "//", " ")), " ")
	for _, d := range All() {
		for _, want := range append([]string{d.Title, d.File}, titles(d)...) {
			if !strings.Contains(doc, want) {
				t.Errorf("doc.go does not mention %q (%s)", want, d.UID)
			}
		}
	}
}

func titles(d Dashboard) []string {
	var out []string
	for _, p := range d.Panels {
		out = append(out, p.Title)
	}
	return out
}
