package datasets

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// RandAugment applies N operations drawn uniformly (with repetition) from
// the 14 of torchvision's RandAugment, each at magnitude M of Bins levels,
// with torchvision's magnitude tables, random sign for the signed ones,
// nearest-neighbour sampling and zero fill for the geometric ones, and the
// pixel arithmetic of torchvision's tensor kernels on uint8 images.
type RandAugment struct {
	N    int // operations per image (2)
	M    int // magnitude index, 0 <= M < Bins (9)
	Bins int // number of magnitude levels; 0 means 31
}

// DefaultRandAugment is RandAugment(num_ops=2, magnitude=9).
var DefaultRandAugment = RandAugment{N: 2, M: 9, Bins: 31}

// String describes the augmentation as torchvision's arguments, as
// "RandAugment(2, 9)" (with the number of bins when it is not 31).
func (t RandAugment) String() string {
	if t.Bins != 0 && t.Bins != 31 {
		return fmt.Sprintf("RandAugment(%d, %d, %d bins)", t.N, t.M, t.Bins)
	}
	return fmt.Sprintf("RandAugment(%d, %d)", t.N, t.M)
}

// RandAugmentOp names one RandAugment operation.
type RandAugmentOp int

// The operations, in torchvision's order.
const (
	OpIdentity RandAugmentOp = iota
	OpShearX
	OpShearY
	OpTranslateX
	OpTranslateY
	OpRotate
	OpBrightness
	OpColor
	OpContrast
	OpSharpness
	OpPosterize
	OpSolarize
	OpAutoContrast
	OpEqualize
	numRandAugmentOps
)

var opNames = [...]string{"Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness",
	"Color", "Contrast", "Sharpness", "Posterize", "Solarize", "AutoContrast", "Equalize"}

// String returns torchvision's name of the operation.
func (op RandAugmentOp) String() string {
	if op >= 0 && op < numRandAugmentOps {
		return opNames[op]
	}
	return "RandAugmentOp(?)"
}

// Magnitude returns the operation's magnitude at level m of bins for an
// image of the given size, and whether its sign is random (torchvision's
// _augmentation_space).
func (op RandAugmentOp) Magnitude(m, bins, width, height int) (mag float64, signed bool) {
	lin := func(lo, hi float64) float64 {
		if bins <= 1 {
			return lo
		}
		return lo + (hi-lo)*float64(m)/float64(bins-1)
	}
	switch op {
	case OpShearX, OpShearY:
		return lin(0, 0.3), true
	case OpTranslateX:
		return lin(0, 150.0/331.0*float64(width)), true
	case OpTranslateY:
		return lin(0, 150.0/331.0*float64(height)), true
	case OpRotate:
		return lin(0, 30), true
	case OpBrightness, OpColor, OpContrast, OpSharpness:
		return lin(0, 0.9), true
	case OpPosterize:
		return float64(8 - int(math.RoundToEven(float64(m)/(float64(bins-1)/4)))), false
	case OpSolarize:
		return lin(255, 0), false
	}
	return 0, false
}

// Apply applies N random operations.
func (t RandAugment) Apply(img *Image, rng *rand.Rand) *Image {
	bins := t.Bins
	if bins == 0 {
		bins = 31
	}
	for i := 0; i < t.N; i++ {
		op := RandAugmentOp(rng.IntN(int(numRandAugmentOps)))
		mag, signed := op.Magnitude(t.M, bins, img.Width, img.Height)
		if signed && rng.IntN(2) == 1 {
			mag = -mag
		}
		img = ApplyRandAugmentOp(img, op, mag)
	}
	return img
}

// ApplyRandAugmentOp applies one operation with the given (signed)
// magnitude, as torchvision's _apply_op does.
func ApplyRandAugmentOp(img *Image, op RandAugmentOp, mag float64) *Image {
	switch op {
	case OpShearX:
		m := inverseAffine([2]float64{-0.5 * float64(img.Width), -0.5 * float64(img.Height)}, 0, [2]float64{}, 1,
			[2]float64{math.Atan(mag), 0})
		return affineNearest(img, m)
	case OpShearY:
		m := inverseAffine([2]float64{-0.5 * float64(img.Width), -0.5 * float64(img.Height)}, 0, [2]float64{}, 1,
			[2]float64{0, math.Atan(mag)})
		return affineNearest(img, m)
	case OpTranslateX:
		return affineNearest(img, inverseAffine([2]float64{}, 0, [2]float64{float64(int(mag)), 0}, 1, [2]float64{}))
	case OpTranslateY:
		return affineNearest(img, inverseAffine([2]float64{}, 0, [2]float64{0, float64(int(mag))}, 1, [2]float64{}))
	case OpRotate:
		return affineNearest(img, inverseAffine([2]float64{}, -mag*math.Pi/180, [2]float64{}, 1, [2]float64{}))
	case OpBrightness:
		return blendConst(img, 0, float32(1+mag))
	case OpColor:
		return adjustSaturation(img, float32(1+mag))
	case OpContrast:
		return adjustContrast(img, float32(1+mag))
	case OpSharpness:
		return adjustSharpness(img, float32(1+mag))
	case OpPosterize:
		return posterize(img, int(mag))
	case OpSolarize:
		return solarize(img, mag)
	case OpAutoContrast:
		return autoContrast(img)
	case OpEqualize:
		return equalize(img)
	}
	return img
}

// inverseAffine is torchvision's _get_inverse_affine_matrix with angles in
// radians: the map from output to input coordinates, both relative to the
// image center, of rotation, scale and shear about center followed by a
// translation.
func inverseAffine(center [2]float64, rot float64, translate [2]float64, scale float64, shear [2]float64) [6]float64 {
	sx, sy := shear[0], shear[1]
	cx, cy := center[0], center[1]
	tx, ty := translate[0], translate[1]
	a := math.Cos(rot-sy) / math.Cos(sy)
	b := -math.Cos(rot-sy)*math.Tan(sx)/math.Cos(sy) - math.Sin(rot)
	c := math.Sin(rot-sy) / math.Cos(sy)
	d := -math.Sin(rot-sy)*math.Tan(sx)/math.Cos(sy) + math.Cos(rot)
	m := [6]float64{d / scale, -b / scale, 0, -c / scale, a / scale, 0}
	m[2] += m[0]*(-cx-tx) + m[1]*(-cy-ty)
	m[5] += m[3]*(-cx-tx) + m[4]*(-cy-ty)
	m[2] += cx
	m[5] += cy
	return m
}

// affineNearest warps img by the inverse map m (torchvision's affine grid:
// centered pixel coordinates), sampling the nearest pixel (ties to even, as
// grid_sample does) and filling outside with zeros.
func affineNearest(img *Image, m [6]float64) *Image {
	w, h, ch := img.Width, img.Height, img.Channels
	out := NewImage(w, h, ch)
	hw, hh := 0.5*float64(w), 0.5*float64(h)
	for y := 0; y < h; y++ {
		yc := float64(y) - hh + 0.5
		for x := 0; x < w; x++ {
			xc := float64(x) - hw + 0.5
			sx := math.RoundToEven(m[0]*xc + m[1]*yc + m[2] + hw - 0.5)
			sy := math.RoundToEven(m[3]*xc + m[4]*yc + m[5] + hh - 0.5)
			if sx < 0 || sy < 0 || sx >= float64(w) || sy >= float64(h) {
				continue
			}
			si := (int(sy)*w + int(sx)) * ch
			copy(out.Pix[(y*w+x)*ch:(y*w+x+1)*ch], img.Pix[si:si+ch])
		}
	}
	return out
}

// toUint8 clamps to [0, 255] and truncates, as torch's .clamp(0,
// 255).to(torch.uint8) does.
func toUint8(v float32) uint8 {
	if v <= 0 || v != v {
		return 0
	}
	if v >= 255 {
		return 255
	}
	return uint8(v)
}

// blendConst is torchvision's _blend(img, constant, ratio) in place.
func blendConst(img *Image, other float32, ratio float32) *Image {
	// The explicit float32 conversions round each product, as torch's
	// kernels do, and keep the compiler from fusing them into an FMA.
	o := float32((1 - ratio) * other)
	for i, v := range img.Pix {
		img.Pix[i] = toUint8(float32(ratio*float32(v)) + o)
	}
	return img
}

// blendImage is torchvision's _blend(img, other, ratio) in place.
func blendImage(img, other *Image, ratio float32) *Image {
	for i, v := range img.Pix {
		img.Pix[i] = toUint8(float32(ratio*float32(v)) + float32((1-ratio)*float32(other.Pix[i])))
	}
	return img
}

// grayscale returns torchvision's rgb_to_grayscale of a uint8 image as one
// byte per pixel (truncated).
func grayscale(img *Image) []uint8 {
	n := img.Width * img.Height
	g := make([]uint8, n)
	if img.Channels == 1 {
		copy(g, img.Pix)
		return g
	}
	for i := 0; i < n; i++ {
		p := img.Pix[3*i:]
		r := float32(float32(0.2989) * float32(p[0]))
		gg := float32(float32(0.587) * float32(p[1]))
		b := float32(float32(0.114) * float32(p[2]))
		g[i] = toUint8(r + gg + b)
	}
	return g
}

func adjustSaturation(img *Image, f float32) *Image {
	if img.Channels == 1 {
		return img
	}
	g := grayscale(img)
	for i, v := range img.Pix {
		img.Pix[i] = toUint8(float32(f*float32(v)) + float32((1-f)*float32(g[i/3])))
	}
	return img
}

func adjustContrast(img *Image, f float32) *Image {
	g := grayscale(img)
	var sum float64
	for _, v := range g {
		sum += float64(v)
	}
	mean := float32(sum / float64(len(g)))
	return blendConst(img, mean, f)
}

func adjustSharpness(img *Image, f float32) *Image {
	w, h, ch := img.Width, img.Height, img.Channels
	if w <= 2 || h <= 2 {
		return img
	}
	blurred := img.Clone()
	for y := 1; y < h-1; y++ {
		for x := 1; x < w-1; x++ {
			for c := 0; c < ch; c++ {
				var s float32
				for dy := -1; dy <= 1; dy++ {
					for dx := -1; dx <= 1; dx++ {
						k := float32(1)
						if dx == 0 && dy == 0 {
							k = 5
						}
						s += float32(k / 13 * float32(img.Pix[((y+dy)*w+x+dx)*ch+c]))
					}
				}
				blurred.Pix[(y*w+x)*ch+c] = uint8(math.RoundToEven(float64(s)))
			}
		}
	}
	return blendImage(img, blurred, f)
}

func posterize(img *Image, bits int) *Image {
	if bits >= 8 {
		return img
	}
	if bits < 0 {
		bits = 0
	}
	mask := uint8(0xFF << (8 - bits))
	for i := range img.Pix {
		img.Pix[i] &= mask
	}
	return img
}

func solarize(img *Image, threshold float64) *Image {
	for i, v := range img.Pix {
		if float64(v) >= threshold {
			img.Pix[i] = 255 - v
		}
	}
	return img
}

func autoContrast(img *Image) *Image {
	ch := img.Channels
	for c := 0; c < ch; c++ {
		lo, hi := uint8(255), uint8(0)
		for i := c; i < len(img.Pix); i += ch {
			lo, hi = min(lo, img.Pix[i]), max(hi, img.Pix[i])
		}
		if lo == hi {
			continue
		}
		minimum := float32(lo)
		scale := float32(255) / (float32(hi) - minimum)
		for i := c; i < len(img.Pix); i += ch {
			img.Pix[i] = toUint8((float32(img.Pix[i]) - minimum) * scale)
		}
	}
	return img
}

func equalize(img *Image) *Image {
	ch := img.Channels
	for c := 0; c < ch; c++ {
		var hist [256]int
		for i := c; i < len(img.Pix); i += ch {
			hist[img.Pix[i]]++
		}
		// step = sum of the nonzero bins but the last, floor-divided by 255.
		last := 255
		for last >= 0 && hist[last] == 0 {
			last--
		}
		total := 0
		for v := 0; v < last; v++ {
			total += hist[v]
		}
		step := total / 255
		if step == 0 {
			continue
		}
		var lut [256]uint8
		cum := 0
		for v := 0; v < 256; v++ {
			// lut is shifted right by one: lut[v] uses the cumulative sum
			// below v.
			lut[v] = uint8(min((cum+step/2)/step, 255))
			cum += hist[v]
		}
		for i := c; i < len(img.Pix); i += ch {
			img.Pix[i] = lut[img.Pix[i]]
		}
	}
	return img
}
