package datasets

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
)

// Output selects the element type of a Loader's batches.
type Output int

// The batch element types.
const (
	// OutputFloat32 batches are float32 NCHW, normalized (Batch.Float).
	OutputFloat32 Output = iota
	// OutputUint8 batches are the transformed 8-bit pixels as NCHW
	// (Batch.Uint8); Normalize, Erasing and Mixer are not applied.
	OutputUint8
)

// LoaderConfig configures a Loader.
type LoaderConfig struct {
	BatchSize int
	// Workers decoding and augmenting batches; 0 means GOMAXPROCS.
	Workers int
	// Prefetch is how many batches may be queued ahead of the consumer;
	// 0 means 2*Workers.
	Prefetch int
	// Shuffle the sample order every epoch (ShuffleOrder).
	Shuffle bool
	// DropLast drops the last batch when it is smaller than BatchSize.
	DropLast bool
	// Seed of the shuffles and of every sample's and batch's generator.
	Seed uint64
	// Transform is applied to every decoded image (nil: none). All its
	// randomness must come from the generator it is given.
	Transform Transform
	// Output selects float32 (normalized) or uint8 batches.
	Output Output
	// Normalize turns images into float32 CHW; required for OutputFloat32
	// (a zero Std is an error), see NormalizationFor.
	Normalize Normalize
	// Erasing, when set, is applied to each normalized image.
	Erasing *RandomErasing
	// Mixer, when set and enabled, mixes each float32 batch and fills
	// Batch.Targets.
	Mixer *Mixer
	// SkipBadImages skips samples that fail to load (corrupt or missing
	// files) and counts them, instead of failing the epoch. A batch with
	// skipped samples is smaller than BatchSize.
	SkipBadImages bool
	// Shard, in data-parallel training, restricts every epoch to this
	// process's share of the sample order (the zero value: all of it).
	Shard Shard
	// Repeats, above 1, turns on repeated augmentation (timm's
	// RepeatAugSampler, see RepeatAugKeys): each selected image comes
	// Repeats times an epoch, spread over the shard's ranks, each copy
	// with its own augmentation. Shard.Pad does not apply then.
	Repeats int
}

// Shard is one process's share of each epoch's sample order, as PyTorch's
// DistributedSampler deals it: the order (shuffled with the same seed on
// every process) is dealt round-robin, sample k to process k mod Count.
// With Pad the order is first extended by its own beginning to a multiple
// of Count, so that every process gets the same number of samples and
// steps (training); without it, no sample is counted twice and the first
// n mod Count processes get one sample more (evaluation).
type Shard struct {
	Rank, Count int
	Pad         bool
}

// apply deals order to the shard.
func (s Shard) apply(order []int) []int {
	if s.Count <= 1 {
		return order
	}
	if s.Pad {
		for total := (len(order) + s.Count - 1) / s.Count * s.Count; len(order) < total; {
			order = append(order, order[:min(total-len(order), len(order))]...)
		}
	}
	mine := make([]int, 0, len(order)/s.Count+1)
	for k := s.Rank; k < len(order); k += s.Count {
		mine = append(mine, order[k])
	}
	return mine
}

// Len is the number of samples of n that the shard holds.
func (s Shard) Len(n int) int {
	switch {
	case s.Count <= 1:
		return n
	case s.Pad:
		return (n + s.Count - 1) / s.Count
	}
	return (n - s.Rank + s.Count - 1) / s.Count
}

// Batch is one batch of samples. Its slices come from a pool: call Release
// when done with them.
type Batch struct {
	Epoch int
	Index int // batch number within the epoch
	// N samples of C x H x W.
	N, C, H, W int
	// Float holds N*C*H*W normalized values (OutputFloat32).
	Float []float32
	// Uint8 holds N*C*H*W pixel values (OutputUint8).
	Uint8 []uint8
	// Labels are the samples' class indices.
	Labels []int64
	// Targets holds N*NumClasses soft targets when a Mixer is configured.
	Targets []float32
	// Mix says how the batch was mixed.
	Mix MixInfo
	// Indices are the samples' indices in the data set.
	Indices []int
	// Skipped counts samples of this batch that failed to load and were
	// skipped (SkipBadImages).
	Skipped int

	pool *sync.Pool
}

// Release returns the batch's buffers to the loader's pool. The batch must
// not be used afterwards.
func (b *Batch) Release() {
	if b == nil || b.pool == nil {
		return
	}
	p := b.pool
	b.pool = nil
	p.Put(b)
}

// ErrLoaderClosed is returned by an epoch of a Loader that was closed.
var ErrLoaderClosed = errors.New("datasets: loader closed")

// Loader yields batches of a data set, decoding and augmenting them on
// worker goroutines. Batches come out in order; every random choice depends
// only on (Seed, epoch, sample index) or (Seed, epoch, batch index), so the
// batches of an epoch are identical whatever the number of workers. In a
// shard, batch b of rank r mixes with the generator of global batch
// b*Count + r, so that ranks do not repeat each other's mixing.
type Loader struct {
	ds      Dataset
	cfg     LoaderConfig
	pool    sync.Pool
	skipped atomic.Int64

	// When the transform starts with a RandomResizedCrop and the data set
	// can decode part of an image, the crop is fused with decoding: only
	// the rows and columns the crop needs are decoded, and the resize reuses
	// the worker's buffers. The result is the same as without fusing.
	regions regionLoader
	crop    RandomResizedCrop
	rest    Transform

	mu     sync.Mutex
	closed bool
	open   map[*EpochIter]struct{}
}

// NewLoader checks cfg and returns a loader over ds.
func NewLoader(ds Dataset, cfg LoaderConfig) (*Loader, error) {
	if cfg.BatchSize <= 0 {
		return nil, fmt.Errorf("loader: batch size %d, want at least 1", cfg.BatchSize)
	}
	if cfg.Workers < 0 || cfg.Prefetch < 0 {
		return nil, fmt.Errorf("loader: %d workers and prefetch %d, want non-negative", cfg.Workers, cfg.Prefetch)
	}
	if cfg.Workers == 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.Prefetch == 0 {
		cfg.Prefetch = 2 * cfg.Workers
	}
	if cfg.Output != OutputFloat32 && cfg.Output != OutputUint8 {
		return nil, fmt.Errorf("loader: unknown output kind %d", cfg.Output)
	}
	if cfg.Mixer != nil && cfg.Mixer.Enabled() {
		if cfg.Output != OutputFloat32 {
			return nil, errors.New("loader: mixing needs float32 output")
		}
		if cfg.Mixer.NumClasses != len(ds.Classes()) {
			return nil, fmt.Errorf("loader: mixer has %d classes, data set %d", cfg.Mixer.NumClasses, len(ds.Classes()))
		}
	}
	if cfg.Output == OutputFloat32 {
		for c := 0; c < 3; c++ {
			if cfg.Normalize.Std[c] == 0 {
				return nil, fmt.Errorf("loader: normalization std %v has a zero", cfg.Normalize.Std)
			}
		}
	}
	if ds.Len() == 0 {
		return nil, errors.New("loader: empty data set")
	}
	if sh := cfg.Shard; sh.Count < 0 || (sh.Count > 0 && (sh.Rank < 0 || sh.Rank >= sh.Count)) {
		return nil, fmt.Errorf("loader: shard %d of %d, want 0 <= rank < count", sh.Rank, sh.Count)
	}
	if err := checkRepeatAug(ds.Len(), cfg.Repeats, cfg.Shard); err != nil {
		return nil, err
	}
	l := &Loader{ds: ds, cfg: cfg, open: map[*EpochIter]struct{}{}}
	if rl, ok := ds.(regionLoader); ok {
		if crop, rest, ok := leadingCrop(cfg.Transform); ok && crop.Size > 0 {
			l.regions, l.crop, l.rest = rl, crop, rest
		}
	}
	l.pool.New = func() any { return &Batch{} }
	return l, nil
}

// Dataset returns the loader's data set.
func (l *Loader) Dataset() Dataset { return l.ds }

// NumBatches returns the number of batches of an epoch (of the shard).
func (l *Loader) NumBatches() int {
	n, bs := EpochLen(l.ds.Len(), l.cfg.Shard, l.cfg.Repeats), l.cfg.BatchSize
	if l.cfg.DropLast {
		return n / bs
	}
	return (n + bs - 1) / bs
}

// Skipped returns how many samples were skipped so far (SkipBadImages).
func (l *Loader) Skipped() int64 { return l.skipped.Load() }

// Order returns the sample order of an epoch (of the shard): the data
// set's indices, an image several times with repeated augmentation.
func (l *Loader) Order(epoch int) []int {
	keys := l.keys(epoch)
	for i, k := range keys {
		keys[i] = l.index(k)
	}
	return keys
}

// keys returns the samples of an epoch (of the shard) as keys: the data
// set's index, or with repeated augmentation index*Repeats + copy.
func (l *Loader) keys(epoch int) []int {
	var order []int
	if l.cfg.Shuffle {
		order = ShuffleOrder(l.ds.Len(), l.cfg.Seed, epoch)
	} else {
		order = make([]int, l.ds.Len())
		for i := range order {
			order[i] = i
		}
	}
	if l.cfg.Repeats > 1 {
		return RepeatAugKeys(order, l.cfg.Repeats, l.cfg.Shard)
	}
	return l.cfg.Shard.apply(order)
}

// index is the data set index of a sample key.
func (l *Loader) index(key int) int {
	if l.cfg.Repeats > 1 {
		return key / l.cfg.Repeats
	}
	return key
}

// Close stops every running epoch and waits for their goroutines; epochs
// started afterwards fail with ErrLoaderClosed.
func (l *Loader) Close() error {
	l.mu.Lock()
	l.closed = true
	its := make([]*EpochIter, 0, len(l.open))
	for it := range l.open {
		its = append(its, it)
	}
	l.mu.Unlock()
	for _, it := range its {
		it.Close()
	}
	return nil
}

type batchResult struct {
	batch *Batch
	err   error
}

type batchJob struct {
	index int
	slot  chan batchResult
}

// EpochIter iterates over the batches of one epoch.
type EpochIter struct {
	l      *Loader
	ctx    context.Context
	cancel context.CancelFunc
	queue  chan chan batchResult
	wg     sync.WaitGroup
	err    error // touched by Next only
	once   sync.Once
	closed atomic.Bool
}

// Epoch starts producing the batches of epoch in the background and
// returns their iterator. Cancelling ctx or calling Close on the iterator
// (or the loader) stops the work.
func (l *Loader) Epoch(ctx context.Context, epoch int) *EpochIter {
	ctx, cancel := context.WithCancel(ctx)
	it := &EpochIter{l: l, ctx: ctx, cancel: cancel, queue: make(chan chan batchResult, l.cfg.Prefetch)}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		it.closed.Store(true)
		cancel()
		close(it.queue)
		return it
	}
	l.open[it] = struct{}{}
	l.mu.Unlock()

	order := l.keys(epoch)
	jobs := make(chan batchJob)
	nb := l.NumBatches()
	it.wg.Add(1 + l.cfg.Workers)
	go func() {
		defer it.wg.Done()
		defer close(jobs)
		defer close(it.queue)
		for b := 0; b < nb; b++ {
			slot := make(chan batchResult, 1)
			select {
			case it.queue <- slot:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- batchJob{index: b, slot: slot}:
			case <-ctx.Done():
				return
			}
		}
	}()
	for w := 0; w < l.cfg.Workers; w++ {
		go func() {
			defer it.wg.Done()
			wk := &worker{l: l, epoch: epoch, order: order}
			for {
				select {
				case job, ok := <-jobs:
					if !ok {
						return
					}
					b, err := wk.build(ctx, job.index)
					job.slot <- batchResult{batch: b, err: err}
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	return it
}

// Next returns the next batch, io.EOF after the last one, or the first
// error (a sample that failed to load, or the context's error).
func (it *EpochIter) Next() (*Batch, error) {
	for it.err == nil {
		if err := it.ctx.Err(); err != nil {
			it.fail(it.ctxErr())
			break
		}
		var slot chan batchResult
		var ok bool
		select {
		case slot, ok = <-it.queue:
		case <-it.ctx.Done():
			continue
		}
		if !ok {
			if it.ctx.Err() != nil {
				it.fail(it.ctxErr())
			} else {
				it.fail(io.EOF)
			}
			break
		}
		select {
		case r := <-slot:
			if r.err != nil {
				it.fail(r.err)
				break
			}
			if r.batch.N == 0 {
				r.batch.Release() // every sample was skipped
				continue
			}
			return r.batch, nil
		case <-it.ctx.Done():
		}
	}
	return nil, it.err
}

// ctxErr is the error of a cancelled epoch: ErrLoaderClosed after Close,
// the context's error otherwise.
func (it *EpochIter) ctxErr() error {
	if it.closed.Load() {
		return ErrLoaderClosed
	}
	return it.ctx.Err()
}

func (it *EpochIter) fail(err error) {
	if it.err == nil {
		it.err = err
	}
	if err != io.EOF {
		it.cancel()
	}
}

// Close stops the epoch's goroutines, waits for them and releases the
// batches still queued; Next then returns ErrLoaderClosed. It is safe to
// call more than once, and from another goroutine than Next's.
func (it *EpochIter) Close() error {
	it.once.Do(func() {
		it.closed.Store(true)
		it.cancel()
		it.wg.Wait()
		for slot := range it.queue {
			select {
			case r := <-slot:
				r.batch.Release()
			default:
			}
		}
		it.l.mu.Lock()
		delete(it.l.open, it)
		it.l.mu.Unlock()
	})
	return nil
}

// regionLoader is implemented by data sets that can decode part of an
// image (FileDataset): loadRegion is Load for a caller that needs only the
// rectangle plan returns, see decodeImageRegion; file is a read buffer
// reused from call to call.
type regionLoader interface {
	loadRegion(i int, dst *Image, file *[]byte, plan func(w, h int) (x, y, cw, ch int)) (offX, offY int, err error)
}

// worker holds one goroutine's reusable buffers.
type worker struct {
	l     *Loader
	epoch int
	order []int // sample keys (Loader.keys)
	img   Image // decoded image
	// Fused crop: the file's bytes, the resized crop and resize scratch.
	file []byte
	out  Image
	rs   resizeScratch
}

// load loads sample idx and applies the transform, drawing from rng.
func (w *worker) load(idx int, rng *rand.Rand) (*Image, error) {
	l := w.l
	if l.regions == nil {
		if err := l.ds.Load(idx, &w.img); err != nil {
			return nil, err
		}
		if l.cfg.Transform == nil {
			return &w.img, nil
		}
		return l.cfg.Transform.Apply(&w.img, rng), nil
	}
	// RandomResizedCrop.Apply, fused with decoding.
	var top, left, h, wd int
	offX, offY, err := l.regions.loadRegion(idx, &w.img, &w.file, func(width, height int) (int, int, int, int) {
		top, left, h, wd = l.crop.Params(width, height, rng)
		return left, top, wd, h
	})
	if err != nil {
		return nil, err
	}
	img := resizeInto(&w.out, &w.img, left-offX, top-offY, wd, h, l.crop.Size, l.crop.Size, l.crop.Interpolation, &w.rs)
	if l.rest != nil {
		img = l.rest.Apply(img, rng)
	}
	return img, nil
}

// build decodes, augments and assembles batch b.
func (w *worker) build(ctx context.Context, b int) (*Batch, error) {
	l := w.l
	cfg := &l.cfg
	start := b * cfg.BatchSize
	end := min(start+cfg.BatchSize, len(w.order))
	batch := w.newBatch(b)
	fail := func(err error) (*Batch, error) {
		batch.Release()
		return nil, err
	}
	for k := start; k < end; k++ {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		// The generator is keyed by the sample key, so that the copies of
		// an image under repeated augmentation are augmented differently.
		idx := l.index(w.order[k])
		rng := SampleRNG(cfg.Seed, w.epoch, w.order[k])
		img, err := w.load(idx, rng)
		if err != nil {
			if cfg.SkipBadImages {
				batch.Skipped++
				l.skipped.Add(1)
				continue
			}
			return fail(err)
		}
		if err := w.add(batch, img, idx, end-start, rng); err != nil {
			return fail(err)
		}
	}
	per := batch.C * batch.H * batch.W
	if cfg.Output == OutputFloat32 {
		batch.Float = batch.Float[:batch.N*per]
	} else {
		batch.Uint8 = batch.Uint8[:batch.N*per]
	}
	if cfg.Mixer != nil && cfg.Mixer.Enabled() && batch.N > 0 {
		targets, info, err := cfg.Mixer.Apply(batch.Float, batch.N, batch.C, batch.H, batch.W, batch.Labels,
			BatchRNG(cfg.Seed, w.epoch, b*max(1, cfg.Shard.Count)+cfg.Shard.Rank))
		if err != nil {
			return fail(fmt.Errorf("loader: batch %d: %w", b, err))
		}
		batch.Targets, batch.Mix = targets, info
	}
	return batch, nil
}

// newBatch takes an empty batch b of the current epoch from the pool.
func (w *worker) newBatch(b int) *Batch {
	batch := w.l.pool.Get().(*Batch)
	batch.pool = &w.l.pool
	batch.Epoch, batch.Index = w.epoch, b
	batch.N, batch.C, batch.H, batch.W = 0, 0, 0, 0
	batch.Labels = batch.Labels[:0]
	batch.Indices = batch.Indices[:0]
	batch.Targets = nil
	batch.Mix = MixInfo{Lambda: 1}
	batch.Skipped = 0
	return batch
}

// add appends sample idx, transformed into img, to a batch of up to size
// samples: the first sample sets the batch's shape and sizes its buffer;
// the sample is normalized (and erased with rng) or copied as bytes as the
// Output says.
func (w *worker) add(batch *Batch, img *Image, idx, size int, rng *rand.Rand) error {
	cfg := &w.l.cfg
	if err := img.Validate(); err != nil {
		return fmt.Errorf("loader: sample %d after transforms: %w", idx, err)
	}
	c := img.Channels
	if cfg.Output == OutputFloat32 {
		c = cfg.Normalize.outChannels(img.Channels)
	}
	per := c * img.Height * img.Width
	if batch.N == 0 {
		batch.C, batch.H, batch.W = c, img.Height, img.Width
		if cfg.Output == OutputFloat32 {
			batch.Float = growFloat32(batch.Float, size*per)
			batch.Uint8 = batch.Uint8[:0]
		} else {
			batch.Uint8 = growUint8(batch.Uint8, size*per)
			batch.Float = batch.Float[:0]
		}
	} else if c != batch.C || img.Height != batch.H || img.Width != batch.W {
		return fmt.Errorf("loader: sample %d is %dx%dx%d after transforms but batch %d holds %dx%dx%d images (add a resize or crop transform)",
			idx, c, img.Height, img.Width, batch.Index, batch.C, batch.H, batch.W)
	}
	off := batch.N * per
	if cfg.Output == OutputFloat32 {
		x := cfg.Normalize.Apply(img, batch.Float[off:off+per])
		if cfg.Erasing != nil {
			cfg.Erasing.Apply(x, c, img.Height, img.Width, rng)
		}
	} else {
		img.ToCHW(batch.Uint8[off : off+per])
	}
	batch.Labels = append(batch.Labels, int64(w.l.ds.Label(idx)))
	batch.Indices = append(batch.Indices, idx)
	batch.N++
	return nil
}

func growFloat32(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}

func growUint8(s []uint8, n int) []uint8 {
	if cap(s) < n {
		return make([]uint8, n)
	}
	return s[:n]
}
