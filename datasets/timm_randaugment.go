package datasets

import (
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
)

// TimmRandAugment is timm's RandAugment (timm/data/auto_augment.py,
// rand_augment_transform) as a policy string such as
// "rand-m9-mstd0.5-inc1" configures it: N ops drawn uniformly with
// replacement (without replacement, by weight, with w0) from timm's 15
// (_RAND_TRANSFORMS, or _RAND_INCREASING_TRANSFORMS with inc1); each is
// applied with probability P at a magnitude drawn around M (Gaussian of
// std MStd, or uniform in [0, M] when MStd is infinite), clipped to
// [0, MMax], and turned into the op's argument by timm's level functions
// (_LEVEL_DENOM 10). Geometric ops sample with Interpolation and fill
// with Fill, as timm's transforms_factory sets them (the training
// interpolation and round(255*mean)).
type TimmRandAugment struct {
	Policy        string  // the policy string it was parsed from
	N             int     // ops per image ('n', default 2)
	M             float64 // magnitude ('m', default 10)
	MStd          float64 // magnitude noise ('mstd'; +Inf: uniform in [0, M])
	MMax          float64 // upper bound of the magnitude ('mmax', default 10)
	Increasing    bool    // 'inc1': the ops whose severity increases with the magnitude
	Weighted      bool    // 'w0': timm's choice weights, without replacement
	P             float64 // probability of applying each drawn op ('p', default 0.5)
	Interpolation Interpolation
	Fill          [3]uint8
}

// timmOp is one op of timm's RandAugment lists.
type timmOp int

const (
	timmAutoContrast timmOp = iota
	timmEqualize
	timmInvert
	timmRotate
	timmPosterize
	timmSolarize
	timmSolarizeAdd
	timmColor
	timmContrast
	timmBrightness
	timmSharpness
	timmShearX
	timmShearY
	timmTranslateXRel
	timmTranslateYRel
	timmPosterizeIncreasing
	timmSolarizeIncreasing
	timmColorIncreasing
	timmContrastIncreasing
	timmBrightnessIncreasing
	timmSharpnessIncreasing
)

var timmOpNames = [...]string{"AutoContrast", "Equalize", "Invert", "Rotate", "Posterize", "Solarize", "SolarizeAdd",
	"Color", "Contrast", "Brightness", "Sharpness", "ShearX", "ShearY", "TranslateXRel", "TranslateYRel",
	"PosterizeIncreasing", "SolarizeIncreasing", "ColorIncreasing", "ContrastIncreasing", "BrightnessIncreasing",
	"SharpnessIncreasing"}

// String returns timm's name of the op.
func (op timmOp) String() string { return timmOpNames[op] }

// timmRandTransforms is timm's _RAND_TRANSFORMS, and
// timmRandIncreasingTransforms its _RAND_INCREASING_TRANSFORMS.
var (
	timmRandTransforms = []timmOp{timmAutoContrast, timmEqualize, timmInvert, timmRotate, timmPosterize,
		timmSolarize, timmSolarizeAdd, timmColor, timmContrast, timmBrightness, timmSharpness, timmShearX,
		timmShearY, timmTranslateXRel, timmTranslateYRel}
	timmRandIncreasingTransforms = []timmOp{timmAutoContrast, timmEqualize, timmInvert, timmRotate,
		timmPosterizeIncreasing, timmSolarizeIncreasing, timmSolarizeAdd, timmColorIncreasing,
		timmContrastIncreasing, timmBrightnessIncreasing, timmSharpnessIncreasing, timmShearX, timmShearY,
		timmTranslateXRel, timmTranslateYRel}
	// timmChoiceWeights0 is _RAND_CHOICE_WEIGHTS_0, by position in the
	// lists above (timm's _select_rand_weights reads it by the names of
	// _RAND_TRANSFORMS, whichever list is used).
	timmChoiceWeights0 = []float64{0.025, 0.005, 0, 0.3, 0, 0.005, 0.005, 0.025, 0.005, 0.005, 0.025, 0.2, 0.2, 0.1, 0.1}
)

func countNonzero(w []float64) int {
	n := 0
	for _, v := range w {
		if v != 0 {
			n++
		}
	}
	return n
}

// timmLevelDenom is timm's _LEVEL_DENOM.
const timmLevelDenom = 10.0

// ParseTimmRandAugment parses a timm RandAugment policy string: "rand"
// followed by dash-separated sections m<int> (magnitude), n<int> (ops per
// image), mstd<float> (magnitude std; over 100 means uniform), mmax<int>
// (magnitude bound), inc1 (increasing ops), w0 (choice weights) and
// p<float> (op probability), in any order. The other timm policies
// (AutoAugment's original/v0, augmix, 3a) are refused. Interpolation and
// Fill are left for the caller.
func ParseTimmRandAugment(policy string) (TimmRandAugment, error) {
	t := TimmRandAugment{Policy: policy, N: 2, M: timmLevelDenom, MMax: timmLevelDenom, P: 0.5}
	parts := strings.Split(policy, "-")
	if parts[0] != "rand" {
		return t, fmt.Errorf("aa %q: policy %q is not supported: only timm's RandAugment, rand-<sections> (e.g. rand-m9-mstd0.5-inc1)", policy, parts[0])
	}
	for _, part := range parts[1:] {
		if err := t.parseSection(part); err != nil {
			return t, fmt.Errorf("aa %q: section %q: %w", policy, part, err)
		}
	}
	if nonzero := countNonzero(timmChoiceWeights0); t.Weighted && t.N > nonzero {
		// numpy's choice(replace=False, p=...) refuses this too.
		return t, fmt.Errorf("aa %q: section \"n%d\": w0 draws without replacement from the %d ops of nonzero weight", policy, t.N, nonzero)
	}
	return t, nil
}

var timmSection = regexp.MustCompile(`^([a-z]*)(\d.*)$`)

// parseSection reads one section (timm splits it at its first digit into
// key and value).
func (t *TimmRandAugment) parseSection(part string) error {
	kv := timmSection.FindStringSubmatch(part)
	if kv == nil {
		return fmt.Errorf("want a key (m, n, mstd, mmax, inc, w, p) followed by a number")
	}
	key, val := kv[1], kv[2]
	atoi := func(lo int) (int, error) {
		v, err := strconv.Atoi(val)
		if err != nil || v < lo {
			return 0, fmt.Errorf("%s wants an integer of at least %d, got %q", key, lo, val)
		}
		return v, nil
	}
	var err error
	var v int
	switch key {
	case "m":
		v, err = atoi(0)
		t.M = float64(v)
	case "n":
		v, err = atoi(1)
		t.N = v
	case "mmax":
		v, err = atoi(1)
		t.MMax = float64(v)
	case "mstd":
		t.MStd, err = strconv.ParseFloat(val, 64)
		if err != nil || t.MStd < 0 || math.IsNaN(t.MStd) {
			return fmt.Errorf("mstd wants a non-negative number, got %q", val)
		}
		if t.MStd > 100 {
			t.MStd = math.Inf(1) // timm: uniform sampling in [0, m]
		}
	case "inc":
		// timm tests bool(val), which is true for "0" as well: refuse "inc0"
		// rather than read it as inc1.
		if v, err = strconv.Atoi(val); err != nil || v < 1 {
			return fmt.Errorf("inc1 turns on the increasing ops; timm reads every inc<digits>, even inc0, as inc1, so leave the section out for the plain ops")
		}
		t.Increasing = true
	case "w":
		v, err = atoi(0)
		if err == nil && v != 0 {
			err = fmt.Errorf("timm has one set of choice weights, w0; got w%d", v)
		}
		t.Weighted = true
	case "p":
		t.P, err = strconv.ParseFloat(val, 64)
		if err != nil || !(t.P >= 0 && t.P <= 1) {
			return fmt.Errorf("p wants a probability in [0, 1], got %q", val)
		}
	default:
		return fmt.Errorf("unknown key %q: want m, n, mstd, mmax, inc, w or p", key)
	}
	return err
}

// String describes the augmentation, as "timm RandAugment rand-m9-mstd0.5-inc1
// (bicubic, fill 124,116,104)".
func (t TimmRandAugment) String() string {
	return fmt.Sprintf("timm RandAugment %s (%s, fill %d,%d,%d)", t.Policy, t.Interpolation, t.Fill[0], t.Fill[1], t.Fill[2])
}

// ops returns the op list the policy draws from.
func (t TimmRandAugment) ops() []timmOp {
	if t.Increasing {
		return timmRandIncreasingTransforms
	}
	return timmRandTransforms
}

// Apply draws and applies N ops, with all randomness from rng.
func (t TimmRandAugment) Apply(img *Image, rng *rand.Rand) *Image {
	for _, op := range t.choose(rng) {
		if t.P < 1 && rng.Float64() > t.P {
			continue
		}
		img = t.applyOp(img, op, t.Magnitude(rng), rng)
	}
	return img
}

// choose draws the N ops: uniformly with replacement, or by weight without
// replacement with w0 (numpy's choice(replace=False, p=weights)).
func (t TimmRandAugment) choose(rng *rand.Rand) []timmOp {
	ops := t.ops()
	chosen := make([]timmOp, 0, t.N)
	if !t.Weighted {
		for i := 0; i < t.N; i++ {
			chosen = append(chosen, ops[rng.IntN(len(ops))])
		}
		return chosen
	}
	weights := append([]float64(nil), timmChoiceWeights0...)
	for i := 0; i < t.N; i++ {
		total := 0.0
		for _, w := range weights {
			total += w
		}
		r, pick := rng.Float64()*total, -1
		for k, w := range weights {
			if w == 0 {
				continue
			}
			pick = k // the last nonzero one if rounding leaves r past the sum
			if r < w {
				break
			}
			r -= w
		}
		chosen = append(chosen, ops[pick])
		weights[pick] = 0
	}
	return chosen
}

// Magnitude draws one op's magnitude, as timm's AugmentOp does: M, plus
// Gaussian noise of std MStd (uniform in [0, M] when MStd is infinite),
// clipped to [0, MMax].
func (t TimmRandAugment) Magnitude(rng *rand.Rand) float64 {
	m := t.M
	switch {
	case math.IsInf(t.MStd, 1):
		m = uniform(rng, 0, m)
	case t.MStd > 0:
		m += t.MStd * rng.NormFloat64()
	}
	upper := t.MMax
	if upper == 0 {
		upper = timmLevelDenom
	}
	return math.Max(0, math.Min(m, upper))
}

// negate is timm's _randomly_negate: -v when a uniform draw exceeds 0.5.
func negate(v float64, rng *rand.Rand) float64 {
	if rng.Float64() > 0.5 {
		return -v
	}
	return v
}

// arg is the op's argument at magnitude level: timm's level functions
// (LEVEL_TO_ARG), with their random sign for the signed ones; 0 for the ops
// without an argument.
func (op timmOp) arg(level float64, rng *rand.Rand) float64 {
	frac := level / timmLevelDenom
	switch op {
	case timmRotate:
		return negate(frac*30, rng)
	case timmPosterize:
		return float64(int(frac * 4))
	case timmPosterizeIncreasing:
		return float64(4 - int(frac*4))
	case timmSolarize:
		return float64(min(256, int(frac*256)))
	case timmSolarizeIncreasing:
		return float64(256 - min(256, int(frac*256)))
	case timmSolarizeAdd:
		return float64(min(128, int(frac*110)))
	case timmColor, timmContrast, timmBrightness, timmSharpness:
		return frac*1.8 + 0.1
	case timmColorIncreasing, timmContrastIncreasing, timmBrightnessIncreasing, timmSharpnessIncreasing:
		return math.Max(0.1, 1.0+negate(frac*0.9, rng))
	case timmShearX, timmShearY:
		return negate(frac*0.3, rng)
	case timmTranslateXRel, timmTranslateYRel:
		return negate(frac*0.45, rng) // timm's default translate_pct
	}
	return 0
}

// applyOp applies op at magnitude level: its argument (arg), then the PIL
// operation timm calls.
func (t TimmRandAugment) applyOp(img *Image, op timmOp, level float64, rng *rand.Rand) *Image {
	a := op.arg(level, rng)
	switch op {
	case timmAutoContrast:
		return pilAutoContrast(img)
	case timmEqualize:
		return pilEqualize(img)
	case timmInvert:
		return pilInvert(img)
	case timmPosterize, timmPosterizeIncreasing:
		return pilPosterize(img, int(a))
	case timmSolarize, timmSolarizeIncreasing:
		return pilSolarize(img, int(a))
	case timmSolarizeAdd:
		return pilSolarizeAdd(img, int(a), 128)
	case timmColor, timmColorIncreasing:
		return pilColor(img, a)
	case timmContrast, timmContrastIncreasing:
		return pilContrast(img, a)
	case timmBrightness, timmBrightnessIncreasing:
		return pilBrightness(img, a)
	case timmSharpness, timmSharpnessIncreasing:
		return pilSharpness(img, a)
	}
	return pilAffine(img, t.affine(op, a, img.Width, img.Height), t.Interpolation, t.fill(img))
}

// affine is the inverse map of a geometric op with argument a on a w x h
// image (timm's rotate, shear_x, shear_y, translate_x_rel, translate_y_rel).
func (t TimmRandAugment) affine(op timmOp, a float64, w, h int) [6]float64 {
	switch op {
	case timmRotate:
		return pilRotateMatrix(a, w, h)
	case timmShearX:
		return [6]float64{1, a, 0, 0, 1, 0}
	case timmShearY:
		return [6]float64{1, 0, 0, a, 1, 0}
	case timmTranslateXRel:
		return [6]float64{1, 0, a * float64(w), 0, 1, 0}
	case timmTranslateYRel:
		return [6]float64{1, 0, 0, 0, 1, a * float64(h)}
	}
	return [6]float64{1, 0, 0, 0, 1, 0}
}

// fill is the fill color for img: Fill, or for an L image its luma (timm
// reads every image as RGB, so it has no rule for L images).
func (t TimmRandAugment) fill(img *Image) [3]uint8 {
	if img.Channels == 1 {
		l := pilLuma(&Image{Pix: t.Fill[:], Width: 1, Height: 1, Channels: 3})
		return [3]uint8{l[0]}
	}
	return t.Fill
}
