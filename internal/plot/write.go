package plot

import (
	"fmt"
	"os"
	"path/filepath"

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

// writePNG encodes c as PNG into a temporary file next to path, syncs it
// and renames it to path, so that path either keeps its old content or
// holds the complete new image.
func writePNG(path string, c *vgimg.Canvas) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("plot: write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if _, err = (vgimg.PngCanvas{Canvas: c}).WriteTo(f); err != nil {
		return fmt.Errorf("plot: write %s: encode png: %w", path, err)
	}
	if err = f.Chmod(0o644); err != nil {
		return fmt.Errorf("plot: write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("plot: write %s: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("plot: write %s: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
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
