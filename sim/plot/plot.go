// Package plot draws the figures of a `loopgate bench` run as PNG images:
// the latency CDF of each policy, SLO attainment over time with the
// scenario's timeline marked, and one policy's traffic share per
// orchestrator over time, and, for `loopgate bench --lambdas`, the
// cost/SLO frontier the optimizer predicted against the one measured
// (Frontier). It reads only what sim.Run returns (and, for Frontier, the
// figures it is given), so a figure is as deterministic as the run it
// shows.
//
//	var runs []plot.Run
//	rep, err := sim.BenchRuns(sc, names, sim.BenchOptions{}, func(name string, res *sim.Result) {
//		runs = append(runs, plot.Run{Policy: name, Result: res})
//	})
//	cfg := plot.DefaultConfig()
//	err = plot.LatencyCDF(w, sc, runs, cfg)
//	err = plot.SLOAttainment(w, sc, runs, cfg)
//	err = plot.TrafficShare(w, sc, runs[len(runs)-1], cfg)
//
// Every figure counts requests that arrive after the scenario's warmup,
// as report.json does, except the time series, which show the whole run
// (the warmup is shaded) so that early timeline events stay visible.
package plot

import (
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"sort"
	"strconv"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/loopgate/loopgate/sim"
	"github.com/loopgate/loopgate/sim/scenario"
)

// Run is one policy's run on the scenario being plotted.
type Run struct {
	Policy string
	Result *sim.Result
}

// Config sets the size of the images and the width of the time buckets.
type Config struct {
	Width  int           // pixels; default 960
	Height int           // pixels; default 540
	DPI    int           // dots per inch, which scales the text; default 96
	Bucket time.Duration // time series resolution; default 10s (the README's rolling window)
	// CDFPoints caps the points drawn per latency curve; default 2000.
	CDFPoints int
}

// DefaultConfig returns the defaults written on each field of Config.
func DefaultConfig() Config {
	return Config{Width: 960, Height: 540, DPI: 96, Bucket: 10 * time.Second, CDFPoints: 2000}
}

// Validate reports a setting that cannot draw a figure.
func (c Config) Validate() error {
	switch {
	case c.Width < 100 || c.Height < 100:
		return fmt.Errorf("plot size %dx%d: want at least 100x100 pixels", c.Width, c.Height)
	case c.DPI <= 0:
		return fmt.Errorf("plot dpi %d: want > 0", c.DPI)
	case c.Bucket <= 0:
		return fmt.Errorf("plot bucket %v: want > 0", c.Bucket)
	case c.CDFPoints < 2:
		return fmt.Errorf("plot cdf points %d: want >= 2", c.CDFPoints)
	}
	return nil
}

// LatencyCDF draws, per policy, the CDF of the client-observed latency of
// successful requests (the distribution latency_ms summarizes), on a log
// x axis in milliseconds.
func LatencyCDF(w io.Writer, sc *scenario.Scenario, runs []Run, cfg Config) error {
	if err := check(sc, runs, cfg); err != nil {
		return err
	}
	p := newPlot(fmt.Sprintf("%s: latency CDF of successful requests", sc.Name), "latency (ms, log scale)", "fraction of successful requests ≤ latency")
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = logTicks125{}
	p.Y.Min, p.Y.Max = 0, 1
	for i, r := range runs {
		pts := cdf(latenciesMs(sc, r.Result), cfg.CDFPoints)
		if len(pts) == 0 {
			continue // no successful request: nothing to draw on a log axis
		}
		if err := addLine(p, i, r.Policy, pts); err != nil {
			return err
		}
	}
	return render(w, p, cfg)
}

// SLOAttainment draws, per policy, the share of requests arriving in each
// bucket that succeeded within their class's SLO, with the scenario's
// timeline events as vertical lines. Requests are placed by arrival, as
// recovery_s places them.
func SLOAttainment(w io.Writer, sc *scenario.Scenario, runs []Run, cfg Config) error {
	if err := check(sc, runs, cfg); err != nil {
		return err
	}
	p := newPlot(fmt.Sprintf("%s: SLO attainment per %v by arrival", sc.Name, cfg.Bucket), "time (s)", "requests within SLO / requests")
	p.Y.Max = 1
	n := buckets(sc, cfg)
	lo := 1.0
	for i, r := range runs {
		met, all := make([]float64, n), make([]float64, n)
		for _, q := range r.Result.Requests {
			b := bucketOf(q.Arrival, cfg.Bucket, n)
			all[b]++
			if q.SLOMet(sc) {
				met[b]++
			}
		}
		var pts plotter.XYs
		for b := range n {
			if all[b] == 0 {
				continue
			}
			v := met[b] / all[b]
			lo = min(lo, v)
			pts = append(pts, plotter.XY{X: bucketMid(b, cfg.Bucket), Y: v})
		}
		if err := addLine(p, i, r.Policy, pts); err != nil {
			return err
		}
	}
	p.Y.Min = math.Max(0, math.Floor(lo*10-0.5)/10)
	if err := markTimeline(p, sc); err != nil {
		return err
	}
	return render(w, p, cfg)
}

// TrafficShare draws one policy's share of attempts (retries and hedges
// included) sent to each orchestrator per bucket, stacked, with the
// timeline events marked.
func TrafficShare(w io.Writer, sc *scenario.Scenario, run Run, cfg Config) error {
	if err := check(sc, []Run{run}, cfg); err != nil {
		return err
	}
	p := newPlot(fmt.Sprintf("%s: traffic share per orchestrator under %s", sc.Name, run.Policy), "time (s)", "share of attempts sent (stacked)")
	p.Y.Min, p.Y.Max = 0, 1
	n, m := buckets(sc, cfg), len(sc.Orchestrators)
	counts := make([][]float64, m) // by orchestrator, bucket
	for o := range counts {
		counts[o] = make([]float64, n)
	}
	total := make([]float64, n)
	for _, a := range run.Result.Attempts {
		if a.Orch < 0 || a.Orch >= m {
			continue
		}
		b := bucketOf(a.Sent, cfg.Bucket, n)
		counts[a.Orch][b]++
		total[b]++
	}
	// Stack from the first orchestrator up; draw the tallest (the running
	// sum up to the last orchestrator) first so the shorter ones paint
	// over it and each band shows one orchestrator.
	cum := make([]plotter.XYs, m)
	for o := range m {
		cum[o] = make(plotter.XYs, 0, n)
		for b := range n {
			if total[b] == 0 {
				continue
			}
			y := counts[o][b] / total[b]
			if o > 0 {
				y += cum[o-1][len(cum[o])].Y // same buckets below, same index
			}
			// A step per bucket: the share held over its whole width.
			lo, hi := (time.Duration(b) * cfg.Bucket).Seconds(), (time.Duration(b+1) * cfg.Bucket).Seconds()
			cum[o] = append(cum[o], plotter.XY{X: lo, Y: y}, plotter.XY{X: math.Min(hi, sc.Duration.Seconds()), Y: y})
		}
	}
	lines := make([]*plotter.Line, m)
	for o := m - 1; o >= 0; o-- {
		if len(cum[o]) == 0 {
			continue
		}
		l, err := plotter.NewLine(cum[o])
		if err != nil {
			return fmt.Errorf("traffic share of %s: %w", sc.Orchestrators[o].ID, err)
		}
		l.LineStyle.Width = 0
		l.FillColor = palette(o)
		p.Add(l)
		lines[o] = l
	}
	for o := m - 1; o >= 0; o-- { // legend top-down, as the bands stack
		if lines[o] != nil {
			p.Legend.Add(sc.Orchestrators[o].ID, lines[o])
		}
	}
	if err := markTimeline(p, sc); err != nil {
		return err
	}
	return render(w, p, cfg)
}

func check(sc *scenario.Scenario, runs []Run, cfg Config) error {
	if sc == nil {
		return errors.New("plot: nil scenario")
	}
	if len(runs) == 0 {
		return errors.New("plot: no runs")
	}
	for _, r := range runs {
		if r.Result == nil {
			return fmt.Errorf("plot: policy %s has no result", r.Policy)
		}
	}
	return cfg.Validate()
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Add(plotter.NewGrid())
	return p
}

func addLine(p *plot.Plot, i int, name string, pts plotter.XYs) error {
	if len(pts) == 0 {
		return nil
	}
	l, err := plotter.NewLine(pts)
	if err != nil {
		return fmt.Errorf("line of %s: %w", name, err)
	}
	l.Color = plotutil.Color(i)
	l.Dashes = plotutil.Dashes(i / 7) // solid until the colours repeat
	l.Width = vg.Points(1.5)
	p.Add(l)
	p.Legend.Add(name, l)
	return nil
}

// markTimeline draws a dashed vertical line at each distinct timeline time
// and shades the warmup.
func markTimeline(p *plot.Plot, sc *scenario.Scenario) error {
	p.X.Min, p.X.Max = 0, sc.Duration.Seconds()
	if sc.Warmup > 0 {
		w, err := plotter.NewPolygon(plotter.XYs{
			{X: 0, Y: p.Y.Min}, {X: sc.Warmup.Seconds(), Y: p.Y.Min},
			{X: sc.Warmup.Seconds(), Y: p.Y.Max}, {X: 0, Y: p.Y.Max},
		})
		if err != nil {
			return fmt.Errorf("warmup band: %w", err)
		}
		w.Color = color.NRGBA{A: 28} // translucent: it is drawn over the data
		w.LineStyle.Width = 0
		p.Add(w)
		p.Legend.Add("warmup (not counted)", w)
	}
	var first *plotter.Line
	for i, ch := range sc.Timeline {
		if i > 0 && ch.At == sc.Timeline[i-1].At {
			continue
		}
		x := ch.At.Seconds()
		l, err := plotter.NewLine(plotter.XYs{{X: x, Y: p.Y.Min}, {X: x, Y: p.Y.Max}})
		if err != nil {
			return fmt.Errorf("timeline mark at %v: %w", ch.At, err)
		}
		l.Color = color.Gray{Y: 90}
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		l.Width = vg.Points(1)
		p.Add(l)
		if first == nil {
			first = l
		}
	}
	if first != nil {
		p.Legend.Add("timeline event", first)
	}
	return nil
}

// render draws p with its legend in a column to the right of the data, so
// the legend never hides a curve, and writes the PNG.
func render(w io.Writer, p *plot.Plot, cfg Config) error {
	dpi := vg.Length(cfg.DPI)
	c := vgimg.NewWith(
		vgimg.UseWH(vg.Length(cfg.Width)*vg.Inch/dpi, vg.Length(cfg.Height)*vg.Inch/dpi),
		vgimg.UseDPI(cfg.DPI),
	)
	dc := draw.New(c)
	leg := p.Legend
	p.Legend = plot.NewLegend()
	r := leg.Rectangle(dc)
	gap := vg.Points(12)
	col := r.Max.X - r.Min.X + gap
	p.Draw(draw.Crop(dc, 0, -col, 0, 0))
	leg.Top, leg.Left = true, true
	leg.Draw(draw.Crop(dc, dc.Max.X-dc.Min.X-col+gap/2, 0, 0, -p.Title.TextStyle.Height(p.Title.Text)-gap))
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(w); err != nil {
		return fmt.Errorf("write png: %w", err)
	}
	return nil
}

// logTicks125 labels 1, 2 and 5 of every decade on a log axis (gonum's
// LogTicks labels only powers of ten, often a single label on a latency
// range), with minor ticks at the other integers.
type logTicks125 struct{}

func (logTicks125) Ticks(lo, hi float64) []plot.Tick {
	var out []plot.Tick
	for k := math.Floor(math.Log10(lo)); k <= math.Ceil(math.Log10(hi)); k++ {
		base := math.Pow(10, k)
		for m := 1.0; m <= 9; m++ {
			v := m * base
			if v < lo || v > hi {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || m == 2 || m == 5 {
				t.Label = strconv.FormatFloat(v, 'f', -1, 64)
			}
			out = append(out, t)
		}
	}
	return out
}

// latenciesMs returns the sorted latencies of the successful requests that
// arrived after the warmup, in ms.
func latenciesMs(sc *scenario.Scenario, res *sim.Result) []float64 {
	var out []float64
	for _, r := range res.Requests {
		if r.Arrival >= sc.Warmup && r.Success {
			out = append(out, float64(r.Latency)/float64(time.Millisecond))
		}
	}
	sort.Float64s(out)
	return out
}

// cdf returns the empirical CDF of sorted values at no more than max
// evenly spaced ranks (always including the last); values ≤ 0 are dropped
// because the x axis is logarithmic.
func cdf(sorted []float64, max int) plotter.XYs {
	n := len(sorted)
	step := 1
	if n > max {
		step = (n + max - 1) / max
	}
	var pts plotter.XYs
	for i := 0; i < n; i += step {
		if sorted[i] > 0 {
			pts = append(pts, plotter.XY{X: sorted[i], Y: float64(i+1) / float64(n)})
		}
	}
	if n > 0 && (n-1)%step != 0 && sorted[n-1] > 0 {
		pts = append(pts, plotter.XY{X: sorted[n-1], Y: 1})
	}
	return pts
}

// buckets is how many buckets cover the scenario's duration; requests and
// attempts after it (the run drains past Duration) go to the last one.
func buckets(sc *scenario.Scenario, cfg Config) int {
	return max(1, int((sc.Duration+cfg.Bucket-1)/cfg.Bucket))
}

func bucketOf(t, width time.Duration, n int) int {
	return max(0, min(int(t/width), n-1))
}

func bucketMid(b int, width time.Duration) float64 {
	return (time.Duration(b)*width + width/2).Seconds()
}

// palette is a 12-colour qualitative palette (ColorBrewer Paired) for the
// stacked bands, so fleets up to 12 orchestrators get distinct colours.
func palette(i int) color.Color {
	p := [...]color.RGBA{
		{31, 120, 180, 255}, {166, 206, 227, 255}, {51, 160, 44, 255}, {178, 223, 138, 255},
		{227, 26, 28, 255}, {251, 154, 153, 255}, {255, 127, 0, 255}, {253, 191, 111, 255},
		{106, 61, 154, 255}, {202, 178, 214, 255}, {177, 89, 40, 255}, {255, 255, 153, 255},
	}
	c := p[i%len(p)]
	if i >= len(p) { // a second lap: darken so neighbours still differ
		c.R, c.G, c.B = c.R/2, c.G/2, c.B/2
	}
	return c
}
