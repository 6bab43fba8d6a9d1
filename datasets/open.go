package datasets

import (
	"fmt"
	"strings"
)

// Names accepted by Open.
const (
	NameCIFAR10      = "cifar10"
	NameCIFAR100     = "cifar100"
	NameFashionMNIST = "fashion-mnist"
	NameMNIST        = "mnist"
	NameImageFolder  = "imagefolder"
	NameMiniImageNet = "mini-imagenet"
)

// Names lists the data set names Open accepts.
func Names() []string {
	return []string{NameCIFAR10, NameCIFAR100, NameFashionMNIST, NameMNIST, NameImageFolder, NameMiniImageNet}
}

// OpenOptions holds the options of the readers that take any.
type OpenOptions struct {
	// MiniImageNet configures the Mini-ImageNet layouts and pooled split.
	MiniImageNet MiniImageNetOptions
}

// Open opens a split of the named data set (see Names; "cifar-10",
// "cifar-100", "fashion_mnist", "miniimagenet" and "image-folder" are
// accepted too) from dir.
func Open(name, dir string, split Split, opts OpenOptions) (Dataset, error) {
	switch strings.NewReplacer("_", "-").Replace(strings.ToLower(name)) {
	case NameCIFAR10, "cifar-10":
		return OpenCIFAR10(dir, split)
	case NameCIFAR100, "cifar-100":
		return OpenCIFAR100(dir, split)
	case NameFashionMNIST, "fashionmnist":
		return OpenFashionMNIST(dir, split)
	case NameMNIST:
		return OpenMNIST(dir, split)
	case NameImageFolder, "image-folder":
		return OpenImageFolder(dir, split)
	case NameMiniImageNet, "miniimagenet":
		return OpenMiniImageNet(dir, split, opts.MiniImageNet)
	}
	return nil, fmt.Errorf("unknown data set %q: want one of %s", name, strings.Join(Names(), ", "))
}

// NormalizationFor returns the normalization constants of MODEL.md section
// 8 for a data set name: CIFAR-10's, CIFAR-100's (CIFAR100Mean,
// CIFAR100Std), Fashion-MNIST's or MNIST's (grayscale, replicated to 3
// channels), and ImageNet's for everything else.
func NormalizationFor(name string) Normalize {
	switch strings.NewReplacer("_", "-").Replace(strings.ToLower(name)) {
	case NameCIFAR10, "cifar-10":
		return Normalize{Mean: CIFAR10Mean, Std: CIFAR10Std}
	case NameCIFAR100, "cifar-100":
		return Normalize{Mean: CIFAR100Mean, Std: CIFAR100Std}
	case NameFashionMNIST, "fashionmnist":
		return GrayNormalize(FashionMNISTMean, FashionMNISTStd)
	case NameMNIST:
		return GrayNormalize(MNISTMean, MNISTStd)
	}
	return Normalize{Mean: ImageNetMean, Std: ImageNetStd}
}
