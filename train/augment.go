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
	rmtEpochs        = 300                    // --epochs
	rmtImgSize       = 224                    // --input-size
)

// applyRMT sets RMT's values beyond the default recipe's (AdamW lr 5e-4 x
// batch/512, weight decay 0.05, warmup 5 epochs, min lr 1e-5, smoothing
// 0.1, Mixup 0.8, CutMix 1.0, which ApplyRecipe sets for every recipe):
// timm's RandAugment rand-m9-mstd0.5-inc1 (instead of torchvision's),
// bicubic interpolation, repeated augmentation with 3 copies, Random
// Erasing 0.25, an EMA of decay 0.99996^(batch/512) as main.py scales it,
// SyncBatchNorm (main.py converts the model), 300 epochs at 224 px.
func (o *Options) applyRMT(batch int) {
	o.Epochs, o.RandAugment, o.AA, o.Interpolation = rmtEpochs, false, rmtAA, rmtInterpolation
	o.AugRepeats, o.RandomErasing, o.SyncBN = rmtRepeats, rmtReprob, true
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
