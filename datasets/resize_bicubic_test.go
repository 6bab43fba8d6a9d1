package datasets

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gsrmt/gsrmt/internal/testutil"
)

// pilResizeInterpScript is pilResizeScript with the filter as a last field
// of each argument: "w,h,left,top,right,bottom,ow,oh,ch,filter".
const pilResizeInterpScript = `
import sys
try:
    from PIL import Image
except ImportError:
    print("NO_PIL"); sys.exit(0)
srcs = {3: open(sys.argv[1], "rb").read(), 1: open(sys.argv[2], "rb").read()}
out = open(sys.argv[3], "wb")
for arg in sys.argv[4:]:
    w, h, l, t, r, b, ow, oh, ch, f = arg.split(",")
    w, h, l, t, r, b, ow, oh, ch = map(int, (w, h, l, t, r, b, ow, oh, ch))
    im = Image.frombytes("RGB" if ch == 3 else "L", (w, h), srcs[ch][:w*h*ch])
    filt = Image.BICUBIC if f == "bicubic" else Image.BILINEAR
    out.write(im.crop((l, t, r, b)).resize((ow, oh), filt).tobytes())
`

// TestResizeBicubicMatchesPillow checks Resize with Bicubic (Pillow's
// antialiased BICUBIC, a = -0.5, support 2 scaled by the reduction) against
// Pillow byte for byte, on RGB and L images, shrinking and enlarging.
func TestResizeBicubicMatchesPillow(t *testing.T) {
	py := testutil.PythonTorch(t)
	const w, h = 41, 33
	rgb, gray := randomImage(w, h, 3, 21), randomImage(w, h, 1, 22)
	for y := 0; y < h/2; y++ { // a smooth half, where the filter's overshoot shows
		for x := 0; x < w; x++ {
			gray.Pix[y*w+x] = uint8(x * 6)
			for c := 0; c < 3; c++ {
				rgb.Pix[(y*w+x)*3+c] = uint8(x*6 + y*c)
			}
		}
	}
	cases := [][9]int{
		{w, h, 0, 0, w, h, 16, 12, 3}, {w, h, 0, 0, w, h, 60, 47, 3}, {w, h, 3, 4, 23, 19, 24, 24, 3},
		{w, h, 5, 2, 40, 33, 8, 8, 3}, {w, h, 0, 0, w, h, w, 10, 3}, {w, h, 0, 0, w, h, 3, h, 3},
		{w, h, 1, 1, 3, 3, 7, 5, 3}, {w, h, 0, 0, w, h, 13, 29, 1}, {w, h, 2, 3, 39, 30, 50, 9, 1},
	}
	dir := t.TempDir()
	rgbPath, grayPath, outPath := filepath.Join(dir, "rgb.raw"), filepath.Join(dir, "gray.raw"), filepath.Join(dir, "out.raw")
	if err := os.WriteFile(rgbPath, rgb.Pix, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(grayPath, gray.Pix, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-c", pilResizeInterpScript, rgbPath, grayPath, outPath}
	for _, c := range cases {
		args = append(args, strings.Trim(strings.ReplaceAll(fmt.Sprint(c), " ", ","), "[]")+",bicubic")
	}
	out, err := exec.Command(py, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "NO_PIL") {
		testutil.Missing(t, "Pillow not installed (apt-get install python3-pil)")
	}
	want, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	off := 0
	var s resizeScratch
	for _, c := range cases {
		src := rgb
		if c[8] == 1 {
			src = gray
		}
		n := c[6] * c[7] * c[8]
		ref := want[off : off+n]
		off += n
		// Both the one-shot Resize and the scratch-reusing path the loader uses.
		got := Resize(src, c[2], c[3], c[4]-c[2], c[5]-c[3], c[6], c[7], Bicubic)
		again := resizeInto(&Image{}, src, c[2], c[3], c[4]-c[2], c[5]-c[3], c[6], c[7], Bicubic, &s)
		if d := countDiff(got.Pix, ref); d != 0 {
			t.Errorf("case %v: %d of %d bytes differ from Pillow's BICUBIC", c, d, n)
		}
		if d := countDiff(again.Pix, ref); d != 0 {
			t.Errorf("case %v with a reused scratch: %d of %d bytes differ", c, d, n)
		}
	}
}

func TestParseInterpolation(t *testing.T) {
	for in, want := range map[string]Interpolation{"": Bilinear, "bilinear": Bilinear, "BICUBIC": Bicubic, "bicubic": Bicubic} {
		if got, err := ParseInterpolation(in); err != nil || got != want {
			t.Errorf("ParseInterpolation(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseInterpolation("lanczos"); err == nil || !strings.Contains(err.Error(), "bilinear, bicubic") {
		t.Errorf("lanczos: %v, want an error listing the choices", err)
	}
	// The bicubic kernel at hand-computed points: 1 at 0, 0 at the integers,
	// (a+2)/8 - (a+3)/4 + 1 = 0.5625 at 0.5, and a*(-1.5^3+... ) = -0.0625 at 1.5.
	for x, want := range map[float64]float64{0: 1, 1: 0, 2: 0, 0.5: 0.5625, 1.5: -0.0625, -1.5: -0.0625, 2.5: 0} {
		if got := Bicubic.weight(x); got != want {
			t.Errorf("bicubic weight(%v) = %v, want %v", x, got, want)
		}
	}
}
