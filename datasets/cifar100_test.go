package datasets

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// CIFAR-100 fixtures: batch 1 is train.bin / train, batch 0 test.bin / test.
// Pixels follow cifarPixel; the fine label spans 0-99 and the coarse label
// differs from it, so that reading the wrong label byte shows.

// c100Fine is the generated fine label of record i of batch b.
func c100Fine(b, i int) byte { return byte((b*37 + i*13 + 7) % 100) }

// c100Coarse is the generated coarse label of record i of batch b.
func c100Coarse(b, i int) byte { return c100Fine(b, i) / 5 }

// c100Names are class names unlike CIFAR100Classes, to tell that a meta
// file was read.
func c100Names(prefix string, n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s%02d", prefix, i)
	}
	return names
}

// c100BinBatch returns n generated records in the official binary format:
// coarse label, fine label, 3072 channel-major pixels.
func c100BinBatch(b, n int) []byte {
	out := make([]byte, 0, n*CIFAR100RecordSize)
	for i := 0; i < n; i++ {
		out = append(out, c100Coarse(b, i), c100Fine(b, i))
		for j := 0; j < cifarPixels; j++ {
			out = append(out, cifarPixel(b, i, j))
		}
	}
	return out
}

// c100BinFiles returns the files of a generated cifar-100-binary folder
// with n records in each of train.bin and test.bin.
func c100BinFiles(n int) map[string][]byte {
	return map[string][]byte{
		"train.bin":              c100BinBatch(1, n),
		"test.bin":               c100BinBatch(0, n),
		"fine_label_names.txt":   []byte(strings.Join(c100Names("fine", 100), "\n") + "\n"),
		"coarse_label_names.txt": []byte(strings.Join(c100Names("coarse", 20), "\n") + "\n"),
	}
}

// checkCIFAR100 verifies a split built from generated files with n records
// and the given class names.
func checkCIFAR100(t *testing.T, ds *CIFAR, split Split, n int, classes []string) {
	t.Helper()
	b := 0
	if split == Train {
		b = 1
	}
	if ds.Len() != n {
		t.Fatalf("Len = %d, want %d", ds.Len(), n)
	}
	if !slices.Equal(ds.Classes(), classes) {
		t.Fatalf("classes %v..., want %v...", ds.Classes()[:min(3, len(ds.Classes()))], classes[:3])
	}
	img := &Image{}
	for i := 0; i < n; i++ {
		if got, want := ds.Label(i), int(c100Fine(b, i)); got != want {
			t.Fatalf("label of sample %d = %d, want the fine label %d", i, got, want)
		}
		if err := ds.Load(i, img); err != nil {
			t.Fatal(err)
		}
		if img.Width != 32 || img.Height != 32 || img.Channels != 3 {
			t.Fatalf("image %d is %dx%dx%d", i, img.Width, img.Height, img.Channels)
		}
		// Pixel (x, y) channel c is byte c*1024 + y*32 + x of the pixels.
		for _, xy := range [][2]int{{0, 0}, {31, 0}, {5, 7}, {31, 31}} {
			x, y := xy[0], xy[1]
			for c := 0; c < 3; c++ {
				if got, want := img.Pix[(y*32+x)*3+c], cifarPixel(b, i, c*1024+y*32+x); got != want {
					t.Fatalf("sample %d pixel (%d,%d) channel %d = %d, want %d", i, x, y, c, got, want)
				}
			}
		}
	}
}

func TestCIFAR100BinaryFolderAndArchive(t *testing.T) {
	dir := t.TempDir()
	files := c100BinFiles(4)
	writeFiles(t, filepath.Join(dir, cifar100BinDir), files)
	fine := c100Names("fine", 100)
	for _, path := range []string{dir, filepath.Join(dir, cifar100BinDir)} {
		for _, split := range []Split{Train, Test} {
			ds, err := OpenCIFAR100(path, split)
			if err != nil {
				t.Fatal(err)
			}
			if ds.Format() != CIFARBinary {
				t.Fatalf("format %v", ds.Format())
			}
			checkCIFAR100(t, ds, split, 4, fine)
		}
	}
	ds, _ := OpenCIFAR100(dir, Train)
	if f, r := ds.Source(2); !strings.HasSuffix(f, filepath.Join(cifar100BinDir, "train.bin")) || r != 2 {
		t.Fatalf("Source(2) = %s, %d", f, r)
	}
	if _, err := OpenCIFAR100(dir, Val); err == nil || !strings.Contains(err.Error(), "CIFAR-100") {
		t.Fatalf("val split: %v", err)
	}
	// The official archive, read in place, from its folder and extracted.
	arcDir := t.TempDir()
	archive := filepath.Join(arcDir, cifar100BinTarGz)
	if err := os.WriteFile(archive, cifarTarGz(t, cifar100BinDir, files), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{arcDir, archive} {
		for _, split := range []Split{Train, Test} {
			ds, err := OpenCIFAR100(path, split)
			if err != nil {
				t.Fatal(err)
			}
			checkCIFAR100(t, ds, split, 4, fine)
		}
	}
	out := t.TempDir()
	if err := ExtractTarGz(archive, out); err != nil {
		t.Fatal(err)
	}
	extracted, err := OpenCIFAR100(out, Test)
	if err != nil {
		t.Fatal(err)
	}
	checkCIFAR100(t, extracted, Test, 4, fine)
	// CIFAR-10 does not mistake it for its own.
	if _, err := OpenCIFAR10(dir, Train); err == nil || !strings.Contains(err.Error(), "cifar-10-batches-bin") {
		t.Fatalf("CIFAR-10 opened a CIFAR-100 folder: %v", err)
	}
}

// pyCIFAR100Script writes a cifar-100-python folder as Python 3 does with
// protocol 2 and bytes keys, with the fixtures' pixels and labels.
const pyCIFAR100Script = `
import pickle, sys, numpy as np
out, n = sys.argv[1], int(sys.argv[2])
def pix(b, i, j): return (b*53 + i*31 + j*7 + (j//1024)*5) % 256
def fine(b, i): return (b*37 + i*13 + 7) % 100
def write(name, b):
    data = np.array([[pix(b, i, j) for j in range(3072)] for i in range(n)], dtype=np.uint8)
    d = {b'filenames': [b'f%d.png' % i for i in range(n)], b'batch_label': b'batch',
         b'fine_labels': [fine(b, i) for i in range(n)],
         b'coarse_labels': [fine(b, i) // 5 for i in range(n)], b'data': data}
    with open(out + '/' + name, 'wb') as f:
        pickle.dump(d, f, protocol=2)
write('test', 0)
write('train', 1)
meta = {b'fine_label_names': [b'py%02d' % k for k in range(100)],
        b'coarse_label_names': [b'coarse%02d' % k for k in range(20)]}
with open(out + '/meta', 'wb') as f:
    pickle.dump(meta, f, protocol=2)
`

func TestCIFAR100Python(t *testing.T) {
	dir := t.TempDir()
	pyDir := filepath.Join(dir, cifar100PyDir)
	if err := os.MkdirAll(pyDir, 0o755); err != nil {
		t.Fatal(err)
	}
	runPython(t, pyCIFAR100Script, pyDir, "3")
	names := c100Names("py", 100)
	for _, split := range []Split{Train, Test} {
		ds, err := OpenCIFAR100(dir, split)
		if err != nil {
			t.Fatal(err)
		}
		if ds.Format() != CIFARPython {
			t.Fatalf("format %v", ds.Format())
		}
		checkCIFAR100(t, ds, split, 3, names)
	}
	files := map[string][]byte{}
	for _, name := range []string{"train", "test", "meta"} {
		data, err := os.ReadFile(filepath.Join(pyDir, name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = data
	}
	archive := filepath.Join(t.TempDir(), cifar100PyTarGz)
	if err := os.WriteFile(archive, cifarTarGz(t, cifar100PyDir, files), 0o644); err != nil {
		t.Fatal(err)
	}
	ds, err := OpenCIFAR100(archive, Train)
	if err != nil {
		t.Fatal(err)
	}
	checkCIFAR100(t, ds, Train, 3, names)
}

// c100Py2Files returns a cifar-100-python folder as Python 2's cPickle
// wrote the official files, without the meta file.
func c100Py2Files(n int) map[string][]byte {
	return map[string][]byte{
		"train": py2CIFARPickle("fine_labels", 1, n, func(b, i int) byte { return c100Fine(b, i) }),
		"test":  py2CIFARPickle("fine_labels", 0, n, func(b, i int) byte { return c100Fine(b, i) }),
	}
}

func TestCIFAR100Python2Pickle(t *testing.T) {
	// No meta file: the official fine class names apply.
	dir := filepath.Join(t.TempDir(), cifar100PyDir)
	writeFiles(t, dir, c100Py2Files(5))
	for _, split := range []Split{Train, Test} {
		ds, err := OpenCIFAR100(dir, split)
		if err != nil {
			t.Fatal(err)
		}
		checkCIFAR100(t, ds, split, 5, CIFAR100Classes)
	}
	// A CIFAR-10 batch (b'labels') is not a CIFAR-100 file.
	writeFiles(t, dir, map[string][]byte{"test": py2CIFARBatch(0, 2)})
	if _, err := OpenCIFAR100(dir, Test); err == nil || !strings.Contains(err.Error(), "fine_labels") ||
		!strings.Contains(err.Error(), "test") {
		t.Fatalf("CIFAR-10 pickle as CIFAR-100: %v", err)
	}
}

func TestCIFAR100BadInput(t *testing.T) {
	good := c100BinFiles(2)
	cases := []struct {
		name   string
		file   string
		data   []byte
		expect []string
	}{
		{"truncated", "train.bin", good["train.bin"][:2*CIFAR100RecordSize-100], []string{"train.bin", "record 1", "3074"}},
		{"CIFAR-10 records", "test.bin", cifarBinBatch(0, 3), []string{"test.bin", "3074"}},
		{"fine label", "train.bin", func() []byte {
			b := slices.Clone(good["train.bin"])
			b[CIFAR100RecordSize+1] = 100
			return b
		}(), []string{"train.bin", "record 1", "label 100"}},
		{"coarse names as fine", "fine_label_names.txt", good["coarse_label_names.txt"], []string{"fine_label_names.txt", "20 class names, want 100"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			files := c100BinFiles(2)
			files[tc.file] = tc.data
			writeFiles(t, dir, files)
			split := Train
			if strings.HasPrefix(tc.file, "test") {
				split = Test
			}
			_, err := OpenCIFAR100(dir, split)
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
	t.Run("nothing there", func(t *testing.T) {
		_, err := OpenCIFAR100(t.TempDir(), Train)
		if err == nil || !strings.Contains(err.Error(), cifar100BinDir) || !strings.Contains(err.Error(), cifar100PyTarGz) {
			t.Fatalf("error %v", err)
		}
	})
}

func TestCIFAR100Limits(t *testing.T) {
	t.Run("huge binary file", func(t *testing.T) {
		dir := t.TempDir()
		files := c100BinFiles(1)
		delete(files, "train.bin")
		writeFiles(t, dir, files)
		p := filepath.Join(dir, "train.bin")
		sparseFile(t, p, c100BinBatch(1, 1), hugeSparse)
		_, err := OpenCIFAR100(dir, Train)
		checkTooLarge(t, err, p, fmt.Sprint(hugeSparse), "153700000")
	})
	t.Run("binary file one record too many", func(t *testing.T) {
		dir := t.TempDir()
		files := c100BinFiles(1)
		delete(files, "test.bin")
		writeFiles(t, dir, files)
		p := filepath.Join(dir, "test.bin")
		sparseFile(t, p, c100BinBatch(0, 1), 50001*CIFAR100RecordSize)
		_, err := OpenCIFAR100(dir, Test)
		checkTooLarge(t, err, p, "153703074 bytes", "153700000")
	})
	t.Run("python archive member claiming too much", func(t *testing.T) {
		dir := t.TempDir()
		writeFiles(t, dir, map[string][]byte{cifar100PyTarGz: hugeTarGz(t, cifar100PyDir+"/train", 1<<30)})
		var err error
		if n := allocated(func() { _, err = OpenCIFAR100(dir, Train) }); n > 8<<20 {
			t.Errorf("allocated %d bytes", n)
		}
		checkTooLarge(t, err, cifar100PyTarGz, "train", fmt.Sprint(cifar100PythonLimit.max))
	})
}

func TestDownloadCIFAR100(t *testing.T) {
	archive := cifarTarGz(t, cifar100PyDir, c100Py2Files(2))
	srv := newArchiveServer(t, cifar100PyTarGz, archive)
	dir := t.TempDir()
	// Through the policy: cifar100 downloads the python archive.
	out, err := Download(context.Background(), NameCIFAR100, dir, DownloadOptions{BaseURL: srv.URL, MD5: md5Hex(archive)})
	if err != nil {
		t.Fatal(err)
	}
	if out != filepath.Join(dir, cifar100PyDir) {
		t.Fatalf("folder %s", out)
	}
	ds, err := OpenCIFAR100(out, Test)
	if err != nil {
		t.Fatal(err)
	}
	checkCIFAR100(t, ds, Test, 2, CIFAR100Classes)
	if !Downloadable(NameCIFAR100) || !Downloadable(NameCIFAR10) || Downloadable(NameFashionMNIST) {
		t.Error("Downloadable")
	}
	if _, err := Download(context.Background(), NameFashionMNIST, dir, DownloadOptions{}); err == nil ||
		!strings.Contains(err.Error(), NameFashionMNIST) {
		t.Errorf("downloading fashion-mnist: %v", err)
	}
}

func TestDownloadCIFAR100ChecksumMismatch(t *testing.T) {
	archive := cifarTarGz(t, cifar100PyDir, c100Py2Files(1))
	srv := newArchiveServer(t, cifar100PyTarGz, archive)
	dir := t.TempDir()
	// The official sum does not match the generated archive.
	_, err := DownloadCIFAR100(context.Background(), dir, CIFARPython, DownloadOptions{BaseURL: srv.URL})
	if err == nil {
		t.Fatal("no error")
	}
	for _, s := range []string{cifar100PyTarGz, md5Hex(archive), "eb9058c3a382ffc7106e4002c42a8d85", "checksum mismatch"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("bad download left %v behind", entries)
	}
	// The binary archive is checked against its own official sum.
	bin := cifarTarGz(t, cifar100BinDir, c100BinFiles(1))
	srv = newArchiveServer(t, cifar100BinTarGz, bin)
	_, err = DownloadCIFAR100(context.Background(), dir, CIFARBinary, DownloadOptions{BaseURL: srv.URL})
	if err == nil || !strings.Contains(err.Error(), "03b5dce01913d631647c71ecec9e9cb8") {
		t.Fatalf("binary archive: %v", err)
	}
}

// TestCIFAR100Names checks what knows the list of data sets: Open, Names,
// NativeSide, DefaultDir, the normalization and the class names.
func TestCIFAR100Names(t *testing.T) {
	if !slices.Contains(Names(), NameCIFAR100) || NativeSide(NameCIFAR100) != 32 || DefaultDir(NameCIFAR100) != "" {
		t.Errorf("Names %v, NativeSide %d, DefaultDir %q", Names(), NativeSide(NameCIFAR100), DefaultDir(NameCIFAR100))
	}
	// The training set's per-channel statistics, 4 places.
	n := NormalizationFor("cifar-100")
	if n.Mean != [3]float32{0.5071, 0.4865, 0.4409} || n.Std != [3]float32{0.2673, 0.2564, 0.2762} {
		t.Errorf("normalization %+v", n)
	}
	// The official fine names are the 100 classes in alphabetical order.
	if len(CIFAR100Classes) != 100 || !slices.IsSorted(CIFAR100Classes) || len(slices.Compact(slices.Clone(CIFAR100Classes))) != 100 {
		t.Errorf("CIFAR100Classes: %d names, sorted %v", len(CIFAR100Classes), slices.IsSorted(CIFAR100Classes))
	}
	for _, c := range []string{"apple", "aquarium_fish", "maple_tree", "sweet_pepper", "worm"} {
		if !slices.Contains(CIFAR100Classes, c) {
			t.Errorf("CIFAR100Classes lacks %s", c)
		}
	}
	dir := t.TempDir()
	writeFiles(t, filepath.Join(dir, cifar100BinDir), c100BinFiles(2))
	for _, name := range []string{"cifar100", "CIFAR-100"} {
		ds, err := Open(name, dir, Test, OpenOptions{})
		if err != nil || ds.Len() != 2 || len(ds.Classes()) != 100 {
			t.Errorf("Open(%q): %v", name, err)
		}
	}
}
