package datasets

import (
	"fmt"
	"strings"
)

// Split names one part of a data set.
type Split int

// The splits a data set can be opened with.
const (
	Train Split = iota
	Val
	Test
)

// String returns "train", "val" or "test".
func (s Split) String() string {
	switch s {
	case Train:
		return "train"
	case Val:
		return "val"
	case Test:
		return "test"
	}
	return fmt.Sprintf("Split(%d)", int(s))
}

// ParseSplit parses "train", "val" (or "validation") and "test".
func ParseSplit(s string) (Split, error) {
	switch strings.ToLower(s) {
	case "train":
		return Train, nil
	case "val", "validation":
		return Val, nil
	case "test":
		return Test, nil
	}
	return 0, fmt.Errorf("unknown split %q: want train, val or test", s)
}

// Dataset is one split of a labelled image data set. Images are decoded on
// demand by Load; implementations are safe for concurrent use by several
// goroutines once opened.
type Dataset interface {
	// Len returns the number of samples.
	Len() int
	// Classes returns the class names; label i names Classes()[i].
	Classes() []string
	// Label returns the class index of sample i, 0 <= i < Len().
	Label(i int) int
	// Load decodes sample i into dst (8-bit HWC: RGB, or one channel for
	// grayscale data sets), reusing dst.Pix when it is large enough. Errors
	// name the file and record the sample came from.
	Load(i int, dst *Image) error
}

// LoadImage decodes sample i of ds into a new image.
func LoadImage(ds Dataset, i int) (*Image, error) {
	img := &Image{}
	if err := ds.Load(i, img); err != nil {
		return nil, err
	}
	return img, nil
}

// Labels returns the labels of all samples of ds.
func Labels(ds Dataset) []int {
	out := make([]int, ds.Len())
	for i := range out {
		out[i] = ds.Label(i)
	}
	return out
}

// checkIndex returns an error when i is outside [0, n).
func checkIndex(name string, i, n int) error {
	if i < 0 || i >= n {
		return fmt.Errorf("%s: sample %d out of range [0, %d)", name, i, n)
	}
	return nil
}
