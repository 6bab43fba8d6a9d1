package datasets

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// TestSmallImageRule checks the one rule of the small-image recipe: which
// sides train with it and how the images are brought to the side.
func TestSmallImageRule(t *testing.T) {
	cases := []struct {
		native, side int
		ok           bool
		fit          Transform
	}{
		{28, 28, true, nil},                   // Fashion-MNIST at its side
		{28, 32, true, PadTo{Size: 32}},       // 2 px a side: padded
		{32, 32, true, nil},                   // CIFAR at its side
		{32, 40, true, PadTo{Size: 40}},       // 4 px a side: padded
		{32, 41, true, ResizeTo{Size: 41}},    // more: resized
		{32, 48, true, ResizeTo{Size: 48}},    // 1.5x, the largest
		{32, 49, false, nil},                  // beyond 1.5x
		{28, 42, true, ResizeTo{Size: 42}},    // 1.5x
		{28, 43, false, nil},                  // beyond
		{28, 224, false, nil},                 // 8x: the 224 px recipe
		{32, 224, false, nil},                 // 7x
		{32, 24, false, nil},                  // below the native side
		{0, 32, false, nil},                   // native side unknown
		{224, 224, true, nil},                 // an ImageFolder at its side
		{160, 224, true, ResizeTo{Size: 224}}, // 1.4x
	}
	for _, c := range cases {
		fit, ok := smallImageFit(c.native, c.side)
		if ok != c.ok || !reflect.DeepEqual(fit, c.fit) {
			t.Errorf("smallImageFit(%d, %d) = %#v, %v; want %#v, %v", c.native, c.side, fit, ok, c.fit, c.ok)
		}
	}
}

// TestSmallImagePolicy checks the transforms chosen per data set and side,
// as config.json records them.
func TestSmallImagePolicy(t *testing.T) {
	gray, small, square := newMemDataset(2, 28, 28), newMemDataset(2, 32, 32), newMemDataset(2, 160, 160)
	rrc := func(side int) string {
		return "RandomResizedCrop " + strconv.Itoa(side) + " (scale 0.08-1, ratio 3/4-4/3), horizontal flip 0.5"
	}
	cases := []struct {
		name        string
		ds          Dataset
		side        int
		train, eval string
		rule        string
	}{
		{NameFashionMNIST, gray, 28, "random crop 28 with 4 px zero padding, horizontal flip 0.5", "none", "small-image"},
		{NameFashionMNIST, gray, 32, "zero-pad to 32x32, random crop 32 with 4 px zero padding, horizontal flip 0.5", "zero-pad to 32x32", "small-image: side 32 within 1-1.5x the native 28 px"},
		{NameMNIST, gray, 32, "zero-pad to 32x32, random crop 32 with 4 px zero padding, horizontal flip 0.5", "zero-pad to 32x32", "small-image"},
		{NameFashionMNIST, gray, 224, rrc(224), "resize shorter side to 256, center crop 224", "224 px recipe: side 224 outside 1-1.5x the native 28 px"},
		{NameCIFAR10, small, 32, "random crop 32 with 4 px zero padding, horizontal flip 0.5", "none", "small-image"},
		{NameCIFAR100, small, 32, "random crop 32 with 4 px zero padding, horizontal flip 0.5", "none", "small-image"},
		{NameCIFAR10, small, 48, "resize to 48x48, random crop 48 with 4 px zero padding, horizontal flip 0.5", "resize to 48x48", "small-image: side 48 within 1-1.5x the native 32 px"},
		{NameCIFAR100, small, 64, rrc(64), "resize shorter side to 73, center crop 64", "224 px recipe"},
		{NameCIFAR100, small, 224, rrc(224), "resize shorter side to 256, center crop 224", "224 px recipe"},
		{NameImageFolder, small, 48, "resize to 48x48, random crop 48 with 4 px zero padding, horizontal flip 0.5", "resize to 48x48", "native 32 px"},
		{NameImageFolder, square, 224, "resize to 224x224, random crop 224 with 4 px zero padding, horizontal flip 0.5", "resize to 224x224", "native 160 px"},
		{NameImageFolder, newMemDataset(2, 300, 200), 224, rrc(224), "resize shorter side to 256, center crop 224", "images of mixed or non-square sizes"},
	}
	for _, c := range cases {
		tr := TrainTransformFor(c.name, c.ds, c.side, 4, false)
		if got := Describe(tr); got != c.train {
			t.Errorf("%s %d: train %q, want %q", c.name, c.side, got, c.train)
		}
		if got := Describe(EvalTransformFor(c.name, c.ds, c.side)); got != c.eval {
			t.Errorf("%s %d: eval %q, want %q", c.name, c.side, got, c.eval)
		}
		if got := TransformRule(c.name, c.ds, c.side); !strings.Contains(got, c.rule) {
			t.Errorf("%s %d: rule %q does not say %q", c.name, c.side, got, c.rule)
		}
	}
	// No crop padding: the fit and the flip only.
	if got := Describe(TrainTransformFor(NameFashionMNIST, gray, 32, 0, true)); got != "zero-pad to 32x32, horizontal flip 0.5, RandAugment(2, 9)" {
		t.Errorf("crop padding 0: %q", got)
	}
}

// handImage is a w x h grayscale image whose every pixel is non-zero and
// tells its place: 1 + (x + w*y) mod 250.
func handImage(w, h int) *Image {
	img := NewImage(w, h, 1)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Pix[y*w+x] = byte(1 + (x+w*y)%250)
		}
	}
	return img
}

// TestSmallImageTrainGeometry applies Fashion-MNIST's 32 px training
// transform to a hand-made 28 px image and checks every output against the
// windows it may be: the image zero-padded by 2 to 32, padded again by 4 to
// 40, a 32 px window at (dx, dy) in 0-8, mirrored or not.
func TestSmallImageTrainGeometry(t *testing.T) {
	src := handImage(28, 28)
	padded := PadTo{Size: 32}.Apply(src.Clone(), nil)
	if padded.Width != 32 || padded.Height != 32 {
		t.Fatalf("padded to %dx%d", padded.Width, padded.Height)
	}
	for y := 0; y < 32; y++ {
		for x := 0; x < 32; x++ {
			want := byte(0)
			if x >= 2 && x < 30 && y >= 2 && y < 30 {
				want = src.Pix[(y-2)*28+x-2]
			}
			if got := padded.Pix[y*32+x]; got != want {
				t.Fatalf("padded (%d,%d) = %d, want %d", x, y, got, want)
			}
		}
	}
	// canvas(X, Y): the source at (6, 6) in a 40 x 40 zero canvas.
	canvas := func(X, Y int) byte {
		if X < 6 || X >= 34 || Y < 6 || Y >= 34 {
			return 0
		}
		return src.Pix[(Y-6)*28+X-6]
	}
	tr := TrainTransformFor(NameFashionMNIST, newMemDataset(1, 28, 28), 32, 4, false)
	seen := map[[3]int]bool{}
	for seed := uint64(0); seed < 200; seed++ {
		out := tr.Apply(src.Clone(), newRNG(seed))
		if out.Width != 32 || out.Height != 32 || out.Channels != 1 {
			t.Fatalf("seed %d: output %dx%dx%d", seed, out.Width, out.Height, out.Channels)
		}
		found := false
		for dy := 0; dy <= 8 && !found; dy++ {
			for dx := 0; dx <= 8 && !found; dx++ {
				for flip := 0; flip < 2 && !found; flip++ {
					if windowMatches(out, canvas, dx, dy, flip == 1) {
						found, seen[[3]int{dx, dy, flip}] = true, true
					}
				}
			}
		}
		if !found {
			t.Fatalf("seed %d: the output is no 32 px window of the padded image", seed)
		}
	}
	if len(seen) < 20 {
		t.Errorf("200 draws gave %d distinct windows", len(seen))
	}
}

// windowMatches reports whether out is the 32 x 32 window at (dx, dy) of
// canvas, mirrored left to right when flip is set.
func windowMatches(out *Image, canvas func(X, Y int) byte, dx, dy int, flip bool) bool {
	for y := 0; y < 32; y++ {
		for x := 0; x < 32; x++ {
			sx := x
			if flip {
				sx = 31 - x
			}
			if out.Pix[y*32+x] != canvas(sx+dx, y+dy) {
				return false
			}
		}
	}
	return true
}

// TestSmallImageResizeGeometry: CIFAR at 48 px resizes the 32 px image to
// 48 (a constant image stays constant) and crops a 48 px window of it padded
// by 4, so the zero border is at most 4 px on a side and the rest keeps the
// colour.
func TestSmallImageResizeGeometry(t *testing.T) {
	src := NewImage(32, 32, 3)
	for i := 0; i < len(src.Pix); i += 3 {
		src.Pix[i], src.Pix[i+1], src.Pix[i+2] = 10, 200, 30
	}
	resized := ResizeTo{Size: 48}.Apply(src.Clone(), nil)
	if resized.Width != 48 || resized.Height != 48 {
		t.Fatalf("resized to %dx%d", resized.Width, resized.Height)
	}
	for i := 0; i < len(resized.Pix); i += 3 {
		if resized.Pix[i] != 10 || resized.Pix[i+1] != 200 || resized.Pix[i+2] != 30 {
			t.Fatalf("resized pixel %d = %v", i/3, resized.Pix[i:i+3])
		}
	}
	tr := TrainTransformFor(NameCIFAR10, newMemDataset(1, 32, 32), 48, 4, false)
	for seed := uint64(0); seed < 50; seed++ {
		out := tr.Apply(src.Clone(), newRNG(seed))
		if out.Width != 48 || out.Height != 48 {
			t.Fatalf("seed %d: output %dx%d", seed, out.Width, out.Height)
		}
		// The coloured pixels form one rectangle at least 44 px a side.
		x0, y0, x1, y1 := 48, 48, -1, -1
		coloured := 0
		for y := 0; y < 48; y++ {
			for x := 0; x < 48; x++ {
				p := out.Pix[(y*48+x)*3 : (y*48+x)*3+3]
				switch {
				case p[0] == 10 && p[1] == 200 && p[2] == 30:
					x0, y0, x1, y1 = min(x0, x), min(y0, y), max(x1, x), max(y1, y)
					coloured++
				case p[0] != 0 || p[1] != 0 || p[2] != 0:
					t.Fatalf("seed %d: pixel (%d,%d) = %v, neither the colour nor padding", seed, x, y, p)
				}
			}
		}
		w, h := x1-x0+1, y1-y0+1
		if w < 44 || h < 44 || coloured != w*h || x0 > 4 || y0 > 4 || x1 < 43 || y1 < 43 {
			t.Fatalf("seed %d: colour in [%d,%d]x[%d,%d] (%d pixels)", seed, x0, x1, y0, y1, coloured)
		}
	}
}

// TestPrepareForModelSmallImage: predict brings a square image in the
// small-image range to the model's side as evaluation does.
func TestPrepareForModelSmallImage(t *testing.T) {
	norm := NormalizationFor(NameFashionMNIST)
	img := handImage(28, 28)
	padded := PadTo{Size: 32}.Apply(img.Clone(), nil)
	if got, want := PrepareForModel(img.Clone(), 32, norm), norm.Apply(padded, make([]float32, norm.Len(padded))); !reflect.DeepEqual(got, want) {
		t.Error("a 28 px image at 32 was not zero-padded")
	}
	cropped := EvalTransform(224).Apply(img.Clone(), nil)
	if got, want := PrepareForModel(img.Clone(), 224, norm), norm.Apply(cropped, make([]float32, norm.Len(cropped))); !reflect.DeepEqual(got, want) {
		t.Error("a 28 px image at 224 was not resized and center-cropped")
	}
	rgb := randomImage(32, 32, 3, 5)
	resized := ResizeTo{Size: 48}.Apply(rgb.Clone(), nil)
	cnorm := NormalizationFor(NameCIFAR10)
	if got, want := PrepareForModel(rgb, 48, cnorm), cnorm.Apply(resized, make([]float32, cnorm.Len(resized))); !reflect.DeepEqual(got, want) {
		t.Error("a 32 px image at 48 was not resized")
	}
}
