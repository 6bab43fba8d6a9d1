package datasets

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gsrmt/gsrmt/internal/testutil"
)

// cifarPixel is the generated value of byte j (channel-major) of record i of
// batch b.
func cifarPixel(b, i, j int) byte { return byte(b*53 + i*31 + j*7 + j/1024*5) }

// cifarLabel is the generated label of record i of batch b.
func cifarLabel(b, i int) byte { return byte((b + i*3) % 10) }

// cifarBinBatch returns n generated records in the official binary format.
func cifarBinBatch(b, n int) []byte {
	out := make([]byte, 0, n*CIFARRecordSize)
	for i := 0; i < n; i++ {
		out = append(out, cifarLabel(b, i))
		for j := 0; j < cifarPixels; j++ {
			out = append(out, cifarPixel(b, i, j))
		}
	}
	return out
}

// cifarBinFiles returns the files of a generated cifar-10-batches-bin with
// n records per batch (batch 0 is the test batch, 1-5 the train batches).
func cifarBinFiles(n int) map[string][]byte {
	files := map[string][]byte{
		"batches.meta.txt": []byte(strings.Join(CIFAR10Classes, "\n") + "\n\n"),
		"test_batch.bin":   cifarBinBatch(0, n),
		"readme.html":      []byte("<html></html>"),
	}
	for b := 1; b <= 5; b++ {
		files["data_batch_"+string(rune('0'+b))+".bin"] = cifarBinBatch(b, n)
	}
	return files
}

// writeFiles writes name -> contents under dir.
func writeFiles(t testing.TB, dir string, files map[string][]byte) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// tarEntry is one entry of a generated archive.
type tarEntry struct {
	name     string
	data     []byte
	typeflag byte
	linkname string
}

// makeTarGz builds a .tar.gz in memory.
func makeTarGz(t testing.TB, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), Typeflag: e.typeflag, Linkname: e.linkname}
		if e.typeflag == 0 {
			hdr.Typeflag = tar.TypeReg
		}
		if hdr.Typeflag != tar.TypeReg {
			hdr.Size = 0
		}
		if hdr.Typeflag == tar.TypeDir {
			hdr.Mode = 0o755
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// cifarTarGz packs files under top/ like the official archive.
func cifarTarGz(t testing.TB, top string, files map[string][]byte) []byte {
	entries := []tarEntry{{name: top + "/", typeflag: tar.TypeDir}}
	for _, name := range sortedKeys(files) {
		entries = append(entries, tarEntry{name: top + "/" + name, data: files[name]})
	}
	return makeTarGz(t, entries)
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

// idxBytes encodes an IDX file of unsigned bytes.
func idxBytes(magic uint32, dims []int, data []byte) []byte {
	out := binary.BigEndian.AppendUint32(nil, magic)
	for _, d := range dims {
		out = binary.BigEndian.AppendUint32(out, uint32(d))
	}
	return append(out, data...)
}

func gzipBytes(t testing.TB, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// patternRGBA is a deterministic test picture.
func patternRGBA(w, h, seed int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.SetNRGBA(x, y, color.NRGBA{
				R: uint8(x*255/max(w-1, 1) + seed),
				G: uint8(y*255/max(h-1, 1) + 2*seed),
				B: uint8((x*y)/7 + 40*seed),
				A: 255,
			})
		}
	}
	return img
}

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func encodeJPEG(t testing.TB, img image.Image, quality int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// solidPNG returns a w x h PNG of one colour; class data sets use it so
// that tests can tell images apart by colour.
func solidPNG(t testing.TB, w, h int, c color.NRGBA) []byte {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < w*h; i++ {
		img.Pix[4*i], img.Pix[4*i+1], img.Pix[4*i+2], img.Pix[4*i+3] = c.R, c.G, c.B, c.A
	}
	return encodePNG(t, img)
}

// runPython runs a Python script with Debian's python3 and numpy (skipping
// when unavailable); args follow the script.
func runPython(t testing.TB, script string, args ...string) {
	t.Helper()
	py := testutil.PythonTorch(t)
	cmd := exec.Command(py, append([]string{"-c", script}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, out)
	}
}

// py2CIFARBatch hand-assembles a CIFAR-10 python batch the way Python 2's
// cPickle (protocol 2) wrote the official files: str keys as
// SHORT_BINSTRING and the numpy raw data as a BINSTRING.
func py2CIFARBatch(b, n int) []byte { return py2CIFARPickle("labels", b, n, cifarLabel) }

// py2CIFARPickle is py2CIFARBatch with the labels, label(b, i), under
// labelKey (CIFAR-100's "fine_labels").
func py2CIFARPickle(labelKey string, b, n int, label func(b, i int) byte) []byte {
	var p bytes.Buffer
	p.WriteString("\x80\x02}(")
	shortStr := func(s string) {
		p.WriteByte('U')
		p.WriteByte(byte(len(s)))
		p.WriteString(s)
	}
	binint := func(v int) {
		p.WriteByte('J')
		_ = binary.Write(&p, binary.LittleEndian, int32(v))
	}
	shortStr("batch_label")
	shortStr("generated batch")
	shortStr("data")
	p.WriteString("cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R")
	p.WriteString("(K\x01")
	binint(n)
	binint(cifarPixels)
	p.WriteString("\x86cnumpy\ndtype\nU\x02u1K\x00K\x01\x87R(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89")
	raw := make([]byte, 0, n*cifarPixels)
	for i := 0; i < n; i++ {
		for j := 0; j < cifarPixels; j++ {
			raw = append(raw, cifarPixel(b, i, j))
		}
	}
	p.WriteByte('T')
	_ = binary.Write(&p, binary.LittleEndian, int32(len(raw)))
	p.Write(raw)
	p.WriteString("tb")
	shortStr(labelKey)
	p.WriteString("](")
	for i := 0; i < n; i++ {
		binint(int(label(b, i)))
	}
	p.WriteString("eu.")
	return p.Bytes()
}
