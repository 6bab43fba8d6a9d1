package main

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"

	"github.com/gsrmt/gsrmt/datasets"
	"github.com/gsrmt/gsrmt/train"
	"github.com/urfave/cli/v2"
)

func benchDataCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench-data",
		Usage: "time the training input pipeline of a data set: decode, augment, normalize, batch",
		Description: `Runs the loader that train would use (same transforms for the data set and size) over
--batches batches after one untimed batch, and reports images per second.

Examples:
   gsrmt-cli bench-data --dataset imagefolder --data-dir /data/jpegs --img-size 224 --batch-size 64 --workers 2
   gsrmt-cli bench-data --dataset fashion-mnist --img-size 28 --batch-size 256 --workers 1 --json`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dataset", Value: "imagefolder", Usage: "cifar10, cifar100, mini-imagenet, fashion-mnist, mnist or imagefolder"},
			&cli.StringFlag{Name: "data-dir", Usage: "data set folder (fashion-mnist: default /usr/share/datasets/fashion-mnist)"},
			&cli.IntFlag{Name: "img-size", Value: 224, Usage: "training side in pixels"},
			&cli.IntFlag{Name: "batch-size", Value: 64, Usage: "images per batch"},
			&cli.IntFlag{Name: "workers", Value: runtime.NumCPU(), Usage: "decoding goroutines"},
			&cli.IntFlag{Name: "batches", Value: 20, Usage: "timed batches"},
			&cli.BoolFlag{Name: "randaugment", Usage: "add RandAugment (2 ops, magnitude 9)"},
			&cli.StringFlag{Name: "aa", Usage: "add timm's RandAugment of this policy, e.g. rand-m9-mstd0.5-inc1"},
			&cli.StringFlag{Name: "interpolation", Usage: "bilinear or bicubic (default bilinear)"},
			&cli.Float64Flag{Name: "random-erasing", Usage: "Random Erasing probability"},
			&cli.Float64Flag{Name: "mixup", Usage: "Mixup alpha (0: off)"},
			&cli.Float64Flag{Name: "cutmix", Usage: "CutMix alpha (0: off)"},
			&cli.Uint64Flag{Name: "seed", Usage: "seed of the shuffle and the augmentations"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("bench-data takes no arguments, got %q", c.Args().Slice())
			}
			dataset := strings.ToLower(c.String("dataset"))
			if err := oneOfFlag("dataset", dataset, datasets.Names()); err != nil {
				return err
			}
			for _, f := range []string{"img-size", "batch-size", "workers", "batches"} {
				if c.Int(f) < 1 {
					return usagef("--%s %d: want at least 1", f, c.Int(f))
				}
			}
			o := train.Options{Dataset: dataset, DataDir: c.String("data-dir"), ImgSize: c.Int("img-size"),
				Batch: c.Int("batch-size"), Workers: c.Int("workers"), Seed: c.Uint64("seed"), RandAugment: c.Bool("randaugment"),
				RandomErasing: c.Float64("random-erasing"), Mixup: c.Float64("mixup"), CutMix: c.Float64("cutmix"), CropPadding: 4, DropLast: true,
				AA: c.String("aa"), Interpolation: c.String("interpolation")}
			if _, err := datasets.ParseInterpolation(o.Interpolation); err != nil {
				return usagef("--%v", err)
			}
			if _, err := datasets.ParseTimmRandAugment(o.AA); o.AA != "" && err != nil {
				return usagef("--%v", err)
			}
			if o.DataDir == "" && dataset == "fashion-mnist" {
				o.DataDir = "/usr/share/datasets/fashion-mnist"
			}
			if o.DataDir == "" {
				return usagef("--data-dir: a folder is required for %s", dataset)
			}
			if o.RandomErasing < 0 || o.RandomErasing > 1 || o.Mixup < 0 || o.CutMix < 0 {
				return usagef("--random-erasing %v, --mixup %v, --cutmix %v: want a probability in [0, 1] and non-negative alphas", o.RandomErasing, o.Mixup, o.CutMix)
			}
			res, err := train.BenchData(context.Background(), o, c.Int("batches"))
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return json.NewEncoder(c.App.Writer).Encode(res)
			}
			fmt.Fprintf(c.App.Writer, "%s at %d px, batch %d, %d workers (%s): %d images in %.2f s, %.0f images/s\n",
				res.Dataset, res.ImgSize, res.Batch, res.Workers, res.TrainAugment, res.Images, res.Seconds, res.ImagesPerS)
			return nil
		},
	}
}
