package datasets

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/gsrmt/gsrmt/internal/testutil"
)

// classColor is the colour of generated image k of class c.
func classColor(c, k int) color.NRGBA {
	return color.NRGBA{R: uint8(40 * c), G: uint8(10 * k), B: 77, A: 255}
}

// writeClassTree writes root/<class>/<k>.png for counts[c] images of each
// class and returns the class names.
func writeClassTree(t *testing.T, root string, classes []string, counts []int) {
	t.Helper()
	for c, name := range classes {
		dir := filepath.Join(root, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for k := 0; k < counts[c]; k++ {
			p := filepath.Join(dir, fmt.Sprintf("img_%03d.png", k))
			if err := os.WriteFile(p, solidPNG(t, 5, 4, classColor(c, k)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestImageFolder(t *testing.T) {
	root := t.TempDir()
	classes := []string{"cat", "dog", "emu"}
	writeClassTree(t, filepath.Join(root, "train"), classes, []int{3, 2, 4})
	writeClassTree(t, filepath.Join(root, "test"), classes[:2], []int{1, 2}) // emu absent from test
	// Non-image files and hidden files are ignored.
	writeFiles(t, root, map[string][]byte{"train/cat/notes.txt": []byte("x"), "train/dog/.hidden.png": []byte("x")})

	ds, err := OpenImageFolder(root, Train)
	if err != nil {
		t.Fatal(err)
	}
	if ds.Len() != 9 || strings.Join(ds.Classes(), ",") != "cat,dog,emu" {
		t.Fatalf("train: %d images, classes %v", ds.Len(), ds.Classes())
	}
	img := &Image{}
	for i, want := range []struct{ c, k int }{{0, 0}, {0, 1}, {0, 2}, {1, 0}, {1, 1}, {2, 0}, {2, 1}, {2, 2}, {2, 3}} {
		if ds.Label(i) != want.c {
			t.Fatalf("label %d = %d, want %d", i, ds.Label(i), want.c)
		}
		if err := ds.Load(i, img); err != nil {
			t.Fatal(err)
		}
		col := classColor(want.c, want.k)
		if img.Pix[0] != col.R || img.Pix[1] != col.G || img.Pix[2] != col.B || img.Width != 5 || img.Height != 4 {
			t.Fatalf("image %d: %dx%d %v, want colour %v", i, img.Width, img.Height, img.Pix[:3], col)
		}
	}
	test, err := OpenImageFolder(root, Test)
	if err != nil {
		t.Fatal(err)
	}
	if test.Len() != 3 || len(test.Classes()) != 3 || test.Label(2) != 1 {
		t.Fatalf("test: %d images, %d classes", test.Len(), len(test.Classes()))
	}
	if _, err := OpenImageFolder(root, Val); err == nil || !strings.Contains(err.Error(), "val") {
		t.Fatalf("missing val: %v", err)
	}
}

func TestImageFolderBadInput(t *testing.T) {
	t.Run("empty class", func(t *testing.T) {
		root := t.TempDir()
		writeClassTree(t, filepath.Join(root, "train"), []string{"a", "b"}, []int{2, 0})
		_, err := OpenImageFolder(root, Train)
		if err == nil || !strings.Contains(err.Error(), filepath.Join(root, "train", "b")) || !strings.Contains(err.Error(), "no JPEG or PNG") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("unknown test class", func(t *testing.T) {
		root := t.TempDir()
		writeClassTree(t, filepath.Join(root, "train"), []string{"a"}, []int{1})
		writeClassTree(t, filepath.Join(root, "test"), []string{"a", "zebra"}, []int{1, 1})
		_, err := OpenImageFolder(root, Test)
		if err == nil || !strings.Contains(err.Error(), "zebra") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("corrupt image", func(t *testing.T) {
		root := t.TempDir()
		writeClassTree(t, filepath.Join(root, "train"), []string{"a"}, []int{2})
		bad := filepath.Join(root, "train", "a", "img_001.png")
		data, _ := os.ReadFile(bad)
		if err := os.WriteFile(bad, data[:len(data)/2], 0o644); err != nil {
			t.Fatal(err)
		}
		ds, err := OpenImageFolder(root, Train)
		if err != nil {
			t.Fatal(err)
		}
		if err := ds.Load(0, &Image{}); err != nil {
			t.Fatal(err)
		}
		err = ds.Load(1, &Image{})
		if err == nil || !strings.Contains(err.Error(), bad) {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("label out of range", func(t *testing.T) {
		_, err := NewFileDataset("test set", []string{"a"}, []string{"x.png"}, []int{1})
		if err == nil || !strings.Contains(err.Error(), "x.png") || !strings.Contains(err.Error(), "label 1") {
			t.Fatalf("error %v", err)
		}
	})
}

// TestCIFAR10RealJPEGs reads the real CIFAR-10 JPEGs through ImageFolder:
// counts and the per-channel train means (0.4913, 0.4821, 0.4465).
func TestCIFAR10RealJPEGs(t *testing.T) {
	root := testutil.SharedCIFAR10(t)
	test, err := OpenImageFolder(root, Test)
	if err != nil {
		t.Fatal(err)
	}
	if test.Len() != 10000 || strings.Join(test.Classes(), ",") != strings.Join(CIFAR10Classes, ",") {
		t.Fatalf("test: %d images, classes %v", test.Len(), test.Classes())
	}
	train, err := OpenImageFolder(root, Train)
	if err != nil {
		t.Fatal(err)
	}
	if train.Len() != 50000 {
		t.Fatalf("train: %d images", train.Len())
	}
	var hist [10]int
	for i := 0; i < train.Len(); i++ {
		hist[train.Label(i)]++
	}
	for c, n := range hist {
		if n != 5000 {
			t.Fatalf("class %d: %d train images", c, n)
		}
	}
	if testing.Short() {
		t.Skip("decoding 50,000 JPEGs skipped in -short mode")
	}
	// Decode every train image on two goroutines.
	const workers = 2
	var sums [workers][3]float64
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			img := &Image{}
			for i := w; i < train.Len(); i += workers {
				if err := train.Load(i, img); err != nil {
					errs[w] = err
					return
				}
				if img.Width != 32 || img.Height != 32 {
					errs[w] = fmt.Errorf("%s is %dx%d", train.File(i), img.Width, img.Height)
					return
				}
				var s [3]int
				for p := 0; p < len(img.Pix); p += 3 {
					s[0] += int(img.Pix[p])
					s[1] += int(img.Pix[p+1])
					s[2] += int(img.Pix[p+2])
				}
				for c := range s {
					sums[w][c] += float64(s[c])
				}
			}
		}(w)
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	want := [3]float64{0.4913, 0.4821, 0.4465}
	n := float64(train.Len() * 32 * 32 * 255)
	var mean [3]float64
	for c := range mean {
		mean[c] = (sums[0][c] + sums[1][c]) / n
	}
	t.Logf("CIFAR-10 JPEG train means %.4f %.4f %.4f (libjpeg-turbo %v)", mean[0], mean[1], mean[2], TurboJPEGAvailable())
	for c := range mean {
		if math.Abs(mean[c]-want[c]) > 1e-3 {
			t.Fatalf("channel %d mean %.4f, want %.4f", c, mean[c], want[c])
		}
	}
}

// TestImageFolderRecursive: as in torchvision, a class folder's images are
// collected from its sub-folders too (symbolic links followed), in the
// order of sorted(os.walk(class_dir, followlinks=True)): folders sorted by
// path, so "sub-2" comes before "sub/deeper", and files by name.
func TestImageFolderRecursive(t *testing.T) {
	root := t.TempDir()
	png := solidPNG(t, 3, 2, classColor(1, 1))
	writeFiles(t, root, map[string][]byte{
		"train/a/z.png":             png,
		"train/a/b.png":             png,
		"train/a/notes.txt":         []byte("x"),
		"train/a/sub/x.png":         png,
		"train/a/sub-2/y.jpeg":      png,
		"train/a/sub/deeper/w.png":  png,
		"train/a/.hidden/h.png":     png,
		"train/b/only/in/sub/c.png": png,
		"elsewhere/e.png":           png,
		"test/a/t.png":              png,
		"test/b/t.png":              png,
	})
	if err := os.Symlink(filepath.Join(root, "elsewhere"), filepath.Join(root, "train", "a", "link")); err != nil {
		t.Fatal(err)
	}
	ds, err := OpenImageFolder(root, Train)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"a/b.png", "a/z.png", "a/link/e.png", "a/sub/x.png", "a/sub-2/y.jpeg", "a/sub/deeper/w.png", "b/only/in/sub/c.png"}
	var got []string
	for i := 0; i < ds.Len(); i++ {
		rel, _ := filepath.Rel(filepath.Join(root, "train"), ds.File(i))
		got = append(got, rel)
		if wantLabel := int(rel[0] - 'a'); ds.Label(i) != wantLabel {
			t.Errorf("%s: label %d, want %d", rel, ds.Label(i), wantLabel)
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("files\n%v\nwant\n%v", got, want)
	}
	if err := ds.Load(4, &Image{}); err != nil {
		t.Fatal(err)
	}

	// A symbolic link back up the tree is an error, not an endless walk.
	if err := os.Symlink("..", filepath.Join(root, "train", "b", "only", "up")); err != nil {
		t.Fatal(err)
	}
	_, err = OpenImageFolder(root, Train)
	if err == nil || !strings.Contains(err.Error(), filepath.Join(root, "train", "b", "only", "up")) || !strings.Contains(err.Error(), "loop") {
		t.Fatalf("loop: %v", err)
	}
}
