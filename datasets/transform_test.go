package datasets

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gsrmt/gsrmt/internal/testutil"
)

// randomImage returns a w x h image of uniform random bytes.
func randomImage(w, h, ch int, seed uint64) *Image {
	img := NewImage(w, h, ch)
	r := rand.New(rand.NewPCG(seed, 99))
	for i := range img.Pix {
		img.Pix[i] = uint8(r.IntN(256))
	}
	return img
}

func newRNG(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 7)) }

// pilResizeScript crops and resizes raw RGB images with Pillow's BILINEAR
// filter: each argument is "w,h,left,top,right,bottom,ow,oh".
const pilResizeScript = `
import sys
try:
    from PIL import Image
except ImportError:
    print("NO_PIL"); sys.exit(0)
src = open(sys.argv[1], "rb").read()
out = open(sys.argv[2], "wb")
for arg in sys.argv[3:]:
    w, h, l, t, r, b, ow, oh = map(int, arg.split(","))
    im = Image.frombytes("RGB", (w, h), src[:w*h*3])
    out.write(im.crop((l, t, r, b)).resize((ow, oh), Image.BILINEAR).tobytes())
`

// TestResizeBilinearMatchesPillow checks ResizeBilinear against Pillow
// (torchvision's resize of PIL images) byte for byte.
func TestResizeBilinearMatchesPillow(t *testing.T) {
	py := testutil.PythonTorch(t)
	const w, h = 37, 29
	src := randomImage(w, h, 3, 1)
	// Smooth half of the image so that both noise and gradients are covered.
	for y := 0; y < h/2; y++ {
		for x := 0; x < w; x++ {
			for c := 0; c < 3; c++ {
				src.Pix[(y*w+x)*3+c] = uint8(x*6 + y*c)
			}
		}
	}
	cases := [][8]int{
		{w, h, 0, 0, w, h, 16, 12},   // shrink
		{w, h, 0, 0, w, h, 50, 41},   // enlarge
		{w, h, 3, 4, 23, 19, 24, 24}, // crop, enlarge
		{w, h, 5, 2, 36, 29, 8, 8},   // crop, shrink by ~4
		{w, h, 0, 0, w, h, w, 10},    // vertical only
		{w, h, 0, 0, w, h, 3, h},     // horizontal only
		{w, h, 1, 1, 2, 2, 5, 5},     // one pixel
	}
	dir := t.TempDir()
	srcPath, outPath := filepath.Join(dir, "src.raw"), filepath.Join(dir, "out.raw")
	if err := os.WriteFile(srcPath, src.Pix, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-c", pilResizeScript, srcPath, outPath}
	for _, c := range cases {
		args = append(args, strings.Trim(strings.ReplaceAll(fmt.Sprint(c), " ", ","), "[]"))
	}
	out, err := exec.Command(py, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	if bytes.Contains(out, []byte("NO_PIL")) {
		testutil.Missing(t, "Pillow not installed (apt-get install python3-pil)")
	}
	want, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	off := 0
	for _, c := range cases {
		got := ResizeBilinear(src, c[2], c[3], c[4]-c[2], c[5]-c[3], c[6], c[7])
		n := c[6] * c[7] * 3
		ref := want[off : off+n]
		off += n
		diff := 0
		for i := range ref {
			if got.Pix[i] != ref[i] {
				diff++
			}
		}
		if diff != 0 {
			t.Errorf("case %v: %d of %d bytes differ from Pillow", c, diff, n)
		}
	}
}

func TestResizeConstantAndIdentity(t *testing.T) {
	img := NewImage(20, 10, 3)
	for i := range img.Pix {
		img.Pix[i] = 123
	}
	for _, size := range [][2]int{{7, 3}, {40, 33}, {1, 1}} {
		out := ResizeBilinear(img, 0, 0, 20, 10, size[0], size[1])
		for _, v := range out.Pix {
			if v != 123 {
				t.Fatalf("resize of a constant image to %v gave %d", size, v)
			}
		}
	}
	src := randomImage(9, 8, 3, 2)
	out := ResizeBilinear(src, 2, 1, 5, 4, 5, 4)
	for y := 0; y < 4; y++ {
		if !bytes.Equal(out.Pix[y*15:(y+1)*15], src.Pix[((y+1)*9+2)*3:((y+1)*9+7)*3]) {
			t.Fatalf("same-size resize is not a crop at row %d", y)
		}
	}
}

func TestRandomResizedCropBounds(t *testing.T) {
	rrc := RandomResizedCrop{Size: 224}
	rng := newRNG(1)
	const W, H = 500, 375
	area := float64(W * H)
	for i := 0; i < 5000; i++ {
		top, left, h, w := rrc.Params(W, H, rng)
		if top < 0 || left < 0 || top+h > H || left+w > W || h <= 0 || w <= 0 {
			t.Fatalf("crop %d,%d %dx%d outside %dx%d", left, top, w, h, W, H)
		}
		frac := float64(w*h) / area
		ratio := float64(w) / float64(h)
		// Rounding w and h to integers moves area and ratio a little.
		if frac < 0.08*0.97 || frac > 1 {
			t.Fatalf("area fraction %.4f", frac)
		}
		if h < H && w < W && (ratio < 0.75*0.97 || ratio > 4.0/3*1.03) {
			t.Fatalf("ratio %.4f for %dx%d", ratio, w, h)
		}
	}
	// An image too elongated for any try: the center-crop fallback.
	top, left, h, w := rrc.Params(1000, 10, rng)
	if top != 0 || h != 10 || w != 13 || left != 493 {
		t.Fatalf("fallback crop (%d,%d) %dx%d, want (493,0) 13x10", left, top, w, h)
	}
	top, left, h, w = rrc.Params(10, 1000, rng)
	if left != 0 || w != 10 || h != 13 || top != 493 {
		t.Fatalf("fallback crop (%d,%d) %dx%d, want (0,493) 10x13", left, top, w, h)
	}
	out := rrc.Apply(randomImage(W, H, 3, 3), rng)
	if out.Width != 224 || out.Height != 224 || out.Channels != 3 {
		t.Fatalf("output %dx%dx%d", out.Width, out.Height, out.Channels)
	}
	// Same seed, same crop.
	a := rrc.Apply(randomImage(W, H, 3, 3), newRNG(5))
	b := rrc.Apply(randomImage(W, H, 3, 3), newRNG(5))
	if !bytes.Equal(a.Pix, b.Pix) {
		t.Fatal("RandomResizedCrop is not deterministic for a seed")
	}
}

func TestResizeCenterCrop(t *testing.T) {
	src := randomImage(500, 375, 3, 4)
	r := ResizeShorter{Size: 256}.Apply(src, nil)
	if r.Width != 341 || r.Height != 256 {
		t.Fatalf("resized to %dx%d, want 341x256", r.Width, r.Height)
	}
	c := CenterCrop{Size: 224}.Apply(r, nil)
	if c.Width != 224 || c.Height != 224 {
		t.Fatalf("cropped to %dx%d", c.Width, c.Height)
	}
	// Offsets: round((341-224)/2) = round(58.5) = 58 (half to even), 16.
	if !bytes.Equal(c.Pix[:224*3], r.Pix[(16*341+58)*3:(16*341+58+224)*3]) {
		t.Fatal("center crop offsets differ from torchvision's")
	}
	full := ResizeCenterCrop(256, 224).Apply(src, nil)
	if !bytes.Equal(full.Pix, c.Pix) {
		t.Fatal("ResizeCenterCrop differs from its two steps")
	}
	// Portrait, and a crop larger than the image (zero padded).
	p := ResizeShorter{Size: 8}.Apply(randomImage(4, 10, 3, 5), nil)
	if p.Width != 8 || p.Height != 20 {
		t.Fatalf("portrait resized to %dx%d", p.Width, p.Height)
	}
	small := randomImage(3, 2, 1, 6)
	pad := CenterCrop{Size: 5}.Apply(small, nil)
	// torchvision pads left (5-3)//2 = 1 and top (5-2)//2 = 1.
	if pad.Pix[1*5+1] != small.Pix[0] || pad.Pix[0] != 0 || pad.Pix[2*5+3] != small.Pix[1*3+2] || pad.Pix[4*5+4] != 0 {
		t.Fatalf("padded crop %v from %v", pad.Pix, small.Pix)
	}
}

func TestRandomCropPadding(t *testing.T) {
	src := randomImage(32, 32, 3, 7)
	for c := range src.Pix {
		if src.Pix[c] == 0 {
			src.Pix[c] = 1 // so that zero means padding
		}
	}
	rc := RandomCrop{Size: 32, Padding: 4}
	var seen [9][9]int
	for i := 0; i < 2000; i++ {
		rng := newRNG(uint64(i))
		top, left := randint(rng, 0, 9), randint(rng, 0, 9)
		out := rc.Apply(src.Clone(), newRNG(uint64(i)))
		seen[top][left]++
		for y := 0; y < 32; y += 7 {
			for x := 0; x < 32; x += 5 {
				sy, sx := y+top-4, x+left-4
				var want uint8
				if sy >= 0 && sy < 32 && sx >= 0 && sx < 32 {
					want = src.Pix[(sy*32+sx)*3+1]
				}
				if got := out.Pix[(y*32+x)*3+1]; got != want {
					t.Fatalf("offset (%d,%d): pixel (%d,%d) = %d, want %d", left, top, x, y, got, want)
				}
			}
		}
	}
	for top := range seen {
		for left, n := range seen[top] {
			if n == 0 {
				t.Fatalf("offset (%d,%d) never drawn", left, top)
			}
		}
	}
}

func TestHorizontalFlip(t *testing.T) {
	img := &Image{Pix: []uint8{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, Width: 2, Height: 2, Channels: 3}
	FlipHorizontal(img)
	if want := []uint8{4, 5, 6, 1, 2, 3, 10, 11, 12, 7, 8, 9}; !bytes.Equal(img.Pix, want) {
		t.Fatalf("flip %v, want %v", img.Pix, want)
	}
	for _, p := range []float64{0, 0.3, 0.5, 1} {
		rng := newRNG(11)
		flipped := 0
		const n = 20000
		for i := 0; i < n; i++ {
			im := &Image{Pix: []uint8{1, 2}, Width: 2, Height: 1, Channels: 1}
			if (HorizontalFlip{P: p}).Apply(im, rng).Pix[0] == 2 {
				flipped++
			}
		}
		rate := float64(flipped) / n
		if math.Abs(rate-p) > 0.015 {
			t.Fatalf("flip rate %.4f for p %.2f", rate, p)
		}
	}
}

func TestNormalize(t *testing.T) {
	img := &Image{Pix: []uint8{0, 128, 255, 10, 20, 30}, Width: 2, Height: 1, Channels: 3}
	n := Normalize{Mean: CIFAR10Mean, Std: CIFAR10Std}
	out := n.Apply(img, make([]float32, n.Len(img)))
	for c := 0; c < 3; c++ {
		for i := 0; i < 2; i++ {
			v := img.Pix[i*3+c]
			want := (float32(v)/255 - CIFAR10Mean[c]) / CIFAR10Std[c]
			if out[c*2+i] != want {
				t.Fatalf("channel %d pixel %d = %v, want %v", c, i, out[c*2+i], want)
			}
		}
	}
	gray := &Image{Pix: []uint8{0, 255, 73}, Width: 3, Height: 1, Channels: 1}
	g := GrayNormalize(FashionMNISTMean, FashionMNISTStd)
	out = g.Apply(gray, make([]float32, g.Len(gray)))
	if len(out) != 9 {
		t.Fatalf("gray output has %d values, want 9", len(out))
	}
	for c := 0; c < 3; c++ {
		if want := (float32(73)/255 - 0.2860) / 0.3530; out[c*3+2] != want {
			t.Fatalf("gray channel %d = %v, want %v", c, out[c*3+2], want)
		}
	}
}

func TestRandomErasing(t *testing.T) {
	const C, H, W = 3, 32, 40
	e := RandomErasing{P: 0.25}
	rng := newRNG(3)
	erased := 0
	const n = 4000
	for i := 0; i < n; i++ {
		x := make([]float32, C*H*W)
		for k := range x {
			x[k] = 1
		}
		if !e.Apply(x, C, H, W, rng) {
			for _, v := range x {
				if v != 1 {
					t.Fatal("not erased but changed")
				}
			}
			continue
		}
		erased++
		// The zeros form one box, the same in every channel.
		y0, y1, x0, x1 := H, -1, W, -1
		zeros := 0
		for y := 0; y < H; y++ {
			for xx := 0; xx < W; xx++ {
				if x[y*W+xx] == 0 {
					zeros++
					y0, y1, x0, x1 = min(y0, y), max(y1, y), min(x0, xx), max(x1, xx)
				}
				if x[y*W+xx] != x[(2*H+y)*W+xx] {
					t.Fatal("channels erased differently")
				}
			}
		}
		bh, bw := y1-y0+1, x1-x0+1
		if zeros != bh*bw || bh >= H || bw >= W {
			t.Fatalf("erased %d values in a %dx%d box", zeros, bw, bh)
		}
		frac := float64(zeros) / (H * W)
		if frac < 0.02*0.8 || frac > 0.33*1.2 {
			t.Fatalf("erased area fraction %.3f", frac)
		}
	}
	if rate := float64(erased) / n; math.Abs(rate-0.25) > 0.025 {
		t.Fatalf("erasing rate %.3f, want 0.25", rate)
	}
	// Random values: standard normal draws.
	x := make([]float32, 3*64*64)
	er := RandomErasing{P: 1, Value: EraseRandom}
	for !er.Apply(x, 3, 64, 64, rng) {
	}
	var sum, sq float64
	k := 0
	for _, v := range x {
		if v != 0 {
			sum += float64(v)
			sq += float64(v * v)
			k++
		}
	}
	if k < 100 || math.Abs(sum/float64(k)) > 0.2 || math.Abs(sq/float64(k)-1) > 0.25 {
		t.Fatalf("random erasing values: %d values, mean %.3f, mean square %.3f", k, sum/float64(k), sq/float64(k))
	}
}
