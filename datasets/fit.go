package datasets

import (
	"fmt"
	"math/rand/v2"
)

// PadTo brings an image to Size x Size about its center without
// resampling: zero padding where it is smaller (torchvision's
// CenterCrop(size) pads the same way), a center crop where it is larger.
// The small-image recipe uses it to grow images a few pixels (Fashion-MNIST's
// 28 px to 32).
type PadTo struct{ Size int }

// Apply pads (or crops) about the center.
func (t PadTo) Apply(img *Image, _ *rand.Rand) *Image {
	return CenterCrop{Size: t.Size}.Apply(img, nil)
}

// String describes the padding, as "zero-pad to 32x32".
func (t PadTo) String() string { return fmt.Sprintf("zero-pad to %dx%d", t.Size, t.Size) }

// ResizeTo resizes an image to Size x Size, bilinear with Pillow-style
// antialiasing (torchvision's Resize((size, size)): a non-square image is
// squashed). The small-image recipe uses it to change the side of square
// images by more than a few pixels (CIFAR's 32 px to 48).
type ResizeTo struct{ Size int }

// Apply resizes.
func (t ResizeTo) Apply(img *Image, _ *rand.Rand) *Image {
	if img.Width == t.Size && img.Height == t.Size {
		return img
	}
	return ResizeBilinear(img, 0, 0, img.Width, img.Height, t.Size, t.Size)
}

// String describes the resize, as "resize to 48x48".
func (t ResizeTo) String() string { return fmt.Sprintf("resize to %dx%d", t.Size, t.Size) }
