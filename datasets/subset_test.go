package datasets

import (
	"path/filepath"
	"strings"
	"testing"
)

// A subset serves the chosen samples in order, with the parent's classes
// and labels, keeps region decoding for a FileDataset, and refuses
// positions outside the parent.
func TestSubset(t *testing.T) {
	root := t.TempDir()
	classes := []string{"cat", "dog"}
	writeClassTree(t, filepath.Join(root, "train"), classes, []int{3, 2})
	ds, err := OpenImageFolder(root, Train)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := Subset(ds, []int{4, 0, 2})
	if err != nil {
		t.Fatal(err)
	}
	if sub.Len() != 3 || strings.Join(sub.Classes(), ",") != "cat,dog" {
		t.Fatalf("subset: %d images, classes %v", sub.Len(), sub.Classes())
	}
	img := &Image{}
	for i, want := range []struct{ c, k int }{{1, 1}, {0, 0}, {0, 2}} { // positions 4, 0, 2
		if sub.Label(i) != want.c {
			t.Errorf("label %d = %d, want %d", i, sub.Label(i), want.c)
		}
		if err := sub.Load(i, img); err != nil {
			t.Fatal(err)
		}
		if c := classColor(want.c, want.k); img.Pix[0] != c.R || img.Pix[1] != c.G {
			t.Errorf("image %d starts %v, want class %d image %d's colour %v", i, img.Pix[:3], want.c, want.k, c)
		}
	}
	if err := sub.Load(3, img); err == nil {
		t.Error("Load(3) of a 3-image subset succeeded")
	}
	rl, ok := sub.(regionLoader)
	if !ok {
		t.Fatal("a subset of a FileDataset lost region decoding (the loader's fused crop)")
	}
	var file []byte
	whole := func(w, h int) (x, y, cw, ch int) { return 0, 0, w, h }
	if _, _, err := rl.loadRegion(0, img, &file, whole); err != nil {
		t.Fatal(err)
	}
	if c := classColor(1, 1); img.Pix[0] != c.R || img.Pix[1] != c.G {
		t.Errorf("the region of subset image 0 starts %v, want class 1 image 1's colour %v", img.Pix[:3], c)
	}
	if _, err := Subset(ds, []int{0, 5}); err == nil {
		t.Error("a position outside the data set was accepted")
	}
}
