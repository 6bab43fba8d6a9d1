package train

import (
	"fmt"
	"math"

	"github.com/gsrmt/gsrmt/datasets"
)

// RMT's training defaults, read from qhfan/RMT classfication_release/main.py
// (get_args_parser) and datasets.py (build_transform); each is the value of
// the argparse flag named after it.
const (
	rmtAA            = "rand-m9-mstd0.5-inc1" // --aa
	rmtInterpolation = "bicubic"              // --train-interpolation (evaluation: Resize(..., interpolation=3), bicubic)
	rmtRepeats       = 3                      // --repeated-aug: RASampler's 3 copies
	rmtEMADecay      = 0.99996                // --model-ema-decay, raised to batch*world/512
	rmtReprob        = 0.25                   // --reprob
	rmtRemode        = "pixel"                // --remode
	rmtEpochs        = 300                    // --epochs
	rmtImgSize       = 224                    // --input-size
)

// applyRMT sets RMT's values beyond the default recipe's (AdamW lr 5e-4 x
// batch/512, weight decay 0.05, warmup 5 epochs, min lr 1e-5, smoothing
// 0.1, Mixup 0.8, CutMix 1.0, which ApplyRecipe sets for every recipe):
// timm's RandAugment rand-m9-mstd0.5-inc1 (instead of torchvision's),
// bicubic interpolation, repeated augmentation with 3 copies, Random
// Erasing 0.25 in timm's pixel mode, an EMA of decay 0.99996^(batch/512) as main.py scales it,
// SyncBatchNorm (main.py converts the model), 300 epochs at 224 px.
func (o *Options) applyRMT(batch int) {
	o.Epochs, o.RandAugment, o.AA, o.Interpolation = rmtEpochs, false, rmtAA, rmtInterpolation
	o.AugRepeats, o.RandomErasing, o.RandomErasingMode, o.SyncBN = rmtRepeats, rmtReprob, rmtRemode, true
	o.EMA = math.Pow(rmtEMADecay, float64(batch)/512)
	if o.ImgSize == 0 {
		o.ImgSize = rmtImgSize
	}
}

// validateAugment names the first augmentation option that is wrong.
func (o *Options) validateAugment() error {
	if _, err := datasets.ParseInterpolation(o.Interpolation); err != nil {
		return err
	}
	if m := o.RandomErasingMode; m != "" && m != "zero" && m != "pixel" {
		return fmt.Errorf("random-erasing-mode %q: want zero (torchvision's) or pixel (timm's per-pixel noise)", m)
	}
	if o.AugRepeats < 0 {
		return fmt.Errorf("aug-repeats %d: want the number of copies of each image, 2 or more (0 or 1: off)", o.AugRepeats)
	}
	if o.AA == "" {
		return nil
	}
	if _, err := datasets.ParseTimmRandAugment(o.AA); err != nil {
		return err
	}
	if o.RandAugment {
		return fmt.Errorf("aa %q: --randaugment asks for torchvision's RandAugment as well; give one of them", o.AA)
	}
	return nil
}

// augment is the training augmentation's options of o (Validate has
// checked them) with the normalization mean norm.
func (o *Options) augment(norm datasets.Normalize) (datasets.Augment, datasets.Interpolation) {
	interp, _ := datasets.ParseInterpolation(o.Interpolation)
	return datasets.Augment{CropPadding: o.CropPadding, RandAugment: o.RandAugment, AA: o.AA, Interpolation: interp, Mean: norm.Mean}, interp
}

// erasing is the Random Erasing of o, nil when off: torchvision's (zeros),
// or timm's RandomErasing(mode="pixel") (timm/data/random_erasing.py:
// min_area 0.02, max_area 1/3, log-uniform aspect ratio in [0.3, 1/0.3],
// one box, per-pixel standard normal values).
func (o *Options) erasing() *datasets.RandomErasing {
	switch {
	case o.RandomErasing <= 0:
		return nil
	case o.RandomErasingMode == "pixel":
		return &datasets.RandomErasing{P: o.RandomErasing, Scale: [2]float64{0.02, 1.0 / 3}, Ratio: [2]float64{0.3, 1 / 0.3}, Value: datasets.EraseRandom}
	}
	return &datasets.RandomErasing{P: o.RandomErasing}
}
