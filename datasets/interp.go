package datasets

import (
	"fmt"
	"strings"
)

// Interpolation is the resampling filter of a resize or of a geometric
// augmentation, as Pillow implements it: resizes filter with antialiasing
// (the support widens by the reduction factor, Pillow's Image.resize);
// affine transforms sample the filter at the mapped point
// (Pillow's Image.transform).
type Interpolation int

// The filters. The zero value is Bilinear, torchvision's default.
const (
	Bilinear Interpolation = iota // triangle filter, support 1
	Bicubic                       // Keys cubic with a = -0.5, support 2
)

// Interpolations are the accepted names of ParseInterpolation.
var Interpolations = []string{"bilinear", "bicubic"}

// ParseInterpolation parses "bilinear" or "bicubic"; "" is bilinear.
func ParseInterpolation(s string) (Interpolation, error) {
	switch strings.ToLower(s) {
	case "", "bilinear":
		return Bilinear, nil
	case "bicubic":
		return Bicubic, nil
	}
	return Bilinear, fmt.Errorf("interpolation %q: want one of %s", s, strings.Join(Interpolations, ", "))
}

// String returns the filter's name, "bilinear" or "bicubic".
func (i Interpolation) String() string {
	if i == Bicubic {
		return "bicubic"
	}
	return "bilinear"
}

// support is the filter's half-width at scale 1 (Pillow's filter.support).
func (i Interpolation) support() float64 {
	if i == Bicubic {
		return 2
	}
	return 1
}

// weight is the filter at x (Pillow's bilinear_filter and bicubic_filter
// of Resample.c).
func (i Interpolation) weight(x float64) float64 {
	if x < 0 {
		x = -x
	}
	if i == Bicubic {
		const a = -0.5
		switch {
		case x < 1:
			return ((a+2)*x-(a+3))*x*x + 1
		case x < 2:
			return (((x-5)*x+8)*x - 4) * a
		}
		return 0
	}
	if x < 1 {
		return 1 - x
	}
	return 0
}
