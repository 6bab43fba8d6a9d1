package plot

import (
	"fmt"
	"io"

	"github.com/gsrmt/gsrmt/internal/atomicfile"

	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/vgimg"
)

// dpi is the resolution used for every image: at 96 dots per inch one
// pixel is 0.75 typographic points.
const dpi = 96

// px converts a length in pixels to a vg.Length at dpi.
func px(n float64) vg.Length { return vg.Length(n) * vg.Inch / dpi }

// toPx converts a vg.Length to pixels at dpi.
func toPx(l vg.Length) float64 { return float64(l / vg.Inch * dpi) }

// newCanvas returns a white image canvas of w×h pixels at dpi.
func newCanvas(w, h int) *vgimg.Canvas {
	return vgimg.NewWith(vgimg.UseWH(px(float64(w)), px(float64(h))), vgimg.UseDPI(dpi))
}

// writePNG encodes c as PNG into path atomically (internal/atomicfile), so
// that path either keeps its old content or holds the complete new image.
func writePNG(path string, c *vgimg.Canvas) error {
	err := atomicfile.Write(path, func(w io.Writer) error {
		if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(w); err != nil {
			return fmt.Errorf("encode png: %w", err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("plot: write %s: %w", path, err)
	}
	return nil
}

// recoverError turns a panic raised while rendering (gonum/plot panics on
// some degenerate inputs) into an error naming path. It must be deferred
// directly by the exported function whose named error result is err.
func recoverError(path string, err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("plot: render %s: %v", path, r)
	}
}
