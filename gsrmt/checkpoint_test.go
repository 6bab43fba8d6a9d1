package gsrmt

import (
	"math"
	"math/rand"
	"runtime"
	"testing"

	"github.com/gsrmt/gsrmt/internal/torch"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// checkpointRun builds the seeded model, runs one training forward and
// backward (checkpointed or not) on x with loss sum(logits * w), and
// returns every state entry (weights, running statistics, counters), the
// gradients, and a number drawn from the generator afterwards.
func checkpointRun(t *testing.T, cfg Config, x, w *ts.Tensor, checkpointed bool) (state, grads map[string][]float64, after float64) {
	t.Helper()
	if err := torch.ManualSeed(3); err != nil {
		t.Fatal(err)
	}
	m, err := New(cfg, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := torch.ManualSeed(7); err != nil { // the drop-path masks
		t.Fatal(err)
	}
	var logits *ts.Tensor
	var rc *Recompute
	if checkpointed {
		own := x.MustDetachCopy(false) // dropped before Backward, as the trainer drops its batch
		logits, rc, err = m.ForwardCheckpointed(own, nil)
		own.MustDrop()
	} else {
		logits, err = m.Forward(x, true)
	}
	if err != nil {
		t.Fatal(err)
	}
	loss := logits.MustMul(w, true).MustSum(gotch.Float, true)
	if checkpointed {
		err = rc.Backward(loss)
	} else {
		err = loss.Backward()
	}
	loss.MustDrop()
	if err != nil {
		t.Fatal(err)
	}
	state, grads = map[string][]float64{}, map[string][]float64{}
	for _, p := range m.Params() {
		state[p.Name] = float64s(p.Tensor)
		if p.Trainable {
			g := p.Tensor.MustGrad(false)
			grads[p.Name] = float64s(g)
			g.MustDrop()
		}
	}
	r := ts.MustRand([]int64{1}, gotch.Double, gotch.CPU)
	defer r.MustDrop()
	return state, grads, r.Vals().([]float64)[0]
}

func float64s(t *ts.Tensor) []float64 {
	c := t.MustDetach(false).MustTotype(gotch.Double, true)
	defer c.MustDrop()
	return c.Vals().([]float64)
}

// Activation checkpointing gives the gradients of the plain training
// forward and backward, with drop path on (its masks replayed), and leaves
// the BatchNorm running statistics and counters as one forward does
// (momentum applied once) and the generator where one forward leaves it.
func TestCheckpointedBackwardMatchesPlain(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cfg, err := PresetConfig("swat", "nano", 5)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ImageSize, cfg.DropPath = 64, 0.5
	rng := rand.New(rand.NewSource(1))
	xs := make([]float32, 4*3*64*64)
	for i := range xs {
		xs[i] = float32(rng.NormFloat64())
	}
	ws := make([]float32, 4*5)
	for i := range ws {
		ws[i] = float32(rng.NormFloat64())
	}
	x := ts.MustOfSlice(xs).MustView([]int64{4, 3, 64, 64}, true)
	w := ts.MustOfSlice(ws).MustView([]int64{4, 5}, true)
	defer x.MustDrop()
	defer w.MustDrop()
	s1, g1, r1 := checkpointRun(t, cfg, x, w, false)
	s2, g2, r2 := checkpointRun(t, cfg, x, w, true)
	if r1 != r2 {
		t.Errorf("the generator draws %v after the checkpointed step, %v after the plain one", r2, r1)
	}
	worstG, scale := 0.0, 0.0
	for name, want := range g1 {
		got := g2[name]
		for i := range want {
			worstG = math.Max(worstG, math.Abs(got[i]-want[i]))
			scale = math.Max(scale, math.Abs(want[i]))
		}
	}
	t.Logf("largest gradient difference %.3g (largest gradient %.3g)", worstG, scale)
	if !(worstG <= 1e-6*scale) || len(g1) == 0 || len(g1) != len(g2) {
		t.Errorf("gradients differ by up to %.3g of %.3g (%d vs %d tensors)", worstG, scale, len(g1), len(g2))
	}
	for name, want := range s1 {
		for i, v := range s2[name] {
			if v != want[i] {
				t.Errorf("%s[%d] = %v after the checkpointed step, %v after the plain one", name, i, v, want[i])
				break
			}
		}
	}
	if tracked := s2["stem.bn1.num_batches_tracked"]; len(tracked) != 1 || tracked[0] != 1 {
		t.Errorf("stem.bn1.num_batches_tracked = %v, want 1", tracked)
	}
}
