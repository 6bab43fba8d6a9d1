package datasets

import (
	"math/rand/v2"
	"reflect"
	"testing"
)

// TestTransformPolicy checks the transforms chosen per data set and side and
// their descriptions, which config.json records as train_augment and
// eval_transform (the strings of earlier runs).
func TestTransformPolicy(t *testing.T) {
	small, large := newMemDataset(2, 32, 32), newMemDataset(2, 300, 200)
	cases := []struct {
		name         string
		ds           Dataset
		side, pad    int
		randAugment  bool
		train, eval  string
		wantEvalNone bool
	}{
		{NameCIFAR10, small, 32, 4, false, "random crop 32 with 4 px zero padding, horizontal flip 0.5", "none", true},
		{NameFashionMNIST, small, 28, 0, false, "horizontal flip 0.5", "none", true},
		{NameFashionMNIST, small, 28, 0, true, "horizontal flip 0.5, RandAugment(2, 9)", "none", true},
		{NameImageFolder, small, 32, 4, true, "random crop 32 with 4 px zero padding, horizontal flip 0.5, RandAugment(2, 9)", "none", true},
		{NameImageFolder, large, 224, 4, false, "RandomResizedCrop 224 (scale 0.08-1, ratio 3/4-4/3), horizontal flip 0.5", "resize shorter side to 256, center crop 224", false},
		{NameCIFAR10, small, 224, 4, true, "RandomResizedCrop 224 (scale 0.08-1, ratio 3/4-4/3), horizontal flip 0.5, RandAugment(2, 9)", "resize shorter side to 256, center crop 224", false},
		{NameMiniImageNet, large, 84, 0, false, "RandomResizedCrop 84 (scale 0.08-1, ratio 3/4-4/3), horizontal flip 0.5", "resize shorter side to 96, center crop 84", false},
	}
	for _, c := range cases {
		tr := TrainTransformFor(c.name, c.ds, c.side, c.pad, c.randAugment)
		ev := EvalTransformFor(c.name, c.ds, c.side)
		if got := Describe(tr); got != c.train {
			t.Errorf("%s %d: train %q, want %q", c.name, c.side, got, c.train)
		}
		if got := Describe(ev); got != c.eval {
			t.Errorf("%s %d: eval %q, want %q", c.name, c.side, got, c.eval)
		}
		if (ev == nil) != c.wantEvalNone {
			t.Errorf("%s %d: eval transform %#v", c.name, c.side, ev)
		}
	}
	if tr := TrainTransformFor(NameImageFolder, large, 224, 4, true); !reflect.DeepEqual(tr, TrainTransform(224, true)) {
		t.Errorf("224 px training transform %#v, want TrainTransform's", tr)
	}
	if tr := TrainTransformFor(NameCIFAR10, small, 32, 4, false); !reflect.DeepEqual(tr, CIFARTrainTransform()) {
		t.Errorf("32 px training transform %#v, want CIFARTrainTransform's", tr)
	}
}

func TestDescribe(t *testing.T) {
	for _, c := range []struct {
		t    Transform
		want string
	}{
		{nil, "none"},
		{Compose{}, "none"},
		{Compose{nil, CenterCrop{Size: 8}}, "center crop 8"},
		{RandomCrop{Size: 28}, "random crop 28"},
		{RandomResizedCrop{Size: 64, Scale: [2]float64{0.25, 1}, Ratio: [2]float64{0.5, 2}}, "RandomResizedCrop 64 (scale 0.25-1, ratio 1/2-2)"},
		{RandomResizedCrop{Size: 64, Ratio: [2]float64{0.3, 3.3}}, "RandomResizedCrop 64 (scale 0.08-1, ratio 3/10-33/10)"},
		{RandAugment{N: 1, M: 5, Bins: 11}, "RandAugment(1, 5, 11 bins)"},
		{TransformFunc(func(img *Image, _ *rand.Rand) *Image { return img }), "datasets.TransformFunc"},
	} {
		if got := Describe(c.t); got != c.want {
			t.Errorf("Describe(%#v) = %q, want %q", c.t, got, c.want)
		}
	}
	if DefaultDir(NameFashionMNIST) != DefaultFashionMNISTDir || DefaultDir(NameCIFAR10) != "" {
		t.Error("DefaultDir")
	}
}

// TestPrepareForModel checks predict's preparation: an image at side is
// used as is, any other goes through EvalTransform.
func TestPrepareForModel(t *testing.T) {
	norm := NormalizationFor(NameCIFAR10)
	img := randomImage(32, 32, 3, 7)
	if got, want := PrepareForModel(img.Clone(), 32, norm), norm.Apply(img, make([]float32, norm.Len(img))); !reflect.DeepEqual(got, want) {
		t.Error("an image at side was changed")
	}
	big := randomImage(50, 40, 3, 8)
	cropped := EvalTransform(32).Apply(big.Clone(), nil)
	if got, want := PrepareForModel(big, 32, norm), norm.Apply(cropped, make([]float32, norm.Len(cropped))); !reflect.DeepEqual(got, want) {
		t.Error("a larger image was not resized and center-cropped as EvalTransform does")
	}
}
