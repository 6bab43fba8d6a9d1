package datasets

import (
	"image"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// plainDataset hides a data set's region decoding, so that a Loader over it
// decodes whole images and applies the transform as is.
type plainDataset struct{ Dataset }

// TestLoaderFusedCrop checks that fusing a leading RandomResizedCrop with
// decoding (FileDataset of JPEGs) gives exactly the batches of the plain
// path: JPEGs of several sizes (colour and gray), PNGs, with RandAugment
// and without, float32 and uint8 output.
func TestLoaderFusedCrop(t *testing.T) {
	root := t.TempDir()
	var k int
	for c, class := range []string{"a", "b"} {
		dir := filepath.Join(root, "train", class)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, size := range [][2]int{{96, 72}, {50, 81}, {130, 41}, {33, 33}, {200, 150}} {
			k++
			src := noisyRGBA(size[0], size[1], uint64(k))
			var data []byte
			name := filepath.Join(dir, string(rune('0'+i)))
			switch {
			case i == 3:
				data, name = encodePNG(t, src), name+".png"
			case c == 1 && i == 1:
				g := image.NewGray(src.Bounds())
				copy(g.Pix, src.Pix)
				data, name = encodeJPEG(t, g, 90), name+".jpg"
			default:
				data, name = encodeJPEG(t, src, 85), name+".jpg"
			}
			if err := os.WriteFile(name, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	ds, err := OpenImageFolder(root, Train)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		tf   Transform
		out  Output
	}{
		{"train", TrainTransform(24, false), OutputFloat32},
		{"randaugment", TrainTransform(24, true), OutputUint8},
		{"crop only", &RandomResizedCrop{Size: 40, Scale: [2]float64{0.5, 1}}, OutputUint8},
		{"nested", Compose{nil, Compose{RandomResizedCrop{Size: 17}, nil}, HorizontalFlip{P: 0.5}}, OutputFloat32},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := LoaderConfig{BatchSize: 3, Workers: 2, Shuffle: true, Seed: 9, Transform: tc.tf, Output: tc.out,
				Normalize: Normalize{Mean: ImageNetMean, Std: ImageNetStd}}
			fused, err := NewLoader(ds, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if fused.regions == nil {
				t.Fatal("the loader does not fuse the crop")
			}
			plain, err := NewLoader(plainDataset{ds}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if plain.regions != nil {
				t.Fatal("plain loader fuses")
			}
			for epoch := 0; epoch < 3; epoch++ {
				if got, want := collect(t, fused, epoch), collect(t, plain, epoch); !reflect.DeepEqual(got, want) {
					t.Fatalf("epoch %d: fused batches differ from the plain ones", epoch)
				}
			}
		})
	}
}

// TestLoaderFusedCropErrors checks that a fused loader reports and skips
// missing and corrupt files as the plain one does.
func TestLoaderFusedCropErrors(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "train", "a")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	good := encodeJPEG(t, noisyRGBA(64, 48, 1), 90)
	for i, data := range [][]byte{good, good[:len(good)/2], good, []byte("\xff\xd8\xffjunk"), good} {
		if err := os.WriteFile(filepath.Join(dir, string(rune('0'+i))+".jpg"), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := OpenImageFolder(root, Train)
	if err != nil {
		t.Fatal(err)
	}
	// Crops at the top of the image: the truncated file must still fail.
	cfg := LoaderConfig{BatchSize: 5, Workers: 1, Output: OutputUint8,
		Transform: RandomResizedCrop{Size: 8, Scale: [2]float64{0.01, 0.02}}}
	for _, d := range []Dataset{ds, plainDataset{ds}} {
		l, _ := NewLoader(d, cfg)
		it := l.Epoch(t.Context(), 0)
		_, err := it.Next()
		it.Close()
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "1.jpg")) ||
			TurboJPEGAvailable() && !strings.Contains(err.Error(), "truncated") {
			t.Fatalf("%T: error %v", d, err)
		}
	}
	cfg.SkipBadImages = true
	for _, d := range []Dataset{ds, plainDataset{ds}} {
		l, _ := NewLoader(d, cfg)
		bs := collect(t, l, 0)
		if len(bs) != 1 || bs[0].N != 3 || bs[0].Skipped != 2 {
			t.Fatalf("%T: %d batches", d, len(bs))
		}
	}
	if err := os.Remove(filepath.Join(dir, "2.jpg")); err != nil {
		t.Fatal(err)
	}
	cfg.SkipBadImages = false
	l, _ := NewLoader(ds, cfg)
	var loadErr error
	for i := 0; i < ds.Len(); i++ {
		if err := ds.Load(i, &Image{}); err != nil && strings.Contains(err.Error(), "2.jpg") {
			loadErr = err
		}
	}
	it := l.Epoch(t.Context(), 0)
	defer it.Close()
	if _, err := it.Next(); err == nil || !strings.Contains(err.Error(), "1.jpg") {
		t.Fatalf("error %v", err)
	}
	var file []byte
	_, _, err = ds.loadRegion(2, &Image{}, &file, func(w, h int) (int, int, int, int) { return 0, 0, w, h })
	if err == nil || loadErr == nil || err.Error() != loadErr.Error() {
		t.Fatalf("missing file: loadRegion error %v, Load error %v", err, loadErr)
	}
}
