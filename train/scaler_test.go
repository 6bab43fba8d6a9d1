package train

import (
	"math"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/gsrmt/gsrmt/datasets"
	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/gsrmt/gsrmt/internal/torch"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// scalerDevices are the CPU (the scaler's tensor-op path) and, where there
// is one, a CUDA device (libtorch's own kernels).
func scalerDevices() []gotch.Device {
	devs := []gotch.Device{gotch.CPU}
	if torch.CUDAAvailable() {
		devs = append(devs, gotch.CudaIfAvailable())
	}
	return devs
}

// paramWithGrad is a trainable parameter on dev whose gradient is grad.
func paramWithGrad(dev gotch.Device, grad []float32) *gsrmt.Param {
	x := ts.MustZeros([]int64{int64(len(grad))}, gotch.Float, dev).MustSetRequiresGrad(true, true)
	g := ts.MustOfSlice(grad).MustTo(dev, true)
	y := x.MustMul(g, false).MustSum(gotch.Float, true) // d(sum(x*g))/dx = g
	if err := y.Backward(); err != nil {
		panic(err)
	}
	y.MustDrop()
	g.MustDrop()
	return &gsrmt.Param{Name: "w", Tensor: x, Trainable: true}
}

func gradVals(p *gsrmt.Param) []float32 {
	g := p.Tensor.MustGrad(false).MustTo(gotch.CPU, true)
	defer g.MustDrop()
	return g.Vals().([]float32)
}

// refScaler is torch.cuda.amp.GradScaler.update's rule, written out from
// PyTorch 1.13's amp_update_scale_cuda_kernel: a step with an inf/NaN
// multiplies the scale by backoff and resets the tracker; otherwise the
// tracker counts it, and at growth_interval good steps the scale is
// multiplied by growth and the tracker restarts at 0.
type refScaler struct {
	scale            float64
	tracker          int64
	growth, backoff  float64
	interval         int64
	skipped, updated int
}

func (r *refScaler) update(foundInf bool) {
	if foundInf {
		r.scale *= r.backoff
		r.tracker = 0
		r.skipped++
		return
	}
	r.updated++
	r.tracker++
	if r.tracker == r.interval {
		r.scale *= r.growth
		r.tracker = 0
	}
}

// Steps with injected infs and NaNs are skipped and back the scale off,
// good steps reach the optimizer with unscaled gradients and grow the scale
// every interval, as GradScaler's rule says; on CUDA through libtorch's
// kernels, on the CPU through the same arithmetic.
func TestGradScalerSkipsNonFiniteStepsAndFollowsGradScalersRule(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	inf, nan := float32(math.Inf(1)), float32(math.NaN())
	// true gradients per step; a step is bad when one holds inf or NaN
	steps := [][]float32{{0.5, -0.25}, {1, 2}, {inf, 1}, {0.125, 3}, {-1, 0.5}, {2, 2}, {nan, 0}, {-inf, 1}, {1, 1}, {4, -4}, {0.5, 0.5}, {1, 0}}
	for _, dev := range scalerDevices() {
		s := NewGradScaler(dev)
		s.GrowthInterval = 3 // the rule at a short interval; the default 2000 is checked below
		ref := &refScaler{scale: 65536, growth: 2, backoff: 0.5, interval: 3}
		if got := s.State(); got.Scale != 65536 || got.GrowthFactor != 2 || got.BackoffFactor != 0.5 || got.GrowthTracker != 0 ||
			NewGradScaler(dev).GrowthInterval != 2000 {
			t.Fatalf("%v: initial state %+v", dev, got)
		}
		for k, g := range steps {
			scale := s.Scale()
			if scale != ref.scale {
				t.Fatalf("%v step %d: scale %v, want %v", dev, k, scale, ref.scale)
			}
			scaled := make([]float32, len(g)) // what backward of the scaled loss leaves
			bad := false
			for i, v := range g {
				scaled[i] = v * float32(scale)
				bad = bad || math.IsInf(float64(v), 0) || math.IsNaN(float64(v))
			}
			p := paramWithGrad(dev, scaled)
			if k%2 == 0 { // as with --grad-clip: unscale first; Step must not unscale twice
				if err := s.Unscale([]*gsrmt.Param{p}); err != nil {
					t.Fatal(err)
				}
			}
			called := false
			skipped, err := s.Step([]*gsrmt.Param{p}, func() error { called = true; return nil })
			if err != nil {
				t.Fatal(err)
			}
			if skipped != bad || called == bad {
				t.Errorf("%v step %d (grads %v): skipped %v, optimizer called %v", dev, k, g, skipped, called)
			}
			if got := gradVals(p); !bad && (got[0] != g[0] || got[1] != g[1]) {
				t.Errorf("%v step %d: unscaled gradients %v, want %v", dev, k, got, g)
			}
			p.Tensor.MustDrop()
			ref.update(bad)
			if st := s.State(); st.Scale != ref.scale || st.GrowthTracker != ref.tracker {
				t.Errorf("%v after step %d: scale %v tracker %d, want %v and %d", dev, k, st.Scale, st.GrowthTracker, ref.scale, ref.tracker)
			}
		}
		if ref.skipped != 3 || ref.updated != 9 {
			t.Fatalf("the sequence has %d bad and %d good steps, want 3 and 9", ref.skipped, ref.updated)
		}
		// The state restores into a fresh scaler (the checkpoint's section).
		st := s.State()
		fresh := NewGradScaler(dev)
		if err := fresh.SetState(st); err != nil {
			t.Fatal(err)
		}
		if got := fresh.State(); *got != *st {
			t.Errorf("%v: restored %+v, want %+v", dev, got, st)
		}
		s.Close()
		fresh.Close()
	}
}

// The trainer's step with the loss scaler (what --amp fp16 adds to a CUDA
// step, here without autocast): a power-of-two scale leaves the unscaled
// gradients and the update exactly those of the plain step; an inf in a
// gradient (injected after backward, as an fp16 overflow leaves it) skips
// the AdamW step, leaves the weights as they were, reports the skip and
// halves the scale.
func TestLossScalingInTrainStep(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	images, labels := accumData()
	group := []*datasets.Batch{batchOf(images, labels, 0, 16), batchOf(images, labels, 16, 32)}
	// step trains one step (with the scaler when scaled), an inf injected
	// into the first gradient before the optimizer when overflow is set.
	step := func(scaled, overflow bool) (grads, weights, before [][]float32, skipped bool, after float64, adamSteps int64) {
		m := accumModel(t)
		defer m.Close()
		for _, p := range m.Trainable() {
			before = append(before, vals(p))
		}
		opt, err := NewAdamW(m.Trainable(), DefaultAdamW())
		if err != nil {
			t.Fatal(err)
		}
		defer opt.Close()
		o := Options{Device: gotch.CPU, GradAccumSteps: 2, GradClip: 5}
		o.fillDefaults()
		r := &run{o: o, model: m, opt: opt}
		if scaled {
			r.scaler = NewGradScaler(gotch.CPU)
			defer r.scaler.Close()
		}
		if err := opt.ZeroGrad(); err != nil {
			t.Fatal(err)
		}
		for _, b := range group { // trainStep, with the injection point
			if _, err := r.microStep(b, len(group), false); err != nil {
				t.Fatal(err)
			}
		}
		if overflow {
			first := m.Trainable()[0].Tensor.MustGrad(false).MustView([]int64{-1}, true).MustNarrow(0, 0, 1, true)
			fill(first, math.Inf(1))
			first.MustDrop()
		}
		if skipped, err = r.optimizerStep(1e-3); err != nil {
			t.Fatal(err)
		}
		for _, p := range m.Trainable() {
			grads = append(grads, gradVals(p))
			weights = append(weights, vals(p))
		}
		if r.scaler != nil {
			after = r.scaler.Scale()
		}
		return grads, weights, before, skipped, after, opt.Step
	}
	g0, w0, _, _, _, _ := step(false, false)
	g1, w1, _, skipped1, after1, n1 := step(true, false)
	if d, e := maxAbsDiff(g1, g0), maxAbsDiff(w1, w0); d != 0 || e != 0 || skipped1 || n1 != 1 || after1 != 65536 {
		t.Errorf("scale 65536: gradients differ by %v, weights by %v; skipped %v, AdamW steps %d, scale after %v; want 0, 0, false, 1, 65536",
			d, e, skipped1, n1, after1)
	}
	_, w2, before, skipped2, after2, n2 := step(true, true)
	if d := maxAbsDiff(w2, before); d != 0 || !skipped2 || n2 != 0 || after2 != 32768 {
		t.Errorf("an inf gradient: weights moved by %v, skipped %v, AdamW steps %d, scale after %v; want 0, true, 0, 32768",
			d, skipped2, n2, after2)
	}
}

// last.pt holds the scaler's state ("amp_scaler") and --resume restores it
// into the resumed run's scaler.
func TestScalerStateInRunCheckpoint(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	newRun := func() *run {
		m := accumModel(t)
		opt, err := NewAdamW(m.Trainable(), DefaultAdamW())
		if err != nil {
			t.Fatal(err)
		}
		o := Options{Device: gotch.CPU, Epochs: 1, Batch: 16, AMP: true, AMPDType: AMPFloat16, Model: m.Config}
		o.fillDefaults()
		return &run{o: o, model: m, opt: opt, data: &DataPlan{}, scaler: NewGradScaler(gotch.CPU), classes: []string{"a", "b", "c", "d"}}
	}
	saved := newRun()
	defer saved.close()
	if err := saved.opt.Update(1e-3); err != nil { // moments to save (no gradients: a decay-only step)
		t.Fatal(err)
	}
	want := saved.scaler.State()
	want.Scale, want.GrowthTracker = 1024, 7
	if err := saved.scaler.SetState(want); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "last.pt")
	if err := saved.save(path); err != nil {
		t.Fatal(err)
	}
	resumed := newRun()
	defer resumed.close()
	if err := resumed.restore(path); err != nil {
		t.Fatal(err)
	}
	if got := resumed.scaler.State(); *got != *want {
		t.Errorf("resumed scaler %+v, want %+v", got, want)
	}
}
