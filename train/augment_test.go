package train

import (
	"math"

	"github.com/gsrmt/gsrmt/datasets"
	"slices"
	"strings"
	"testing"
)

// TestRecipeRMT checks that --recipe rmt sets RMT's training defaults. The
// expected values are those of qhfan/RMT classfication_release/main.py
// (get_args_parser; commit c49b3259) and datasets.py (build_transform),
// read with the search tool: --aa rand-m9-mstd0.5-inc1,
// --train-interpolation bicubic, --repeated-aug (RASampler, 3 copies),
// --model-ema-decay 0.99996 raised to batch*world/512, --reprob 0.25,
// --remode pixel, --epochs 300, --input-size 224, --lr 5e-4 scaled by batch*world/512,
// --min-lr 1e-5, --weight-decay 0.05, --warmup-epochs 5, --smoothing 0.1,
// --mixup 0.8, --cutmix 1.0, --clip-grad None, and the model converted to
// SyncBatchNorm.
func TestRecipeRMT(t *testing.T) {
	o := Options{Batch: 1024}
	if err := o.ApplyRecipe("rmt"); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"aa": "rand-m9-mstd0.5-inc1", "interpolation": "bicubic", "aug-repeats": 3, "random-erasing": 0.25,
		"random-erasing-mode": "pixel", "epochs": 300, "img-size": 224, "lr": 5e-4 * 1024 / 512, "min-lr": 1e-5, "weight-decay": 0.05,
		"warmup-epochs": 5.0, "label-smoothing": 0.1, "mixup": 0.8, "cutmix": 1.0, "grad-clip": 0.0,
		"randaugment": false, "sync-bn": true, "recipe": "rmt",
	}
	got := map[string]any{
		"aa": o.AA, "interpolation": o.Interpolation, "aug-repeats": o.AugRepeats, "random-erasing": o.RandomErasing,
		"random-erasing-mode": o.RandomErasingMode, "epochs": o.Epochs, "img-size": o.ImgSize, "lr": o.LR, "min-lr": o.MinLR, "weight-decay": o.WeightDecay,
		"warmup-epochs": o.WarmupEpochs, "label-smoothing": o.LabelSmoothing, "mixup": o.Mixup, "cutmix": o.CutMix,
		"grad-clip": o.GradClip, "randaugment": o.RandAugment, "sync-bn": o.SyncBN, "recipe": o.Recipe,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("rmt %s = %v, want %v", k, got[k], v)
		}
	}
	// 0.99996^(1024/512) = 0.9999200016.
	if math.Abs(o.EMA-0.9999200016) > 1e-12 {
		t.Errorf("rmt ema = %.12f, want 0.99996^2 = 0.9999200016", o.EMA)
	}
	small := Options{Batch: 128}
	_ = small.ApplyRecipe("rmt")
	if math.Abs(small.EMA-math.Pow(0.99996, 0.25)) > 1e-15 || small.LR != 1.25e-4 {
		t.Errorf("rmt at batch 128: ema %v lr %v", small.EMA, small.LR)
	}
	// The other recipes do not touch the new options.
	for _, r := range []string{"default", "cifar", "mini-imagenet"} {
		o := Options{Batch: 128}
		_ = o.ApplyRecipe(r)
		if o.AA != "" || o.Interpolation != "" || o.AugRepeats != 0 {
			t.Errorf("recipe %s sets aa %q interpolation %q aug-repeats %d", r, o.AA, o.Interpolation, o.AugRepeats)
		}
	}
}

func TestValidateAugmentOptions(t *testing.T) {
	base := func() Options {
		o := Options{Dataset: "cifar10", DataDir: "d", ImgSize: 32, Epochs: 1, Batch: 8, LR: 1e-3, EvalEvery: 1, Out: "o"}
		return o
	}
	cases := map[string]func(*Options){
		`aa "original"`:                        func(o *Options) { o.AA = "original" },
		`section "m9.5"`:                       func(o *Options) { o.AA = "rand-m9.5" },
		"--randaugment asks for torchvision's": func(o *Options) { o.AA, o.RandAugment = "rand-m9", true },
		`interpolation "lanczos"`:              func(o *Options) { o.Interpolation = "lanczos" },
		"aug-repeats -1":                       func(o *Options) { o.AugRepeats = -1 },
	}
	for want, set := range cases {
		o := base()
		set(&o)
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", want, err)
		}
	}
	o := base()
	o.AA, o.Interpolation, o.AugRepeats = "rand-m9-mstd0.5-inc1", "bicubic", 3
	if err := o.Validate(); err != nil {
		t.Errorf("valid options: %v", err)
	}
}

// TestAugmentOptionsAreRecorded checks that aa, interpolation and
// aug-repeats are part of a run's identity: recorded under their flag
// names and fixed on resume.
func TestAugmentOptionsAreRecorded(t *testing.T) {
	names := optionNames()
	for _, n := range []string{"aa", "interpolation", "aug-repeats"} {
		if !slices.Contains(names, n) || slices.Contains(ResumeMayChange, n) {
			t.Errorf("%s: recorded %v, may change on resume %v", n, slices.Contains(names, n), slices.Contains(ResumeMayChange, n))
		}
	}
	saved := Options{AA: "rand-m9-mstd0.5-inc1", Interpolation: "bicubic", AugRepeats: 3}
	now := saved
	now.AA, now.Interpolation, now.AugRepeats = "rand-m7", "bilinear", 2
	got := strings.Join(ResumeConflicts(&saved, &now), "; ")
	for _, want := range []string{`--aa "rand-m7" differs`, `--interpolation "bilinear" differs`, "--aug-repeats 2 differs"} {
		if !strings.Contains(got, want) {
			t.Errorf("conflicts %q lack %q", got, want)
		}
	}
	// A checkpoint written before these options existed resumes without
	// conflict: their zero values are the old behaviour.
	if c := ResumeConflicts(&Options{}, &Options{}); len(c) != 0 {
		t.Errorf("zero options conflict: %v", c)
	}
}

// TestErasingModes checks the Random Erasing of each mode: torchvision's
// zeros by default, timm's pixel mode (random_erasing.py: area 0.02-1/3,
// aspect ratio 0.3-1/0.3, per-pixel normal values) with "pixel".
func TestErasingModes(t *testing.T) {
	o := Options{RandomErasing: 0.25}
	if e := o.erasing(); e == nil || e.P != 0.25 || e.Value != datasets.EraseZero || e.Scale != ([2]float64{}) {
		t.Errorf("default erasing %+v", e)
	}
	o.RandomErasingMode = "pixel"
	e := o.erasing()
	if e == nil || e.Value != datasets.EraseRandom || e.Scale != [2]float64{0.02, 1.0 / 3} || e.Ratio != [2]float64{0.3, 1 / 0.3} {
		t.Errorf("pixel erasing %+v", e)
	}
	o.RandomErasing = 0
	if o.erasing() != nil {
		t.Error("probability 0 gives an erasing")
	}
}
