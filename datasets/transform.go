package datasets

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
)

// Transform is an image augmentation. Apply returns the transformed image,
// which may be img itself modified in place or a new image; callers must not
// use img afterwards. All randomness comes from rng, so a transform is
// reproducible from the generator's seed. Transforms are safe for concurrent
// use with distinct generators.
type Transform interface {
	Apply(img *Image, rng *rand.Rand) *Image
}

// TransformFunc adapts a function to Transform.
type TransformFunc func(img *Image, rng *rand.Rand) *Image

// Apply calls f.
func (f TransformFunc) Apply(img *Image, rng *rand.Rand) *Image { return f(img, rng) }

// Compose applies transforms in order; nil entries are skipped.
type Compose []Transform

// Apply applies each transform in turn.
func (c Compose) Apply(img *Image, rng *rand.Rand) *Image {
	for _, t := range c {
		if t != nil {
			img = t.Apply(img, rng)
		}
	}
	return img
}

// String describes the transforms in order, separated by commas ("none"
// when there are none).
func (c Compose) String() string {
	var parts []string
	for _, t := range c {
		if t != nil {
			parts = append(parts, Describe(t))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// uniform returns a float64 uniform in [lo, hi).
func uniform(rng *rand.Rand, lo, hi float64) float64 { return lo + (hi-lo)*rng.Float64() }

// randint returns an int uniform in [lo, hi) (torch.randint semantics).
func randint(rng *rand.Rand, lo, hi int) int { return lo + rng.IntN(hi-lo) }

// pyRound rounds half to even, as Python's round does.
func pyRound(x float64) int { return int(math.RoundToEven(x)) }

// RandomResizedCrop crops a random part of the image and resizes it to
// Size x Size with Pillow-style antialiased resampling (bilinear unless
// Interpolation says bicubic), following
// torchvision's RandomResizedCrop: up to 10 tries of an area fraction
// uniform in Scale and a log-uniform aspect ratio in Ratio, then a center
// crop clamped to Ratio as the fallback.
type RandomResizedCrop struct {
	Size  int
	Scale [2]float64 // area fraction range; zero value means (0.08, 1)
	Ratio [2]float64 // aspect ratio (w/h) range; zero value means (3/4, 4/3)
	// Interpolation of the resize (timm's RandomResizedCropAndInterpolation).
	Interpolation Interpolation
}

func (t RandomResizedCrop) bounds() (scale, ratio [2]float64) {
	scale, ratio = t.Scale, t.Ratio
	if scale == ([2]float64{}) {
		scale = [2]float64{0.08, 1}
	}
	if ratio == ([2]float64{}) {
		ratio = [2]float64{3.0 / 4.0, 4.0 / 3.0}
	}
	return scale, ratio
}

// Params draws the crop (top, left, height, width) for an image of the
// given size.
func (t RandomResizedCrop) Params(width, height int, rng *rand.Rand) (top, left, h, w int) {
	scale, ratio := t.bounds()
	area := float64(height * width)
	logRatio := [2]float64{math.Log(ratio[0]), math.Log(ratio[1])}
	for try := 0; try < 10; try++ {
		targetArea := area * uniform(rng, scale[0], scale[1])
		aspect := math.Exp(uniform(rng, logRatio[0], logRatio[1]))
		w = pyRound(math.Sqrt(targetArea * aspect))
		h = pyRound(math.Sqrt(targetArea / aspect))
		if 0 < w && w <= width && 0 < h && h <= height {
			top = randint(rng, 0, height-h+1)
			left = randint(rng, 0, width-w+1)
			return top, left, h, w
		}
	}
	// Fallback to a central crop.
	inRatio := float64(width) / float64(height)
	switch {
	case inRatio < math.Min(ratio[0], ratio[1]):
		w = width
		h = pyRound(float64(w) / math.Min(ratio[0], ratio[1]))
	case inRatio > math.Max(ratio[0], ratio[1]):
		h = height
		w = pyRound(float64(h) * math.Max(ratio[0], ratio[1]))
	default:
		w, h = width, height
	}
	return (height - h) / 2, (width - w) / 2, h, w
}

// Apply crops and resizes.
func (t RandomResizedCrop) Apply(img *Image, rng *rand.Rand) *Image {
	top, left, h, w := t.Params(img.Width, img.Height, rng)
	return Resize(img, left, top, w, h, t.Size, t.Size, t.Interpolation)
}

// String describes the crop, as "RandomResizedCrop 224 (scale 0.08-1,
// ratio 3/4-4/3)", with ", bicubic" inside the brackets when it is.
func (t RandomResizedCrop) String() string {
	scale, ratio := t.bounds()
	return fmt.Sprintf("RandomResizedCrop %d (scale %g-%g, ratio %s-%s%s)", t.Size, scale[0], scale[1], fraction(ratio[0]), fraction(ratio[1]), interpSuffix(t.Interpolation))
}

// interpSuffix is ", bicubic" for bicubic and "" for the default bilinear,
// so that the descriptions of bilinear transforms stay as they were.
func interpSuffix(i Interpolation) string {
	if i == Bilinear {
		return ""
	}
	return ", " + i.String()
}

// fraction writes x as p/q when it is one with a small q (3/4), else as %g.
func fraction(x float64) string {
	for q := 1; q <= 12; q++ {
		p := math.Round(x * float64(q))
		if p/float64(q) == x {
			if q == 1 {
				return fmt.Sprintf("%g", p)
			}
			return fmt.Sprintf("%g/%d", p, q)
		}
	}
	return fmt.Sprintf("%g", x)
}

// leadingCrop splits t into the RandomResizedCrop it applies first and the
// transforms that follow it (nil when none), for a Loader that fuses the
// crop with decoding; ok is false when t does not start with one.
func leadingCrop(t Transform) (crop RandomResizedCrop, rest Transform, ok bool) {
	switch t := t.(type) {
	case RandomResizedCrop:
		return t, nil, true
	case *RandomResizedCrop:
		if t != nil {
			return *t, nil, true
		}
	case Compose:
		for i, s := range t {
			if s == nil {
				continue
			}
			crop, inner, ok := leadingCrop(s)
			if !ok {
				return RandomResizedCrop{}, nil, false
			}
			after := t[i+1:]
			if inner == nil {
				if len(after) == 0 {
					return crop, nil, true
				}
				return crop, after, true
			}
			return crop, append(Compose{inner}, after...), true
		}
	}
	return RandomResizedCrop{}, nil, false
}

// ResizeShorter resizes the image so that its shorter side is Size, the
// longer one int(Size*long/short) (torchvision's Resize(int)), bilinear
// unless Interpolation says bicubic.
type ResizeShorter struct {
	Size          int
	Interpolation Interpolation
}

// Apply resizes.
func (t ResizeShorter) Apply(img *Image, _ *rand.Rand) *Image {
	w, h := img.Width, img.Height
	var nw, nh int
	if w <= h {
		nw, nh = t.Size, int(float64(t.Size)*float64(h)/float64(w))
	} else {
		nw, nh = int(float64(t.Size)*float64(w)/float64(h)), t.Size
	}
	if nw == w && nh == h {
		return img
	}
	return Resize(img, 0, 0, w, h, nw, nh, t.Interpolation)
}

// String describes the resize, as "resize shorter side to 256" (with
// " bicubic" after it when it is).
func (t ResizeShorter) String() string {
	if t.Interpolation != Bilinear {
		return fmt.Sprintf("resize shorter side to %d %s", t.Size, t.Interpolation)
	}
	return fmt.Sprintf("resize shorter side to %d", t.Size)
}

// CenterCrop crops the central Size x Size window (torchvision's
// CenterCrop: offsets rounded half to even, zero padding when the image is
// smaller).
type CenterCrop struct{ Size int }

// Apply crops.
func (t CenterCrop) Apply(img *Image, _ *rand.Rand) *Image {
	if img.Width == t.Size && img.Height == t.Size {
		return img
	}
	return cropPad(img, centerOffset(img.Width, t.Size), centerOffset(img.Height, t.Size), t.Size, t.Size)
}

// String describes the crop, as "center crop 224".
func (t CenterCrop) String() string { return fmt.Sprintf("center crop %d", t.Size) }

func centerOffset(size, crop int) int {
	if crop > size {
		return -((crop - size) / 2)
	}
	return pyRound(float64(size-crop) / 2)
}

// ResizeCenterCrop is the evaluation transform of 224 px training: resize
// the shorter side to Resize (256 for 224), then center crop Size.
func ResizeCenterCrop(resize, size int) Compose {
	return Compose{ResizeShorter{Size: resize}, CenterCrop{Size: size}}
}

// RandomCrop takes a random Size x Size window of the image padded with
// Padding zero pixels on every side (torchvision's RandomCrop(size,
// padding)).
type RandomCrop struct {
	Size    int
	Padding int
}

// Apply crops.
func (t RandomCrop) Apply(img *Image, rng *rand.Rand) *Image {
	pw, ph := img.Width+2*t.Padding, img.Height+2*t.Padding
	top, left := 0, 0
	if ph != t.Size || pw != t.Size {
		top = randint(rng, 0, max(ph-t.Size, 0)+1)
		left = randint(rng, 0, max(pw-t.Size, 0)+1)
	}
	if top == t.Padding && left == t.Padding && img.Width == t.Size && img.Height == t.Size {
		return img
	}
	return cropPad(img, left-t.Padding, top-t.Padding, t.Size, t.Size)
}

// String describes the crop, as "random crop 32 with 4 px zero padding".
func (t RandomCrop) String() string {
	if t.Padding == 0 {
		return fmt.Sprintf("random crop %d", t.Size)
	}
	return fmt.Sprintf("random crop %d with %d px zero padding", t.Size, t.Padding)
}

// HorizontalFlip mirrors the image left to right with probability P.
type HorizontalFlip struct{ P float64 }

// Apply flips in place when a uniform draw is below P.
func (t HorizontalFlip) Apply(img *Image, rng *rand.Rand) *Image {
	if rng.Float64() < t.P {
		FlipHorizontal(img)
	}
	return img
}

// String describes the flip, as "horizontal flip 0.5".
func (t HorizontalFlip) String() string { return fmt.Sprintf("horizontal flip %g", t.P) }

// FlipHorizontal mirrors img left to right in place.
func FlipHorizontal(img *Image) {
	ch := img.Channels
	for y := 0; y < img.Height; y++ {
		row := img.Pix[y*img.Width*ch : (y+1)*img.Width*ch]
		for l, r := 0, img.Width-1; l < r; l, r = l+1, r-1 {
			for c := 0; c < ch; c++ {
				row[l*ch+c], row[r*ch+c] = row[r*ch+c], row[l*ch+c]
			}
		}
	}
}
