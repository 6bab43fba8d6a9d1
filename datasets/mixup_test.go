package datasets

import (
	"math"
	"strings"
	"testing"
)

// constBatch returns n images of c x h x w where image i is constant i+1.
func constBatch(n, c, h, w int) []float32 {
	x := make([]float32, n*c*h*w)
	size := c * h * w
	for i := range x {
		x[i] = float32(i/size + 1)
	}
	return x
}

func TestMixerTargets(t *testing.T) {
	const n, c, h, w, k = 6, 3, 8, 10, 5
	m := DefaultMixer(k)
	labels := []int64{0, 1, 2, 3, 4, 0}
	var cutmix, mixup int
	var mixupLam float64
	const draws = 3000
	rng := newRNG(1)
	for d := 0; d < draws; d++ {
		x := constBatch(n, c, h, w)
		targets, info, err := m.Apply(x, n, c, h, w, labels, rng)
		if err != nil {
			t.Fatal(err)
		}
		if info.Lambda < 0 || info.Lambda > 1 {
			t.Fatalf("lambda %v", info.Lambda)
		}
		for i := 0; i < n; i++ {
			row := targets[i*k : (i+1)*k]
			var sum float64
			for _, v := range row {
				sum += float64(v)
				if v < float32(0.1/k)-1e-6 {
					t.Fatalf("target %v below the smoothing floor", v)
				}
			}
			if math.Abs(sum-1) > 1e-5 {
				t.Fatalf("targets of sample %d sum to %v", i, sum)
			}
			// Own label weight: lambda*(0.9) + 0.02 (+ more when both agree).
			own, other := labels[i], labels[n-1-i]
			want := info.Lambda*0.9 + 0.02
			if own == other {
				want = 0.92
			}
			if math.Abs(float64(row[own])-want) > 1e-5 {
				t.Fatalf("sample %d: own target %v, want %v", i, row[own], want)
			}
		}
		size := c * h * w
		if info.CutMix {
			cutmix++
			// The box holds the partner's constant, the rest the own one, and
			// lambda is the own area.
			y0, y1, x0, x1 := info.Box[0], info.Box[1], info.Box[2], info.Box[3]
			if want := 1 - float64((y1-y0)*(x1-x0))/float64(h*w); math.Abs(info.Lambda-want) > 1e-12 {
				t.Fatalf("cutmix lambda %v, box area gives %v", info.Lambda, want)
			}
			for i := 0; i < n; i++ {
				for yy := 0; yy < h; yy++ {
					for xx := 0; xx < w; xx++ {
						v := x[i*size+2*h*w+yy*w+xx]
						want := float32(i + 1)
						if yy >= y0 && yy < y1 && xx >= x0 && xx < x1 {
							want = float32(n - i)
						}
						if v != want {
							t.Fatalf("cutmix sample %d (%d,%d) = %v, want %v", i, xx, yy, v, want)
						}
					}
				}
			}
		} else {
			mixup++
			mixupLam += info.Lambda
			lam := float32(info.Lambda)
			for i := 0; i < n; i++ {
				want := float32(i+1)*lam + float32(n-i)*(1-lam)
				if got := x[i*size+17]; math.Abs(float64(got-want)) > 1e-5 {
					t.Fatalf("mixup sample %d = %v, want %v", i, got, want)
				}
			}
		}
	}
	if frac := float64(cutmix) / draws; math.Abs(frac-0.5) > 0.04 {
		t.Fatalf("cutmix chosen %.3f of the time, want 0.5", frac)
	}
	// E[lambda] is 0.5 for Beta(0.8, 0.8). (CutMix's corrected lambda is
	// larger on average: boxes are clipped at the borders.)
	if mean := mixupLam / float64(mixup); math.Abs(mean-0.5) > 0.03 {
		t.Fatalf("mean mixup lambda %.3f", mean)
	}
}

func TestMixerOff(t *testing.T) {
	m := Mixer{Smoothing: 0.1, NumClasses: 4}
	x := constBatch(2, 1, 2, 2)
	targets, info, err := m.Apply(x, 2, 1, 2, 2, []int64{3, 1}, newRNG(1))
	if err != nil {
		t.Fatal(err)
	}
	if info.Lambda != 1 || info.CutMix || x[0] != 1 || x[4] != 2 {
		t.Fatalf("disabled mixer mixed: %+v", info)
	}
	want := []float32{0.025, 0.025, 0.025, 0.925, 0.025, 0.925, 0.025, 0.025}
	for i := range want {
		if math.Abs(float64(targets[i]-want[i])) > 1e-7 {
			t.Fatalf("targets %v, want %v", targets, want)
		}
	}
	if _, _, err := m.Apply(x, 2, 1, 2, 2, []int64{3, 4}, newRNG(1)); err == nil || !strings.Contains(err.Error(), "label 4 of sample 1") {
		t.Fatalf("label out of range: %v", err)
	}
}

func TestBetaSample(t *testing.T) {
	rng := newRNG(3)
	for _, ab := range [][2]float64{{0.8, 0.8}, {1, 1}, {2, 5}, {0.3, 0.3}} {
		const n = 20000
		var sum, sq float64
		for i := 0; i < n; i++ {
			v := betaSample(rng, ab[0], ab[1])
			if v < 0 || v > 1 || math.IsNaN(v) {
				t.Fatalf("Beta%v draw %v", ab, v)
			}
			sum += v
			sq += v * v
		}
		a, b := ab[0], ab[1]
		mean, variance := sum/n, sq/n-(sum/n)*(sum/n)
		wantMean := a / (a + b)
		wantVar := a * b / ((a + b) * (a + b) * (a + b + 1))
		if math.Abs(mean-wantMean) > 0.01 || math.Abs(variance-wantVar) > 0.01 {
			t.Fatalf("Beta%v: mean %.4f var %.4f, want %.4f %.4f", ab, mean, variance, wantMean, wantVar)
		}
	}
}
