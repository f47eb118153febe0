package dashboards

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/loopgate/loopgate/sim/plot"
)

// pictureEnv, set to 1, makes TestREADMEPicture rewrite the README's
// picture (docs/dashboard-slo.png) from the run it draws.
const pictureEnv = "LOOPGATE_UPDATE_PICTURE"

// TestREADMEPicture draws the Overview dashboard's "SLO attainment by
// class" panel — its committed SQL, expanded as the plugin would, run on
// the simulated warehouse — with the project's own plotting (sim/plot):
// the picture README.md shows of one dashboard's data.
func TestREADMEPicture(t *testing.T) {
	const title = "SLO attainment by class"
	st := simulatedStore(t)
	js := committed(t)
	var sql string
	for _, d := range All() {
		for i, p := range d.Panels {
			if d.UID == "loopgate-overview" && p.Title == title {
				sql = js[d.File].Panels[i].Targets[0].RawSQL
			}
		}
	}
	if sql == "" {
		t.Fatalf("no panel %q on the overview dashboard", title)
	}
	q := QueryContext{From: runStart, To: runEnd, Interval: time.Minute}
	rows, err := st.Query(context.Background(), render(t, sql, panelVars[0].vars, q))
	if err != nil {
		t.Fatal(err)
	}
	byClass := map[string]*plot.Series{}
	for _, r := range rows.Values {
		at, ok := r[0].(time.Time)
		if !ok {
			t.Fatalf("got time column %T, want time.Time", r[0])
		}
		class, _ := r[1].(string)
		v, _ := r[2].(float64)
		s := byClass[class]
		if s == nil {
			s = &plot.Series{Name: class}
			byClass[class] = s
		}
		s.X = append(s.X, at.Sub(runStart).Minutes())
		s.Y = append(s.Y, 100*v)
	}
	if len(byClass) < 2 {
		t.Fatalf("got %d classes, want a line per class", len(byClass))
	}
	var series []plot.Series
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for k := range byClass {
			if !yield(k) {
				return
			}
		}
	}) {
		series = append(series, *byClass[name])
	}
	var buf bytes.Buffer
	cfg := plot.DefaultConfig()
	if err := plot.Lines(&buf, "loopgate / Overview — "+title+" (simulated 20 min)", "minutes", "% of requests within SLO", series, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if os.Getenv(pictureEnv) == "1" {
		if err := os.WriteFile("../docs/dashboard-slo.png", buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
