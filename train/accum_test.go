package train

import (
	"math"
	"math/rand"
	"runtime"
	"testing"

	"github.com/gsrmt/gsrmt/datasets"
	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/gsrmt/gsrmt/internal/torch"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// accumModel is a nano model (seeded, so that every call builds the same
// weights) whose BatchNorm layers use their running statistics in
// training too, as in eval mode: batch statistics are what accumulation
// changes, so this makes N micro-batches and one batch comparable.
func accumModel(t *testing.T) *gsrmt.Model {
	t.Helper()
	cfg, err := gsrmt.PresetConfig("swat", "nano", 4)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ImageSize, cfg.DropPath = 32, 0
	if err := torch.ManualSeed(11); err != nil {
		t.Fatal(err)
	}
	m, err := gsrmt.New(cfg, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	m.SetTrainBatchNorm(func(x, w, b, mean, vari *ts.Tensor, momentum, eps float64) (*ts.Tensor, error) {
		return ts.BatchNorm(x, w, b, mean, vari, false, momentum, eps, true)
	})
	return m
}

// batchOf is a batch of images [from, to) of a fixed random set.
func batchOf(images []float32, labels []int64, from, to int) *datasets.Batch {
	per := 3 * 32 * 32
	return &datasets.Batch{N: to - from, C: 3, H: 32, W: 32, Float: images[from*per : to*per], Labels: labels[from:to]}
}

// trainOneStep runs the trainer's step (trainStep) on group with
// --grad-accum-steps len(group) and returns the gradients and the weights
// after AdamW's update.
func trainOneStep(t *testing.T, group []*datasets.Batch) (grads, weights [][]float32) {
	return trainOneStepWith(t, group, false)
}

// trainOneStepWith is trainOneStep, with --checkpoint-activations when
// checkpoint is set.
func trainOneStepWith(t *testing.T, group []*datasets.Batch, checkpoint bool) (grads, weights [][]float32) {
	t.Helper()
	m := accumModel(t)
	defer m.Close()
	opt, err := NewAdamW(m.Trainable(), DefaultAdamW())
	if err != nil {
		t.Fatal(err)
	}
	defer opt.Close()
	o := Options{Device: gotch.CPU, GradAccumSteps: len(group), CheckpointActivations: checkpoint}
	o.fillDefaults()
	r := &run{o: o, model: m, opt: opt}
	st, err := r.trainStep(group, 1e-3, false)
	if err != nil {
		t.Fatal(err)
	}
	if st.seen != 32 {
		t.Fatalf("the step saw %d images, want 32", st.seen)
	}
	for _, p := range m.Trainable() {
		grads = append(grads, gradVals(p))
		weights = append(weights, vals(p))
	}
	return grads, weights
}

// maxDiff is the largest |a - b| over every element, relative to the
// largest |b| of all: a tensor whose true gradient is 0 (the stage-3
// queries and keys, which see one token at 32 px) holds rounding noise only.
func maxDiff(a, b [][]float32) float64 {
	worst, scale := 0.0, 0.0
	for i := range b {
		for _, v := range b[i] {
			scale = math.Max(scale, math.Abs(float64(v)))
		}
	}
	for i := range a {
		for j := range a[i] {
			if d := math.Abs(float64(a[i][j] - b[i][j])); d > worst || math.IsNaN(d) {
				worst = d
			}
		}
	}
	return worst / scale
}

// maxAbsDiff is the largest |a - b| over every element.
func maxAbsDiff(a, b [][]float32) float64 {
	worst := 0.0
	for i := range a {
		for j := range a[i] {
			if d := math.Abs(float64(a[i][j] - b[i][j])); d > worst || math.IsNaN(d) {
				worst = d
			}
		}
	}
	return worst
}

// Two micro-batches of 16 images with --grad-accum-steps 2 give the
// gradients, and after one AdamW step the weights, of one batch of the
// same 32 images (BatchNorm in eval mode, no drop path), to float32
// rounding.
func TestGradAccumTwoHalvesEqualOneBatch(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	images, labels := accumData()
	g1, w1 := trainOneStep(t, []*datasets.Batch{batchOf(images, labels, 0, 32)})
	g2, w2 := trainOneStep(t, []*datasets.Batch{batchOf(images, labels, 0, 16), batchOf(images, labels, 16, 32)})
	// Gradients: float32 rounding of sums in another order. Weights: the
	// first AdamW step moves each by lr * g / (|g| + eps), which turns the
	// rounding noise of a gradient near 0 (below eps = 1e-8) into up to
	// lr * noise / eps; bounded here by 5 % of lr.
	dg, dw := maxDiff(g2, g1), maxAbsDiff(w2, w1)
	t.Logf("largest difference: gradients %.3g of the largest gradient, weights %.3g (lr 1e-3)", dg, dw)
	if dg > 1e-5 || dw > 5e-5 {
		t.Errorf("accumulated gradients differ by %.3g (relative), weights by %.3g; want float32 rounding (< 1e-5, < 5e-5)", dg, dw)
	}
	if len(g1) == 0 || len(g1) != len(g2) {
		t.Fatalf("compared %d and %d gradients", len(g1), len(g2))
	}
}

// accumData is 32 random images and labels of 4 classes.
func accumData() ([]float32, []int64) {
	rng := rand.New(rand.NewSource(5))
	images := make([]float32, 32*3*32*32)
	for i := range images {
		images[i] = float32(rng.NormFloat64())
	}
	labels := make([]int64, 32)
	for i := range labels {
		labels[i] = int64(rng.Intn(4))
	}
	return images, labels
}

// The trainer's step with --checkpoint-activations (recomputing each block
// in backward) gives the gradients of the plain step, with accumulation.
func TestCheckpointActivationsTrainStep(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	images, labels := accumData()
	group := []*datasets.Batch{batchOf(images, labels, 0, 16), batchOf(images, labels, 16, 32)}
	g1, w1 := trainOneStepWith(t, group, false)
	g2, w2 := trainOneStepWith(t, group, true)
	dg, dw := maxDiff(g2, g1), maxAbsDiff(w2, w1)
	t.Logf("largest difference: gradients %.3g of the largest gradient, weights %.3g", dg, dw)
	if dg > 1e-5 || dw > 5e-5 || len(g1) == 0 {
		t.Errorf("checkpointed gradients differ by %.3g (relative), weights by %.3g; want float32 rounding (< 1e-5, < 5e-5)", dg, dw)
	}
}

// An epoch of 5 loader batches at --grad-accum-steps 2 is 3 steps: groups
// end after batches 2, 4 and 5 (timm's partial last group).
func TestGradAccumGroups(t *testing.T) {
	r := &run{o: Options{GradAccumSteps: 2}, micro: 5}
	var ends []int
	for b := 0; b < r.micro; b++ {
		if r.groupEnds(b) {
			ends = append(ends, b+1)
		}
	}
	if len(ends) != 3 || ends[0] != 2 || ends[1] != 4 || ends[2] != 5 {
		t.Errorf("groups end after batches %v, want [2 4 5]", ends)
	}
}

// The recipe's learning rate scales with the effective batch, as timm's
// global batch counts the accumulation steps: 5e-4 x 64 x 2 / 512.
func TestRecipeLRScalesWithEffectiveBatch(t *testing.T) {
	o := Options{Batch: 64, GradAccumSteps: 2}
	if err := o.ApplyRecipe("default"); err != nil {
		t.Fatal(err)
	}
	if want := 5e-4 * 128 / 512; math.Abs(o.LR-want) > 1e-18 {
		t.Errorf("lr %v, want %v", o.LR, want)
	}
}
