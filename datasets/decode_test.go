package datasets

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gsrmt/gsrmt/internal/testutil"
)

// meanAbsDiff compares two equally sized images.
func meanAbsDiff(t testing.TB, a, b *Image) (mean float64, maxDiff int) {
	t.Helper()
	if a.Width != b.Width || a.Height != b.Height || a.Channels != b.Channels {
		t.Fatalf("sizes differ: %dx%dx%d vs %dx%dx%d", a.Width, a.Height, a.Channels, b.Width, b.Height, b.Channels)
	}
	var sum float64
	for i := range a.Pix {
		d := int(a.Pix[i]) - int(b.Pix[i])
		if d < 0 {
			d = -d
		}
		sum += float64(d)
		maxDiff = max(maxDiff, d)
	}
	return sum / float64(len(a.Pix)), maxDiff
}

// rgbOf returns the RGB pixels of a Go image.
func rgbOf(img image.Image) *Image {
	out := &Image{}
	if err := imageToRGB(img, out); err != nil {
		panic(err)
	}
	return out
}

func TestDecodePNG(t *testing.T) {
	src := patternRGBA(13, 7, 1)
	gray := image.NewGray(image.Rect(0, 0, 5, 4))
	for i := range gray.Pix {
		gray.Pix[i] = uint8(i * 11)
	}
	pal := image.NewPaletted(image.Rect(0, 0, 3, 2), color.Palette{color.RGBA{10, 20, 30, 255}, color.RGBA{200, 100, 0, 255}})
	pal.Pix = []uint8{0, 1, 0, 1, 1, 0}
	deep := image.NewRGBA64(image.Rect(0, 0, 2, 2))
	deep.SetRGBA64(1, 1, color.RGBA64{0xffff, 0x8080, 0x0101, 0xffff})
	alpha := image.NewNRGBA(image.Rect(0, 0, 1, 1))
	alpha.SetNRGBA(0, 0, color.NRGBA{100, 150, 200, 7})
	for _, tc := range []struct {
		name string
		img  image.Image
		want func(x, y int) [3]uint8
	}{
		{"rgb", src, func(x, y int) [3]uint8 { c := src.NRGBAAt(x, y); return [3]uint8{c.R, c.G, c.B} }},
		{"gray", gray, func(x, y int) [3]uint8 { v := gray.GrayAt(x, y).Y; return [3]uint8{v, v, v} }},
		{"paletted", pal, func(x, y int) [3]uint8 {
			c := pal.Palette[pal.ColorIndexAt(x, y)].(color.RGBA)
			return [3]uint8{c.R, c.G, c.B}
		}},
		{"16-bit", deep, func(x, y int) [3]uint8 {
			if x == 1 && y == 1 {
				return [3]uint8{255, 128, 1}
			}
			return [3]uint8{}
		}},
		{"alpha dropped", alpha, func(x, y int) [3]uint8 { return [3]uint8{100, 150, 200} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := &Image{}
			if err := DecodeImage(encodePNG(t, tc.img), out); err != nil {
				t.Fatal(err)
			}
			b := tc.img.Bounds()
			if out.Width != b.Dx() || out.Height != b.Dy() || out.Channels != 3 {
				t.Fatalf("decoded %dx%dx%d", out.Width, out.Height, out.Channels)
			}
			for y := 0; y < b.Dy(); y++ {
				for x := 0; x < b.Dx(); x++ {
					want := tc.want(x, y)
					got := out.Pix[(y*out.Width+x)*3 : (y*out.Width+x)*3+3]
					if got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
						t.Fatalf("pixel (%d,%d) = %v, want %v", x, y, got, want)
					}
				}
			}
		})
	}
}

func TestDecodeJPEGGoAndTurbo(t *testing.T) {
	src := patternRGBA(48, 40, 0)
	gray := image.NewGray(image.Rect(0, 0, 33, 17))
	for i := range gray.Pix {
		gray.Pix[i] = uint8(i % 251)
	}
	for _, tc := range []struct {
		name string
		img  image.Image
	}{{"rgb", src}, {"gray", gray}} {
		t.Run(tc.name, func(t *testing.T) {
			data := encodeJPEG(t, tc.img, 95)
			goImg := &Image{}
			if err := DecodeJPEGGo(data, goImg); err != nil {
				t.Fatal(err)
			}
			want := rgbOf(tc.img)
			if mean, _ := meanAbsDiff(t, goImg, want); mean > 3 {
				t.Fatalf("Go decode differs from the source by %.2f on average", mean)
			}
			got := &Image{Pix: make([]uint8, 5)} // too small: must grow
			if err := DecodeImage(data, got); err != nil {
				t.Fatal(err)
			}
			mean, maxd := meanAbsDiff(t, got, goImg)
			t.Logf("turbo %v: mean |turbo-Go| %.3f, max %d", TurboJPEGAvailable(), mean, maxd)
			if mean > 2 {
				t.Fatalf("DecodeImage and Go's decoder differ by %.2f on average", mean)
			}
			// Reuse of a large buffer.
			big := &Image{Pix: make([]uint8, 1<<16)}
			if err := DecodeImage(data, big); err != nil || len(big.Pix) != got.Width*got.Height*3 {
				t.Fatalf("reuse: %v, %d bytes", err, len(big.Pix))
			}
		})
	}
}

// pilScript writes JPEGs (RGB, gray, Adobe CMYK) with Pillow and PIL's own
// RGB decoding of each, so that the decoders can be checked against PIL.
const pilScript = `
import sys
try:
    from PIL import Image
except ImportError:
    print("NO_PIL"); sys.exit(0)
out = sys.argv[1]
w, h = 40, 24
rgb = Image.new("RGB", (w, h))
rgb.putdata([(x*6, y*10, (x*y)//4) for y in range(h) for x in range(w)])
rgb.save(out + "/rgb.jpg", quality=85)
rgb.convert("L").save(out + "/gray.jpg", quality=85)
cmyk = Image.new("CMYK", (w, h))
cmyk.putdata([((x*6) % 256, (y*10) % 256, 40, (x*3) % 128) for y in range(h) for x in range(w)])
cmyk.save(out + "/cmyk.jpg", quality=90)
for name in ["rgb", "gray", "cmyk"]:
    im = Image.open(out + "/" + name + ".jpg")
    open(out + "/" + name + ".raw", "wb").write(im.convert("RGB").tobytes())
`

func TestDecodeJPEGAgainstPIL(t *testing.T) {
	py := testutil.PythonTorch(t)
	dir := t.TempDir()
	out, err := exec.Command(py, "-c", pilScript, dir).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "NO_PIL") {
		testutil.Missing(t, "Pillow not installed (apt-get install python3-pil)")
	}
	for _, name := range []string{"rgb", "gray", "cmyk"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, name+".jpg"))
			if err != nil {
				t.Fatal(err)
			}
			raw, err := os.ReadFile(filepath.Join(dir, name+".raw"))
			if err != nil {
				t.Fatal(err)
			}
			pil := &Image{Pix: raw, Width: 40, Height: 24, Channels: 3}
			goImg := &Image{}
			if err := DecodeJPEGGo(data, goImg); err != nil {
				t.Fatal(err)
			}
			mean, maxd := meanAbsDiff(t, goImg, pil)
			t.Logf("Go vs PIL: mean %.3f max %d", mean, maxd)
			if mean > 2.5 {
				t.Fatalf("Go decode differs from PIL by %.2f on average", mean)
			}
			if !TurboJPEGAvailable() {
				return
			}
			tj := &Image{}
			if err := DecodeImage(data, tj); err != nil {
				t.Fatal(err)
			}
			mean, maxd = meanAbsDiff(t, tj, pil)
			t.Logf("libjpeg-turbo vs PIL: mean %.3f max %d", mean, maxd)
			// Same library and settings as PIL: identical for RGB and gray;
			// CMYK differs only by the rounding of the CMYK->RGB formula.
			if name != "cmyk" && maxd != 0 || maxd > 1 {
				t.Fatalf("libjpeg-turbo decode differs from PIL (mean %.3f, max %d)", mean, maxd)
			}
		})
	}
}

func TestDecodeCorrupt(t *testing.T) {
	jpg := encodeJPEG(t, patternRGBA(64, 64, 2), 90)
	pngData := encodePNG(t, patternRGBA(16, 16, 2))
	badHuffman := append([]byte(nil), jpg...)
	for i := len(badHuffman) / 2; i < len(badHuffman)/2+40; i++ {
		badHuffman[i] = 0xFF
	}
	cases := map[string][]byte{
		"truncated jpeg":  jpg[:len(jpg)/2],
		"jpeg header":     jpg[:20],
		"truncated png":   pngData[:len(pngData)-20],
		"garbage":         []byte("GIF89a not supported"),
		"empty":           nil,
		"jpeg magic only": {0xFF, 0xD8, 0xFF},
	}
	dir := t.TempDir()
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".jpg")
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
			err := DecodeImageFile(p, &Image{})
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), p) {
				t.Fatalf("error %q does not name the file", err)
			}
			if err := DecodeJPEGGo(data, &Image{}); err == nil {
				t.Fatal("Go decoder: no error")
			}
		})
	}
	// Corrupt entropy-coded data must not crash either decoder.
	_ = DecodeImage(badHuffman, &Image{})
	_ = DecodeJPEGGo(badHuffman, &Image{})
}

// photoJPEG returns a 500x375 JPEG with photo-like content (smooth shapes
// plus noise), the size of a typical ImageNet image.
func photoJPEG(t testing.TB) []byte {
	const w, h = 500, 375
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	rng := rand.New(rand.NewPCG(1, 2))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			fx, fy := float64(x)/w, float64(y)/h
			r := 128 + 100*math.Sin(6*fx+2*fy) + 20*rng.NormFloat64()
			g := 128 + 90*math.Cos(4*fy*fx*3) + 20*rng.NormFloat64()
			b := 100 + 80*math.Sin(10*math.Hypot(fx-0.5, fy-0.5)) + 20*rng.NormFloat64()
			img.SetNRGBA(x, y, color.NRGBA{clampByte(r), clampByte(g), clampByte(b), 255})
		}
	}
	return encodeJPEG(t, img, 90)
}

func clampByte(v float64) uint8 { return uint8(math.Max(0, math.Min(255, v))) }

// BenchmarkDecodeJPEG compares Go's image/jpeg with libjpeg-turbo on a
// 500x375 JPEG.
func BenchmarkDecodeJPEG(b *testing.B) {
	data := photoJPEG(b)
	b.Run("go", func(b *testing.B) {
		dst := &Image{}
		b.SetBytes(int64(len(data)))
		for i := 0; i < b.N; i++ {
			if err := DecodeJPEGGo(data, dst); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("turbo", func(b *testing.B) {
		if !TurboJPEGAvailable() {
			b.Skip("built without libjpeg-turbo")
		}
		dst := &Image{}
		b.SetBytes(int64(len(data)))
		for i := 0; i < b.N; i++ {
			if err := DecodeImage(data, dst); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkTrainPipeline224 measures one sample of 224 px training: decode
// a 500x375 JPEG, RandomResizedCrop, flip, normalize (and RandAugment in
// the second case).
func BenchmarkTrainPipeline224(b *testing.B) {
	data := photoJPEG(b)
	norm := Normalize{Mean: ImageNetMean, Std: ImageNetStd}
	out := make([]float32, 3*224*224)
	for _, ra := range []bool{false, true} {
		name := "plain"
		if ra {
			name = "randaugment"
		}
		b.Run(name, func(b *testing.B) {
			tf := TrainTransform(224, ra)
			img := &Image{}
			for i := 0; i < b.N; i++ {
				if err := DecodeImage(data, img); err != nil {
					b.Fatal(err)
				}
				norm.Apply(tf.Apply(img, SampleRNG(0, 0, i)), out)
			}
		})
	}
}

// fuzzMaxPixels bounds the images FuzzDecodeImage decodes: larger declared
// sizes (up to MaxImagePixels, tested by TestDecodeHugeHeader) would cost
// hundreds of MB an input.
const fuzzMaxPixels = 1 << 20

// declaredImageSize returns the size a JPEG or PNG header declares.
func declaredImageSize(data []byte) (w, h int, ok bool) {
	switch sniffFormat(data) {
	case formatPNG:
		cfg, err := png.DecodeConfig(bytes.NewReader(data))
		return cfg.Width, cfg.Height, err == nil
	case formatJPEG:
		if turboAvailable {
			if w, h, err := jpegSizeTurbo(data); err == nil {
				return w, h, true
			}
		}
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
		return cfg.Width, cfg.Height, err == nil
	}
	return 0, 0, false
}

// FuzzDecodeImage decodes arbitrary bytes with the package's decoding entry
// points (DecodeImage, decodeImageRegion, DecodeJPEGGo): no panic, and any
// image returned is consistent; a region agrees with the full decode.
func FuzzDecodeImage(f *testing.F) {
	jpg := encodeJPEG(f, noisyRGBA(17, 9, 1), 90)
	gray := image.NewGray(image.Rect(0, 0, 8, 8))
	for i := range gray.Pix {
		gray.Pix[i] = uint8(i * 3)
	}
	pal := image.NewPaletted(image.Rect(0, 0, 5, 3), color.Palette{color.Black, color.White, color.NRGBA{200, 10, 10, 128}})
	for i := range pal.Pix {
		pal.Pix[i] = uint8(i % 3)
	}
	deep := image.NewNRGBA64(image.Rect(0, 0, 4, 4))
	for i := range deep.Pix {
		deep.Pix[i] = uint8(i * 37)
	}
	pngData := encodePNG(f, patternRGBA(6, 5, 1))
	for _, seed := range [][]byte{
		jpg, encodeJPEG(f, gray, 75), encodeJPEG(f, patternRGBA(1, 1, 0), 50),
		pngData, encodePNG(f, gray), encodePNG(f, pal), encodePNG(f, deep),
		jpg[:len(jpg)/2], pngData[:len(pngData)-20], jpegMagic, pngMagic, nil,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if w, h, ok := declaredImageSize(data); ok && int64(w)*int64(h) > fuzzMaxPixels {
			t.Skip("declares a large image")
		}
		full := &Image{}
		if err := DecodeImage(data, full); err == nil {
			if full.Channels != 3 || full.Validate() != nil || full.Width*full.Height > MaxImagePixels {
				t.Fatalf("decoded %dx%dx%d with %d bytes", full.Width, full.Height, full.Channels, len(full.Pix))
			}
			W, H := full.Width, full.Height
			x, y, w, h := W/4, H/3, max(W/2, 1), max(H/3, 1)
			region := &Image{}
			offX, offY, err := decodeImageRegion(data, region, func(width, height int) (int, int, int, int) {
				if width != W || height != H {
					t.Fatalf("plan got %dx%d, the full decode %dx%d", width, height, W, H)
				}
				return x, y, w, h
			})
			if err != nil {
				t.Fatalf("the full %dx%d image decodes, region %dx%d at (%d,%d) fails: %v", W, H, w, h, x, y, err)
			}
			if offX > x || offY > y || offX+region.Width < x+w || offY+region.Height < y+h || region.Validate() != nil {
				t.Fatalf("region %dx%d at (%d,%d): got %dx%d at (%d,%d)", w, h, x, y, region.Width, region.Height, offX, offY)
			}
			for r := y; r < y+h; r++ {
				got := region.Pix[((r-offY)*region.Width+x-offX)*3 : ((r-offY)*region.Width+x+w-offX)*3]
				want := full.Pix[(r*W+x)*3 : (r*W+x+w)*3]
				if !bytes.Equal(got, want) {
					t.Fatalf("region %dx%d at (%d,%d) of a %dx%d image: row %d differs from the full decode", w, h, x, y, W, H, r)
				}
			}
		}
		if sniffFormat(data) == formatJPEG {
			img := &Image{}
			if err := DecodeJPEGGo(data, img); err == nil && (img.Channels != 3 || img.Validate() != nil) {
				t.Fatalf("Go decoder: %dx%dx%d with %d bytes", img.Width, img.Height, img.Channels, len(img.Pix))
			}
		}
	})
}
