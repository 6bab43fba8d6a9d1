package datasets

import (
	"context"
	"fmt"
)

// This file is the data-set policy of a run: which folder a data set is read
// from by default, which data sets --download fetches, at which side a data
// set's images are native, and which transforms training and evaluation apply
// at a given side. A model side from the images' native side up to
// SmallImageMaxScale times it (CIFAR at 32 or 48, Fashion-MNIST and MNIST at
// 28 or 32, an ImageFolder of such images) gets DATA.md's small-image recipe:
// the images brought to the side (zero padding or resizing, see
// smallImageFit), then a random crop with zero padding and a horizontal flip
// for training, nothing more for evaluation. Any other side gets the 224 px
// recipe: RandomResizedCrop and horizontal flip for training, resize and
// center crop for evaluation.

// SmallImageMaxScale is the largest model side, as a multiple of a data set's
// native side, that trains with the small-image recipe (pad or resize, random
// crop with padding, flip) as CIFAR recipes do. Above it the images are
// upsampled so much that the 224 px recipe's RandomResizedCrop suits them;
// below it RandomResizedCrop(0.08-1) throws away most of an image that has no
// pixels to spare: Fashion-MNIST at 32 px reached 80.5 % test top-1 after
// one epoch with it, against 88 % padded to 32 with a random crop (issue 15).
const SmallImageMaxScale = 1.5

// smallImageMaxPadBorder is the widest border, in pixels on each side, that
// the small-image recipe adds by zero padding (Fashion-MNIST's 28 px to 32
// adds 2, as LeNet's 32 px MNIST input did; the crop's own padding is 4). A
// larger growth resizes instead, so that the image fills the model's input.
const smallImageMaxPadBorder = 4

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

// imageSide is the native side of the images of ds, the named data set: by
// NativeSide when the data set has one, else its first image's side when that
// image is square (a folder of CIFAR-10 images at 32 px, say), else 0.
func imageSide(name string, ds Dataset) int {
	if n := NativeSide(name); n != 0 {
		return n
	}
	if ds.Len() == 0 {
		return 0
	}
	img := &Image{}
	if ds.Load(0, img) != nil || img.Width != img.Height {
		return 0
	}
	return img.Width
}

// smallImageFit is the one rule of the small-image recipe: ok reports
// whether images of the native side train at side with it (native <= side
// <= SmallImageMaxScale x native), and fit is the transform that brings them
// to side: none at the native side, zero padding (PadTo) when it adds at most
// smallImageMaxPadBorder pixels on each side, else a bilinear ResizeTo.
func smallImageFit(native, side int) (fit Transform, ok bool) {
	switch {
	case native <= 0 || side < native || float64(side) > SmallImageMaxScale*float64(native):
		return nil, false
	case side == native:
		return nil, true
	case side-native <= 2*smallImageMaxPadBorder:
		return PadTo{Size: side}, true
	}
	return ResizeTo{Size: side}, true
}

// TrainTransformFor is the training augmentation of the named data set ds
// at side: TrainTransformWith without timm's RandAugment, bilinear.
func TrainTransformFor(name string, ds Dataset, side, cropPadding int, randAugment bool) Compose {
	t, _ := TrainTransformWith(name, ds, side, Augment{CropPadding: cropPadding, RandAugment: randAugment}) // no AA: no error
	return t
}

// EvalTransformFor is the evaluation transform of the named data set ds at
// side: EvalTransformWith, bilinear.
func EvalTransformFor(name string, ds Dataset, side int) Transform {
	return EvalTransformWith(name, ds, side, Bilinear)
}

// TransformRule says in words which recipe TrainTransformFor and
// EvalTransformFor pick for the named data set ds at side and why, as
// config.json records it.
func TransformRule(name string, ds Dataset, side int) string {
	native := imageSide(name, ds)
	if _, ok := smallImageFit(native, side); ok {
		return fmt.Sprintf("small-image: side %d within 1-%gx the native %d px (pad or resize, random crop with padding, flip)", side, SmallImageMaxScale, native)
	}
	if native == 0 {
		return fmt.Sprintf("224 px recipe: images of mixed or non-square sizes (RandomResizedCrop at %d, flip)", side)
	}
	return fmt.Sprintf("224 px recipe: side %d outside 1-%gx the native %d px (RandomResizedCrop, flip)", side, SmallImageMaxScale, native)
}

// PrepareForModel turns one image into a model's CHW float input at side as
// CLI.md's predict says, as ModelInput{side} applies it, then scaled to
// [0, 1] and normalized with norm. img may be modified.
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
