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
	if fit, small := smallImageFit(imageSide(name, ds), side); !small {
		t = Compose{RandomResizedCrop{Size: side, Interpolation: a.Interpolation}}
	} else {
		if fit != nil {
			t = append(t, fit)
		}
		if a.CropPadding > 0 {
			t = append(t, RandomCrop{Size: side, Padding: a.CropPadding})
		}
	}
	t = append(t, HorizontalFlip{P: 0.5})
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

// EvalTransformWith is the evaluation transform of the named data set ds at
// side: in the small-image range (see smallImageFit) the images brought to
// side (nil, none, at the native side), else the shorter side resized to
// floor(side / 0.875) with interp and a center crop of side.
func EvalTransformWith(name string, ds Dataset, side int, interp Interpolation) Transform {
	if fit, ok := smallImageFit(imageSide(name, ds), side); ok {
		return fit
	}
	return Compose{ResizeShorter{Size: evalResizeSide(side), Interpolation: interp}, CenterCrop{Size: side}}
}
