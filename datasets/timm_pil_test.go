package datasets

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gsrmt/gsrmt/internal/testutil"
)

// pilOpsScript applies timm's RandAugment ops with Pillow, as timm's
// auto_augment.py defines them (written out here from that file's op
// functions): each line of the cases file is "image op arg", the images
// are raw files named by index with their mode and size in images.txt,
// and the results are written one after another.
const pilOpsScript = `
import sys
try:
    from PIL import Image, ImageOps, ImageEnhance
except ImportError:
    print("NO_PIL"); sys.exit(0)
d = sys.argv[1]
imgs = []
for line in open(d + "/images.txt"):
    mode, w, h = line.split()
    imgs.append(Image.frombytes(mode, (int(w), int(h)), open(d + "/img%d.raw" % len(imgs), "rb").read()))
FILL = (124, 116, 104)
def fill(im):
    return FILL if im.mode == "RGB" else int(sys.argv[2])
def resample(name):
    return Image.BICUBIC if name == "bicubic" else Image.BILINEAR
def solarize_add(img, add, thresh=128):
    lut = [min(255, i + add) if i < thresh else i for i in range(256)]
    if img.mode == "RGB":
        lut = lut * 3
    return img.point(lut)
def posterize(img, bits):
    return img if bits >= 8 else ImageOps.posterize(img, bits)
def op(im, name, arg, interp):
    if name == "AutoContrast": return ImageOps.autocontrast(im)
    if name == "Equalize": return ImageOps.equalize(im)
    if name == "Invert": return ImageOps.invert(im)
    if name == "Posterize": return posterize(im, int(arg))
    if name == "Solarize": return ImageOps.solarize(im, int(arg))
    if name == "SolarizeAdd": return solarize_add(im, int(arg))
    if name == "Color": return ImageEnhance.Color(im).enhance(float(arg))
    if name == "Contrast": return ImageEnhance.Contrast(im).enhance(float(arg))
    if name == "Brightness": return ImageEnhance.Brightness(im).enhance(float(arg))
    if name == "Sharpness": return ImageEnhance.Sharpness(im).enhance(float(arg))
    kw = dict(resample=resample(interp), fillcolor=fill(im))
    a = float(arg)
    if name == "ShearX": return im.transform(im.size, Image.AFFINE, (1, a, 0, 0, 1, 0), **kw)
    if name == "ShearY": return im.transform(im.size, Image.AFFINE, (1, 0, 0, a, 1, 0), **kw)
    if name == "TranslateXRel": return im.transform(im.size, Image.AFFINE, (1, 0, a * im.size[0], 0, 1, 0), **kw)
    if name == "TranslateYRel": return im.transform(im.size, Image.AFFINE, (1, 0, 0, 0, 1, a * im.size[1]), **kw)
    if name == "Rotate": return im.rotate(a, **kw)
    raise ValueError(name)
out = open(d + "/out.raw", "wb")
for line in open(d + "/cases.txt"):
    i, name, arg, interp = line.split()
    out.write(op(imgs[int(i)], name, arg, interp).tobytes())
`

// pilCase is one op applied to one test image.
type pilCase struct {
	img    int
	op     timmOp
	arg    float64
	interp Interpolation
}

// goPILOp applies c with this package's code: the same PIL call as the
// script (the level functions are tested separately).
func goPILOp(img *Image, c pilCase) *Image {
	t := TimmRandAugment{Interpolation: c.interp, Fill: [3]uint8{124, 116, 104}}
	a := c.arg
	switch c.op {
	case timmAutoContrast:
		return pilAutoContrast(img)
	case timmEqualize:
		return pilEqualize(img)
	case timmInvert:
		return pilInvert(img)
	case timmPosterize:
		return pilPosterize(img, int(a))
	case timmSolarize:
		return pilSolarize(img, int(a))
	case timmSolarizeAdd:
		return pilSolarizeAdd(img, int(a), 128)
	case timmColor:
		return pilColor(img, a)
	case timmContrast:
		return pilContrast(img, a)
	case timmBrightness:
		return pilBrightness(img, a)
	case timmSharpness:
		return pilSharpness(img, a)
	}
	return pilAffine(img, t.affine(c.op, a, img.Width, img.Height), c.interp, t.fill(img))
}

// pilTestImages are hand-made images: RGB with a smooth half (gradients)
// and a noisy half, an L image, a 2x2 RGB image and a flat one.
func pilTestImages() []*Image {
	rgb := randomImage(37, 29, 3, 11)
	for y := 0; y < 14; y++ {
		for x := 0; x < 37; x++ {
			for c := 0; c < 3; c++ {
				rgb.Pix[(y*37+x)*3+c] = uint8(40 + x*4 + y*c*3)
			}
		}
	}
	gray := randomImage(23, 19, 1, 12)
	for i := 0; i < 23*6; i++ {
		gray.Pix[i] = uint8(60 + i%23*7)
	}
	flat := NewImage(5, 4, 3)
	for i := range flat.Pix {
		flat.Pix[i] = 77
	}
	return []*Image{rgb, gray, randomImage(2, 2, 3, 13), flat}
}

// pilCases lists every op at several arguments on every image.
func pilCases(n int) []pilCase {
	args := map[timmOp][]float64{
		timmAutoContrast: {0}, timmEqualize: {0}, timmInvert: {0},
		timmPosterize: {0, 1, 2, 4, 7, 8}, timmSolarize: {0, 26, 128, 230, 256}, timmSolarizeAdd: {0, 49, 110},
		timmColor: {0.1, 0.55, 1, 1.37, 1.9}, timmContrast: {0.1, 0.55, 1, 1.37, 1.9},
		timmBrightness: {0.1, 0.55, 1, 1.37, 1.9}, timmSharpness: {0.1, 0.55, 1, 1.37, 1.9},
		timmShearX: {0.27, -0.13}, timmShearY: {-0.27, 0.3}, timmTranslateXRel: {0.4, -0.123}, timmTranslateYRel: {-0.4, 0.31},
		timmRotate: {27.3, -29.9, 0, 13},
	}
	var cases []pilCase
	for i := 0; i < n; i++ {
		for op := timmAutoContrast; op <= timmTranslateYRel; op++ {
			for _, a := range args[op] {
				for _, interp := range []Interpolation{Bilinear, Bicubic} {
					if interp == Bicubic && op < timmRotate || interp == Bicubic && op > timmRotate && op < timmShearX {
						continue // pixel ops ignore the filter
					}
					cases = append(cases, pilCase{i, op, a, interp})
				}
			}
		}
	}
	return cases
}

// TestTimmOpsMatchPillow runs every op of timm's RandAugment with Pillow
// (through /usr/bin/python3) and with this package on the same images,
// and wants the same bytes.
func TestTimmOpsMatchPillow(t *testing.T) {
	py := testutil.PythonTorch(t)
	imgs := pilTestImages()
	cases := pilCases(len(imgs))
	dir := t.TempDir()
	var list, lines strings.Builder
	for i, img := range imgs {
		mode := map[int]string{1: "L", 3: "RGB"}[img.Channels]
		fmt.Fprintf(&list, "%s %d %d\n", mode, img.Width, img.Height)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("img%d.raw", i)), img.Pix, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range cases {
		fmt.Fprintf(&lines, "%d %s %s %s\n", c.img, c.op, strconv.FormatFloat(c.arg, 'g', -1, 64), c.interp)
	}
	for name, text := range map[string]string{"images.txt": list.String(), "cases.txt": lines.String()} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	grayFill := TimmRandAugment{Fill: [3]uint8{124, 116, 104}}.fill(imgs[1])[0]
	out, err := exec.Command(py, "-c", pilOpsScript, dir, strconv.Itoa(int(grayFill))).CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
	if bytes.Contains(out, []byte("NO_PIL")) {
		testutil.Missing(t, "Pillow not installed (apt-get install python3-pil)")
	}
	want, err := os.ReadFile(filepath.Join(dir, "out.raw"))
	if err != nil {
		t.Fatal(err)
	}
	off := 0
	for _, c := range cases {
		img := imgs[c.img]
		got := goPILOp(img.Clone(), c)
		ref := want[off : off+len(img.Pix)]
		off += len(img.Pix)
		if diff := countDiff(got.Pix, ref); diff != 0 || got.Width != img.Width || got.Height != img.Height {
			t.Errorf("image %d (%dx%dx%d) %v(%g) %v: %d of %d bytes differ from Pillow", c.img, img.Width, img.Height, img.Channels,
				c.op, c.arg, c.interp, diff, len(ref))
		}
	}
	if off != len(want) {
		t.Fatalf("Pillow wrote %d bytes, the cases need %d", len(want), off)
	}
}

func countDiff(a, b []uint8) int {
	n := 0
	for i := range b {
		if i >= len(a) || a[i] != b[i] {
			n++
		}
	}
	return n
}
