package datasets

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
)

// This file is what inference (gsrmt-cli predict) needs from the data
// code: the transform a model's input gets and the image files of a folder.

// ModelInput is the transform of an image given to a model of Side px at
// inference, as CLI.md's predict says: an image of exactly Side x Side is
// used as is; a square image whose side is in the small-image range of Side
// (see smallImageFit, its own side taken as native) is padded or resized to
// Side as evaluation does; any other goes through EvalTransform(Side)
// (shorter side resized to Side / EvalCropPct, then center-cropped). It
// draws nothing from rng.
type ModelInput struct{ Side int }

// Apply returns img itself when it is Side x Side, else img brought to
// Side as the type's comment says.
func (t ModelInput) Apply(img *Image, rng *rand.Rand) *Image {
	if img.Width == t.Side && img.Height == t.Side {
		return img
	}
	if fit, ok := smallImageFit(img.Width, t.Side); ok && img.Width == img.Height {
		return fit.Apply(img, rng)
	}
	return EvalTransform(t.Side).Apply(img, rng)
}

// String describes the transform.
func (t ModelInput) String() string {
	return fmt.Sprintf("as is at %dx%d; a square image of %d-%d px padded or resized to it; else %s", t.Side, t.Side,
		int(math.Ceil(float64(t.Side)/SmallImageMaxScale)), t.Side, Describe(EvalTransform(t.Side)))
}

// IsImageFile reports whether a file name (with or without its folder) is
// one ImageFolder reads: a .jpg, .jpeg or .png extension in any case, and
// not hidden (a name starting with ".").
func IsImageFile(name string) bool { return isImageName(filepath.Base(name)) }

// ListImageFiles returns the image files (IsImageFile) in dir and in every
// folder below it, joined to dir, in ImageFolder's order: folders sorted by
// path, each folder's images by name; hidden files and folders are
// skipped, symbolic links to folders followed (a loop of them is an error).
func ListImageFiles(dir string) ([]string, error) {
	rel, err := listImages(dir)
	if err != nil {
		return nil, err
	}
	files := make([]string, len(rel))
	for i, r := range rel {
		files[i] = filepath.Join(dir, r)
	}
	return files, nil
}
