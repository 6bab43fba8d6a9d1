package plot

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"strconv"
	"unicode/utf8"

	gplot "gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// MaxCountClasses is the largest number of classes for which
// ConfusionMatrix prints the count in each cell.
const MaxCountClasses = 20

// Layout of the confusion matrix image, in pixels unless noted.
const (
	cmCellTarget = 40   // preferred cell size
	cmMinSide    = 480  // smallest matrix side
	cmMaxSide    = 1400 // largest matrix side
	cmMinLabelPx = 9    // below this cell size only every k-th class is named
	cmMaxLabel   = 16   // class names longer than this (runes) are abbreviated
	cmColorbarW  = 18   // width of the colour bar
)

// Colour scale of the heat map ("Blues"): white for 0, dark blue for 1.
var cmStops = []color.RGBA{
	{R: 0xf7, G: 0xfb, B: 0xff, A: 0xff},
	{R: 0xc6, G: 0xdb, B: 0xef, A: 0xff},
	{R: 0x6b, G: 0xae, B: 0xd6, A: 0xff},
	{R: 0x21, G: 0x71, B: 0xb5, A: 0xff},
	{R: 0x08, G: 0x30, B: 0x6b, A: 0xff},
}

// cmEmptyRow colours the rows of classes that have no sample.
var cmEmptyRow = color.Gray{Y: 0xd0}

// ConfusionMatrix writes to path a heat map PNG of the row-normalised
// confusion matrix counts: counts[t][p] is the number of samples of true
// class t predicted as class p, and the cell (t, p) is coloured by
// counts[t][p] divided by the sum of row t (rows of classes without any
// sample are grey). Rows, from top to bottom, are the true classes and
// columns the predicted classes, in the order of classes, whose names label
// both axes; long names are abbreviated and column names are turned
// vertical when they do not fit. A colour scale is drawn on the right, and
// the title gives the number of samples and the overall accuracy. With at
// most MaxCountClasses classes every cell also shows its count. The image
// grows with the number of classes, up to about 1.7k pixels a side for 100
// classes. counts must be a len(classes)×len(classes) matrix of
// non-negative values. The file is replaced atomically.
func ConfusionMatrix(path string, classes []string, counts [][]int64) (err error) {
	defer recoverError(path, &err)

	n := len(classes)
	if err := checkCounts(n, counts); err != nil {
		return fmt.Errorf("plot: confusion matrix %s: %w", path, err)
	}
	norm, total, correct := normaliseRows(counts)
	g := newCMGeometry(n)
	p := newCMPlot(cmTitle(total, correct), g.labelPt)
	yticks, widest := setClassTicks(p, classes, g)

	hm := plotter.NewHeatMap(cmGrid{norm}, cmPalette(256))
	hm.Min, hm.Max = 0, 1
	hm.NaN = cmEmptyRow
	p.Add(hm)
	if n <= MaxCountClasses {
		lbl, err := countLabels(counts, norm, g.cell)
		if err != nil {
			return fmt.Errorf("plot: confusion matrix %s: %w", path, err)
		}
		p.Add(lbl)
	}
	return drawConfusion(path, p, g, yticks, widest)
}

// normaliseRows divides each row of counts by its sum (NaN for a row that
// sums to 0) and returns the number of samples and of correct predictions
// (the diagonal).
func normaliseRows(counts [][]int64) (norm [][]float64, total, correct int64) {
	norm = make([][]float64, len(counts))
	for t, row := range counts {
		var sum int64
		for _, v := range row {
			sum += v
		}
		total += sum
		correct += row[t]
		norm[t] = make([]float64, len(row))
		for p, v := range row {
			if sum == 0 {
				norm[t][p] = math.NaN()
			} else {
				norm[t][p] = float64(v) / float64(sum)
			}
		}
	}
	return norm, total, correct
}

// cmGeometry is the layout of an n-class matrix: its side in pixels grows
// with n, the cell and label font with it; below cmMinLabelPx a cell only
// every every-th class is named.
type cmGeometry struct {
	n, side, every int
	cell           float64
	labelPt        vg.Length
}

func newCMGeometry(n int) cmGeometry {
	g := cmGeometry{n: n, side: min(cmMaxSide, max(cmMinSide, n*cmCellTarget)), every: 1}
	g.cell = float64(g.side) / float64(n)
	g.labelPt = vg.Length(math.Max(5, math.Min(11, g.cell*0.5)))
	if g.cell < cmMinLabelPx {
		g.every = int(math.Ceil(cmMinLabelPx / g.cell))
	}
	return g
}

// cmTitle gives the number of samples and the overall accuracy.
func cmTitle(total, correct int64) string {
	title := "confusion matrix (row-normalised)"
	if total > 0 {
		return title + fmt.Sprintf(": %d samples, accuracy %.2f%%", total, 100*float64(correct)/float64(total))
	}
	return title + ": no samples"
}

// newCMPlot is the plot of the matrix with its title, axis labels and fonts.
func newCMPlot(title string, labelPt vg.Length) *gplot.Plot {
	p := gplot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = 14
	p.Title.Padding = px(10)
	p.X.Label.Text = "predicted class"
	p.Y.Label.Text = "true class"
	p.X.Label.TextStyle.Font.Size = 12
	p.Y.Label.TextStyle.Font.Size = 12
	p.X.Label.Padding = px(6)
	p.Y.Label.Padding = px(6)
	p.X.Padding, p.Y.Padding = 0, 0
	p.X.Tick.Label.Font.Size = labelPt
	p.Y.Tick.Label.Font.Size = labelPt
	return p
}

// setClassTicks names the classes on both axes (abbreviated, every
// g.every-th one), turning the column names vertical when they do not fit,
// and returns the row ticks and the width of the widest name.
func setClassTicks(p *gplot.Plot, classes []string, g cmGeometry) (yticks []gplot.Tick, widest vg.Length) {
	var xticks []gplot.Tick
	for i, c := range classes {
		name := ""
		if i%g.every == 0 {
			name = abbreviate(c, cmMaxLabel)
		}
		widest = max(widest, p.X.Tick.Label.Width(name))
		xticks = append(xticks, gplot.Tick{Value: float64(i), Label: name})
		// Row i (class i) is drawn at y = n-1-i so that class 0 is on top.
		yticks = append(yticks, gplot.Tick{Value: float64(g.n - 1 - i), Label: name})
	}
	if toPx(widest) > 0.9*g.cell*float64(g.every) {
		p.X.Tick.Label.Rotation = math.Pi / 2
		p.X.Tick.Label.XAlign = draw.XRight
		p.X.Tick.Label.YAlign = draw.YCenter
	}
	p.X.Tick.Marker = gplot.ConstantTicks(xticks)
	p.Y.Tick.Marker = gplot.ConstantTicks(yticks)
	return yticks, widest
}

// drawConfusion draws p and the colour bar on a canvas sized for the
// matrix plus room for the axes, title and colour bar, and writes it to
// path.
func drawConfusion(path string, p *gplot.Plot, g cmGeometry, yticks []gplot.Tick, widest vg.Length) error {
	yAxisW := 0.0
	for _, t := range yticks {
		yAxisW = max(yAxisW, toPx(p.Y.Tick.Label.Width(t.Label)))
	}
	yAxisW += toPx(p.Y.Label.TextStyle.Height(p.Y.Label.Text)) + 6 + toPx(p.Y.Tick.Length) + 8
	xAxisH := toPx(p.X.Tick.Label.Height("M"))
	if p.X.Tick.Label.Rotation != 0 {
		xAxisH = toPx(widest)
	}
	xAxisH += toPx(p.X.Label.TextStyle.Height(p.X.Label.Text)) + 6 + toPx(p.X.Tick.Length) + 8
	titleH := toPx(p.Title.TextStyle.Height(p.Title.Text)) + 10
	const pad, cbarArea = 16, 90
	width := int(math.Ceil(pad + yAxisW + float64(g.side) + cbarArea + pad))
	height := int(math.Ceil(pad + titleH + float64(g.side) + xAxisH + pad))
	// The title is centred on the plot area: keep it inside the image.
	width = max(width, int(math.Ceil(toPx(p.Title.TextStyle.Width(p.Title.Text))))+2*pad+cbarArea)

	img := newCanvas(width, height)
	dc := draw.New(img)
	plotArea := draw.Crop(dc, px(pad), -px(pad+cbarArea), px(pad), -px(pad))
	data := p.DataCanvas(plotArea)
	p.Draw(plotArea)
	drawColorBar(dc, vg.Rectangle{
		Min: vg.Point{X: data.Max.X + px(18), Y: data.Min.Y},
		Max: vg.Point{X: data.Max.X + px(18+cmColorbarW), Y: data.Max.Y},
	})
	return writePNG(path, img)
}

// checkCounts reports whether counts is an n×n matrix of non-negative
// values with n ≥ 1.
func checkCounts(n int, counts [][]int64) error {
	if n == 0 {
		return errors.New("no classes")
	}
	if len(counts) != n {
		return fmt.Errorf("%d rows of counts for %d classes", len(counts), n)
	}
	for t, row := range counts {
		if len(row) != n {
			return fmt.Errorf("row %d has %d counts for %d classes", t, len(row), n)
		}
		for p, v := range row {
			if v < 0 {
				return fmt.Errorf("negative count %d at row %d, column %d", v, t, p)
			}
		}
	}
	return nil
}

// abbreviate shortens s to at most max runes, ending it with an ellipsis
// when it was cut.
func abbreviate(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max-1]) + "…"
}

// cmGrid presents a row-normalised confusion matrix as a plotter.GridXYZ:
// column c is predicted class c at x = c, row r of the grid is true class
// n-1-r at y = r, so that class 0 is the top row.
type cmGrid struct{ norm [][]float64 }

// Dims, Z, X, Y, Min and Max implement plotter.GridXYZ and give the
// heat map its fixed [0, 1] colour range.
func (g cmGrid) Dims() (c, r int)   { return len(g.norm), len(g.norm) }
func (g cmGrid) Z(c, r int) float64 { return g.norm[len(g.norm)-1-r][c] }
func (g cmGrid) X(c int) float64    { return float64(c) }
func (g cmGrid) Y(r int) float64    { return float64(r) }
func (g cmGrid) Min() float64       { return 0 }
func (g cmGrid) Max() float64       { return 1 }

// cmColor returns the colour of the normalised value v in [0, 1].
func cmColor(v float64) color.RGBA {
	v = math.Max(0, math.Min(1, v))
	f := v * float64(len(cmStops)-1)
	i := int(f)
	if i >= len(cmStops)-1 {
		return cmStops[len(cmStops)-1]
	}
	a, b, w := cmStops[i], cmStops[i+1], f-float64(i)
	mix := func(x, y uint8) uint8 { return uint8(math.Round(float64(x)*(1-w) + float64(y)*w)) }
	return color.RGBA{R: mix(a.R, b.R), G: mix(a.G, b.G), B: mix(a.B, b.B), A: 0xff}
}

// cmPalette is the heat map colour scale sampled at n evenly spaced values.
type cmPalette int

// Colors implements palette.Palette.
func (n cmPalette) Colors() []color.Color {
	cs := make([]color.Color, n)
	for i := range cs {
		cs[i] = cmColor(float64(i) / float64(n-1))
	}
	return cs
}

// countLabels prints counts[t][p] centred in each cell, white on dark cells
// and black on light ones, in a font small enough for the largest count to
// fit the cell width (cell, in pixels).
func countLabels(counts [][]int64, norm [][]float64, cell float64) (*plotter.Labels, error) {
	n := len(counts)
	base := text.Style{
		Font:    font.From(gplot.DefaultFont, 12),
		XAlign:  draw.XCenter,
		YAlign:  draw.YCenter,
		Handler: gplot.DefaultTextHandler,
	}
	widest := ""
	for _, row := range counts {
		for _, v := range row {
			if s := strconv.FormatInt(v, 10); len(s) > len(widest) {
				widest = s
			}
		}
	}
	size := vg.Length(math.Min(16, cell*0.4))
	for ; size > 5; size -= 0.5 {
		base.Font.Size = size
		if toPx(base.Width(widest)) <= 0.85*cell {
			break
		}
	}
	base.Font.Size = size
	var xyl plotter.XYLabels
	var styles []text.Style
	for t := 0; t < n; t++ {
		for p := 0; p < n; p++ {
			xyl.XYs = append(xyl.XYs, plotter.XY{X: float64(p), Y: float64(n - 1 - t)})
			xyl.Labels = append(xyl.Labels, strconv.FormatInt(counts[t][p], 10))
			sty := base
			sty.Color = color.Black
			if v := norm[t][p]; !math.IsNaN(v) && v > 0.5 {
				sty.Color = color.White
			}
			styles = append(styles, sty)
		}
	}
	l, err := plotter.NewLabels(xyl)
	if err != nil {
		return nil, err
	}
	l.TextStyle = styles
	return l, nil
}

// drawColorBar draws the colour scale in r with ticks every 0.2 labelled
// with the row fraction on its right, and a vertical caption.
func drawColorBar(dc draw.Canvas, r vg.Rectangle) {
	const steps = 256
	h := r.Max.Y - r.Min.Y
	for i := 0; i < steps; i++ {
		y0 := r.Min.Y + h*vg.Length(i)/steps
		y1 := r.Min.Y + h*vg.Length(i+1)/steps + px(0.5) // overlap: no seams
		y1 = min(y1, r.Max.Y)
		dc.SetColor(cmColor((float64(i) + 0.5) / steps))
		dc.Fill(vg.Rectangle{Min: vg.Point{X: r.Min.X, Y: y0}, Max: vg.Point{X: r.Max.X, Y: y1}}.Path())
	}
	line := draw.LineStyle{Color: color.Black, Width: px(1)}
	dc.StrokeLines(line, []vg.Point{r.Min, {X: r.Max.X, Y: r.Min.Y}, r.Max, {X: r.Min.X, Y: r.Max.Y}, r.Min})
	sty := text.Style{
		Color:   color.Black,
		Font:    font.From(gplot.DefaultFont, 10),
		XAlign:  draw.XLeft,
		YAlign:  draw.YCenter,
		Handler: gplot.DefaultTextHandler,
	}
	for i := 0; i <= 5; i++ {
		v := float64(i) / 5
		y := r.Min.Y + h*vg.Length(v)
		dc.StrokeLine2(line, r.Max.X, y, r.Max.X+px(4), y)
		dc.FillText(sty, vg.Point{X: r.Max.X + px(6), Y: y}, strconv.FormatFloat(v, 'f', 1, 64))
	}
	caption := sty
	caption.Font.Size = 11
	caption.Rotation = math.Pi / 2
	caption.XAlign = draw.XCenter
	caption.YAlign = draw.YTop
	dc.FillText(caption, vg.Point{X: r.Max.X + px(36), Y: r.Min.Y + h/2}, "fraction of true class")
}
