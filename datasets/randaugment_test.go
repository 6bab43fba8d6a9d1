package datasets

import (
	"bytes"
	"math"
	"testing"
)

func grayImage(w, h int, pix ...uint8) *Image {
	return &Image{Pix: pix, Width: w, Height: h, Channels: 1}
}

func TestRandAugmentMagnitudes(t *testing.T) {
	// torchvision's tables at magnitude 9 of 31 bins, for a 224x160 image.
	want := map[RandAugmentOp]float64{
		OpIdentity: 0, OpShearX: 0.09, OpShearY: 0.09,
		OpTranslateX: 150.0 / 331.0 * 224 * 0.3, OpTranslateY: 150.0 / 331.0 * 160 * 0.3,
		OpRotate: 9, OpBrightness: 0.27, OpColor: 0.27, OpContrast: 0.27, OpSharpness: 0.27,
		OpPosterize: 7, OpSolarize: 178.5, OpAutoContrast: 0, OpEqualize: 0,
	}
	for op := RandAugmentOp(0); op < numRandAugmentOps; op++ {
		got, signed := op.Magnitude(9, 31, 224, 160)
		if math.Abs(got-want[op]) > 1e-9 {
			t.Errorf("%v magnitude %v, want %v", op, got, want[op])
		}
		wantSigned := op >= OpShearX && op <= OpSharpness
		if signed != wantSigned {
			t.Errorf("%v signed %v", op, signed)
		}
	}
	// Posterize over the bins: 8 - round(m / 7.5).
	for m, bits := range map[int]float64{0: 8, 3: 8, 4: 7, 11: 7, 12: 6, 30: 4} {
		if got, _ := OpPosterize.Magnitude(m, 31, 1, 1); got != bits {
			t.Errorf("posterize at %d: %v bits, want %v", m, got, bits)
		}
	}
}

func TestRandAugmentPixelOps(t *testing.T) {
	cases := []struct {
		name string
		op   RandAugmentOp
		mag  float64
		in   *Image
		want []uint8
	}{
		{"posterize 7", OpPosterize, 7, grayImage(4, 1, 0, 1, 255, 131), []uint8{0, 0, 254, 130}},
		{"posterize 4", OpPosterize, 4, grayImage(2, 1, 31, 200), []uint8{16, 192}},
		{"solarize", OpSolarize, 178.5, grayImage(3, 1, 178, 179, 255), []uint8{178, 76, 0}},
		// factor 1.5: 100 -> 150, 200 -> 300 clamped; factor 0.5 truncates 50.5.
		{"brightness up", OpBrightness, 0.5, grayImage(2, 1, 100, 200), []uint8{150, 255}},
		{"brightness down", OpBrightness, -0.5, grayImage(2, 1, 101, 3), []uint8{50, 1}},
		{"brightness 1.27", OpBrightness, 0.27, grayImage(1, 1, 100), []uint8{127}},
		// Gray mean (10+30)/2 = 20; factor 2: 2v - 20.
		{"contrast", OpContrast, 1, grayImage(2, 1, 10, 30), []uint8{0, 40}},
		// Channel range [50, 150] stretched to [0, 255], truncated.
		{"autocontrast", OpAutoContrast, 0, grayImage(3, 1, 50, 100, 150), []uint8{0, 127, 255}},
		{"autocontrast flat", OpAutoContrast, 0, grayImage(2, 1, 9, 9), []uint8{9, 9}},
		// Saturation 0 of an RGB pixel: its truncated luma 0.2989*200 +
		// 0.587*100 + 0.114*50 = 124.18 -> 124.
		{"color 0", OpColor, -1, &Image{Pix: []uint8{200, 100, 50}, Width: 1, Height: 1, Channels: 3}, []uint8{124, 124, 124}},
		{"color gray", OpColor, 0.5, grayImage(1, 1, 77), []uint8{77}},
		{"identity", OpIdentity, 0, grayImage(1, 1, 5), []uint8{5}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := ApplyRandAugmentOp(tc.in, tc.op, tc.mag)
			if !bytes.Equal(got.Pix, tc.want) {
				t.Fatalf("%v(%v) = %v, want %v", tc.op, tc.mag, got.Pix, tc.want)
			}
		})
	}
}

func TestRandAugmentEqualize(t *testing.T) {
	// 300 pixels each of 0, 100 and 200: step = 600 // 255 = 2, and the
	// lookup (cumulative count below v + 1) // 2 maps 0 -> 0, 100 -> 150,
	// 200 -> 300, clamped to 255.
	img := NewImage(900, 1, 1)
	for i := range img.Pix {
		img.Pix[i] = uint8(100 * (i % 3))
	}
	out := ApplyRandAugmentOp(img, OpEqualize, 0)
	if out.Pix[0] != 0 || out.Pix[1] != 150 || out.Pix[2] != 255 {
		t.Fatalf("equalize gave %v", out.Pix[:3])
	}
	// Too few pixels (step 0): unchanged.
	small := grayImage(3, 1, 0, 100, 200)
	if out := ApplyRandAugmentOp(small, OpEqualize, 0); !bytes.Equal(out.Pix, []uint8{0, 100, 200}) {
		t.Fatalf("equalize of a small image gave %v", out.Pix)
	}
}

func TestRandAugmentSharpness(t *testing.T) {
	// 3x3: only the center is blurred, to round((8*10 + 5*140) / 13) = 60;
	// factor 2 gives 2*140 - 60 = 220 there and leaves the border.
	img := grayImage(3, 3, 10, 10, 10, 10, 140, 10, 10, 10, 10)
	out := ApplyRandAugmentOp(img, OpSharpness, 1)
	want := []uint8{10, 10, 10, 10, 220, 10, 10, 10, 10}
	if !bytes.Equal(out.Pix, want) {
		t.Fatalf("sharpness gave %v, want %v", out.Pix, want)
	}
	// Images of 2 pixels or fewer a side are left alone.
	tiny := grayImage(2, 2, 1, 2, 3, 4)
	if out := ApplyRandAugmentOp(tiny, OpSharpness, 0.5); !bytes.Equal(out.Pix, []uint8{1, 2, 3, 4}) {
		t.Fatalf("tiny image changed: %v", out.Pix)
	}
}

func TestRandAugmentGeometry(t *testing.T) {
	const n = 6
	src := NewImage(n, n, 1)
	for i := range src.Pix {
		src.Pix[i] = uint8(i + 1)
	}
	at := func(img *Image, x, y int) uint8 { return img.Pix[y*img.Width+x] }

	tx := ApplyRandAugmentOp(src.Clone(), OpTranslateX, 2.7) // int(2.7) = 2 pixels right
	ty := ApplyRandAugmentOp(src.Clone(), OpTranslateY, -1.2)
	rot := ApplyRandAugmentOp(src.Clone(), OpRotate, 90)
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			want := uint8(0)
			if x >= 2 {
				want = at(src, x-2, y)
			}
			if got := at(tx, x, y); got != want {
				t.Fatalf("translate x: (%d,%d) = %d, want %d", x, y, got, want)
			}
			want = 0
			if y+1 < n {
				want = at(src, x, y+1)
			}
			if got := at(ty, x, y); got != want {
				t.Fatalf("translate y: (%d,%d) = %d, want %d", x, y, got, want)
			}
			// 90 degrees counter-clockwise: out(x, y) = in(n-1-y, x).
			if got, want := at(rot, x, y), at(src, n-1-y, x); got != want {
				t.Fatalf("rotate: (%d,%d) = %d, want %d", x, y, got, want)
			}
		}
	}
	// ShearX by m about the top edge: out(x, y) = in(round(x + m*(y+0.5)), y).
	const m = 0.3
	sh := ApplyRandAugmentOp(src.Clone(), OpShearX, m)
	shy := ApplyRandAugmentOp(src.Clone(), OpShearY, -m)
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			sx := int(math.RoundToEven(float64(x) + m*(float64(y)+0.5)))
			want := uint8(0)
			if sx < n {
				want = at(src, sx, y)
			}
			if got := at(sh, x, y); got != want {
				t.Fatalf("shear x: (%d,%d) = %d, want %d", x, y, got, want)
			}
			sy := int(math.RoundToEven(float64(y) - m*(float64(x)+0.5)))
			want = 0
			if sy >= 0 {
				want = at(src, x, sy)
			}
			if got := at(shy, x, y); got != want {
				t.Fatalf("shear y: (%d,%d) = %d, want %d", x, y, got, want)
			}
		}
	}
}

func TestRandAugmentApply(t *testing.T) {
	ra := DefaultRandAugment
	src := randomImage(40, 30, 3, 9)
	changed := 0
	for seed := uint64(0); seed < 200; seed++ {
		a := ra.Apply(src.Clone(), newRNG(seed))
		b := ra.Apply(src.Clone(), newRNG(seed))
		if !bytes.Equal(a.Pix, b.Pix) || a.Width != 40 || a.Height != 30 {
			t.Fatalf("seed %d: not deterministic or resized", seed)
		}
		if !bytes.Equal(a.Pix, src.Pix) {
			changed++
		}
	}
	if changed < 150 {
		t.Fatalf("only %d of 200 images changed", changed)
	}
	// Degenerate sizes and grayscale images.
	for _, img := range []*Image{randomImage(1, 1, 3, 1), randomImage(2, 3, 1, 2), randomImage(7, 1, 3, 3)} {
		for seed := uint64(0); seed < 100; seed++ {
			out := RandAugment{N: 3, M: 30}.Apply(img.Clone(), newRNG(seed))
			if err := out.Validate(); err != nil || out.Width != img.Width || out.Height != img.Height {
				t.Fatalf("%dx%d: %v", img.Width, img.Height, err)
			}
		}
	}
}
