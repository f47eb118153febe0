package plot

import (
	"fmt"
	"io"

	"gonum.org/v1/plot/plotter"
)

// Series is one named line of points, x ascending.
type Series struct {
	Name string
	X, Y []float64
}

// Lines draws each series as a line on one plot with its legend, and
// writes the PNG: the project's plotting for anything that is not a
// simulator run (a dashboard panel's rows, a frontier).
func Lines(w io.Writer, title, xLabel, yLabel string, series []Series, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	p := newPlot(title, xLabel, yLabel)
	for i, s := range series {
		if len(s.X) != len(s.Y) {
			return fmt.Errorf("series %s: %d x values and %d y values", s.Name, len(s.X), len(s.Y))
		}
		pts := make(plotter.XYs, len(s.X))
		for j := range s.X {
			pts[j] = plotter.XY{X: s.X[j], Y: s.Y[j]}
		}
		if err := addLine(p, i, s.Name, pts); err != nil {
			return err
		}
	}
	return render(w, p, cfg)
}
