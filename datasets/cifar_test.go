package datasets

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// checkCIFAR verifies a CIFAR-10 split built from generated batches with n
// records each.
func checkCIFAR(t *testing.T, ds *CIFAR, split Split, n int) {
	t.Helper()
	batches := []int{0}
	if split == Train {
		batches = []int{1, 2, 3, 4, 5}
	}
	if got, want := ds.Len(), n*len(batches); got != want {
		t.Fatalf("Len = %d, want %d", got, want)
	}
	if got := strings.Join(ds.Classes(), ","); got != strings.Join(CIFAR10Classes, ",") {
		t.Fatalf("classes = %s", got)
	}
	img := &Image{}
	for k, b := range batches {
		for i := 0; i < n; i++ {
			idx := k*n + i
			if got, want := ds.Label(idx), int(cifarLabel(b, i)); got != want {
				t.Fatalf("label of sample %d = %d, want %d", idx, got, want)
			}
			if err := ds.Load(idx, img); err != nil {
				t.Fatal(err)
			}
			if img.Width != 32 || img.Height != 32 || img.Channels != 3 {
				t.Fatalf("image %d is %dx%dx%d", idx, img.Width, img.Height, img.Channels)
			}
			// Pixel (x, y) channel c is byte c*1024 + y*32 + x of the record.
			for _, xy := range [][2]int{{0, 0}, {31, 0}, {5, 7}, {31, 31}} {
				x, y := xy[0], xy[1]
				for c := 0; c < 3; c++ {
					want := cifarPixel(b, i, c*1024+y*32+x)
					if got := img.Pix[(y*32+x)*3+c]; got != want {
						t.Fatalf("sample %d pixel (%d,%d) channel %d = %d, want %d", idx, x, y, c, got, want)
					}
				}
			}
		}
	}
}

func TestCIFARBinaryFolder(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, filepath.Join(dir, cifarBinDir), cifarBinFiles(4))
	for _, path := range []string{dir, filepath.Join(dir, cifarBinDir)} {
		for _, split := range []Split{Train, Test} {
			ds, err := OpenCIFAR10(path, split)
			if err != nil {
				t.Fatal(err)
			}
			if ds.Format() != CIFARBinary {
				t.Fatalf("format %v", ds.Format())
			}
			checkCIFAR(t, ds, split, 4)
		}
	}
	ds, _ := OpenCIFAR10(dir, Train)
	if f, r := ds.Source(9); !strings.HasSuffix(f, "data_batch_3.bin") || r != 1 {
		t.Fatalf("Source(9) = %s, %d", f, r)
	}
	if _, err := OpenCIFAR10(dir, Val); err == nil || !strings.Contains(err.Error(), "no val split") {
		t.Fatalf("val split: %v", err)
	}
}

func TestCIFARBinaryArchive(t *testing.T) {
	dir := t.TempDir()
	archive := filepath.Join(dir, cifarBinTarGz)
	if err := os.WriteFile(archive, cifarTarGz(t, cifarBinDir, cifarBinFiles(3)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{dir, archive} {
		for _, split := range []Split{Train, Test} {
			ds, err := OpenCIFAR10(path, split)
			if err != nil {
				t.Fatal(err)
			}
			checkCIFAR(t, ds, split, 3)
		}
	}
	// The same archive extracted safely reads the same.
	out := t.TempDir()
	if err := ExtractTarGz(archive, out); err != nil {
		t.Fatal(err)
	}
	ds, err := OpenCIFAR10(out, Test)
	if err != nil {
		t.Fatal(err)
	}
	checkCIFAR(t, ds, Test, 3)
}

// pyCIFARScript writes a cifar-10-batches-py folder as Python 3 does with
// protocol 2 and bytes keys (batches.meta too).
const pyCIFARScript = `
import pickle, sys, numpy as np
out, n = sys.argv[1], int(sys.argv[2])
def pix(b, i, j): return (b*53 + i*31 + j*7 + (j//1024)*5) % 256
def write(name, b):
    data = np.array([[pix(b, i, j) for j in range(3072)] for i in range(n)], dtype=np.uint8)
    labels = [int((b + i*3) % 10) for i in range(n)]
    d = {b'batch_label': b'batch', b'labels': labels, b'data': data,
         b'filenames': [b'f%d.png' % i for i in range(n)]}
    with open(out + '/' + name, 'wb') as f:
        pickle.dump(d, f, protocol=2)
write('test_batch', 0)
for b in range(1, 6):
    write('data_batch_%d' % b, b)
names = [s.encode() for s in ['airplane','automobile','bird','cat','deer','dog','frog','horse','ship','truck']]
with open(out + '/batches.meta', 'wb') as f:
    pickle.dump({b'num_cases_per_batch': n, b'label_names': names, b'num_vis': 3072}, f, protocol=2)
`

func TestCIFARPython(t *testing.T) {
	dir := t.TempDir()
	pyDir := filepath.Join(dir, cifarPyDir)
	if err := os.MkdirAll(pyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	runPython(t, pyCIFARScript, pyDir, "3")
	for _, split := range []Split{Train, Test} {
		ds, err := OpenCIFAR10(dir, split)
		if err != nil {
			t.Fatal(err)
		}
		if ds.Format() != CIFARPython {
			t.Fatalf("format %v", ds.Format())
		}
		checkCIFAR(t, ds, split, 3)
	}
	// Straight from the archive.
	files := map[string][]byte{}
	entries, _ := os.ReadDir(pyDir)
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(pyDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = data
	}
	archive := filepath.Join(t.TempDir(), cifarPyTarGz)
	if err := os.WriteFile(archive, cifarTarGz(t, cifarPyDir, files), 0o644); err != nil {
		t.Fatal(err)
	}
	ds, err := OpenCIFAR10(archive, Train)
	if err != nil {
		t.Fatal(err)
	}
	checkCIFAR(t, ds, Train, 3)
}

func TestCIFARPython2Pickle(t *testing.T) {
	// The official batches were written by Python 2: str keys, raw data as a
	// Python 2 str. No meta file: the default class names apply.
	dir := filepath.Join(t.TempDir(), cifarPyDir)
	files := map[string][]byte{"test_batch": py2CIFARBatch(0, 5)}
	for b := 1; b <= 5; b++ {
		files["data_batch_"+strconv.Itoa(b)] = py2CIFARBatch(b, 5)
	}
	writeFiles(t, dir, files)
	for _, split := range []Split{Train, Test} {
		ds, err := OpenCIFAR10(dir, split)
		if err != nil {
			t.Fatal(err)
		}
		checkCIFAR(t, ds, split, 5)
	}
}

func TestCIFARBadInput(t *testing.T) {
	good := cifarBinFiles(2)
	cases := []struct {
		name   string
		file   string
		data   []byte
		expect []string
	}{
		{"truncated", "data_batch_2.bin", good["data_batch_2.bin"][:2*CIFARRecordSize-100], []string{"data_batch_2.bin", "record 1", "3073"}},
		{"wrong size", "test_batch.bin", append(append([]byte(nil), good["test_batch.bin"]...), 1, 2, 3), []string{"test_batch.bin", "whole number"}},
		{"empty", "data_batch_1.bin", nil, []string{"data_batch_1.bin", "empty"}},
		{"label", "data_batch_4.bin", func() []byte {
			b := append([]byte(nil), good["data_batch_4.bin"]...)
			b[CIFARRecordSize] = 10
			return b
		}(), []string{"data_batch_4.bin", "record 1", "label 10"}},
		{"meta", "batches.meta.txt", []byte("a\nb\n"), []string{"batches.meta.txt", "2 class names"}},
		{"pickle in bin", "data_batch_5.bin", py2CIFARBatch(0, 1)[:CIFARRecordSize-1], []string{"data_batch_5.bin"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			files := cifarBinFiles(2)
			files[tc.file] = tc.data
			writeFiles(t, dir, files)
			split := Train
			if strings.HasPrefix(tc.file, "test") {
				split = Test
			}
			_, err := OpenCIFAR10(dir, split)
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
	t.Run("missing batch", func(t *testing.T) {
		dir := t.TempDir()
		files := cifarBinFiles(1)
		delete(files, "data_batch_3.bin")
		writeFiles(t, filepath.Join(dir, cifarBinDir), files)
		_, err := OpenCIFAR10(dir, Train)
		if err == nil || !strings.Contains(err.Error(), "data_batch_3.bin") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("truncated archive", func(t *testing.T) {
		dir := t.TempDir()
		arc := cifarTarGz(t, cifarBinDir, cifarBinFiles(2))
		p := filepath.Join(dir, cifarBinTarGz)
		if err := os.WriteFile(p, arc[:len(arc)/2], 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := OpenCIFAR10(dir, Train)
		if err == nil || !strings.Contains(err.Error(), cifarBinTarGz) {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("python bad", func(t *testing.T) {
		dir := t.TempDir()
		files := map[string][]byte{"test_batch": py2CIFARBatch(0, 2)}
		files["test_batch"] = files["test_batch"][:len(files["test_batch"])-30]
		writeFiles(t, dir, files)
		_, err := OpenCIFAR10(dir, Test)
		if err == nil || !strings.Contains(err.Error(), "test_batch") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("nothing there", func(t *testing.T) {
		_, err := OpenCIFAR10(t.TempDir(), Train)
		if err == nil || !strings.Contains(err.Error(), "cifar-10-batches-bin") {
			t.Fatalf("error %v", err)
		}
	})
}

func FuzzParseCIFARBinary(f *testing.F) {
	f.Add(cifarBinBatch(1, 1))
	f.Add(cifarBinBatch(2, 2)[:CIFARRecordSize+7])
	f.Add([]byte{})
	f.Add([]byte{200})
	f.Fuzz(func(t *testing.T, data []byte) {
		pix, labels, err := ParseCIFARBinary("fuzz.bin", data)
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz.bin") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if len(labels)*CIFARRecordSize != len(data) || len(pix) != len(labels)*cifarPixels {
			t.Fatalf("%d bytes gave %d labels and %d pixels", len(data), len(labels), len(pix))
		}
		for _, l := range labels {
			if l >= 10 {
				t.Fatalf("label %d accepted", l)
			}
		}
	})
}

func FuzzParseCIFARPickleBatch(f *testing.F) {
	f.Add(py2CIFARBatch(0, 1))
	f.Add(py2CIFARBatch(3, 2))
	f.Add([]byte("\x80\x02}q\x00."))
	f.Add([]byte("\x80\x02]."))
	f.Fuzz(func(t *testing.T, data []byte) {
		pix, labels, err := ParseCIFARPickleBatch("fuzz_batch", data)
		if err != nil {
			if !strings.Contains(err.Error(), "fuzz_batch") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if len(pix) != len(labels)*cifarPixels {
			t.Fatalf("%d labels and %d pixels", len(labels), len(pix))
		}
		for _, l := range labels {
			if l >= 10 {
				t.Fatalf("label %d accepted", l)
			}
		}
	})
}
