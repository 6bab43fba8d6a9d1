package plot

import (
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// keep copies path into $GSRMT_PLOT_OUT when it is set, so that the
// images can be looked at after the test.
func keep(t *testing.T, path string) {
	t.Helper()
	dir := os.Getenv("GSRMT_PLOT_OUT")
	if dir == "" {
		return
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+".png"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// decode reads the PNG at path and returns it.
func decode(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	keep(t, path)
	return img
}

// colors returns the number of distinct colours of img (capped at limit)
// and the fraction of pixels that are not white.
func colors(img image.Image, limit int) (int, float64) {
	seen := map[[4]uint32]bool{}
	b := img.Bounds()
	ink := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			if len(seen) < limit {
				seen[[4]uint32{r, g, bl, a}] = true
			}
			if r < 0xf000 || g < 0xf000 || bl < 0xf000 {
				ink++
			}
		}
	}
	return len(seen), float64(ink) / float64(b.Dx()*b.Dy())
}

// checkNotBlank fails unless img has several colours and some ink.
func checkNotBlank(t *testing.T, img image.Image) {
	t.Helper()
	n, ink := colors(img, 1000)
	if n < 8 {
		t.Errorf("only %d distinct colours", n)
	}
	if ink < 0.01 {
		t.Errorf("only %.4f of the pixels are not white", ink)
	}
}

// hasColor reports whether some pixel of img is within tol (per 8-bit
// channel) of the given colour.
func hasColor(img image.Image, r, g, b uint8, tol int) bool {
	bd := img.Bounds()
	for y := bd.Min.Y; y < bd.Max.Y; y++ {
		for x := bd.Min.X; x < bd.Max.X; x++ {
			pr, pg, pb, _ := img.At(x, y).RGBA()
			d := func(p uint32, c uint8) bool { return abs(int(p>>8)-int(c)) <= tol }
			if d(pr, r) && d(pg, g) && d(pb, b) {
				return true
			}
		}
	}
	return false
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func checkSize(t *testing.T, img image.Image, w, h int) {
	t.Helper()
	if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
		t.Fatalf("size %dx%d, want %dx%d", b.Dx(), b.Dy(), w, h)
	}
}

func history(epochs int) []EpochPoint {
	nan := math.NaN()
	var pts []EpochPoint
	for e := 1; e <= epochs; e++ {
		f := float64(e)
		p := EpochPoint{
			Epoch:     e,
			LR:        0.001 * math.Cos(f/float64(epochs)),
			TrainLoss: 2.3*math.Exp(-f/8) + 0.2,
			TrainTop1: 100 - 90*math.Exp(-f/6),
			TestLoss:  nan, TestTop1: nan, TestTop5: nan,
		}
		if e%2 == 0 || e == epochs {
			p.TestLoss = 2.3*math.Exp(-f/9) + 0.35
			p.TestTop1 = 92 - 82*math.Exp(-f/7)
			p.TestTop5 = 99.5 - 60*math.Exp(-f/4)
		}
		pts = append(pts, p)
	}
	return pts
}

func TestCurves(t *testing.T) {
	path := filepath.Join(t.TempDir(), "curves.png")
	if err := Curves(path, "gated-swinrmt-swat on cifar-10", history(30)); err != nil {
		t.Fatal(err)
	}
	img := decode(t, path)
	checkSize(t, img, CurvesWidth, CurvesHeight)
	checkNotBlank(t, img)
	for _, c := range [][3]uint8{{0x1f, 0x77, 0xb4}, {0xff, 0x7f, 0x0e}, {0x2c, 0xa0, 0x2c}} {
		if !hasColor(img, c[0], c[1], c[2], 8) {
			t.Errorf("series colour %v not drawn", c)
		}
	}
	// No temporary file is left behind.
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only curves.png", len(entries))
	}
}

func TestCurvesOneEpoch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "one.png")
	pts := []EpochPoint{{Epoch: 1, LR: 0.1, TrainLoss: 2.1, TrainTop1: 23.5, TestLoss: 2.0, TestTop1: 25, TestTop5: 70}}
	if err := Curves(path, "one epoch", pts); err != nil {
		t.Fatal(err)
	}
	img := decode(t, path)
	checkSize(t, img, CurvesWidth, CurvesHeight)
	checkNotBlank(t, img)
	if !hasColor(img, 0x2c, 0xa0, 0x2c, 8) {
		t.Error("single test top-5 point not drawn")
	}
}

func TestCurvesNaN(t *testing.T) {
	nan := math.NaN()
	// Test never evaluated, one training value missing, unsorted epochs,
	// an infinite loss, and no title.
	pts := []EpochPoint{
		{Epoch: 3, TrainLoss: 1.1, TrainTop1: 60, TestLoss: nan, TestTop1: nan, TestTop5: nan},
		{Epoch: 1, TrainLoss: 2.0, TrainTop1: nan, TestLoss: nan, TestTop1: nan, TestTop5: nan},
		{Epoch: 2, TrainLoss: math.Inf(1), TrainTop1: 40, TestLoss: nan, TestTop1: nan, TestTop5: nan},
	}
	path := filepath.Join(t.TempDir(), "nan.png")
	if err := Curves(path, "", pts); err != nil {
		t.Fatal(err)
	}
	img := decode(t, path)
	checkSize(t, img, CurvesWidth, CurvesHeight)
	checkNotBlank(t, img)
	if hasColor(img, 0x2c, 0xa0, 0x2c, 8) {
		t.Error("test top-5 drawn although every value is NaN")
	}
}

func TestCurvesAllMissing(t *testing.T) {
	nan := math.NaN()
	for name, pts := range map[string][]EpochPoint{
		"empty":  nil,
		"allnan": {{Epoch: 1, LR: nan, TrainLoss: nan, TrainTop1: nan, TestLoss: nan, TestTop1: nan, TestTop5: nan}},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), name+".png")
			if err := Curves(path, name, pts); err != nil {
				t.Fatal(err)
			}
			checkSize(t, decode(t, path), CurvesWidth, CurvesHeight)
		})
	}
}

func TestCurvesReplaces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "curves.png")
	if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Curves(path, "x", history(3)); err != nil {
		t.Fatal(err)
	}
	checkSize(t, decode(t, path), CurvesWidth, CurvesHeight)
}

func TestBadPath(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "missing", "sub", "out.png")
	err := Curves(bad, "x", history(2))
	if err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("Curves(%s) error = %v, want one naming the file", bad, err)
	}
	err = ConfusionMatrix(bad, []string{"a", "b"}, [][]int64{{1, 0}, {0, 1}})
	if err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("ConfusionMatrix(%s) error = %v, want one naming the file", bad, err)
	}
	// A directory as the target cannot be replaced by a file.
	if err := Curves(dir, "x", history(2)); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("Curves(dir) error = %v, want one naming the directory", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func cifarCounts(n int, perClass int64) [][]int64 {
	counts := make([][]int64, n)
	for t := range counts {
		counts[t] = make([]int64, n)
		left := perClass
		for p := range counts[t] {
			if p == t {
				continue
			}
			v := int64((t*7+p*13)%11) * perClass / 400
			counts[t][p] = v
			left -= v
		}
		counts[t][t] = max(left, 0)
	}
	return counts
}

func TestConfusionMatrix(t *testing.T) {
	classes := []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}
	counts := cifarCounts(len(classes), 1000)
	path := filepath.Join(t.TempDir(), "cm.png")
	if err := ConfusionMatrix(path, classes, counts); err != nil {
		t.Fatal(err)
	}
	img := decode(t, path)
	checkNotBlank(t, img)
	b := img.Bounds()
	if b.Dx() < 500 || b.Dy() < 500 || b.Dx() > 2000 || b.Dy() > 2000 {
		t.Errorf("size %dx%d out of range", b.Dx(), b.Dy())
	}
	if !hasColor(img, 0x08, 0x30, 0x6b, 12) {
		t.Error("dark diagonal colour not drawn")
	}
}

func TestConfusionMatrixSizes(t *testing.T) {
	for _, n := range []int{1, 2, 20, 21, 47, 100, 150} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			classes := make([]string, n)
			for i := range classes {
				classes[i] = fmt.Sprintf("class_%03d", i)
				if i%10 == 3 {
					classes[i] = fmt.Sprintf("a_very_long_class_name_number_%d", i)
				}
			}
			counts := cifarCounts(n, 50)
			if n > 2 {
				counts[n-1] = make([]int64, n) // a class without samples
			}
			path := filepath.Join(t.TempDir(), "cm.png")
			if err := ConfusionMatrix(path, classes, counts); err != nil {
				t.Fatal(err)
			}
			img := decode(t, path)
			checkNotBlank(t, img)
			b := img.Bounds()
			if b.Dx() < 400 || b.Dy() < 400 || b.Dx() > 2400 || b.Dy() > 2400 {
				t.Errorf("size %dx%d out of range", b.Dx(), b.Dy())
			}
		})
	}
}

func TestConfusionMatrixInvalid(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		classes []string
		counts  [][]int64
	}{
		"noclasses": {nil, nil},
		"rows":      {[]string{"a", "b"}, [][]int64{{1, 2}}},
		"cols":      {[]string{"a", "b"}, [][]int64{{1, 2}, {3}}},
		"negative":  {[]string{"a", "b"}, [][]int64{{1, 2}, {-3, 4}}},
	} {
		path := filepath.Join(dir, name+".png")
		err := ConfusionMatrix(path, tc.classes, tc.counts)
		if err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error = %v, want one naming %s", name, err, path)
		}
		if _, statErr := os.Stat(path); statErr == nil {
			t.Errorf("%s: file written despite the error", name)
		}
	}
}

func TestConfusionMatrixNoSamples(t *testing.T) {
	path := filepath.Join(t.TempDir(), "zero.png")
	if err := ConfusionMatrix(path, []string{"a", "b", "c"}, [][]int64{{0, 0, 0}, {0, 0, 0}, {0, 0, 0}}); err != nil {
		t.Fatal(err)
	}
	checkNotBlank(t, decode(t, path))
}

func TestEpochTicks(t *testing.T) {
	for _, tc := range []struct {
		lo, hi float64
		want   int
	}{{0, 2, 3}, {1, 30, 6}, {0.5, 0.9, 0}, {1, 1000, 10}} {
		got := epochTicks(tc.lo, tc.hi)
		if len(got) != tc.want {
			t.Errorf("epochTicks(%v, %v) = %d ticks, want %d", tc.lo, tc.hi, len(got), tc.want)
		}
		for _, tk := range got {
			if tk.Value != math.Trunc(tk.Value) {
				t.Errorf("non-integer tick %v", tk.Value)
			}
		}
	}
}

func TestValueTicks(t *testing.T) {
	for _, tc := range []struct{ lo, hi float64 }{{2.0, 2.1}, {0.21, 2.3}, {-0.5, 0.5}, {23.5, 70}, {0, 1e-4}, {1e6, 3e6}} {
		seen := map[string]bool{}
		majors := 0
		for _, tk := range valueTicks(tc.lo, tc.hi) {
			if tk.Value < tc.lo-1e-12 || tk.Value > tc.hi+1e-12 {
				t.Errorf("valueTicks(%v, %v): tick %v out of range", tc.lo, tc.hi, tk.Value)
			}
			if tk.IsMinor() {
				continue
			}
			majors++
			if seen[tk.Label] || tk.Label == "-0" {
				t.Errorf("valueTicks(%v, %v): bad or repeated label %q", tc.lo, tc.hi, tk.Label)
			}
			seen[tk.Label] = true
		}
		if majors < 3 || majors > 10 {
			t.Errorf("valueTicks(%v, %v): %d labelled ticks", tc.lo, tc.hi, majors)
		}
	}
}
