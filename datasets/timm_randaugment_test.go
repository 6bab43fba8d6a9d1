package datasets

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

func TestParseTimmRandAugment(t *testing.T) {
	inf := math.Inf(1)
	valid := map[string]TimmRandAugment{
		// timm's defaults: magnitude _LEVEL_DENOM (10), 2 ops, p 0.5.
		"rand":                 {N: 2, M: 10, MMax: 10, P: 0.5},
		"rand-m9-mstd0.5-inc1": {N: 2, M: 9, MStd: 0.5, MMax: 10, P: 0.5, Increasing: true},
		"rand-inc1-mstd0.5-m9": {N: 2, M: 9, MStd: 0.5, MMax: 10, P: 0.5, Increasing: true},
		"rand-m15-n3-mmax20":   {N: 3, M: 15, MMax: 20, P: 0.5},
		"rand-mstd101-w0-p0.7": {N: 2, M: 10, MStd: inf, MMax: 10, P: 0.7, Weighted: true},
		"rand-m0-mstd0":        {N: 2, M: 0, MMax: 10, P: 0.5},
	}
	for s, want := range valid {
		got, err := ParseTimmRandAugment(s)
		want.Policy = s
		if err != nil || got != want {
			t.Errorf("%q: %+v, %v; want %+v", s, got, err, want)
		}
	}
	// Each error names the policy and the part that is wrong.
	invalid := map[string]string{
		"original-mstd0.5":    `"original"`,
		"v0":                  `"v0"`,
		"augmix-m5-w4-d2":     `"augmix"`,
		"3a":                  `"3a"`,
		"":                    `""`,
		"rand-x9":             `"x9"`,
		"rand-m9.5":           `"m9.5"`,
		"rand-m9-foo":         `"foo"`,
		"rand-inc0":           `"inc0"`,
		"rand-w1":             `"w1"`,
		"rand-p1.5":           `"p1.5"`,
		"rand-n0":             `"n0"`,
		"rand-mstd-1":         `"mstd"`,
		"rand-m9--mstd0.5":    `""`,
		"rand-mmax0-m9-mstd1": `"mmax0"`,
		"rand-n14-w0":         `"n14"`,
	}
	for s, part := range invalid {
		_, err := ParseTimmRandAugment(s)
		if err == nil || !strings.Contains(err.Error(), part) || !strings.HasPrefix(err.Error(), "aa ") {
			t.Errorf("%q: error %v, want one naming %s", s, err, part)
		}
	}
}

// TestTimmLevelArgs checks the level functions against timm's formulas
// worked by hand (auto_augment.py, _LEVEL_DENOM = 10).
func TestTimmLevelArgs(t *testing.T) {
	type want struct {
		level  float64
		values []float64 // the possible results (both signs for signed ops)
	}
	cases := map[timmOp][]want{
		timmRotate:               {{9, []float64{27, -27}}, {0, []float64{0}}},
		timmPosterize:            {{9, []float64{3}}, {10, []float64{4}}, {2.4, []float64{0}}},
		timmPosterizeIncreasing:  {{9, []float64{1}}, {10, []float64{0}}, {7.4, []float64{2}}},
		timmSolarize:             {{9, []float64{230}}, {10, []float64{256}}, {20, []float64{256}}},
		timmSolarizeIncreasing:   {{9, []float64{26}}, {10, []float64{0}}, {0, []float64{256}}},
		timmSolarizeAdd:          {{9, []float64{99}}, {10, []float64{110}}, {20, []float64{128}}},
		timmColor:                {{9, []float64{1.72}}, {0, []float64{0.1}}},
		timmSharpness:            {{10, []float64{1.9}}},
		timmColorIncreasing:      {{9, []float64{1.81, 0.19}}, {10, []float64{1.9, 0.1}}},
		timmBrightnessIncreasing: {{5, []float64{1.45, 0.55}}},
		timmShearX:               {{9, []float64{0.27, -0.27}}},
		timmTranslateYRel:        {{9, []float64{0.405, -0.405}}},
		timmEqualize:             {{9, []float64{0}}},
	}
	rng := newRNG(3)
	for op, ws := range cases {
		for _, w := range ws {
			seen := map[float64]bool{}
			for i := 0; i < 200; i++ {
				got := op.arg(w.level, rng)
				ok := false
				for _, v := range w.values {
					if math.Abs(got-v) < 1e-9 {
						ok, seen[v] = true, true
					}
				}
				if !ok {
					t.Fatalf("%v at level %v: %v, want one of %v", op, w.level, got, w.values)
				}
			}
			if len(seen) != len(w.values) {
				t.Errorf("%v at level %v: saw %v of %v in 200 draws (random sign missing?)", op, w.level, seen, w.values)
			}
		}
	}
}

// TestTimmMagnitudeNoise checks the magnitude draws: Gaussian around M of
// std MStd clipped to [0, MMax], uniform in [0, M] for mstd > 100, M itself
// without noise.
func TestTimmMagnitudeNoise(t *testing.T) {
	const n = 40000
	stats := func(policy string) (mean, std, lo, hi, atMax float64) {
		ra, err := ParseTimmRandAugment(policy)
		if err != nil {
			t.Fatal(err)
		}
		rng := newRNG(17)
		var sum, sq float64
		lo, hi = math.Inf(1), math.Inf(-1)
		upper := ra.MMax
		for i := 0; i < n; i++ {
			m := ra.Magnitude(rng)
			sum += m
			sq += m * m
			lo, hi = math.Min(lo, m), math.Max(hi, m)
			if m == upper {
				atMax++
			}
		}
		mean = sum / n
		return mean, math.Sqrt(sq/n - mean*mean), lo, hi, atMax / n
	}
	// N(9, 0.5): 10 is 2 sigma away, so P(clipped) = 1 - Phi(2) = 0.0228;
	// the clipping pulls the mean and std down a little (to 8.9956, 0.4897,
	// from a 10^7-draw numpy simulation).
	mean, std, lo, hi, clipped := stats("rand-m9-mstd0.5")
	if math.Abs(mean-8.9956) > 0.008 || math.Abs(std-0.4897) > 0.006 || lo < 0 || hi > 10 || math.Abs(clipped-0.0228) > 0.003 {
		t.Errorf("rand-m9-mstd0.5: mean %.4f std %.4f range [%.3f, %.3f], %.4f at 10", mean, std, lo, hi, clipped)
	}
	// Raising mmax lifts the clip: N(9, 0.5) is then almost never clipped.
	if _, _, _, hi, clipped := stats("rand-m9-mstd0.5-mmax20"); hi <= 10 || clipped != 0 {
		t.Errorf("mmax20: max %.3f, %.4f clipped", hi, clipped)
	}
	// mstd over 100: uniform in [0, 9] (mean 4.5, std 9/sqrt(12)).
	if mean, std, lo, hi, _ := stats("rand-m9-mstd101"); math.Abs(mean-4.5) > 0.05 || math.Abs(std-9/math.Sqrt(12)) > 0.03 || lo < 0 || hi > 9 {
		t.Errorf("rand-m9-mstd101: mean %.4f std %.4f range [%.3f, %.3f]", mean, std, lo, hi)
	}
	// No noise: M, clipped to the bound.
	if mean, std, _, _, _ := stats("rand-m15"); mean != 10 || std != 0 {
		t.Errorf("rand-m15: mean %v std %v, want 10 and 0 (clipped to _LEVEL_DENOM)", mean, std)
	}
	if mean, _, _, _, _ := stats("rand-m15-mmax20"); mean != 15 {
		t.Errorf("rand-m15-mmax20: mean %v, want 15", mean)
	}
}

func TestTimmRandAugmentApply(t *testing.T) {
	ra, err := ParseTimmRandAugment("rand-m9-mstd0.5-inc1")
	if err != nil {
		t.Fatal(err)
	}
	ra.Interpolation, ra.Fill = Bicubic, [3]uint8{124, 116, 104}
	src := randomImage(40, 30, 3, 9)
	unchanged := 0
	for seed := uint64(0); seed < 200; seed++ {
		a := ra.Apply(src.Clone(), newRNG(seed))
		b := ra.Apply(src.Clone(), newRNG(seed))
		if !bytes.Equal(a.Pix, b.Pix) || a.Width != 40 || a.Height != 30 || a.Channels != 3 {
			t.Fatalf("seed %d: not reproducible or resized", seed)
		}
		if bytes.Equal(a.Pix, src.Pix) {
			unchanged++
		}
	}
	// Each of the 2 ops is skipped with probability 0.5: about a quarter of
	// the images come out unchanged (fewer: some ops change nothing anyway
	// only on flat images).
	if unchanged < 25 || unchanged > 80 {
		t.Errorf("%d of 200 images unchanged, want about 50 (p = 0.5 per op)", unchanged)
	}
	// p1: every op applies; only AutoContrast of this full-range image or
	// two Inverts leave it unchanged (about 1 % of pairs).
	ra.P = 1
	unchanged = 0
	for seed := uint64(0); seed < 200; seed++ {
		if bytes.Equal(ra.Apply(src.Clone(), newRNG(seed)).Pix, src.Pix) {
			unchanged++
		}
	}
	if unchanged > 8 {
		t.Errorf("p1: %d of 200 images unchanged", unchanged)
	}
	// Weighted choice never draws the zero-weight ops (Invert, Posterize)
	// and draws without replacement.
	w, _ := ParseTimmRandAugment("rand-n5-w0")
	for seed := uint64(0); seed < 300; seed++ {
		ops := w.choose(newRNG(seed))
		seen := map[timmOp]bool{}
		for _, op := range ops {
			if op == timmInvert || op == timmPosterize || seen[op] {
				t.Fatalf("seed %d: weighted choice gave %v", seed, ops)
			}
			seen[op] = true
		}
		if len(ops) != 5 {
			t.Fatalf("seed %d: %d ops, want 5", seed, len(ops))
		}
	}
	// One weighted draw follows _RAND_CHOICE_WEIGHTS_0 (they sum to 1):
	// Rotate 0.3, ShearX 0.2, TranslateXRel 0.1.
	one, _ := ParseTimmRandAugment("rand-n1-w0")
	freq := map[timmOp]float64{}
	rng := newRNG(4)
	for i := 0; i < 20000; i++ {
		freq[one.choose(rng)[0]] += 1.0 / 20000
	}
	for op, p := range map[timmOp]float64{timmRotate: 0.3, timmShearX: 0.2, timmTranslateXRel: 0.1, timmColor: 0.025} {
		if math.Abs(freq[op]-p) > 0.012 {
			t.Errorf("w0: %v drawn %.4f of the time, want %v", op, freq[op], p)
		}
	}
	// Grayscale and tiny images keep their shape.
	for _, img := range []*Image{randomImage(1, 1, 3, 1), randomImage(2, 3, 1, 2), randomImage(7, 1, 3, 3)} {
		for seed := uint64(0); seed < 100; seed++ {
			out := ra.Apply(img.Clone(), newRNG(seed))
			if err := out.Validate(); err != nil || out.Width != img.Width || out.Height != img.Height {
				t.Fatalf("%dx%d: %v", img.Width, img.Height, err)
			}
		}
	}
	if got := ra.String(); got != "timm RandAugment rand-m9-mstd0.5-inc1 (bicubic, fill 124,116,104)" {
		t.Errorf("String() = %q", got)
	}
}

// BenchmarkTimmRandAugment224 times rand-m9-mstd0.5-inc1 (bicubic) on a
// 224 px image, against torchvision's RandAugment(2, 9) for scale.
func BenchmarkTimmRandAugment224(b *testing.B) {
	ra, _ := ParseTimmRandAugment("rand-m9-mstd0.5-inc1")
	ra.Interpolation, ra.Fill = Bicubic, [3]uint8{124, 116, 104}
	src := randomImage(224, 224, 3, 1)
	for _, c := range []struct {
		name string
		t    Transform
	}{{"timm", ra}, {"torchvision", DefaultRandAugment}} {
		b.Run(c.name, func(b *testing.B) {
			rng := newRNG(1)
			for i := 0; i < b.N; i++ {
				c.t.Apply(src.Clone(), rng)
			}
		})
	}
}
