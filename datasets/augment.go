package datasets

import "math"

// Augment holds the training augmentation's options (the train flags
// --crop-padding, --randaugment, --aa and --interpolation).
type Augment struct {
	// CropPadding is the zero padding of the random crop at a data set's
	// native side (0: no crop).
	CropPadding int
	// RandAugment appends torchvision's RandAugment(2, 9) (DefaultRandAugment).
	RandAugment bool
	// AA, when set, appends timm's RandAugment of this policy string
	// (ParseTimmRandAugment), e.g. "rand-m9-mstd0.5-inc1".
	AA string
	// Interpolation of the RandomResizedCrop and of AA's geometric ops.
	Interpolation Interpolation
	// Mean is the normalization mean: AA fills with round(255*mean), as
	// timm's transforms_factory sets img_mean.
	Mean [3]float32
}

// TrainTransformWith is the training augmentation of the named data set ds
// at side (see TrainTransformFor) with the options a: the random crop and
// flip of the data set's policy (RandomResizedCrop with a.Interpolation
// away from its native side), then RandAugment(2, 9) when a.RandAugment is
// set, then timm's RandAugment when a.AA is set. The error names a bad AA.
func TrainTransformWith(name string, ds Dataset, side int, a Augment) (Compose, error) {
	var t Compose
	switch {
	case !IsNativeSide(name, ds, side):
		t = Compose{RandomResizedCrop{Size: side, Interpolation: a.Interpolation}, HorizontalFlip{P: 0.5}}
	case a.CropPadding > 0:
		t = Compose{RandomCrop{Size: side, Padding: a.CropPadding}, HorizontalFlip{P: 0.5}}
	default:
		t = Compose{HorizontalFlip{P: 0.5}}
	}
	if a.RandAugment {
		t = append(t, DefaultRandAugment)
	}
	if a.AA != "" {
		ra, err := ParseTimmRandAugment(a.AA)
		if err != nil {
			return nil, err
		}
		ra.Interpolation, ra.Fill = a.Interpolation, TimmFill(a.Mean)
		t = append(t, ra)
	}
	return t, nil
}

// TimmFill is timm's img_mean for a normalization mean:
// min(255, round(255*mean)) per channel, (124, 116, 104) for ImageNet's.
func TimmFill(mean [3]float32) [3]uint8 {
	var f [3]uint8
	for c, m := range mean {
		f[c] = uint8(min(255, max(0, math.RoundToEven(255*float64(m)))))
	}
	return f
}

// EvalTransformWith is EvalTransformFor with the resize's interpolation:
// nil at the data set's native side, else resize the shorter side to
// floor(side / 0.875) with interp and center crop side.
func EvalTransformWith(name string, ds Dataset, side int, interp Interpolation) Transform {
	if IsNativeSide(name, ds, side) {
		return nil
	}
	return Compose{ResizeShorter{Size: evalResizeSide(side), Interpolation: interp}, CenterCrop{Size: side}}
}
