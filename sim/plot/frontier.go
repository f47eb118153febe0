package plot

import (
	"errors"
	"fmt"
	"io"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/loopgate/loopgate/sim/scenario"
)

// FrontierPoint is one fixed-λ run of `loopgate bench --lambdas`: what the
// optimizer predicted for its steady phase and what the simulator
// measured over it.
type FrontierPoint struct {
	Lambda                      float64
	PredictedCost, PredictedSLO float64 // USD per request; fraction
	MeasuredCost, MeasuredSLO   float64
}

// Frontier draws the cost/latency frontier of a scenario's fixed-λ runs:
// SLO attainment against cost per request, the optimizer's predictions
// and the measurements as two lines with their points labelled by λ.
func Frontier(w io.Writer, sc *scenario.Scenario, pts []FrontierPoint, cfg Config) error {
	if sc == nil {
		return errors.New("plot: nil scenario")
	}
	if len(pts) == 0 {
		return errors.New("plot: no frontier points")
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	p := newPlot(fmt.Sprintf("%s: frontier over the steady phase, predicted vs measured", sc.Name),
		"cost per request (USD × 1000)", "SLO attainment (%)")
	// Costs differ in the third digit: label the ticks with four.
	p.X.Tick.Marker = plot.TickerFunc(func(lo, hi float64) []plot.Tick {
		ticks := plot.DefaultTicks{}.Ticks(lo, hi)
		for i := range ticks {
			if ticks[i].Label != "" {
				ticks[i].Label = strconv.FormatFloat(ticks[i].Value, 'f', 3, 64)
			}
		}
		return ticks
	})
	pred, meas := make(plotter.XYs, len(pts)), make(plotter.XYs, len(pts))
	labels := make([]string, len(pts))
	for i, pt := range pts {
		pred[i] = plotter.XY{X: 1000 * pt.PredictedCost, Y: 100 * pt.PredictedSLO}
		meas[i] = plotter.XY{X: 1000 * pt.MeasuredCost, Y: 100 * pt.MeasuredSLO}
		labels[i] = "λ=" + strconv.FormatFloat(pt.Lambda, 'g', 3, 64)
	}
	for i, s := range []struct {
		name  string
		xy    plotter.XYs
		shape draw.GlyphDrawer
	}{{"predicted (optimizer)", pred, draw.CircleGlyph{}}, {"measured (simulator)", meas, draw.SquareGlyph{}}} {
		l, sp, err := plotter.NewLinePoints(s.xy)
		if err != nil {
			return fmt.Errorf("frontier %s: %w", s.name, err)
		}
		l.Color, sp.Color = plotutil.Color(i), plotutil.Color(i)
		l.Width = vg.Points(1.5)
		sp.Shape, sp.Radius = s.shape, vg.Points(3.5)
		p.Add(l, sp)
		p.Legend.Add(s.name, l, sp)
	}
	lb, err := plotter.NewLabels(plotter.XYLabels{XYs: meas, Labels: labels})
	if err != nil {
		return fmt.Errorf("frontier labels: %w", err)
	}
	for i := range lb.TextStyle {
		lb.TextStyle[i].Font.Size = vg.Points(9)
	}
	lb.Offset = vg.Point{X: vg.Points(5), Y: vg.Points(-10)}
	p.Add(lb)
	return render(w, p, cfg)
}
