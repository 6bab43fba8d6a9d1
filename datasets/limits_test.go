package datasets

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// hugeSparse is the size of the sparse files standing for huge files: no
// test may read one whole.
const hugeSparse = 8 << 30

// sparseFile creates a sparse file of size bytes at path, starting with
// head.
func sparseFile(t *testing.T, path string, head []byte, size int64) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, head, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, size); err != nil {
		t.Skipf("no sparse files here: %v", err)
	}
}

// linkDevZero makes path a symbolic link to /dev/zero.
func linkDevZero(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", path); err != nil {
		t.Fatal(err)
	}
}

// endlessFIFO makes path a named pipe that yields head and then fill over
// and over until the reader closes it.
func endlessFIFO(t *testing.T, path string, head, fill []byte) {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Skipf("no named pipes here: %v", err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		defer f.Close()
		if _, err := f.Write(head); err != nil {
			return
		}
		chunk := bytes.Repeat(fill, (64<<10)/len(fill))
		for {
			if _, err := f.Write(chunk); err != nil {
				return // the reader closed its end
			}
		}
	}()
	t.Cleanup(func() {
		// Unblock a writer still waiting for a reader.
		if f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
		<-done
	})
}

// checkTooLarge checks that err wraps ErrTooLarge and mentions every
// string of want.
func checkTooLarge(t *testing.T, err error, want ...string) {
	t.Helper()
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("error %v, want ErrTooLarge", err)
	}
	for _, s := range want {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %q", err, s)
		}
	}
}

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestReadAtMost(t *testing.T) {
	lim := sizeLimit{max: 10, what: "a test file"}
	for _, n := range []int{0, 9, 10} {
		data, err := readAtMost(bytes.NewReader(make([]byte, n)), "s", lim, nil)
		if err != nil || len(data) != n {
			t.Fatalf("%d bytes: %d, %v", n, len(data), err)
		}
	}
	_, err := readAtMost(bytes.NewReader(make([]byte, 11)), "stream.bin", lim, nil)
	checkTooLarge(t, err, "stream.bin", "more than 10 bytes", "a test file holds at most 10 bytes")
	// Errors of the stream pass through.
	_, err = readAtMost(io.MultiReader(bytes.NewReader([]byte{1}), iotest{}), "s", lim, nil)
	if err == nil || errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("error %v", err)
	}

	dir := t.TempDir()
	t.Run("regular file", func(t *testing.T) {
		p := filepath.Join(dir, "ten")
		writeFiles(t, dir, map[string][]byte{"ten": []byte("0123456789")})
		data, err := readFileAtMost(p, lim, make([]byte, 3))
		if err != nil || string(data) != "0123456789" {
			t.Fatalf("%q, %v", data, err)
		}
		_, err = readFileAtMost(p, sizeLimit{max: 9, what: "a small file"}, nil)
		checkTooLarge(t, err, p, "10 bytes", "a small file holds at most 9 bytes")
	})
	t.Run("sparse file", func(t *testing.T) {
		p := filepath.Join(dir, "huge")
		sparseFile(t, p, nil, hugeSparse)
		var err error
		if n := allocated(func() { _, err = readFileAtMost(p, sizeLimit{max: 1 << 20, what: "a file"}, nil) }); n > 1<<20 {
			t.Errorf("allocated %d bytes", n)
		}
		checkTooLarge(t, err, p, fmt.Sprint(hugeSparse), fmt.Sprint(1<<20))
	})
	t.Run("dev zero", func(t *testing.T) {
		p := filepath.Join(dir, "zero")
		linkDevZero(t, p)
		_, err := readFileAtMost(p, sizeLimit{max: 1000, what: "a file"}, nil)
		checkTooLarge(t, err, p, "more than 1000 bytes")
	})
	t.Run("missing", func(t *testing.T) {
		_, err := readFileAtMost(filepath.Join(dir, "nothing"), lim, nil)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("error %v", err)
		}
	})
}

// iotest is a reader that fails.
type iotest struct{}

func (iotest) Read([]byte) (int, error) { return 0, errors.New("broken reader") }

// TestImageFileLimits: an image file too large for its format, a link to
// /dev/zero and an endless pipe are refused with errors naming the file,
// and skipped and counted by a Loader with SkipBadImages.
func TestImageFileLimits(t *testing.T) {
	root := t.TempDir()
	classDir := filepath.Join(root, "train", "a")
	writeClassTree(t, filepath.Join(root, "train"), []string{"a"}, []int{3})
	huge := filepath.Join(classDir, "huge.png")
	sparseFile(t, huge, pngMagic, hugeSparse)
	zero := filepath.Join(classDir, "zero.jpg")
	linkDevZero(t, zero)

	err := DecodeImageFile(huge, &Image{})
	checkTooLarge(t, err, huge, fmt.Sprint(hugeSparse), fmt.Sprint(MaxImageFileBytes))
	err = DecodeImageFile(zero, &Image{})
	if err == nil || !strings.Contains(err.Error(), zero) || !strings.Contains(err.Error(), "unknown image format") {
		t.Fatalf("/dev/zero: %v", err)
	}

	// A stream that starts like a PNG is read no further than the limit.
	saved := imageFileLimit
	defer func() { imageFileLimit = saved }()
	imageFileLimit.max = 1 << 20
	pipe := filepath.Join(t.TempDir(), "pipe.png")
	endlessFIFO(t, pipe, pngMagic, []byte{0})
	checkTooLarge(t, DecodeImageFile(pipe, &Image{}), pipe, "more than 1048576 bytes")
	imageFileLimit = saved

	ds, err := OpenImageFolder(root, Train)
	if err != nil {
		t.Fatal(err)
	}
	if ds.Len() != 5 {
		t.Fatalf("%d images, want 5", ds.Len())
	}
	for _, transform := range []Transform{nil, TrainTransform(8, false)} { // plain and fused decoding
		cfg := LoaderConfig{BatchSize: 5, Workers: 2, Output: OutputUint8, Transform: transform, SkipBadImages: true}
		l, err := NewLoader(ds, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if bs := collect(t, l, 0); len(bs) != 1 || bs[0].N != 3 || l.Skipped() != 2 {
			t.Fatalf("transform %v: %d batches, %d skipped", transform, len(bs), l.Skipped())
		}
		cfg.SkipBadImages = false
		l, _ = NewLoader(ds, cfg)
		it := l.Epoch(context.Background(), 0)
		b, err := it.Next()
		b.Release()
		it.Close()
		if err == nil || !strings.Contains(err.Error(), "huge.png") && !strings.Contains(err.Error(), "zero.jpg") {
			t.Fatalf("transform %v: error %v", transform, err)
		}
	}
}

func TestIDXLimits(t *testing.T) {
	pix, labels := idxImages(4, 3, 3)
	goodImg := idxBytes(IDXImagesMagic, []int{4, 3, 3}, pix)
	goodLbl := idxBytes(IDXLabelsMagic, []int{4}, labels)
	t.Run("gzip inflating past its header", func(t *testing.T) {
		// A few KB of gzip that inflates to 64 MiB after a header that
		// declares 36 bytes of data.
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zw.Write(goodImg)
		zeros := make([]byte, 1<<20)
		for i := 0; i < 64; i++ {
			zw.Write(zeros)
		}
		zw.Close()
		dir := t.TempDir()
		writeFiles(t, dir, map[string][]byte{"train-images-idx3-ubyte.gz": buf.Bytes(), "train-labels-idx1-ubyte": goodLbl})
		var err error
		if n := allocated(func() { _, err = OpenFashionMNIST(dir, Train) }); n > 8<<20 {
			t.Errorf("allocated %d bytes", n)
		}
		checkTooLarge(t, err, "train-images-idx3-ubyte.gz", "need 36 data bytes", "file has more")
	})
	t.Run("huge plain file", func(t *testing.T) {
		dir := t.TempDir()
		writeFiles(t, dir, map[string][]byte{"train-images-idx3-ubyte": goodImg})
		sparseFile(t, filepath.Join(dir, "train-labels-idx1-ubyte"), goodLbl, hugeSparse)
		var err error
		if n := allocated(func() { _, err = OpenFashionMNIST(dir, Train) }); n > 1<<20 {
			t.Errorf("allocated %d bytes", n)
		}
		checkTooLarge(t, err, "train-labels-idx1-ubyte", "need 4 data bytes", fmt.Sprint(hugeSparse-8))
	})
	t.Run("header claiming gigabytes", func(t *testing.T) {
		// 4 GiB declared, a few bytes there: nothing like 4 GiB is
		// allocated, plain or gzipped.
		claim := idxBytes(IDXImagesMagic, []int{1 << 16, 256, 256}, []byte{1, 2, 3})
		for name, data := range map[string][]byte{"train-images-idx3-ubyte": claim, "train-images-idx3-ubyte.gz": gzipBytes(t, claim)} {
			dir := t.TempDir()
			writeFiles(t, dir, map[string][]byte{name: data, "train-labels-idx1-ubyte": goodLbl})
			var err error
			if n := allocated(func() { _, err = OpenFashionMNIST(dir, Train) }); n > 1<<20 {
				t.Errorf("%s: allocated %d bytes", name, n)
			}
			if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "need 4294967296 data bytes") || !strings.Contains(err.Error(), "has 3") {
				t.Fatalf("%s: error %v", name, err)
			}
		}
	})
	t.Run("dev zero", func(t *testing.T) {
		dir := t.TempDir()
		writeFiles(t, dir, map[string][]byte{"train-images-idx3-ubyte": goodImg})
		linkDevZero(t, filepath.Join(dir, "train-labels-idx1-ubyte"))
		_, err := OpenFashionMNIST(dir, Train)
		if err == nil || !strings.Contains(err.Error(), "train-labels-idx1-ubyte") || !strings.Contains(err.Error(), "two zero bytes") && !strings.Contains(err.Error(), "element type") {
			t.Fatalf("error %v", err)
		}
	})
}

// hugeTarGz returns a .tar.gz whose member name claims size bytes but holds
// only a few: the archive ends there.
func hugeTarGz(t *testing.T, name string, size int64) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write(make([]byte, 4096))
	tw.Flush() // fails: the member is short; what was written stays
	gz.Close()
	return buf.Bytes()
}

func TestCIFARLimits(t *testing.T) {
	t.Run("huge binary batch", func(t *testing.T) {
		dir := t.TempDir()
		files := cifarBinFiles(1)
		delete(files, "data_batch_3.bin")
		writeFiles(t, dir, files)
		p := filepath.Join(dir, "data_batch_3.bin")
		sparseFile(t, p, cifarBinBatch(3, 1), hugeSparse)
		_, err := OpenCIFAR10(dir, Train)
		checkTooLarge(t, err, p, fmt.Sprint(hugeSparse), "30730000")
	})
	t.Run("binary batch one byte too many", func(t *testing.T) {
		dir := t.TempDir()
		files := cifarBinFiles(1)
		delete(files, "test_batch.bin")
		writeFiles(t, dir, files)
		p := filepath.Join(dir, "test_batch.bin")
		sparseFile(t, p, cifarBinBatch(0, 1), 30730001)
		_, err := OpenCIFAR10(dir, Test)
		checkTooLarge(t, err, p, "30730001 bytes", "30730000")
	})
	t.Run("binary batch linked to dev zero", func(t *testing.T) {
		dir := t.TempDir()
		files := cifarBinFiles(1)
		delete(files, "data_batch_2.bin")
		writeFiles(t, dir, files)
		p := filepath.Join(dir, "data_batch_2.bin")
		linkDevZero(t, p)
		_, err := OpenCIFAR10(dir, Train)
		checkTooLarge(t, err, p, "more than 30730000 bytes")
	})
	t.Run("huge python batch", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, "test_batch")
		sparseFile(t, p, py2CIFARBatch(0, 1), hugeSparse)
		_, err := OpenCIFAR10(dir, Test)
		checkTooLarge(t, err, p, fmt.Sprint(hugeSparse), fmt.Sprint(cifarPythonLimit.max))
	})
	t.Run("archive member claiming 1.5 GiB", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, cifarBinTarGz)
		writeFiles(t, dir, map[string][]byte{cifarBinTarGz: hugeTarGz(t, cifarBinDir+"/test_batch.bin", 3<<29)})
		var err error
		if n := allocated(func() { _, err = OpenCIFAR10(dir, Test) }); n > 8<<20 {
			t.Errorf("allocated %d bytes", n)
		}
		checkTooLarge(t, err, p, "test_batch.bin", "1610612736 bytes", "30730000")
	})
	t.Run("archive member inflating past the limit", func(t *testing.T) {
		dir := t.TempDir()
		files := cifarBinFiles(1)
		files["test_batch.bin"] = append(cifarBinBatch(0, 1), make([]byte, 30730001-CIFARRecordSize)...)
		arc := cifarTarGz(t, cifarBinDir, files)
		if len(arc) > 1<<20 {
			t.Fatalf("archive of %d bytes", len(arc))
		}
		writeFiles(t, dir, map[string][]byte{cifarBinTarGz: arc})
		_, err := OpenCIFAR10(dir, Test)
		checkTooLarge(t, err, cifarBinTarGz, "test_batch.bin", "30730001 bytes")
	})
	t.Run("python archive member claiming too much", func(t *testing.T) {
		dir := t.TempDir()
		writeFiles(t, dir, map[string][]byte{cifarPyTarGz: hugeTarGz(t, cifarPyDir+"/test_batch", 1<<30)})
		_, err := OpenCIFAR10(dir, Test)
		checkTooLarge(t, err, cifarPyTarGz, "test_batch", fmt.Sprint(cifarPythonLimit.max))
	})
}

// TestCIFARMissingOrCorrupt: only errors about data that is not there wrap
// fs.ErrNotExist (where suggesting --download can help).
func TestCIFARMissingOrCorrupt(t *testing.T) {
	missing := map[string]func(t *testing.T) string{
		"no such folder": func(t *testing.T) string { return filepath.Join(t.TempDir(), "nothing") },
		"empty folder":   func(t *testing.T) string { return t.TempDir() },
		"missing batch": func(t *testing.T) string {
			dir := t.TempDir()
			files := cifarBinFiles(1)
			delete(files, "data_batch_3.bin")
			writeFiles(t, filepath.Join(dir, cifarBinDir), files)
			return dir
		},
	}
	for name, setup := range missing {
		t.Run(name, func(t *testing.T) {
			_, err := OpenCIFAR10(setup(t), Train)
			if err == nil || !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("error %v does not wrap fs.ErrNotExist", err)
			}
		})
	}
	corrupt := map[string]func(t *testing.T) string{
		"truncated batch": func(t *testing.T) string {
			dir := t.TempDir()
			files := cifarBinFiles(2)
			files["data_batch_1.bin"] = files["data_batch_1.bin"][:100]
			writeFiles(t, dir, files)
			return dir
		},
		"truncated archive": func(t *testing.T) string {
			dir := t.TempDir()
			arc := cifarTarGz(t, cifarBinDir, cifarBinFiles(2))
			writeFiles(t, dir, map[string][]byte{cifarBinTarGz: arc[:len(arc)/2]})
			return dir
		},
		"archive without batches": func(t *testing.T) string {
			dir := t.TempDir()
			writeFiles(t, dir, map[string][]byte{cifarBinTarGz: cifarTarGz(t, "other", cifarBinFiles(1))})
			return dir
		},
		"archive missing a batch": func(t *testing.T) string {
			dir := t.TempDir()
			files := cifarBinFiles(1)
			delete(files, "data_batch_4.bin")
			writeFiles(t, dir, map[string][]byte{cifarBinTarGz: cifarTarGz(t, cifarBinDir, files)})
			return dir
		},
		"bad python batch": func(t *testing.T) string {
			dir := t.TempDir()
			writeFiles(t, dir, map[string][]byte{"test_batch": []byte("\x80\x02]."), "data_batch_1": nil})
			return dir
		},
	}
	for name, setup := range corrupt {
		t.Run(name, func(t *testing.T) {
			_, err := OpenCIFAR10(setup(t), Train)
			if err == nil || errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("error %v wraps fs.ErrNotExist", err)
			}
		})
	}
}

func TestMiniImageNetLimits(t *testing.T) {
	t.Run("huge pickle cache", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, miniPickleName("train"))
		sparseFile(t, p, []byte("\x80\x04"), 3<<30)
		_, err := OpenMiniImageNet(dir, Train, MiniImageNetOptions{})
		checkTooLarge(t, err, p, "3221225472 bytes", "2544000000")
	})
	t.Run("pickle cache linked to an endless stream", func(t *testing.T) {
		saved := miniCacheLimit
		defer func() { miniCacheLimit = saved }()
		miniCacheLimit.max = 1 << 20
		dir := t.TempDir()
		p := filepath.Join(dir, miniPickleName("train"))
		// A pickle that never ends: None pushed forever.
		endlessFIFO(t, p, []byte("\x80\x02"), []byte("N"))
		_, err := OpenMiniImageNet(dir, Train, MiniImageNetOptions{Layout: LayoutPickle})
		checkTooLarge(t, err, p, "more than 1048576 bytes")
	})
	t.Run("huge CSV", func(t *testing.T) {
		dir := t.TempDir()
		writeFiles(t, dir, map[string][]byte{"images/a.jpg": nil})
		p := filepath.Join(dir, "train.csv")
		sparseFile(t, p, []byte("filename,label\n"), hugeSparse)
		_, err := OpenMiniImageNet(dir, Train, MiniImageNetOptions{})
		checkTooLarge(t, err, p, fmt.Sprint(hugeSparse))
	})
}
