package main

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// bar is one horizontal bar of the ratio plot.
type bar struct {
	Label string
	Value float64
}

// ratioPlot draws horizontal bars of speed-ups with a line at 1 (parity
// with the reference) and saves it as SVG.
func ratioPlot(bars []bar, path string) error {
	if len(bars) == 0 {
		return fmt.Errorf("ratio plot: no figures")
	}
	p := plot.New()
	p.Title.Text = "Speed-up against the reference, same run (above 1: ours is faster)"
	p.X.Label.Text = "speed-up"
	values := make(plotter.Values, len(bars))
	labels := make([]string, len(bars))
	hi := 1.0
	for i, b := range bars {
		// Draw bottom-up so the first figure is on top.
		j := len(bars) - 1 - i
		values[j] = b.Value
		labels[j] = b.Label
		hi = max(hi, b.Value)
	}
	chart, err := plotter.NewBarChart(values, vg.Points(14))
	if err != nil {
		return err
	}
	chart.Horizontal = true
	chart.Color = color.RGBA{R: 0x3b, G: 0x6e, B: 0xa8, A: 0xff}
	chart.LineStyle.Width = 0
	p.X.Min, p.X.Max = 0, hi*1.1
	p.Add(chart)
	parity, err := plotter.NewLine(plotter.XYs{{X: 1, Y: -0.5}, {X: 1, Y: float64(len(bars)) - 0.5}})
	if err != nil {
		return err
	}
	parity.Color = color.RGBA{R: 0xc0, A: 0xff}
	parity.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(parity)
	p.NominalY(labels...)
	return p.Save(8*vg.Inch, vg.Length(1.2+0.35*float64(len(bars)))*vg.Inch, path)
}

// series is one line of the time-against-N plot.
type series struct {
	Name   string
	Points plotter.XYs // N, seconds
}

// timePlot draws command time against the number of resources on log-log
// axes and saves it as SVG.
func timePlot(title string, lines []series, path string) error {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "etcd_key resources (log scale)"
	p.Y.Label.Text = "wall time, s (log scale)"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top, p.Legend.Left = true, true
	drawn := 0
	for i, s := range lines {
		if len(s.Points) == 0 {
			continue
		}
		l, pts, err := plotter.NewLinePoints(s.Points)
		if err != nil {
			return err
		}
		l.Color = plotColors[i%len(plotColors)]
		l.Width = vg.Points(1.5)
		pts.Color = l.Color
		pts.Shape = draw.CircleGlyph{}
		p.Add(l, pts)
		p.Legend.Add(s.Name, l, pts)
		drawn++
	}
	if drawn == 0 {
		return fmt.Errorf("time plot: no points")
	}
	return p.Save(8*vg.Inch, 4.5*vg.Inch, path)
}

var plotColors = []color.Color{
	color.RGBA{R: 0x3b, G: 0x6e, B: 0xa8, A: 0xff},
	color.RGBA{R: 0xd9, G: 0x6c, B: 0x1e, A: 0xff},
	color.RGBA{R: 0x2e, G: 0x8b, B: 0x57, A: 0xff},
	color.RGBA{R: 0x8e, G: 0x3b, B: 0xa8, A: 0xff},
}
