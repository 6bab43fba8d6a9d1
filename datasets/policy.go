package datasets

import "fmt"

// This file is the data-set policy of a run: which folder a data set is read
// from by default, at which side its images are native, and which
// transforms training and evaluation apply at a given side. A data set whose
// images are already side x side (CIFAR-10 at 32, Fashion-MNIST and MNIST at
// 28, an ImageFolder of such images) gets DATA.md's small-image recipe:
// random crop with zero padding and horizontal flip for training, nothing for
// evaluation. Any other gets the 224 px recipe: RandomResizedCrop and
// horizontal flip for training, resize and center crop for evaluation.

// NativeSide is the side in pixels of every image of a data set whose images
// all have one size (CIFAR-10 32, Fashion-MNIST and MNIST 28), and 0 for the
// others (Mini-ImageNet, ImageFolder).
func NativeSide(name string) int {
	switch name {
	case NameCIFAR10:
		return 32
	case NameFashionMNIST, NameMNIST:
		return 28
	}
	return 0
}

// DefaultDir is the folder a data set is read from when none is given:
// DefaultFashionMNISTDir for Fashion-MNIST, "" (none) for the others.
func DefaultDir(name string) string {
	if name == NameFashionMNIST {
		return DefaultFashionMNISTDir
	}
	return ""
}

// IsNativeSide reports whether the images of ds, the named data set, are
// side x side: by NativeSide when the data set has one, else by its first
// image (a folder of CIFAR-10 images at 32 px, say).
func IsNativeSide(name string, ds Dataset, side int) bool {
	if n := NativeSide(name); n != 0 {
		return n == side
	}
	if ds.Len() == 0 {
		return false
	}
	img := &Image{}
	return ds.Load(0, img) == nil && img.Width == side && img.Height == side
}

// TrainTransformFor is the training augmentation of the named data set ds
// at side: at its native side (see IsNativeSide) a random crop of side with
// cropPadding px zero padding (none when cropPadding is 0) and a horizontal
// flip with probability 0.5, else TrainTransform(side); both followed by
// DefaultRandAugment when randAugment is set.
func TrainTransformFor(name string, ds Dataset, side, cropPadding int, randAugment bool) Compose {
	t, _ := TrainTransformWith(name, ds, side, Augment{CropPadding: cropPadding, RandAugment: randAugment}) // no AA: no error
	return t
}

// EvalTransformFor is the evaluation transform of the named data set ds at
// side: nil (none) at its native side (see IsNativeSide), else
// EvalTransform(side).
func EvalTransformFor(name string, ds Dataset, side int) Transform {
	if IsNativeSide(name, ds, side) {
		return nil
	}
	return EvalTransform(side)
}

// PrepareForModel turns one image into a model's CHW float input at side as
// CLI.md's predict says: ModelInput{side} (the image as is at side x side,
// else resized and center-cropped), then scaled to [0, 1] and normalized
// with norm. img may be modified.
func PrepareForModel(img *Image, side int, norm Normalize) []float32 {
	img = ModelInput{Side: side}.Apply(img, nil)
	return norm.Apply(img, make([]float32, norm.Len(img)))
}

// Describe describes a transform in words, as config.json records it:
// "none" for nil, its String method when it has one, else its Go type.
func Describe(t Transform) string {
	switch t := t.(type) {
	case nil:
		return "none"
	case fmt.Stringer:
		return t.String()
	}
	return fmt.Sprintf("%T", t)
}
