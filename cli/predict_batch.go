package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"sort"
	"sync"
	"time"

	"github.com/gsrmt/gsrmt/datasets"
	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/gsrmt/gsrmt/internal/sysmon"
	"github.com/gsrmt/gsrmt/internal/torch"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// imageFiles is the data set of predict's files for a datasets.Loader: Load
// decodes a file (every image has label 0 of one class), and records why a
// file failed, so that --skip-bad-images can name the files it skipped.
type imageFiles struct {
	files  []string
	mu     sync.Mutex
	failed map[int]error
}

func newImageFiles(files []string) *imageFiles {
	return &imageFiles{files: files, failed: map[int]error{}}
}

// Len returns the number of files.
func (f *imageFiles) Len() int { return len(f.files) }

// Classes returns one class: the images are unlabelled.
func (f *imageFiles) Classes() []string { return []string{"image"} }

// Label returns 0.
func (f *imageFiles) Label(int) int { return 0 }

// Load decodes file i; errors name the file.
func (f *imageFiles) Load(i int, dst *datasets.Image) error {
	err := datasets.DecodeImageFile(f.files[i], dst)
	if err != nil {
		f.mu.Lock()
		f.failed[i] = err
		f.mu.Unlock()
	}
	return err
}

// skipped returns why each file that failed to load failed, in the files'
// order (the errors name the files).
func (f *imageFiles) skipped() []error {
	f.mu.Lock()
	defer f.mu.Unlock()
	idx := make([]int, 0, len(f.failed))
	for i := range f.failed {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	out := make([]error, len(idx))
	for n, i := range idx {
		out[n] = f.failed[i]
	}
	return out
}

// batchPredictor classifies image files in batches: worker goroutines
// decode, resize and normalize them (datasets.Loader, datasets.ModelInput),
// and the model runs one forward per batch.
type batchPredictor struct {
	l       *loaded
	dev     gotch.Device
	k       int  // top classes listed per image
	batch   int  // images per forward
	workers int  // decoding goroutines (0: one per CPU)
	tta     bool // also classify each image's horizontal flip, and average
	skipBad bool // skip and count files that fail to load
}

// predictStats is what a run of a batchPredictor did.
type predictStats struct {
	images  int     // predictions written
	skipped []error // why the files skipped (skipBad) failed to load
	seconds float64 // from the first batch to the last prediction
}

// imagesPerSecond is the run's throughput.
func (s predictStats) imagesPerSecond() float64 {
	if s.seconds <= 0 {
		return 0
	}
	return float64(s.images) / s.seconds
}

// writeTo classifies files in order and writes the predictions with w,
// finishing it after the last. A run in which every file failed to load
// is an error.
func (bp *batchPredictor) writeTo(ctx context.Context, files []string, w predictionWriter) (predictStats, error) {
	st, err := bp.run(ctx, files, w.write)
	if err != nil {
		return st, err
	}
	if st.images == 0 && len(st.skipped) > 0 {
		return st, fmt.Errorf("predict: all %d images failed to load (--skip-bad-images), the first: %v", len(st.skipped), st.skipped[0])
	}
	return st, w.finish()
}

// run classifies files in order, calling emit with each prediction.
func (bp *batchPredictor) run(ctx context.Context, files []string, emit func(prediction) error) (st predictStats, err error) {
	ds := newImageFiles(files)
	loader, err := datasets.NewLoader(ds, datasets.LoaderConfig{BatchSize: bp.batch, Workers: bp.workers,
		Transform: datasets.ModelInput{Side: bp.l.cfg.ImageSize}, Normalize: bp.l.norm, SkipBadImages: bp.skipBad})
	if err != nil {
		return st, fmt.Errorf("predict: %w", err)
	}
	defer loader.Close()
	// As train.Evaluate: libtorch's threads start from this locked thread
	// and run at normal priority.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	_, _ = sysmon.Restore()
	start := time.Now()
	it := loader.Epoch(ctx, 0)
	defer it.Close()
	for {
		b, err := it.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && ctx.Err() != nil {
			return st, fmt.Errorf("predict: interrupted after %d of %d images", st.images, len(files))
		}
		if err != nil {
			return st, fmt.Errorf("predict: %w", err)
		}
		err = bp.predictBatch(b, files, emit)
		n := b.N
		b.Release()
		if err != nil {
			return st, err
		}
		st.images += n
	}
	st.seconds = time.Since(start).Seconds()
	st.skipped = ds.skipped()
	return st, nil
}

// predictBatch classifies one batch and emits its predictions in order.
func (bp *batchPredictor) predictBatch(b *datasets.Batch, files []string, emit func(prediction) error) error {
	logits, probs, err := bp.forward(b)
	if err != nil {
		return fmt.Errorf("predict: the batch of %d images from %s: %w", b.N, files[b.Indices[0]], err)
	}
	c := bp.l.cfg.NumClasses
	for i, idx := range b.Indices {
		p := describe(bp.l, files[idx], logits[i*c:(i+1)*c], probs[i*c:(i+1)*c], bp.k)
		if err := emit(p); err != nil {
			return err
		}
	}
	return nil
}

// forward runs the model on a batch and returns its logits and softmax
// probabilities, N rows of NumClasses. With tta the model also runs on the
// batch flipped left to right, and each image gets the mean of the two
// views' probabilities (the softmax averaged, as Simonyan and Zisserman's
// flip TTA: timm's inference.py has none) and the mean of their logits.
func (bp *batchPredictor) forward(b *datasets.Batch) (logits, probs []float32, err error) {
	defer torch.Catch(&err, "forward")
	classes := bp.l.cfg.NumClasses
	var flipped []float32
	torch.NoGrad(func() {
		x := ts.MustOfSlice(b.Float[:b.N*b.C*b.H*b.W]).MustView([]int64{int64(b.N), int64(b.C), int64(b.H), int64(b.W)}, true)
		if bp.dev != gotch.CPU {
			x = x.MustTo(bp.dev, true)
		}
		defer x.MustDrop()
		if logits, err = modelLogits(bp.l.model, x); err != nil || !bp.tta {
			return
		}
		xf := x.MustFlip([]int64{3}, false) // (N, C, H, W): W is dim 3
		defer xf.MustDrop()
		flipped, err = modelLogits(bp.l.model, xf)
	})
	if err != nil {
		return nil, nil, err
	}
	if len(logits) != b.N*classes || (bp.tta && len(flipped) != len(logits)) {
		return nil, nil, fmt.Errorf("the model returned %d logits for %d images of %d classes", len(logits), b.N, classes)
	}
	probs = softmaxRows(logits, classes)
	if bp.tta {
		probsF := softmaxRows(flipped, classes)
		for i := range probs {
			probs[i] = float32((float64(probs[i]) + float64(probsF[i])) / 2)
			logits[i] = float32((float64(logits[i]) + float64(flipped[i])) / 2)
		}
	}
	return logits, probs, nil
}

// modelLogits is an eval-mode forward of x, its logits as float32 on the
// CPU.
func modelLogits(m *gsrmt.Model, x *ts.Tensor) ([]float32, error) {
	out, err := m.Forward(x, false)
	if err != nil {
		return nil, err
	}
	cpu := out.MustTotype(gotch.Float, true).MustTo(gotch.CPU, true)
	defer cpu.MustDrop()
	return cpu.Vals().([]float32), nil
}

// softmaxRows is the softmax of each row of classes values, computed in
// float64.
func softmaxRows(logits []float32, classes int) []float32 {
	probs := make([]float32, len(logits))
	for r := 0; r+classes <= len(logits); r += classes {
		row := logits[r : r+classes]
		maxV := row[0]
		for _, v := range row {
			maxV = max(maxV, v)
		}
		var sum float64
		for _, v := range row {
			sum += math.Exp(float64(v - maxV))
		}
		for i, v := range row {
			probs[r+i] = float32(math.Exp(float64(v-maxV)) / sum)
		}
	}
	return probs
}
