package datasets

import "math"

// EvalCropPct is the fraction of the resized image the evaluation center
// crop keeps (224 of 256).
const EvalCropPct = 0.875

// TrainTransform is DATA.md's 224 px training augmentation at the given
// size: RandomResizedCrop (scale 0.08-1, ratio 3/4-4/3, bilinear),
// horizontal flip with probability 0.5, and RandAugment(2, 9) when
// randAugment is set. Normalization and Random Erasing belong to the
// Loader (LoaderConfig.Normalize, LoaderConfig.Erasing).
func TrainTransform(size int, randAugment bool) Compose {
	t := Compose{RandomResizedCrop{Size: size}, HorizontalFlip{P: 0.5}}
	if randAugment {
		t = append(t, DefaultRandAugment)
	}
	return t
}

// EvalTransform is DATA.md's 224 px evaluation transform at the given size:
// resize the shorter side to floor(size / 0.875) (256 for 224), then center
// crop size.
func EvalTransform(size int) Compose {
	return ResizeCenterCrop(evalResizeSide(size), size)
}

// evalResizeSide is the shorter side the evaluation transform resizes to
// before cropping size: floor(size / EvalCropPct).
func evalResizeSide(size int) int { return int(math.Floor(float64(size) / EvalCropPct)) }

// CIFARTrainTransform is DATA.md's 32 px training augmentation: random crop
// 32 with 4 px zero padding and horizontal flip with probability 0.5.
// Evaluation at 32 px uses no transform.
func CIFARTrainTransform() Compose {
	return Compose{RandomCrop{Size: CIFARSide, Padding: 4}, HorizontalFlip{P: 0.5}}
}

// DefaultErasing is Random Erasing with DATA.md's probability 0.25 and
// torchvision's defaults otherwise (scale 0.02-0.33, ratio 0.3-3.3, zeros).
func DefaultErasing() *RandomErasing { return &RandomErasing{P: 0.25} }
