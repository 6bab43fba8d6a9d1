package datasets

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Mixer mixes whole float32 NCHW batches as timm's Mixup does in "batch"
// mode: with probability Prob a batch is mixed; when both alphas are
// positive, CutMix (lambda ~ Beta(CutMixAlpha, CutMixAlpha)) is chosen with
// probability SwitchProb and Mixup (lambda ~ Beta(MixupAlpha, MixupAlpha))
// otherwise. Sample i is mixed with sample N-1-i (the batch reversed).
// CutMix pastes a box of area about 1-lambda and corrects lambda to the
// box's true area. Targets are one-hot rows smoothed by Smoothing
// (off = Smoothing/K, on = 1-Smoothing+off) and mixed with the same lambda.
type Mixer struct {
	MixupAlpha  float64
	CutMixAlpha float64
	SwitchProb  float64
	Prob        float64
	Smoothing   float64
	NumClasses  int
}

// DefaultMixer returns DATA.md's batch-level defaults for numClasses
// classes: Mixup alpha 0.8, CutMix alpha 1.0, switch probability 0.5,
// always mixed, label smoothing 0.1.
func DefaultMixer(numClasses int) Mixer {
	return Mixer{MixupAlpha: 0.8, CutMixAlpha: 1.0, SwitchProb: 0.5, Prob: 1, Smoothing: 0.1, NumClasses: numClasses}
}

// Enabled reports whether the mixer mixes at all (an alpha is positive).
func (m Mixer) Enabled() bool { return m.MixupAlpha > 0 || m.CutMixAlpha > 0 }

// MixInfo describes what Apply did to a batch.
type MixInfo struct {
	Lambda float64 // weight of each sample's own label
	CutMix bool
	// Box is the pasted region (y0, y1, x0, x1) of a CutMix, end exclusive.
	Box [4]int
}

// Apply mixes x (n x c x h x w floats) in place and returns the n x
// NumClasses soft targets (each row sums to 1) and what was done.
func (m Mixer) Apply(x []float32, n, c, h, w int, labels []int64, rng *rand.Rand) ([]float32, MixInfo, error) {
	if m.NumClasses <= 0 {
		return nil, MixInfo{}, fmt.Errorf("mixer: %d classes, want at least 1", m.NumClasses)
	}
	if len(labels) != n || len(x) != n*c*h*w {
		return nil, MixInfo{}, fmt.Errorf("mixer: batch of %d labels and %d floats, want %d and %d x %d x %d x %d",
			len(labels), len(x), n, n, c, h, w)
	}
	for i, l := range labels {
		if l < 0 || int(l) >= m.NumClasses {
			return nil, MixInfo{}, fmt.Errorf("mixer: label %d of sample %d out of range [0, %d)", l, i, m.NumClasses)
		}
	}
	info := MixInfo{Lambda: 1}
	prob := m.Prob
	if m.Enabled() && rng.Float64() < prob {
		var lam float64
		switch {
		case m.MixupAlpha > 0 && m.CutMixAlpha > 0:
			info.CutMix = rng.Float64() < m.SwitchProb
			if info.CutMix {
				lam = betaSample(rng, m.CutMixAlpha, m.CutMixAlpha)
			} else {
				lam = betaSample(rng, m.MixupAlpha, m.MixupAlpha)
			}
		case m.MixupAlpha > 0:
			lam = betaSample(rng, m.MixupAlpha, m.MixupAlpha)
		default:
			info.CutMix = true
			lam = betaSample(rng, m.CutMixAlpha, m.CutMixAlpha)
		}
		info.Lambda = lam
	}
	if info.Lambda != 1 {
		if info.CutMix {
			info.Box, info.Lambda = cutmixBox(h, w, info.Lambda, rng)
			pasteFlipped(x, n, c, h, w, info.Box)
		} else {
			mixFlipped(x, n, c*h*w, float32(info.Lambda))
		}
	} else {
		info.CutMix = false
	}
	k := m.NumClasses
	off := m.Smoothing / float64(k)
	on := 1 - m.Smoothing + off
	targets := make([]float32, n*k)
	for i := 0; i < n; i++ {
		row := targets[i*k : (i+1)*k]
		own, other := int(labels[i]), int(labels[n-1-i])
		for j := range row {
			a, b := off, off
			if j == own {
				a = on
			}
			if j == other {
				b = on
			}
			row[j] = float32(a*info.Lambda + b*(1-info.Lambda))
		}
	}
	return targets, info, nil
}

// cutmixBox is timm's rand_bbox plus the lambda correction.
func cutmixBox(h, w int, lam float64, rng *rand.Rand) ([4]int, float64) {
	ratio := math.Sqrt(1 - lam)
	cutH, cutW := int(float64(h)*ratio), int(float64(w)*ratio)
	cy := rng.IntN(h)
	cx := rng.IntN(w)
	clip := func(v, hi int) int { return min(max(v, 0), hi) }
	box := [4]int{clip(cy-cutH/2, h), clip(cy+cutH/2, h), clip(cx-cutW/2, w), clip(cx+cutW/2, w)}
	area := (box[1] - box[0]) * (box[3] - box[2])
	return box, 1 - float64(area)/float64(h*w)
}

// pasteFlipped sets x[i][:, y0:y1, x0:x1] = x[n-1-i][:, y0:y1, x0:x1] for
// every i, from the unmixed batch (pairs swap their boxes).
func pasteFlipped(x []float32, n, c, h, w int, box [4]int) {
	plane := h * w
	for i := 0; i < n/2; i++ {
		j := n - 1 - i
		for ch := 0; ch < c; ch++ {
			for y := box[0]; y < box[1]; y++ {
				a := x[(i*c+ch)*plane+y*w+box[2] : (i*c+ch)*plane+y*w+box[3]]
				b := x[(j*c+ch)*plane+y*w+box[2] : (j*c+ch)*plane+y*w+box[3]]
				for k := range a {
					a[k], b[k] = b[k], a[k]
				}
			}
		}
	}
}

// mixFlipped sets x[i] = lam*x[i] + (1-lam)*x[n-1-i] from the unmixed
// batch, as timm's x.mul_(lam).add_(x.flip(0).mul_(1-lam)).
func mixFlipped(x []float32, n, size int, lam float32) {
	for i := 0; i <= (n-1)/2; i++ {
		j := n - 1 - i
		a := x[i*size : (i+1)*size]
		b := x[j*size : (j+1)*size]
		for k := range a {
			va, vb := a[k], b[k]
			a[k] = va*lam + vb*(1-lam)
			b[k] = vb*lam + va*(1-lam)
		}
	}
}

// betaSample draws from Beta(a, b) as X/(X+Y), X ~ Gamma(a), Y ~ Gamma(b).
func betaSample(rng *rand.Rand, a, b float64) float64 {
	x := gammaSample(rng, a)
	y := gammaSample(rng, b)
	if x+y == 0 {
		return 0.5
	}
	return x / (x + y)
}

// gammaSample draws from Gamma(shape, 1) by Marsaglia and Tsang's method
// (shape < 1 boosted by U^(1/shape)).
func gammaSample(rng *rand.Rand, shape float64) float64 {
	if shape < 1 {
		u := rng.Float64()
		return gammaSample(rng, shape+1) * math.Pow(u, 1/shape)
	}
	d := shape - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		var x, v float64
		for {
			x = rng.NormFloat64()
			v = 1 + c*x
			if v > 0 {
				break
			}
		}
		v = v * v * v
		u := rng.Float64()
		if u < 1-0.0331*x*x*x*x {
			return d * v
		}
		if math.Log(u) < 0.5*x*x+d*(1-v+math.Log(v)) {
			return d * v
		}
	}
}
