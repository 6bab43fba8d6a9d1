package datasets

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
