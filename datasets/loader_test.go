package datasets

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"
)

// memDataset is an in-memory data set of random images; the samples in bad
// fail to load.
type memDataset struct {
	imgs   []*Image
	labels []int
	bad    map[int]bool
}

func newMemDataset(n, w, h int) *memDataset {
	ds := &memDataset{bad: map[int]bool{}}
	for i := 0; i < n; i++ {
		ds.imgs = append(ds.imgs, randomImage(w, h, 3, uint64(i)))
		ds.labels = append(ds.labels, i%5)
	}
	return ds
}

func (d *memDataset) Len() int          { return len(d.imgs) }
func (d *memDataset) Classes() []string { return []string{"a", "b", "c", "d", "e"} }
func (d *memDataset) Label(i int) int   { return d.labels[i] }
func (d *memDataset) Load(i int, dst *Image) error {
	if d.bad[i] {
		return fmt.Errorf("mem sample %d: corrupt", i)
	}
	dst.CopyFrom(d.imgs[i])
	return nil
}

// collect runs one epoch and returns copies of its batches.
func collect(t *testing.T, l *Loader, epoch int) []Batch {
	t.Helper()
	it := l.Epoch(context.Background(), epoch)
	defer it.Close()
	var out []Batch
	for {
		b, err := it.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		c := *b
		c.Float = append([]float32(nil), b.Float...)
		c.Uint8 = append([]uint8(nil), b.Uint8...)
		c.Labels = append([]int64(nil), b.Labels...)
		c.Indices = append([]int(nil), b.Indices...)
		c.Targets = append([]float32(nil), b.Targets...)
		c.pool = nil
		b.Release()
		out = append(out, c)
	}
}

func trainConfig(workers int) LoaderConfig {
	mixer := DefaultMixer(5)
	return LoaderConfig{
		BatchSize: 8,
		Workers:   workers,
		Shuffle:   true,
		Seed:      42,
		Transform: Compose{
			RandomResizedCrop{Size: 16},
			HorizontalFlip{P: 0.5},
			DefaultRandAugment,
		},
		Normalize: Normalize{Mean: ImageNetMean, Std: ImageNetStd},
		Erasing:   &RandomErasing{P: 0.25},
		Mixer:     &mixer,
	}
}

func TestLoaderDeterministicAcrossWorkers(t *testing.T) {
	ds := newMemDataset(50, 24, 20)
	var runs [][]Batch
	for _, workers := range []int{1, 4} {
		l, err := NewLoader(ds, trainConfig(workers))
		if err != nil {
			t.Fatal(err)
		}
		runs = append(runs, collect(t, l, 3))
		l.Close()
	}
	if len(runs[0]) != 7 || !reflect.DeepEqual(runs[0], runs[1]) {
		t.Fatalf("1 and 4 workers give different batches (%d and %d batches)", len(runs[0]), len(runs[1]))
	}
	// The epoch is a permutation, and another epoch shuffles differently.
	var idx []int
	for _, b := range runs[0] {
		idx = append(idx, b.Indices...)
		if b.N != len(b.Labels) || len(b.Float) != b.N*3*16*16 || len(b.Targets) != b.N*5 {
			t.Fatalf("batch %d: N %d, %d labels, %d floats, %d targets", b.Index, b.N, len(b.Labels), len(b.Float), len(b.Targets))
		}
		for i, k := range b.Indices {
			if b.Labels[i] != int64(ds.labels[k]) {
				t.Fatalf("label of sample %d is %d", k, b.Labels[i])
			}
		}
	}
	sorted := append([]int(nil), idx...)
	sort.Ints(sorted)
	for i, v := range sorted {
		if v != i {
			t.Fatalf("epoch does not visit every sample once: %v", sorted)
		}
	}
	l, _ := NewLoader(ds, trainConfig(2))
	other := collect(t, l, 4)
	if reflect.DeepEqual(other[0].Indices, runs[0][0].Indices) {
		t.Fatal("epochs 3 and 4 have the same order")
	}
	// A sample's augmentation depends on (seed, epoch, index) only: the same
	// sample in an unshuffled loader with the same transforms comes out the
	// same.
	cfg := trainConfig(1)
	cfg.Shuffle, cfg.Mixer, cfg.BatchSize = false, nil, 50
	plain, _ := NewLoader(ds, cfg)
	all := collect(t, plain, 3)[0]
	cfg.BatchSize = 8
	cfg.Shuffle = true
	shuffled, _ := NewLoader(ds, cfg)
	first := collect(t, shuffled, 3)[0]
	per := 3 * 16 * 16
	for i, k := range first.Indices {
		if !reflect.DeepEqual(first.Float[i*per:(i+1)*per], all.Float[k*per:(k+1)*per]) {
			t.Fatalf("sample %d differs between batch positions", k)
		}
	}
}

func TestLoaderDropLastAndUint8(t *testing.T) {
	ds := newMemDataset(10, 4, 3)
	for _, tc := range []struct {
		drop  bool
		sizes []int
	}{{false, []int{4, 4, 2}}, {true, []int{4, 4}}} {
		l, err := NewLoader(ds, LoaderConfig{BatchSize: 4, Workers: 3, DropLast: tc.drop, Output: OutputUint8})
		if err != nil {
			t.Fatal(err)
		}
		if l.NumBatches() != len(tc.sizes) {
			t.Fatalf("drop %v: %d batches", tc.drop, l.NumBatches())
		}
		batches := collect(t, l, 0)
		var sizes []int
		for _, b := range batches {
			sizes = append(sizes, b.N)
		}
		if !reflect.DeepEqual(sizes, tc.sizes) {
			t.Fatalf("drop %v: batch sizes %v, want %v", tc.drop, sizes, tc.sizes)
		}
		// Unshuffled uint8 batches are the images in CHW order.
		b := batches[1]
		for i, k := range b.Indices {
			if k != 4+i {
				t.Fatalf("order %v", b.Indices)
			}
			chw := ds.imgs[k].ToCHW(make([]uint8, 36))
			if !reflect.DeepEqual(b.Uint8[i*36:(i+1)*36], chw) || b.C != 3 || b.H != 3 || b.W != 4 {
				t.Fatalf("sample %d pixels differ", k)
			}
		}
	}
}

func TestLoaderGrayscale(t *testing.T) {
	dir := t.TempDir()
	writeIDXSplit(t, dir, "train", 5, 4, 4, false)
	ds, err := OpenFashionMNIST(dir, Train)
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewLoader(ds, LoaderConfig{BatchSize: 5, Workers: 1, Normalize: NormalizationFor("fashion-mnist")})
	if err != nil {
		t.Fatal(err)
	}
	b := collect(t, l, 0)[0]
	if b.C != 3 || len(b.Float) != 5*3*16 {
		t.Fatalf("grayscale batch %dx%dx%dx%d", b.N, b.C, b.H, b.W)
	}
	img, _ := LoadImage(ds, 2)
	want := (float32(img.Pix[7])/255 - 0.2860) / 0.3530
	for c := 0; c < 3; c++ {
		if got := b.Float[2*48+c*16+7]; got != want {
			t.Fatalf("channel %d = %v, want %v", c, got, want)
		}
	}
}

func TestLoaderBadImages(t *testing.T) {
	// A real corrupt file in an ImageFolder.
	root := t.TempDir()
	writeClassTree(t, filepath.Join(root, "train"), []string{"a", "b"}, []int{3, 3})
	bad := filepath.Join(root, "train", "b", "img_001.png")
	if err := os.WriteFile(bad, []byte("\x89PNG\r\n\x1a\nbroken"), 0o644); err != nil {
		t.Fatal(err)
	}
	ds, err := OpenImageFolder(root, Train)
	if err != nil {
		t.Fatal(err)
	}
	cfg := LoaderConfig{BatchSize: 4, Workers: 2, Normalize: Normalize{Mean: ImageNetMean, Std: ImageNetStd}}
	l, _ := NewLoader(ds, cfg)
	it := l.Epoch(context.Background(), 0)
	var gotErr error
	for gotErr == nil {
		var b *Batch
		b, gotErr = it.Next()
		b.Release()
	}
	it.Close()
	if gotErr == io.EOF || !strings.Contains(gotErr.Error(), bad) {
		t.Fatalf("error %v does not name %s", gotErr, bad)
	}
	cfg.SkipBadImages = true
	l, _ = NewLoader(ds, cfg)
	batches := collect(t, l, 0)
	if len(batches) != 2 || batches[0].N != 4 || batches[1].N != 1 || batches[1].Skipped != 1 || l.Skipped() != 1 {
		t.Fatalf("skipping: %d batches, skipped %d", len(batches), l.Skipped())
	}
	// A batch whose samples all fail is dropped.
	mem := newMemDataset(6, 2, 2)
	mem.bad[4], mem.bad[5] = true, true
	l, _ = NewLoader(mem, LoaderConfig{BatchSize: 2, Workers: 1, SkipBadImages: true, Output: OutputUint8})
	if bs := collect(t, l, 0); len(bs) != 2 || l.Skipped() != 2 {
		t.Fatalf("%d batches, %d skipped", len(bs), l.Skipped())
	}
}

func TestLoaderSizeMismatch(t *testing.T) {
	ds := newMemDataset(4, 5, 5)
	ds.imgs[2] = randomImage(6, 5, 3, 1)
	l, _ := NewLoader(ds, LoaderConfig{BatchSize: 4, Workers: 1, Output: OutputUint8})
	it := l.Epoch(context.Background(), 0)
	defer it.Close()
	_, err := it.Next()
	if err == nil || !strings.Contains(err.Error(), "sample 2") {
		t.Fatalf("error %v", err)
	}
}

func TestLoaderShutdown(t *testing.T) {
	base := runtime.NumGoroutine()
	ds := newMemDataset(400, 8, 8)
	slow := TransformFunc(func(img *Image, _ *rand.Rand) *Image { time.Sleep(time.Millisecond); return img })
	l, err := NewLoader(ds, LoaderConfig{BatchSize: 4, Workers: 4, Prefetch: 2, Output: OutputUint8, Transform: slow})
	if err != nil {
		t.Fatal(err)
	}
	// Close an epoch in the middle.
	it := l.Epoch(context.Background(), 0)
	b, err := it.Next()
	if err != nil {
		t.Fatal(err)
	}
	b.Release()
	it.Close()
	if _, err := it.Next(); !errors.Is(err, ErrLoaderClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
	// Cancel through the context.
	ctx, cancel := context.WithCancel(context.Background())
	it = l.Epoch(ctx, 1)
	if _, err := it.Next(); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := it.Next(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Next after cancel: %v", err)
	}
	it.Close()
	// Loader.Close stops running epochs and refuses new ones.
	it = l.Epoch(context.Background(), 2)
	l.Close()
	for {
		b, err := it.Next()
		if err != nil {
			if !errors.Is(err, ErrLoaderClosed) {
				t.Fatalf("Next after loader Close: %v", err)
			}
			break
		}
		b.Release()
	}
	if _, err := l.Epoch(context.Background(), 3).Next(); !errors.Is(err, ErrLoaderClosed) {
		t.Fatalf("epoch of a closed loader: %v", err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base {
		t.Fatalf("%d goroutines left running (%d before)", n, base)
	}
}

func TestLoaderConfigErrors(t *testing.T) {
	ds := newMemDataset(3, 2, 2)
	m := DefaultMixer(3)
	for _, cfg := range []LoaderConfig{
		{BatchSize: 0},
		{BatchSize: 2, Workers: -1},
		{BatchSize: 2, Mixer: &m, Normalize: Normalize{Std: [3]float32{1, 1, 1}}},
		{BatchSize: 2},
	} {
		if _, err := NewLoader(ds, cfg); err == nil {
			t.Fatalf("config %+v accepted", cfg)
		}
	}
}
