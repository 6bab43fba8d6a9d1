package datasets

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenByName(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, filepath.Join(dir, cifarBinDir), cifarBinFiles(1))
	for _, name := range []string{"cifar10", "CIFAR-10", "cifar_10"} {
		ds, err := Open(name, dir, Test, OpenOptions{})
		if err != nil || ds.Len() != 1 {
			t.Fatalf("%s: %v", name, err)
		}
	}
	mdir := t.TempDir()
	writeIDXSplit(t, mdir, "t10k", 2, 3, 3, true)
	for _, name := range []string{"mnist", "fashion-mnist", "fashion_mnist"} {
		if _, err := Open(name, mdir, Test, OpenOptions{}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if _, err := Open("imagenet21k", dir, Train, OpenOptions{}); err == nil || !strings.Contains(err.Error(), "mini-imagenet") {
		t.Fatalf("unknown name: %v", err)
	}
	if n := NormalizationFor("fashion-mnist"); n.Mean[2] != FashionMNISTMean || n.Std[0] != FashionMNISTStd {
		t.Fatalf("Fashion-MNIST normalization %+v", n)
	}
	if n := NormalizationFor("mini-imagenet"); n.Mean != ImageNetMean {
		t.Fatalf("Mini-ImageNet normalization %+v", n)
	}
	if n := NormalizationFor("cifar10"); n.Std != CIFAR10Std {
		t.Fatalf("CIFAR-10 normalization %+v", n)
	}
	if s, err := ParseSplit("Validation"); err != nil || s != Val || s.String() != "val" {
		t.Fatalf("ParseSplit: %v %v", s, err)
	}
	if _, err := ParseSplit("dev"); err == nil {
		t.Fatal("ParseSplit accepted dev")
	}
}

func TestPresets(t *testing.T) {
	rng := newRNG(1)
	src := randomImage(500, 375, 3, 1)
	if out := TrainTransform(224, true).Apply(src.Clone(), rng); out.Width != 224 || out.Height != 224 {
		t.Fatalf("train transform gave %dx%d", out.Width, out.Height)
	}
	ev := EvalTransform(224)
	if r := ev[0].(ResizeShorter); r.Size != 256 {
		t.Fatalf("eval resize %d, want 256", r.Size)
	}
	if out := ev.Apply(src.Clone(), nil); out.Width != 224 || out.Height != 224 {
		t.Fatalf("eval transform gave %dx%d", out.Width, out.Height)
	}
	if out := CIFARTrainTransform().Apply(randomImage(32, 32, 3, 2), rng); out.Width != 32 || out.Height != 32 {
		t.Fatalf("CIFAR transform gave %dx%d", out.Width, out.Height)
	}
	if DefaultErasing().P != 0.25 {
		t.Fatal("erasing probability")
	}
}

func TestDecodeHugeHeader(t *testing.T) {
	data := encodeJPEG(t, patternRGBA(8, 8, 0), 90)
	i := bytes.Index(data, []byte{0xFF, 0xC0})
	if i < 0 {
		t.Fatal("no SOF0 marker")
	}
	// Height and width follow the marker, length and precision.
	copy(data[i+5:], []byte{0xEA, 0x60, 0xEA, 0x60})
	for name, decode := range map[string]func([]byte, *Image) error{"DecodeImage": DecodeImage, "DecodeJPEGGo": DecodeJPEGGo} {
		err := decode(data, &Image{})
		if err == nil || !strings.Contains(err.Error(), "60000x60000") {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

func TestDownloadPartLongerThanFile(t *testing.T) {
	archive := cifarTarGz(t, cifarBinDir, cifarBinFiles(1))
	srv := newArchiveServer(t, cifarBinTarGz, archive)
	dir := t.TempDir()
	// A stale partial file longer than the archive: the server answers 416
	// and the download starts over.
	if err := os.WriteFile(filepath.Join(dir, cifarBinTarGz+".part"), make([]byte, len(archive)+10), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := DownloadCIFAR10(context.Background(), dir, CIFARBinary, DownloadOptions{BaseURL: srv.URL, MD5: md5Hex(archive)}); err != nil {
		t.Fatal(err)
	}
	if len(srv.ranges) != 2 || srv.ranges[1] != "" {
		t.Fatalf("requests %q, want a refused range then a full fetch", srv.ranges)
	}
	if _, err := OpenCIFAR10(dir, Train); err != nil {
		t.Fatal(err)
	}
}
