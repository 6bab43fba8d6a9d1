package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/gsrmt/gsrmt/datasets"
)

// limited exposes the first n samples of a data set (--limit-train/--limit-eval).
type limited struct {
	datasets.Dataset
	n int
}

func (l limited) Len() int { return l.n }

func limit(ds datasets.Dataset, n int) datasets.Dataset {
	if n <= 0 || n >= ds.Len() {
		return ds
	}
	return limited{ds, n}
}

// openOptions are the reader options of a run: the pooled Mini-ImageNet
// split drawn with splitSeed.
func openOptions(splitSeed uint64) datasets.OpenOptions {
	return datasets.OpenOptions{MiniImageNet: datasets.MiniImageNetOptions{Split: datasets.PooledSplitConfig{Seed: splitSeed}}}
}

// DataPlan describes the data of a run: the splits, transforms and
// normalization actually used. TrainAugment and EvalTransform describe the
// transforms as config.json records them (datasets.Describe), and
// TransformRule why they were chosen (datasets.TransformRule).
type DataPlan struct {
	Train, Test   datasets.Dataset
	TrainAugment  string
	EvalTransform string
	TransformRule string
	Normalize     datasets.Normalize
	trainT, evalT datasets.Transform

	// Val is the validation split (--val-split), nil without one; ValRule
	// says how it was drawn.
	Val     datasets.Dataset
	ValRule string
}

// openData opens the training and test splits of a run, downloading
// CIFAR-10 or CIFAR-100 first when asked.
func openData(ctx context.Context, o *Options, log io.Writer) (*DataPlan, error) {
	dir := o.DataDir
	if o.Download && datasets.Downloadable(o.Dataset) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("data-dir %s: %w", dir, err)
		}
		last := int64(-1)
		got, err := datasets.Download(ctx, o.Dataset, dir, datasets.DownloadOptions{
			Progress: func(done, total int64) {
				if mb := done >> 23; mb != last { // every 8 MiB
					last = mb
					fmt.Fprintf(log, "download: %.0f of %.0f MB\n", float64(done)/1e6, float64(total)/1e6)
				}
			},
		})
		if err != nil {
			return nil, fmt.Errorf("download %s into %s: %w", o.Dataset, dir, err)
		}
		dir = got
	}
	opts := openOptions(o.SplitSeed)
	tr, err := datasets.Open(o.Dataset, dir, datasets.Train, opts)
	if err != nil {
		hint := ""
		if datasets.Downloadable(o.Dataset) && !o.Download && errors.Is(err, fs.ErrNotExist) {
			hint = fmt.Sprintf(" (add --download to fetch %s)", o.Dataset)
		}
		return nil, fmt.Errorf("open the training split: %w%s", err, hint)
	}
	te, err := datasets.Open(o.Dataset, dir, datasets.Test, opts)
	if err != nil {
		return nil, fmt.Errorf("open the test split: %w", err)
	}
	p := &DataPlan{Normalize: datasets.NormalizationFor(o.Dataset)}
	if o.ValSplit != "" { // held out before the limits, which apply to each split
		if tr, p.Val, p.ValRule, err = openValSplit(o, dir, tr, opts); err != nil {
			return nil, err
		}
		p.Val = limit(p.Val, o.LimitEval)
	}
	p.Train, p.Test = limit(tr, o.LimitTrain), limit(te, o.LimitEval)
	aug, interp := o.augment(p.Normalize)
	if p.trainT, err = datasets.TrainTransformWith(o.Dataset, p.Train, o.ImgSize, aug); err != nil {
		return nil, fmt.Errorf("--%w", err)
	}
	p.evalT = datasets.EvalTransformWith(o.Dataset, p.Train, o.ImgSize, interp)
	p.TrainAugment, p.EvalTransform = datasets.Describe(p.trainT), datasets.Describe(p.evalT)
	p.TransformRule = datasets.TransformRule(o.Dataset, p.Train, o.ImgSize)
	if p.Train.Len() == 0 || p.Test.Len() == 0 {
		return nil, fmt.Errorf("%s at %s: %d training and %d test images: both splits need images", o.Dataset, dir, p.Train.Len(), p.Test.Len())
	}
	return p, nil
}

// trainLoader batches the training split of a shard (in a group of n
// ranks, batches of o.Batch / n: together they make the global batch).
func (p *DataPlan) trainLoader(o *Options, classes int, shard datasets.Shard) (*datasets.Loader, error) {
	batch := o.Batch / max(1, shard.Count)
	cfg := datasets.LoaderConfig{
		BatchSize: batch, Workers: o.Workers, Shuffle: true, DropLast: o.DropLast && datasets.EpochLen(p.Train.Len(), shard, o.AugRepeats) >= batch,
		Seed: o.Seed, Transform: p.trainT, Normalize: p.Normalize, SkipBadImages: o.SkipBadImages, Shard: shard, Repeats: o.AugRepeats,
	}
	cfg.Erasing = o.erasing()
	if o.Mixup > 0 || o.CutMix > 0 {
		cfg.Mixer = &datasets.Mixer{MixupAlpha: o.Mixup, CutMixAlpha: o.CutMix, SwitchProb: 0.5, Prob: 1, Smoothing: o.LabelSmoothing, NumClasses: classes}
	}
	return datasets.NewLoader(p.Train, cfg)
}

func (p *DataPlan) evalLoader(o *Options, ds datasets.Dataset, batch int, shard datasets.Shard) (*datasets.Loader, error) {
	return datasets.NewLoader(ds, datasets.LoaderConfig{
		BatchSize: batch, Workers: o.Workers, Seed: o.Seed, Transform: p.evalT, Normalize: p.Normalize,
		SkipBadImages: o.SkipBadImages, Shard: shard,
	})
}

// EvalData opens one split of a data set for evaluation with the
// transform a training run at imgSize would use
// (datasets.EvalTransformFor: none at a data set's native side, else
// resize + center crop).
func EvalData(dataset, dir string, split datasets.Split, imgSize, limitN int, splitSeed uint64) (datasets.Dataset, datasets.Transform, error) {
	ds, err := datasets.Open(dataset, dir, split, openOptions(splitSeed))
	if err != nil {
		return nil, nil, err
	}
	ds = limit(ds, limitN)
	if ds.Len() == 0 {
		return nil, nil, fmt.Errorf("%s at %s: the %s split has no images", dataset, dir, split)
	}
	return ds, datasets.EvalTransformFor(dataset, ds, imgSize), nil
}

// EvalLoader batches a data set in order for evaluation.
func EvalLoader(ds datasets.Dataset, t datasets.Transform, norm datasets.Normalize, batch, workers int) (*datasets.Loader, error) {
	return datasets.NewLoader(ds, datasets.LoaderConfig{BatchSize: batch, Workers: workers, Transform: t, Normalize: norm})
}

// DataBenchResult is what `gsrmt-cli bench-data` reports.
type DataBenchResult struct {
	Dataset      string  `json:"dataset"`
	ImgSize      int     `json:"img_size"`
	Batch        int     `json:"batch_size"`
	Workers      int     `json:"workers"`
	Batches      int     `json:"batches"`
	Images       int     `json:"images"`
	Seconds      float64 `json:"seconds"`
	ImagesPerS   float64 `json:"images_per_s"`
	TrainAugment string  `json:"train_augment"`
}

// BenchData times the training input pipeline of a data set (decode,
// augment, normalize, Mixup/CutMix as the options say) over up to batches
// batches of epoch 0, after one untimed batch.
func BenchData(ctx context.Context, o Options, batches int) (DataBenchResult, error) {
	if o.Log == nil {
		o.Log = io.Discard
	}
	res := DataBenchResult{Dataset: o.Dataset, ImgSize: o.ImgSize, Batch: o.Batch, Workers: o.Workers}
	data, err := openData(ctx, &o, o.Log)
	if err != nil {
		return res, err
	}
	res.TrainAugment = data.TrainAugment
	l, err := data.trainLoader(&o, len(data.Train.Classes()), datasets.Shard{})
	if err != nil {
		return res, err
	}
	defer l.Close()
	it := l.Epoch(ctx, 0)
	defer it.Close()
	var start time.Time
	for b := 0; b <= batches; b++ {
		batch, err := it.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return res, fmt.Errorf("bench-data: %w", err)
		}
		if b == 0 {
			start = time.Now() // the first batch includes the workers' start-up
		} else {
			res.Images += batch.N
			res.Batches++
		}
		batch.Release()
	}
	res.Seconds = time.Since(start).Seconds()
	if res.Batches == 0 {
		return res, fmt.Errorf("bench-data: %s has fewer than 2 batches of %d images", o.Dataset, o.Batch)
	}
	res.ImagesPerS = float64(res.Images) / res.Seconds
	return res, nil
}
