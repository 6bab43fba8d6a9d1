package tests

import (
	"context"
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
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		o := train.Options{Dataset: "imagefolder", DataDir: data, ImgSize: 32, Model: cfg, Recipe: "default",
			Epochs: 2, Batch: 4, GradAccumSteps: 3, LR: 2e-3, MinLR: 1e-5, WeightDecay: 0.05, WarmupEpochs: 1, LabelSmoothing: 0.1,
			Mixup: 0.8, CutMix: 1, GradClip: 1, DropLast: true, Device: gotch.CPU, Threads: 1, Workers: 1, Seed: 5, Out: out,
			EvalEvery: 1, Resume: resume}
		o.OnStep = func(step int64) {
			if step == stopAt {
				cancel()
			}
		}
		res, err := train.Run(ctx, o)
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
