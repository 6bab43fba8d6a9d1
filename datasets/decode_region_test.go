package datasets

import (
	"bytes"
	"image"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gsrmt/gsrmt/internal/testutil"
)

// noisyRGBA is a w x h picture with gradients and noise, so that every
// JPEG block carries detail.
func noisyRGBA(w, h int, seed uint64) *image.NRGBA {
	img := patternRGBA(w, h, int(seed))
	r := rand.New(rand.NewPCG(seed, 3))
	for i := range img.Pix {
		if i%4 != 3 {
			img.Pix[i] += uint8(r.IntN(40))
		}
	}
	return img
}

// checkRegions decodes random regions of data (and a few fixed ones) with
// decodeImageRegion and compares them with the full decode.
func checkRegions(t *testing.T, data []byte, n int, seed uint64) {
	t.Helper()
	full := &Image{}
	if err := DecodeImage(data, full); err != nil {
		t.Fatal(err)
	}
	W, H := full.Width, full.Height
	rng := rand.New(rand.NewPCG(seed, 11))
	dst := &Image{}
	regions := [][4]int{{0, 0, W, H}, {0, 0, 1, 1}, {W - 1, H - 1, 1, 1}, {W / 3, H / 3, W / 3, H / 3}, {1, 0, W - 1, H}, {0, 1, W, H - 1}}
	for i := 0; i < n; i++ {
		w, h := 1+rng.IntN(W), 1+rng.IntN(H)
		regions = append(regions, [4]int{rng.IntN(W - w + 1), rng.IntN(H - h + 1), w, h})
	}
	for _, r := range regions {
		if r[2] <= 0 || r[3] <= 0 {
			continue
		}
		var gotW, gotH int
		offX, offY, err := decodeImageRegion(data, dst, func(w, h int) (int, int, int, int) {
			gotW, gotH = w, h
			return r[0], r[1], r[2], r[3]
		})
		if err != nil {
			t.Fatalf("region %v: %v", r, err)
		}
		if gotW != W || gotH != H {
			t.Fatalf("plan got size %dx%d, want %dx%d", gotW, gotH, W, H)
		}
		if offX > r[0] || offY > r[1] || offX+dst.Width < r[0]+r[2] || offY+dst.Height < r[1]+r[3] || dst.Channels != 3 ||
			len(dst.Pix) != dst.Width*dst.Height*3 {
			t.Fatalf("region %v: got %dx%dx%d at (%d,%d)", r, dst.Width, dst.Height, dst.Channels, offX, offY)
		}
		for y := r[1]; y < r[1]+r[3]; y++ {
			got := dst.Pix[((y-offY)*dst.Width+r[0]-offX)*3 : ((y-offY)*dst.Width+r[0]+r[2]-offX)*3]
			want := full.Pix[(y*W+r[0])*3 : (y*W+r[0]+r[2])*3]
			if !bytes.Equal(got, want) {
				t.Fatalf("region %v of a %dx%d image: row %d differs from the full decode", r, W, H, y)
			}
		}
	}
}

// TestDecodeRegion checks that decoding part of a JPEG gives the pixels of
// the full decode, on Go-encoded JPEGs (4:2:0 colour and gray) of sizes
// that are and are not multiples of the block size.
func TestDecodeRegion(t *testing.T) {
	for i, size := range [][2]int{{64, 48}, {101, 77}, {500, 375}, {17, 9}, {1, 1}, {8, 300}} {
		data := encodeJPEG(t, noisyRGBA(size[0], size[1], uint64(i)), 90)
		checkRegions(t, data, 60, uint64(i))
		g := image.NewGray(image.Rect(0, 0, size[0], size[1]))
		copy(g.Pix, noisyRGBA(size[0], size[1], uint64(i)).Pix)
		checkRegions(t, encodeJPEG(t, g, 85), 30, uint64(i+100))
	}
	// PNG: whole image.
	checkRegions(t, encodePNG(t, noisyRGBA(30, 20, 1)), 10, 1)
}

// pilRegionScript writes JPEGs of every sampling, progressive, restart
// markers, and Adobe CMYK with Pillow.
const pilRegionScript = `
import sys, random
try:
    from PIL import Image
except ImportError:
    print("NO_PIL"); sys.exit(0)
out = sys.argv[1]
random.seed(1)
w, h = 157, 93
im = Image.new("RGB", (w, h))
im.putdata([((x*3 + random.randrange(60)) % 256, (y*5 + random.randrange(60)) % 256, (x*y + random.randrange(60)) % 256) for y in range(h) for x in range(w)])
for s in [0, 1, 2]:
    im.save("%s/sub%d.jpg" % (out, s), quality=90, subsampling=s)
im.save(out + "/progressive.jpg", quality=90, progressive=True)
im.save(out + "/progressive444.jpg", quality=90, progressive=True, subsampling=0)
im.save(out + "/restart.jpg", quality=90, restart_marker_blocks=3)
im.convert("CMYK").save(out + "/cmyk.jpg", quality=90)
`

// TestDecodeRegionPIL runs the region check on Pillow-written JPEGs: 4:4:4,
// 4:2:2, 4:2:0, progressive, restart markers and Adobe CMYK.
func TestDecodeRegionPIL(t *testing.T) {
	if !TurboJPEGAvailable() {
		t.Skip("built without libjpeg-turbo")
	}
	py := testutil.PythonTorch(t)
	dir := t.TempDir()
	out, err := exec.Command(py, "-c", pilRegionScript, dir).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "NO_PIL") {
		testutil.Missing(t, "Pillow not installed (apt-get install python3-pil)")
	}
	for i, name := range []string{"sub0", "sub1", "sub2", "progressive", "progressive444", "restart", "cmyk"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, name+".jpg"))
			if err != nil {
				t.Fatal(err)
			}
			checkRegions(t, data, 80, uint64(i))
		})
	}
}

// TestDecodeRegionTruncated checks that a truncated JPEG fails whatever the
// region, as a full decode does, even when the missing data lies below the
// region; and that a region outside the image is an error.
func TestDecodeRegionTruncated(t *testing.T) {
	data := encodeJPEG(t, noisyRGBA(120, 96, 4), 90)
	plan := func(x, y, w, h int) func(int, int) (int, int, int, int) {
		return func(int, int) (int, int, int, int) { return x, y, w, h }
	}
	regions := [][4]int{{0, 0, 10, 10}, {50, 80, 60, 16}, {0, 0, 120, 96}, {100, 0, 20, 96}, {0, 40, 120, 8}}
	for _, cut := range []int{len(data) - 1, len(data) - 2, len(data) - 3, len(data) - 100, len(data) / 2, len(data) / 4, 700} {
		// libjpeg accepts a file that lacks only its EOI marker: a region
		// decode must fail exactly when the full decode does.
		fullErr := DecodeImage(data[:cut], &Image{})
		for _, r := range regions {
			_, _, err := decodeImageRegion(data[:cut], &Image{}, plan(r[0], r[1], r[2], r[3]))
			if (err == nil) != (fullErr == nil) {
				t.Fatalf("%d of %d bytes, region %v: error %v, full decode %v", cut, len(data), r, err, fullErr)
			}
			if TurboJPEGAvailable() && err != nil && !strings.Contains(err.Error(), "truncated") && !strings.Contains(err.Error(), "invalid") {
				t.Fatalf("%d of %d bytes, region %v: %v", cut, len(data), r, err)
			}
		}
		if cut < len(data)-2 && fullErr == nil {
			t.Fatalf("%d of %d bytes: no error", cut, len(data))
		}
	}
	// Trailing bytes after the EOI marker are fine.
	long := append(append([]byte(nil), data...), make([]byte, 50)...)
	if _, _, err := decodeImageRegion(long, &Image{}, plan(0, 0, 10, 10)); err != nil {
		t.Fatal(err)
	}
	for _, r := range [][4]int{{-1, 0, 10, 10}, {0, 0, 121, 10}, {0, 90, 10, 7}, {0, 0, 0, 5}} {
		if _, _, err := decodeImageRegion(data, &Image{}, plan(r[0], r[1], r[2], r[3])); err == nil {
			t.Fatalf("region %v outside the image: no error", r)
		}
	}
}
