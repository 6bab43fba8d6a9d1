package datasets

import (
	"strings"
	"testing"
)

func TestTrainTransformWith(t *testing.T) {
	ds := newMemDataset(3, 50, 40)
	imagenet := [3]float32{0.485, 0.456, 0.406}
	// timm's img_mean for ImageNet's mean: round(255*m) = 124, 116, 104.
	if f := TimmFill(imagenet); f != [3]uint8{124, 116, 104} {
		t.Errorf("TimmFill(ImageNet) = %v", f)
	}
	tr, err := TrainTransformWith(NameImageFolder, ds, 32, Augment{AA: "rand-m9-mstd0.5-inc1", Interpolation: Bicubic, Mean: imagenet})
	if err != nil {
		t.Fatal(err)
	}
	want := "RandomResizedCrop 32 (scale 0.08-1, ratio 3/4-4/3, bicubic), horizontal flip 0.5, timm RandAugment rand-m9-mstd0.5-inc1 (bicubic, fill 124,116,104)"
	if got := tr.String(); got != want {
		t.Errorf("transform %q, want %q", got, want)
	}
	out := tr.Apply(ds.imgs[0].Clone(), newRNG(1))
	if out.Width != 32 || out.Height != 32 {
		t.Errorf("output %dx%d", out.Width, out.Height)
	}
	// The bilinear default describes the crop as before.
	plain, _ := TrainTransformWith(NameImageFolder, ds, 32, Augment{RandAugment: true})
	if got := plain.String(); got != "RandomResizedCrop 32 (scale 0.08-1, ratio 3/4-4/3), horizontal flip 0.5, RandAugment(2, 9)" {
		t.Errorf("bilinear transform %q", got)
	}
	if _, err := TrainTransformWith(NameImageFolder, ds, 32, Augment{AA: "augmix-m5"}); err == nil || !strings.Contains(err.Error(), `"augmix"`) {
		t.Errorf("augmix: %v", err)
	}
	ev := EvalTransformWith(NameImageFolder, ds, 224, Bicubic)
	if got := Describe(ev); got != "resize shorter side to 256 bicubic, center crop 224" {
		t.Errorf("eval transform %q", got)
	}
	if got := Describe(EvalTransformWith(NameImageFolder, ds, 224, Bilinear)); got != Describe(EvalTransformFor(NameImageFolder, ds, 224)) {
		t.Errorf("bilinear eval transform %q differs from EvalTransformFor", got)
	}
}
