package tests

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/gsrmt/gsrmt/train"
	"github.com/sugarme/gotch"
)

// With --grad-accum-steps 3 and 7 batches an epoch, an epoch is 3 optimizer
// steps (3 batches, 3, then the partial group of 1); a run interrupted
// after the second step of epoch 2 resumes at its last group and
// reproduces the uninterrupted run's metrics.
func TestGradAccumResumeMidEpoch(t *testing.T) {
	data := makeImageFolder(t, 10, 2) // 30 training images: 7 batches of 4
	cfg, err := gsrmt.PresetConfig("swat", "nano", 3)
	if err != nil {
		t.Fatal(err)
	}
	run := func(out, resume string, stopAt int64) *train.Result {
		t.Helper()
		o := train.Options{Dataset: "imagefolder", DataDir: data, ImgSize: 32, Model: cfg, Recipe: "default",
			Epochs: 2, Batch: 4, GradAccumSteps: 3, LR: 2e-3, MinLR: 1e-5, WeightDecay: 0.05, WarmupEpochs: 1, LabelSmoothing: 0.1,
			Mixup: 0.8, CutMix: 1, GradClip: 1, DropLast: true, Device: gotch.CPU, Threads: 1, Workers: 1, Seed: 5, Out: out,
			EvalEvery: 1, Resume: resume}
		res, err := runStoppingAt(o, stopAt)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	whole, parts := filepath.Join(t.TempDir(), "whole"), filepath.Join(t.TempDir(), "parts")
	if res := run(whole, "", 0); res.Steps != 6 {
		t.Errorf("2 epochs of 7 batches at --grad-accum-steps 3 took %d steps, want 6", res.Steps)
	}
	if cfg := readJSON(t, filepath.Join(whole, "config.json")); cfg["steps_per_epoch"] != 3.0 || cfg["effective_batch_size"] != 12.0 {
		t.Errorf("config.json: steps_per_epoch %v, effective_batch_size %v; want 3 and 12", cfg["steps_per_epoch"], cfg["effective_batch_size"])
	}
	if res := run(parts, "", 4); !res.Interrupted || res.Steps != 5 {
		t.Fatalf("interrupted %v after %d steps, want a stop after step 5", res.Interrupted, res.Steps)
	}
	if res := run(parts, filepath.Join(parts, "last.pt"), 0); res.Steps != 6 {
		t.Errorf("the resumed run ended at step %d, want 6", res.Steps)
	}
	a, b := metricsWithoutTiming(t, whole), metricsWithoutTiming(t, parts)
	if len(a) != 3 || strings.Join(a, "\n") != strings.Join(b, "\n") {
		t.Errorf("metrics.csv without timing:\nuninterrupted %q\nresumed %q", a, b)
	}
}

// In a group, gradients are averaged once per step, after the last
// micro-batch: 2 ranks x 8 images x 2 micro-batches with --sync-bn train as
// one process x 16 x 2 (the same micro-batch statistics), to the float
// rounding that another thread count already shows, with the replicas
// identical after every step (--check-replicas).
func TestDistributedGradAccum(t *testing.T) {
	data := makeImageFolder(t, 22, 2) // 66 training images: 4 micro-batches of 16 per epoch (--drop-last)
	base := t.TempDir()
	run := func(name string, extra ...string) string {
		out := filepath.Join(base, name)
		args := distArgs(data, out, append([]string{"--batch-size", "16", "--grad-accum-steps", "2", "--crop-padding", "0",
			"--eval-every", "2", "--dist-timeout", "120s", "--sync-bn"}, extra...)...)
		if _, errOut, code := runCLI(t, args...); code != 0 {
			t.Fatalf("train %s exited %d:\n%s", strings.Join(extra, " "), code, errOut)
		}
		return out
	}
	ref := run("one", "--threads", "2")
	floorRun := run("one-thread", "--threads", "1")
	two := run("two", "--nproc", "2", "--check-replicas")
	a := openState(t, filepath.Join(ref, "last.pt"))
	floor := compareStates(t, a, openState(t, filepath.Join(floorRun, "last.pt")))
	s := openState(t, filepath.Join(two, "last.pt"))
	got := compareStates(t, a, s)
	tol := max(1e-4, 3*floor.rel)
	t.Logf("after 4 steps: 1 thread differs by %.3g (relative, in %s), 2 ranks by %.3g (in %s)", floor.rel, floor.name, got.rel, got.name)
	if got.rel > tol {
		t.Errorf("2 ranks with --grad-accum-steps 2 differ from 1 process by %.3g (relative, in %s): want float rounding (%.3g)", got.rel, got.name, tol)
	}
	if steps := s["head.bn.num_batches_tracked"]; len(steps) != 1 || steps[0] != 8 {
		t.Errorf("head.bn.num_batches_tracked = %v, want 8 (BatchNorm per micro-batch)", steps)
	}
	if cfg := readJSON(t, filepath.Join(two, "config.json")); cfg["steps_per_epoch"] != 2.0 || cfg["rank_batch_size"] != 8.0 {
		t.Errorf("config.json: steps_per_epoch %v, rank_batch_size %v; want 2 and 8", cfg["steps_per_epoch"], cfg["rank_batch_size"])
	}
}
