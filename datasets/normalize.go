package datasets

import (
	"math"
	"math/rand/v2"
)

// Normalize turns an 8-bit image into float32 CHW: each value is divided by
// 255, then the channel's Mean is subtracted and the result divided by its
// Std, in float32 as torchvision's ToTensor and Normalize do. A grayscale
// image is normalized with Mean[0] and Std[0] and then replicated to
// OutChannels channels (3 when zero).
type Normalize struct {
	Mean        [3]float32
	Std         [3]float32
	OutChannels int
}

// GrayNormalize returns the Normalize of a grayscale data set: its own mean
// and std, replicated to 3 channels.
func GrayNormalize(mean, std float32) Normalize {
	return Normalize{Mean: [3]float32{mean, mean, mean}, Std: [3]float32{std, std, std}}
}

func (n Normalize) outChannels(in int) int {
	if n.OutChannels > 0 {
		return n.OutChannels
	}
	return max(3, in)
}

// Len returns the number of floats Apply writes for img.
func (n Normalize) Len(img *Image) int { return n.outChannels(img.Channels) * img.Width * img.Height }

// lut returns the normalized value of every byte for channel c.
func (n Normalize) lut(c int) *[256]float32 {
	var t [256]float32
	mean, std := n.Mean[c], n.Std[c]
	if std == 0 {
		std = 1
	}
	for v := range t {
		t[v] = (float32(v)/255 - mean) / std
	}
	return &t
}

// Apply writes img normalized as CHW into dst (which needs Len(img)
// floats) and returns the written part.
func (n Normalize) Apply(img *Image, dst []float32) []float32 {
	plane := img.Width * img.Height
	out := n.outChannels(img.Channels)
	dst = dst[:out*plane]
	if img.Channels == 1 {
		t := n.lut(0)
		first := dst[:plane]
		for i, v := range img.Pix[:plane] {
			first[i] = t[v]
		}
		for c := 1; c < out; c++ {
			copy(dst[c*plane:(c+1)*plane], first)
		}
		return dst
	}
	if img.Channels == 3 && out == 3 {
		t0, t1, t2 := n.lut(0), n.lut(1), n.lut(2)
		r := dst[:plane]
		g := dst[plane : 2*plane][:len(r)]
		b := dst[2*plane : 3*plane][:len(r)]
		pix := img.Pix[:3*plane]
		for i := range r {
			p := pix[3*i : 3*i+3 : 3*i+3]
			r[i], g[i], b[i] = t0[p[0]], t1[p[1]], t2[p[2]]
		}
		return dst
	}
	for c := 0; c < img.Channels && c < out; c++ {
		t := n.lut(c)
		d := dst[c*plane : (c+1)*plane]
		src := img.Pix[c:]
		for i := range d {
			d[i] = t[src[i*img.Channels]]
		}
	}
	return dst
}

// ErasingValue says what RandomErasing writes into the erased box.
type ErasingValue int

// The values RandomErasing can write.
const (
	EraseZero   ErasingValue = iota // 0 (torchvision's default value=0)
	EraseRandom                     // a standard normal draw per element (value="random")
)

// RandomErasing erases a random box of a float32 CHW image with probability
// P, as torchvision's RandomErasing does: up to 10 tries of an area
// fraction uniform in Scale and a log-uniform aspect ratio in Ratio; a box
// must be strictly smaller than the image, otherwise nothing is erased.
type RandomErasing struct {
	P     float64
	Scale [2]float64 // zero value means (0.02, 0.33)
	Ratio [2]float64 // zero value means (0.3, 3.3)
	Value ErasingValue
}

// Params draws the box (top, left, height, width); ok is false when no try
// fitted. It does not draw the probability P nor the random values.
func (e RandomErasing) Params(height, width int, rng *rand.Rand) (top, left, h, w int, ok bool) {
	scale, ratio := e.Scale, e.Ratio
	if scale == ([2]float64{}) {
		scale = [2]float64{0.02, 0.33}
	}
	if ratio == ([2]float64{}) {
		ratio = [2]float64{0.3, 3.3}
	}
	area := float64(height * width)
	logRatio := [2]float64{math.Log(ratio[0]), math.Log(ratio[1])}
	for try := 0; try < 10; try++ {
		eraseArea := area * uniform(rng, scale[0], scale[1])
		aspect := math.Exp(uniform(rng, logRatio[0], logRatio[1]))
		h = pyRound(math.Sqrt(eraseArea * aspect))
		w = pyRound(math.Sqrt(eraseArea / aspect))
		if !(h < height && w < width) {
			continue
		}
		return 0, 0, h, w, true
	}
	return 0, 0, 0, 0, false
}

// Apply erases in place a box of x, a c x h x w float32 image. It reports
// whether a box was erased.
func (e RandomErasing) Apply(x []float32, c, h, w int, rng *rand.Rand) bool {
	if rng.Float64() >= e.P {
		return false
	}
	_, _, bh, bw, ok := e.Params(h, w, rng)
	if !ok {
		return false
	}
	var values []float32
	if e.Value == EraseRandom {
		values = make([]float32, c*bh*bw)
		for i := range values {
			values[i] = float32(rng.NormFloat64())
		}
	}
	top := randint(rng, 0, h-bh+1)
	left := randint(rng, 0, w-bw+1)
	k := 0
	for ch := 0; ch < c; ch++ {
		for y := top; y < top+bh; y++ {
			row := x[(ch*h+y)*w+left : (ch*h+y)*w+left+bw]
			for i := range row {
				if values != nil {
					row[i] = values[k]
					k++
				} else {
					row[i] = 0
				}
			}
		}
	}
	return true
}
