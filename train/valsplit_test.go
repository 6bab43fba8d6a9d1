package train

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gsrmt/gsrmt/datasets"
)

// writeFolder writes an ImageFolder of 8x8 PNGs, each one flat colour
// that names its split, class and index (red: class, green: index, blue:
// split).
func writeFolder(t *testing.T, perSplit map[string]int, classes int) string {
	t.Helper()
	root := t.TempDir()
	for split, n := range perSplit {
		for c := 0; c < classes; c++ {
			dir := filepath.Join(root, split, fmt.Sprintf("c%d", c))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for k := 0; k < n; k++ {
				img := image.NewNRGBA(image.Rect(0, 0, 8, 8))
				blue := uint8(0)
				if split == "test" {
					blue = 200
				}
				for i := 0; i < 64; i++ {
					img.Set(i%8, i/8, color.NRGBA{uint8(40 * c), uint8(10 * k), blue, 255})
				}
				f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%02d.png", k)))
				if err != nil {
					t.Fatal(err)
				}
				if err := png.Encode(f, img); err != nil {
					t.Fatal(err)
				}
				f.Close()
			}
		}
	}
	return root
}

// --val-split on an ImageFolder: the held-out images are HoldOut's
// positions of the training split, disjoint from the images left to train
// on, and they are served with the evaluation transform (here none: the
// same values every epoch, the image's own pixels normalized), never the
// training augmentation (random crop with padding and flip).
func TestValSplitData(t *testing.T) {
	root := writeFolder(t, map[string]int{"train": 6, "test": 2}, 3)
	o := Options{Dataset: datasets.NameImageFolder, DataDir: root, ImgSize: 8, CropPadding: 2, Batch: 4, Workers: 1,
		ValSplit: "0.5", SplitSeed: 3}
	p, err := openData(context.Background(), &o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	full, err := datasets.OpenImageFolder(root, datasets.Train)
	if err != nil {
		t.Fatal(err)
	}
	keep, held, err := HoldOut(datasets.Labels(full), full.Classes(), 0.5, 3)
	if err != nil {
		t.Fatal(err)
	}
	if p.Train.Len() != 9 || p.Val.Len() != 9 || p.Test.Len() != 6 || len(held) != 9 {
		t.Fatalf("%d train, %d val, %d test images (HoldOut %d); want 9, 9, 6", p.Train.Len(), p.Val.Len(), p.Test.Len(), len(held))
	}
	// Each image's colour identifies it: the splits hold HoldOut's images.
	colour := func(ds datasets.Dataset, i int) [3]uint8 {
		img, err := datasets.LoadImage(ds, i)
		if err != nil {
			t.Fatal(err)
		}
		return [3]uint8{img.Pix[0], img.Pix[1], img.Pix[2]}
	}
	seen := map[[3]uint8]string{}
	for _, s := range []struct {
		name string
		ds   datasets.Dataset
		pos  []int
	}{{"train", p.Train, keep}, {"val", p.Val, held}} {
		for i, pos := range s.pos {
			c := colour(s.ds, i)
			if c != colour(full, pos) || s.ds.Label(i) != full.Label(pos) {
				t.Errorf("%s image %d is %v (label %d), want training image %d", s.name, i, c, s.ds.Label(i), pos)
			}
			if prev, dup := seen[c]; dup {
				t.Errorf("image %v is in %s and %s", c, prev, s.name)
			}
			seen[c] = s.name
		}
	}
	l, err := p.evalLoader(&o, p.Val, 4, datasets.Shard{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var epochs [2][]float32
	for e := range epochs {
		it := l.Epoch(context.Background(), e)
		for {
			b, err := it.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			epochs[e] = append(epochs[e], b.Float[:b.N*b.C*b.H*b.W]...)
			b.Release()
		}
		it.Close()
	}
	var want []float32
	for i := 0; i < p.Val.Len(); i++ {
		img, _ := datasets.LoadImage(p.Val, i)
		want = append(want, p.Normalize.Apply(img, make([]float32, p.Normalize.Len(img)))...)
	}
	if !slices.Equal(epochs[0], want) || !slices.Equal(epochs[1], want) {
		t.Error("the validation batches are not the held-out images' own pixels, normalized, in every epoch")
	}
}
