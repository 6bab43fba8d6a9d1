package plot

import (
	"cmp"
	"fmt"
	"image/color"
	"math"
	"slices"
	"strconv"
	"strings"

	gplot "gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// EpochPoint holds the metrics of one training epoch. A NaN field means
// the value is missing for that epoch (for example the test set was not
// evaluated); it is left out of the plot. Accuracies are percentages in
// [0, 100].
type EpochPoint struct {
	Epoch     int
	LR        float64
	TrainLoss float64
	TrainTop1 float64
	TestLoss  float64
	TestTop1  float64
	TestTop5  float64
}

// Size of the image written by Curves, in pixels.
const (
	CurvesWidth  = 1200
	CurvesHeight = 500
)

// Series colours (Tableau 10) and marker shapes.
var (
	colTrain = color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff} // blue
	colTest  = color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff} // orange
	colTop5  = color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff} // green
	colGrid  = color.Gray{Y: 0xe0}
)

// series describes one curve of a panel.
type series struct {
	name   string
	value  func(EpochPoint) float64
	color  color.Color
	glyph  draw.GlyphDrawer
	dashed bool
}

// Curves writes to path a PNG of CurvesWidth×CurvesHeight pixels with two
// panels side by side: "loss" (train and test loss against epoch) and
// "accuracy (%)" (train top-1, test top-1 and test top-5 against epoch).
// title, when not empty, is drawn above both panels. Every value is marked
// by a glyph and consecutive values of a series are joined by a line, so a
// single epoch shows as single points; NaN and infinite values are
// skipped, and a series with no value at all is left out of the legend.
// points need not be sorted. The file is replaced atomically.
func Curves(path string, title string, points []EpochPoint) (err error) {
	defer recoverError(path, &err)

	pts := slices.Clone(points)
	slices.SortStableFunc(pts, func(a, b EpochPoint) int { return cmp.Compare(a.Epoch, b.Epoch) })

	loss, err := newPanel("loss", "loss", pts, []series{
		{"train loss", func(p EpochPoint) float64 { return p.TrainLoss }, colTrain, draw.CircleGlyph{}, false},
		{"test loss", func(p EpochPoint) float64 { return p.TestLoss }, colTest, draw.BoxGlyph{}, true},
	})
	if err != nil {
		return fmt.Errorf("plot: curves %s: %w", path, err)
	}
	acc, err := newPanel("accuracy (%)", "accuracy (%)", pts, []series{
		{"train top-1", func(p EpochPoint) float64 { return p.TrainTop1 }, colTrain, draw.CircleGlyph{}, false},
		{"test top-1", func(p EpochPoint) float64 { return p.TestTop1 }, colTest, draw.BoxGlyph{}, true},
		{"test top-5", func(p EpochPoint) float64 { return p.TestTop5 }, colTop5, draw.PyramidGlyph{}, true},
	})
	if err != nil {
		return fmt.Errorf("plot: curves %s: %w", path, err)
	}

	img := newCanvas(CurvesWidth, CurvesHeight)
	dc := draw.New(img)
	padTop := px(12)
	if title != "" {
		sty := text.Style{
			Color:   color.Black,
			Font:    font.From(gplot.DefaultFont, 15),
			XAlign:  draw.XCenter,
			YAlign:  draw.YTop,
			Handler: gplot.DefaultTextHandler,
		}
		dc.FillText(sty, vg.Point{X: dc.Center().X, Y: dc.Max.Y - px(8)}, title)
		padTop += sty.Height(title) + px(4)
	}
	tiles := draw.Tiles{
		Rows: 1, Cols: 2,
		PadTop: padTop, PadBottom: px(10), PadLeft: px(10), PadRight: px(18),
		PadX: px(40),
	}
	cs := gplot.Align([][]*gplot.Plot{{loss, acc}}, tiles, dc)
	loss.Draw(cs[0][0])
	acc.Draw(cs[0][1])
	return writePNG(path, img)
}

// newPanel builds one panel of Curves: a plot with a grid, one line with
// markers per series that has at least one finite value, and a legend in
// the corner that the curves cross least.
func newPanel(title, ylabel string, pts []EpochPoint, ss []series) (*gplot.Plot, error) {
	p := gplot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = 13
	p.Title.Padding = px(6)
	p.X.Label.Text = "epoch"
	p.Y.Label.Text = ylabel
	p.X.Label.TextStyle.Font.Size = 12
	p.Y.Label.TextStyle.Font.Size = 12
	p.X.Tick.Marker = gplot.TickerFunc(epochTicks)
	p.Y.Tick.Marker = gplot.TickerFunc(valueTicks)
	p.Legend.ThumbnailWidth = px(36)
	p.Legend.TextStyle.Font.Size = 11

	grid := plotter.NewGrid()
	grid.Vertical.Color = colGrid
	grid.Horizontal.Color = colGrid
	p.Add(grid)

	var curves []plotter.XYs
	for _, s := range ss {
		var xys plotter.XYs
		for _, pt := range pts {
			v := s.value(pt)
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			xys = append(xys, plotter.XY{X: float64(pt.Epoch), Y: v})
		}
		if len(xys) == 0 {
			continue
		}
		line, scatter, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		line.Color = s.color
		line.Width = px(2)
		if s.dashed {
			line.Dashes = []vg.Length{px(7), px(4)}
		}
		scatter.Color = s.color
		scatter.Shape = s.glyph
		scatter.Radius = px(4)
		p.Add(line, scatter)
		p.Legend.Add(s.name, line, scatter)
		curves = append(curves, xys)
	}
	if len(curves) == 0 {
		p.Title.Text += " (no data)"
		p.X.Min, p.X.Max = 0, 1
		p.Y.Min, p.Y.Max = 0, 1
	}
	placeLegend(p, curves)
	return p, nil
}

// placeLegend puts the legend of p in the corner of the data area that
// holds the fewest samples of the curves (points and the lines between
// them), preferring the top right, then bottom right, top left and bottom
// left.
func placeLegend(p *gplot.Plot, curves []plotter.XYs) {
	xmin, xmax, ymin, ymax := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, c := range curves {
		for _, q := range c {
			xmin, xmax = math.Min(xmin, q.X), math.Max(xmax, q.X)
			ymin, ymax = math.Min(ymin, q.Y), math.Max(ymax, q.Y)
		}
	}
	if xmin == xmax { // gonum widens a one-value range by one on each side
		xmin, xmax = xmin-1, xmax+1
	}
	if ymin == ymax {
		ymin, ymax = ymin-1, ymax+1
	}
	// Fraction of the data area that the legend covers, roughly.
	const legendW, legendH = 0.35, 0.25
	corners := []struct{ top, left bool }{{true, false}, {false, false}, {true, true}, {false, true}}
	hits := make([]int, len(corners))
	count := func(x, y float64) {
		nx, ny := (x-xmin)/(xmax-xmin), (y-ymin)/(ymax-ymin)
		for i, c := range corners {
			inX := (c.left && nx <= legendW) || (!c.left && nx >= 1-legendW)
			inY := (c.top && ny >= 1-legendH) || (!c.top && ny <= legendH)
			if inX && inY {
				hits[i]++
			}
		}
	}
	for _, c := range curves {
		for i, q := range c {
			count(q.X, q.Y)
			if i == 0 {
				continue
			}
			const steps = 16
			for s := 1; s < steps; s++ {
				w := float64(s) / steps
				count(c[i-1].X*(1-w)+q.X*w, c[i-1].Y*(1-w)+q.Y*w)
			}
		}
	}
	best := 0
	for i := range corners {
		if hits[i] < hits[best] {
			best = i
		}
	}
	p.Legend.Top, p.Legend.Left = corners[best].top, corners[best].left
	p.Legend.XOffs, p.Legend.YOffs = -px(8), -px(4)
	if p.Legend.Left {
		p.Legend.XOffs = px(8)
	}
	if !p.Legend.Top {
		p.Legend.YOffs = px(6)
	}
}

// valueTicks marks about five to ten round values (1, 2 or 5 times a power
// of ten apart) with labels of just the precision the step needs, and
// unlabelled minor marks halfway between them.
func valueTicks(lo, hi float64) []gplot.Tick {
	if !(lo < hi) || math.IsInf(lo, 0) || math.IsInf(hi, 0) {
		return gplot.DefaultTicks{}.Ticks(lo, hi)
	}
	raw := (hi - lo) / 6
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := 10 * mag
	for _, m := range []float64{1, 2, 5} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	decimals := max(0, -int(math.Floor(math.Log10(step)+1e-9)))
	var ticks []gplot.Tick
	first := math.Ceil(lo/step-1e-9) * step
	for i := 0; ; i++ {
		v := first + float64(i)*step
		if v > hi+step*1e-9 {
			break
		}
		label := strconv.FormatFloat(v, 'f', decimals, 64)
		if strings.Trim(label, "-0.") == "" {
			label = strings.TrimPrefix(label, "-")
		}
		ticks = append(ticks, gplot.Tick{Value: v, Label: label})
		if minor := v + step/2; minor <= hi {
			ticks = append(ticks, gplot.Tick{Value: minor})
		}
	}
	if minor := first - step/2; minor >= lo {
		ticks = append(ticks, gplot.Tick{Value: minor})
	}
	return ticks
}

// epochTicks marks integer epochs only, at a step of 1, 2 or 5 times a
// power of ten chosen so that there are at most about ten marks.
func epochTicks(lo, hi float64) []gplot.Tick {
	first, last := math.Ceil(lo), math.Floor(hi)
	if !(first <= last) || math.IsInf(first, 0) || math.IsInf(last, 0) {
		return nil
	}
	step := 1.0
	for mult := 0; (last-first)/step > 10; mult++ {
		step *= []float64{2, 2.5, 2}[mult%3] // 1, 2, 5, 10, 20, 50, ...
	}
	var ticks []gplot.Tick
	for v := math.Ceil(first/step) * step; v <= last; v += step {
		ticks = append(ticks, gplot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', 0, 64)})
	}
	return ticks
}
