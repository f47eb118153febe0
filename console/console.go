package console

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/loopgate/loopgate/admin"
	"github.com/loopgate/loopgate/deps"
)

// assets are the page, its script and style, and the vendored uPlot.
//
//go:embed assets
var assets embed.FS

// Config is what the page shows and how often it refreshes.
type Config struct {
	// Window is the time range of the per-minute charts and the tables
	// that take one (ejections, share changes). Default 15m.
	Window time.Duration `yaml:"window"`
	// Step is the bucket of the time-series charts. Default 1m ("per
	// minute").
	Step time.Duration `yaml:"step"`
	// SLO is the latency target of the SLO attainment chart, the Overview
	// dashboard's slo_ms: a request meets it when it succeeded within it.
	// With ClassSLOs, the target of the classes they do not list. Default
	// 2s, the dashboard's default.
	SLO time.Duration `yaml:"slo"`
	// ClassSLOs are the classes' own targets, the optimizer catalog's, so
	// that the chart measures attainment as the frontier predicts it: the
	// dashboard's slo_ms becomes a per-class expression. Default none.
	ClassSLOs []ClassSLO `yaml:"class_slos"`
	// Poll is how often the page asks for the frontier, λ, the policy and
	// the orchestrators. Default 3s.
	Poll time.Duration `yaml:"poll"`
	// ChartPoll is how often it runs the charts' SQL through /query.
	// Default 10s: the queries scan the warehouse, the policy does not.
	ChartPoll time.Duration `yaml:"chart_poll"`
}

// ClassSLO is one demand class's latency target.
type ClassSLO struct {
	Capability string        `yaml:"capability"`
	Model      string        `yaml:"model"` // "": every model of the capability
	SLO        time.Duration `yaml:"slo"`
}

// DefaultConfig returns the defaults written on each field.
func DefaultConfig() Config {
	return Config{Window: 15 * time.Minute, Step: time.Minute, SLO: 2 * time.Second, Poll: 3 * time.Second, ChartPoll: 10 * time.Second}
}

// Validate reports every setting out of range.
func (c Config) Validate() error {
	var errs []error
	if c.Step < time.Second || c.Step%time.Second != 0 {
		errs = append(errs, fmt.Errorf("console step %v: want whole seconds, at least 1s", c.Step))
	}
	if c.Window < c.Step {
		errs = append(errs, fmt.Errorf("console window %v: want at least one step (%v)", c.Window, c.Step))
	}
	if c.SLO < time.Millisecond {
		errs = append(errs, fmt.Errorf("console slo %v: want at least 1ms", c.SLO))
	}
	for i, cs := range c.ClassSLOs {
		if cs.Capability == "" || cs.SLO < time.Millisecond {
			errs = append(errs, fmt.Errorf("console class_slos[%d]: want a capability and an slo of at least 1ms, got %q, %v", i, cs.Capability, cs.SLO))
		}
	}
	if c.Poll < 500*time.Millisecond || c.ChartPoll < 500*time.Millisecond {
		errs = append(errs, fmt.Errorf("console poll %v and chart_poll %v: want at least 500ms", c.Poll, c.ChartPoll))
	}
	return errors.Join(errs...)
}

// Mux is where the console's routes go: the process's admin server.
type Mux interface {
	Handle(pattern string, role admin.Role, h http.Handler)
}

// Console serves the operator's page. Create it with New and Mount it on
// the admin server.
type Console struct {
	cfg    Config
	now    func() time.Time
	static http.Handler
	charts []Chart
}

// New validates cfg and checks that every chart's SQL expands (no macro or
// variable left), so a broken chart fails at start-up, not in a browser.
func New(cfg Config, d deps.Deps) (*Console, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		return nil, fmt.Errorf("console assets: %w", err)
	}
	c := &Console{cfg: cfg, now: d.Now, static: http.StripPrefix("/console/", http.FileServerFS(sub)), charts: Charts()}
	probe := window{From: time.Unix(0, 0), To: time.Unix(int64(cfg.Window/time.Second), 0), Step: cfg.Step, SLO: sloExpr(cfg)}
	for _, ch := range c.charts {
		if _, err := expand(ch.SQL, probe); err != nil {
			return nil, fmt.Errorf("console chart %s: %w", ch.ID, err)
		}
	}
	return c, nil
}

// Mount registers the console's routes:
//
//	GET /console/             the page and its assets (public: it loads before the login)
//	GET /console/charts.json  the settings and each chart's SQL, expanded for the last Window (read)
//
// Everything the page shows comes from the other admin routes, with the
// token the operator pasted: /frontier, /frontier/preview, /lambda,
// /policy, /orchestrators and /query.
func (c *Console) Mount(m Mux) {
	m.Handle("GET /console/", admin.RolePublic, http.HandlerFunc(c.serveAsset))
	m.Handle("GET /console/charts.json", admin.RoleRead, http.HandlerFunc(c.serveCharts))
}

// serveAsset serves the embedded files with headers that keep the page
// out of frames (Apply must not be clickjacked) and its scripts to its
// own origin.
func (c *Console) serveAsset(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	// Embedded files have no modification time: ask the browser to
	// revalidate, so an upgraded binary's page is seen at once.
	h.Set("Cache-Control", "no-cache")
	if strings.HasSuffix(r.URL.Path, "/index.html") {
		// FileServer would redirect it to "./"; serve the page at one URL.
		http.Redirect(w, r, "/console/", http.StatusMovedPermanently)
		return
	}
	c.static.ServeHTTP(w, r)
}

// chartsBody is GET /console/charts.json.
type chartsBody struct {
	PollMs      int64          `json:"poll_ms"`
	ChartPollMs int64          `json:"chart_poll_ms"`
	SLOMs       int64          `json:"slo_ms"`
	SLONote     string         `json:"slo_note"` // what "meets its SLO" means on the chart
	StepS       int64          `json:"step_s"`
	FromMs      int64          `json:"from_ms"`
	ToMs        int64          `json:"to_ms"`
	Charts      []expandedInfo `json:"charts"`
}

type expandedInfo struct {
	Chart
	SQL string `json:"sql"` // expanded: ready for /query
}

func (c *Console) serveCharts(w http.ResponseWriter, _ *http.Request) {
	to := c.now().Truncate(time.Second)
	win := window{From: to.Add(-c.cfg.Window), To: to, Step: c.cfg.Step, SLO: sloExpr(c.cfg)}
	body := chartsBody{
		PollMs: c.cfg.Poll.Milliseconds(), ChartPollMs: c.cfg.ChartPoll.Milliseconds(), SLOMs: c.cfg.SLO.Milliseconds(),
		SLONote: sloNote(c.cfg), StepS: int64(c.cfg.Step / time.Second), FromMs: win.From.UnixMilli(), ToMs: win.To.UnixMilli(),
	}
	for _, ch := range c.charts {
		sql, err := expand(ch.SQL, win)
		if err != nil { // New expanded every chart once; this cannot fail on a window.
			admin.WriteError(w, http.StatusInternalServerError, fmt.Sprintf("chart %s: %v", ch.ID, err))
			return
		}
		body.Charts = append(body.Charts, expandedInfo{Chart: ch, SQL: sql})
	}
	w.Header().Set("Cache-Control", "no-store")
	admin.WriteJSON(w, http.StatusOK, body)
}
