package train

import (
	"math"
	"runtime"
	"testing"

	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

func TestScheduleClosedForm(t *testing.T) {
	s := Schedule{BaseLR: 1e-3, MinLR: 1e-5, WarmupSteps: 10, TotalSteps: 110}
	cases := []struct {
		k    int64
		want float64
	}{
		{0, 1e-4},                    // (0+1)/10 of the base
		{4, 5e-4},                    // 5/10
		{9, 1e-3},                    // end of warmup
		{10, 1e-3},                   // cosine starts at the base
		{60, 1e-5 + (1e-3-1e-5)*0.5}, // half way: cos(pi/2) = 0
		{35, 1e-5 + (1e-3-1e-5)*(1+math.Cos(math.Pi*25/100))/2}, // a quarter in
		{110, 1e-5}, {500, 1e-5}, // done
	}
	for _, c := range cases {
		if got := s.LR(c.k); math.Abs(got-c.want) > 1e-15 {
			t.Errorf("LR(%d) = %.10g, want %.10g", c.k, got, c.want)
		}
	}
}

func param(name string, vals []float32, grad []float32, noDecay bool) *gsrmt.Param {
	x := ts.MustOfSlice(vals).MustSetRequiresGrad(true, true)
	if grad != nil {
		g := ts.MustOfSlice(grad)
		y := x.MustMul(g, false).MustSum(gotch.Float, true) // d(sum(x*g))/dx = g
		if err := y.Backward(); err != nil {
			panic(err)
		}
		y.MustDrop()
		g.MustDrop()
	}
	return &gsrmt.Param{Name: name, Tensor: x, Trainable: true, NoDecay: noDecay}
}

func vals(p *gsrmt.Param) []float32 {
	d := p.Tensor.MustDetach(false)
	defer d.MustDrop()
	return d.Vals().([]float32)
}

// Two AdamW steps against values worked out by hand.
func TestAdamWAgainstHandComputed(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	w := param("w", []float32{1, -2}, []float32{0.5, -1}, false)
	b := param("b", []float32{3}, []float32{2}, true)
	defer w.Tensor.MustDrop()
	defer b.Tensor.MustDrop()
	cfg := AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1}
	o, err := NewAdamW([]*gsrmt.Param{w, b}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	lr := 0.01
	if err := o.Update(lr); err != nil {
		t.Fatal(err)
	}
	// Step 1: m = 0.1 g, v = 0.001 g^2, mhat = g, vhat = g^2, update = lr * g/(|g| + eps).
	// w decays first: w * (1 - lr*wd) = w * 0.999.
	want := func(p0, g, decay float64) float64 {
		return p0*(1-lr*decay) - lr*g/(math.Abs(g)+1e-8)
	}
	wv, bv := vals(w), vals(b)
	if math.Abs(float64(wv[0])-want(1, 0.5, 0.1)) > 1e-6 || math.Abs(float64(wv[1])-want(-2, -1, 0.1)) > 1e-6 {
		t.Errorf("w after step 1: %v, want [%v %v]", wv, want(1, 0.5, 0.1), want(-2, -1, 0.1))
	}
	if math.Abs(float64(bv[0])-want(3, 2, 0)) > 1e-6 {
		t.Errorf("b after step 1 (no decay): %v, want %v", bv, want(3, 2, 0))
	}
	// Step 2 with the same gradient (accumulated grads are zeroed and recomputed by hand):
	// m = 0.19 g, v = 0.001999 g^2, mhat = 0.19/0.19 g = g, vhat = g^2 -> the same update.
	w1 := float64(wv[0])
	if err := o.Update(lr); err != nil {
		t.Fatal(err)
	}
	if got := float64(vals(w)[0]); math.Abs(got-(w1*(1-lr*0.1)-lr*0.5/(0.5+1e-8))) > 1e-6 {
		t.Errorf("w[0] after step 2 = %v", got)
	}
	if o.Step != 2 {
		t.Errorf("step count %d", o.Step)
	}
}

func TestClipGradNormAgainstHandComputed(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	a := param("a", []float32{0, 0}, []float32{3, 4}, false) // norm 5
	b := param("b", []float32{0}, []float32{12}, false)      // norm 12; total 13
	defer a.Tensor.MustDrop()
	defer b.Tensor.MustDrop()
	norm, err := ClipGradNorm([]*gsrmt.Param{a, b}, 6.5)
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(norm-13) > 1e-5 {
		t.Fatalf("norm %v, want 13", norm)
	}
	g := a.Tensor.MustGrad(false)
	gv := g.Vals().([]float32)
	g.MustDrop()
	coef := 6.5 / (13 + 1e-6)
	if math.Abs(float64(gv[0])-3*coef) > 1e-6 || math.Abs(float64(gv[1])-4*coef) > 1e-6 {
		t.Errorf("clipped grad %v, want [%v %v]", gv, 3*coef, 4*coef)
	}
	// Below the limit nothing changes.
	norm2, _ := ClipGradNorm([]*gsrmt.Param{a, b}, 100)
	if math.Abs(norm2-6.5) > 1e-4 {
		t.Errorf("norm after clipping %v, want 6.5", norm2)
	}
}

// Mixup/CutMix targets with label smoothing against a hand-computed loss.
func TestSoftTargetLossAgainstHandComputed(t *testing.T) {
	logits := ts.MustOfSlice([]float32{1, 2, 0, 0, 0, 3}).MustView([]int64{2, 3}, true)
	defer logits.MustDrop()
	// Sample 0 mixed 0.7 label 1 + 0.3 label 0, smoothing 0.1 over 3 classes.
	smooth := func(l int) []float64 {
		r := []float64{0.1 / 3, 0.1 / 3, 0.1 / 3}
		r[l] += 0.9
		return r
	}
	t0 := make([]float64, 3)
	for k := range t0 {
		t0[k] = 0.7*smooth(1)[k] + 0.3*smooth(0)[k]
	}
	t1 := smooth(2)
	tg := []float32{float32(t0[0]), float32(t0[1]), float32(t0[2]), float32(t1[0]), float32(t1[1]), float32(t1[2])}
	targets := ts.MustOfSlice(tg).MustView([]int64{2, 3}, true)
	defer targets.MustDrop()
	loss, err := SoftTargetCrossEntropy(logits, targets)
	if err != nil {
		t.Fatal(err)
	}
	defer loss.MustDrop()
	logsm := func(z []float64) []float64 {
		m := 0.0
		for _, v := range z {
			m += math.Exp(v)
		}
		out := make([]float64, len(z))
		for i, v := range z {
			out[i] = v - math.Log(m)
		}
		return out
	}
	l0, l1 := logsm([]float64{1, 2, 0}), logsm([]float64{0, 0, 3})
	want := 0.0
	for k := 0; k < 3; k++ {
		want -= t0[k]*l0[k] + t1[k]*l1[k]
	}
	want /= 2
	if got := float64(loss.Vals().([]float32)[0]); math.Abs(got-want) > 1e-6 {
		t.Errorf("loss %v, want %v", got, want)
	}
	if got := SmoothedTargets([]int64{2}, 4, 0.1); math.Abs(float64(got[2])-0.925) > 1e-7 || math.Abs(float64(got[0])-0.025) > 1e-7 {
		t.Errorf("smoothed targets %v", got)
	}
}

func TestTopK(t *testing.T) {
	logits := []float32{0.1, 0.5, 0.4, 0.9, 0.2, 0.3, 0.3, 0.3, 0.3}
	// Sample 0: label 2 ranks second. Sample 1: label 0 is first. Sample 2: ties, label 2 ranks third.
	got := TopK(logits, []int64{2, 0, 2}, 3, 1, 2)
	if got[0] != 1 || got[1] != 2 {
		t.Errorf("top-1/top-2 hits %v, want [1 2]", got)
	}
}

// NaN logits never count as a hit: a NaN label logit misses at every k, and a
// NaN elsewhere ranks above the label, as in torch.topk.
func TestTopKWithNaN(t *testing.T) {
	nan := float32(math.NaN())
	logits := []float32{
		nan, nan, nan, // all NaN, label 0: miss
		0.1, nan, 0.9, // label 2 is beaten by the NaN only: top-1 miss, top-2 hit
		nan, 0.5, 0.2, // label 0 is NaN: miss
	}
	got := TopK(logits, []int64{0, 2, 0}, 3, 1, 2, 3)
	if got[0] != 0 || got[1] != 1 || got[2] != 1 {
		t.Errorf("top-1/2/3 hits %v, want [0 1 1]", got)
	}
	if n := countNonFinite(append(logits, 1, 2, float32(math.Inf(1))), 3); n != 4 {
		t.Errorf("countNonFinite %d, want 4 rows", n)
	}
	if a := Argmax([]float32{1, nan, 3}); a != 1 {
		t.Errorf("Argmax with NaN %d, want 1 (torch.argmax)", a)
	}
}

// --fixed-threads and CUDA runs keep their threads: no coreShare.
func TestCoreShareOff(t *testing.T) {
	if c := newCoreShare(&Options{Device: gotch.CPU, FixedThreads: true}); c != nil {
		t.Error("--fixed-threads still sizes the threads")
	}
	if c := newCoreShare(&Options{Device: gotch.CudaBuilder(0)}); c != nil {
		t.Error("a CUDA run sizes its CPU threads")
	}
	if c := newCoreShare(&Options{Device: gotch.CPU}); runtime.GOOS == "linux" && c == nil {
		t.Error("a CPU run on Linux does not size its threads")
	}
}
