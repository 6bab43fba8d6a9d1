package datasets

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/gsrmt/gsrmt/internal/testutil"
)

// idxImages returns n generated rows x cols images and their labels.
func idxImages(n, rows, cols int) (pix, labels []byte) {
	for i := 0; i < n; i++ {
		for j := 0; j < rows*cols; j++ {
			pix = append(pix, byte(i*17+j*3))
		}
		labels = append(labels, byte((i*7)%10))
	}
	return pix, labels
}

func writeIDXSplit(t *testing.T, dir, prefix string, n, rows, cols int, gz bool) {
	pix, labels := idxImages(n, rows, cols)
	img := idxBytes(IDXImagesMagic, []int{n, rows, cols}, pix)
	lbl := idxBytes(IDXLabelsMagic, []int{n}, labels)
	ext := ""
	if gz {
		img, lbl, ext = gzipBytes(t, img), gzipBytes(t, lbl), ".gz"
	}
	writeFiles(t, dir, map[string][]byte{
		prefix + "-images-idx3-ubyte" + ext: img,
		prefix + "-labels-idx1-ubyte" + ext: lbl,
	})
}

func TestIDX(t *testing.T) {
	for _, gz := range []bool{false, true} {
		dir := t.TempDir()
		writeIDXSplit(t, dir, "train", 6, 5, 4, gz)
		writeIDXSplit(t, dir, "t10k", 3, 5, 4, gz)
		for _, tc := range []struct {
			split Split
			n     int
		}{{Train, 6}, {Test, 3}} {
			ds, err := OpenFashionMNIST(dir, tc.split)
			if err != nil {
				t.Fatal(err)
			}
			if ds.Len() != tc.n || len(ds.Classes()) != 10 || ds.Classes()[9] != "Ankle boot" {
				t.Fatalf("gz %v %v: %d images, classes %v", gz, tc.split, ds.Len(), ds.Classes())
			}
			if w, h := ds.Size(); w != 4 || h != 5 {
				t.Fatalf("size %dx%d", w, h)
			}
			pix, labels := idxImages(tc.n, 5, 4)
			img := &Image{}
			for i := 0; i < tc.n; i++ {
				if ds.Label(i) != int(labels[i]) {
					t.Fatalf("label %d = %d, want %d", i, ds.Label(i), labels[i])
				}
				if err := ds.Load(i, img); err != nil {
					t.Fatal(err)
				}
				if img.Channels != 1 || img.Width != 4 || img.Height != 5 {
					t.Fatalf("image %dx%dx%d", img.Width, img.Height, img.Channels)
				}
				// Row-major: pixel (x, y) is byte y*cols + x.
				if got, want := img.Pix[2*4+3], pix[i*20+2*4+3]; got != want {
					t.Fatalf("pixel (3,2) of %d = %d, want %d", i, got, want)
				}
			}
		}
		if ds, err := OpenMNIST(dir, Train); err != nil || ds.Classes()[3] != "3" {
			t.Fatalf("MNIST: %v", err)
		}
		if _, err := OpenMNIST(dir, Val); err == nil {
			t.Fatal("val split accepted")
		}
	}
}

func TestIDXBadInput(t *testing.T) {
	pix, labels := idxImages(4, 3, 3)
	goodImg := idxBytes(IDXImagesMagic, []int{4, 3, 3}, pix)
	goodLbl := idxBytes(IDXLabelsMagic, []int{4}, labels)
	cases := []struct {
		name     string
		img, lbl []byte
		expect   []string
	}{
		{"truncated images", goodImg[:len(goodImg)-5], goodLbl, []string{"images", "need 36 data bytes", "has 31"}},
		{"extra bytes", append(append([]byte(nil), goodImg...), 0), goodLbl, []string{"images", "has 37"}},
		{"short header", goodImg[:10], goodLbl, []string{"images", "too short"}},
		{"swapped", goodLbl, goodImg, []string{"images", "magic 0x00000801", "want 0x00000803"}},
		{"bad type", append([]byte{0, 0, 0x0d, 3}, goodImg[4:]...), goodLbl, []string{"images", "element type 0x0d"}},
		{"bad magic", append([]byte{1, 2, 8, 3}, goodImg[4:]...), goodLbl, []string{"images", "two zero bytes"}},
		{"count mismatch", goodImg, idxBytes(IDXLabelsMagic, []int{3}, labels[:3]), []string{"labels", "3 labels for the 4 images"}},
		{"label range", goodImg, idxBytes(IDXLabelsMagic, []int{4}, []byte{1, 2, 10, 3}), []string{"labels", "label 10 of item 2"}},
		{"huge dims", idxBytes(IDXImagesMagic, []int{1 << 20, 1 << 20, 1 << 20}, nil), goodLbl, []string{"images", "claim more than"}},
		{"empty", nil, goodLbl, []string{"images", "too short"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, map[string][]byte{"train-images-idx3-ubyte": tc.img, "train-labels-idx1-ubyte": tc.lbl})
			_, err := OpenFashionMNIST(dir, Train)
			if err == nil {
				t.Fatal("no error")
			}
			for _, s := range tc.expect {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not mention %q", err, s)
				}
			}
		})
	}
	t.Run("truncated gzip", func(t *testing.T) {
		dir := t.TempDir()
		gz := gzipBytes(t, goodImg)
		writeFiles(t, dir, map[string][]byte{"train-images-idx3-ubyte.gz": gz[:len(gz)-12], "train-labels-idx1-ubyte": goodLbl})
		_, err := OpenFashionMNIST(dir, Train)
		if err == nil || !strings.Contains(err.Error(), "train-images-idx3-ubyte.gz") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		_, err := OpenFashionMNIST(t.TempDir(), Test)
		if err == nil || !strings.Contains(err.Error(), "t10k-images-idx3-ubyte") {
			t.Fatalf("error %v", err)
		}
	})
}

func FuzzParseIDXHeader(f *testing.F) {
	f.Add(idxBytes(IDXImagesMagic, []int{1, 2, 2}, []byte{1, 2, 3, 4}))
	f.Add(idxBytes(IDXLabelsMagic, []int{3}, []byte{1, 2, 3}))
	f.Add([]byte{0, 0, 8, 0})
	f.Add([]byte{0, 0, 8, 255, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseIDXHeader("fuzz.idx", data)
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.idx") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if h.HeaderLen()+h.Size() != len(data) {
			t.Fatalf("header %v accepted for %d bytes", h.Dims, len(data))
		}
	})
}

// FuzzReadIDX reads a whole images file and labels file the way OpenIDX
// reads files (gzip detection, header first, at most the declared data, as
// a file of known size and as a stream), checks them against each other
// and loads every image.
func FuzzReadIDX(f *testing.F) {
	pix, labels := idxImages(3, 4, 2)
	img := idxBytes(IDXImagesMagic, []int{3, 4, 2}, pix)
	lbl := idxBytes(IDXLabelsMagic, []int{3}, labels)
	f.Add(img, lbl)
	f.Add(gzipBytes(f, img), gzipBytes(f, lbl))
	f.Add(img[:len(img)-1], lbl)
	f.Add(append(append([]byte(nil), img...), 7), lbl)
	f.Add(lbl, img)
	f.Add(idxBytes(IDXImagesMagic, []int{1 << 16, 256, 256}, nil), gzipBytes(f, lbl[:9]))
	f.Add([]byte{0x1f, 0x8b, 8, 0}, []byte{0, 0, 8, 1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, imgData, lblData []byte) {
		read := func(name string, data []byte) (IDXHeader, []byte, error) {
			h, body, err := readIDXStream(name, bytes.NewReader(data), int64(len(data)))
			h2, body2, err2 := readIDXStream(name, bytes.NewReader(data), -1)
			if (err == nil) != (err2 == nil) || !bytes.Equal(body, body2) || fmt.Sprint(h) != fmt.Sprint(h2) {
				t.Fatalf("%s: as a file: %v, %v; as a stream: %v, %v", name, h, err, h2, err2)
			}
			if err != nil {
				if !strings.Contains(err.Error(), name) {
					t.Fatalf("error %q does not name the file", err)
				}
				return h, nil, err
			}
			if len(body) != h.Size() {
				t.Fatalf("%s: header %v with %d data bytes", name, h.Dims, len(body))
			}
			return h, body, nil
		}
		ih, pix, err := read("images.idx", imgData)
		if err != nil {
			return
		}
		lh, labels, err := read("labels.idx", lblData)
		if err != nil {
			return
		}
		ds, err := newIDX("images.idx", ih, pix, "labels.idx", lh, labels, MNISTClasses)
		if err != nil {
			return
		}
		w, h := ds.Size()
		img := &Image{}
		for i := 0; i < ds.Len(); i++ {
			if err := ds.Load(i, img); err != nil {
				t.Fatal(err)
			}
			if img.Width != w || img.Height != h || img.Validate() != nil || ds.Label(i) >= 10 {
				t.Fatalf("image %d: %dx%d, label %d", i, img.Width, img.Height, ds.Label(i))
			}
		}
	})
}

// TestFashionMNISTReal checks Debian's real Fashion-MNIST files.
func TestFashionMNISTReal(t *testing.T) {
	dir := testutil.FashionMNISTDir(t)
	for _, tc := range []struct {
		split    Split
		n, per   int
		mean, sd float64
	}{{Train, 60000, 6000, 0.2860, 0.3530}, {Test, 10000, 1000, 0, 0}} {
		ds, err := OpenFashionMNIST(dir, tc.split)
		if err != nil {
			t.Fatal(err)
		}
		if ds.Len() != tc.n {
			t.Fatalf("%v: %d images, want %d", tc.split, ds.Len(), tc.n)
		}
		var hist [10]int
		for i := 0; i < ds.Len(); i++ {
			hist[ds.Label(i)]++
		}
		for c, n := range hist {
			if n != tc.per {
				t.Fatalf("%v: class %d has %d images, want %d", tc.split, c, n, tc.per)
			}
		}
		if tc.mean == 0 {
			continue
		}
		var sum, sq float64
		img := &Image{}
		for i := 0; i < ds.Len(); i++ {
			if err := ds.Load(i, img); err != nil {
				t.Fatal(err)
			}
			for _, v := range img.Pix {
				x := float64(v) / 255
				sum += x
				sq += x * x
			}
		}
		n := float64(ds.Len() * 28 * 28)
		mean := sum / n
		sd := math.Sqrt(sq/n - mean*mean)
		t.Logf("Fashion-MNIST train: mean %.4f std %.4f", mean, sd)
		if math.Abs(mean-tc.mean) > 5e-4 || math.Abs(sd-tc.sd) > 5e-4 {
			t.Fatalf("mean %.4f std %.4f, want %.4f %.4f", mean, sd, tc.mean, tc.sd)
		}
	}
	// The default folder is Debian's.
	if dir == DefaultFashionMNISTDir {
		if _, err := OpenFashionMNIST("", Test); err != nil {
			t.Fatal(err)
		}
	}
}
