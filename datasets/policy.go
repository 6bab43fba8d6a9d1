package datasets

import (
	"context"
	"fmt"
)

// This file is the data-set policy of a run: which folder a data set is read
// from by default, which data sets --download fetches, at which side its
// images are native, and which transforms training and evaluation apply at
// a given side. A data set whose images are already side x side (CIFAR-10 and
// CIFAR-100 at 32, Fashion-MNIST and MNIST at 28, an ImageFolder of such
// images) gets DATA.md's small-image recipe: random crop with zero padding
// and horizontal flip for training, nothing for evaluation. Any other gets
// the 224 px recipe: RandomResizedCrop and horizontal flip for training,
// resize and center crop for evaluation.

// NativeSide is the side in pixels of every image of a data set whose images
// all have one size (CIFAR-10 and CIFAR-100 32, Fashion-MNIST and MNIST 28),
// and 0 for the others (Mini-ImageNet, ImageFolder).
func NativeSide(name string) int {
	switch name {
	case NameCIFAR10, NameCIFAR100:
		return CIFARSide
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

// Downloadable reports whether Download can fetch the named data set.
func Downloadable(name string) bool { return name == NameCIFAR10 || name == NameCIFAR100 }

// Download makes sure dir holds the named data set, fetching, verifying and
// extracting its official archive when it is missing, and returns the folder
// to open: CIFAR-10's binary distribution (DownloadCIFAR10) and CIFAR-100's
// python one (DownloadCIFAR100; torchvision's CIFAR100 fetches that one).
// Other data sets are an error (see Downloadable).
func Download(ctx context.Context, name, dir string, opts DownloadOptions) (string, error) {
	switch name {
	case NameCIFAR10:
		return DownloadCIFAR10(ctx, dir, CIFARBinary, opts)
	case NameCIFAR100:
		return DownloadCIFAR100(ctx, dir, CIFARPython, opts)
	}
	return "", fmt.Errorf("%s cannot be downloaded: only %s and %s can", name, NameCIFAR10, NameCIFAR100)
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
	if !IsNativeSide(name, ds, side) {
		return TrainTransform(side, randAugment)
	}
	t := Compose{HorizontalFlip{P: 0.5}}
	if cropPadding > 0 {
		t = Compose{RandomCrop{Size: side, Padding: cropPadding}, HorizontalFlip{P: 0.5}}
	}
	if randAugment {
		t = append(t, DefaultRandAugment)
	}
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
// CLI.md's predict says: an image of exactly side x side is used as is; any
// other goes through EvalTransform(side) (shorter side resized to
// side / EvalCropPct, then center-cropped); then it is scaled to [0, 1] and
// normalized with norm. img may be modified.
func PrepareForModel(img *Image, side int, norm Normalize) []float32 {
	if img.Width != side || img.Height != side {
		img = EvalTransform(side).Apply(img, nil)
	}
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
