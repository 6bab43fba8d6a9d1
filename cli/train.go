package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"github.com/gsrmt/gsrmt/datasets"
	"github.com/gsrmt/gsrmt/internal/torch"
	"github.com/gsrmt/gsrmt/train"
	"github.com/sugarme/gotch"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

// runtimeFlags choose where and how fast a command runs; loadsData adds
// --workers for the commands that read a data set.
func runtimeFlags(loadsData bool) []cli.Flag {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "device", Value: "auto", Usage: "auto, cpu, cuda or cuda:N (auto: the first GPU if any)"},
		&cli.IntFlag{Name: "threads", Usage: "libtorch intra-op threads (0: OMP_NUM_THREADS when set, else one per CPU)"},
	}
	if loadsData {
		flags = append(flags, &cli.IntFlag{Name: "workers", Usage: "data-loading goroutines (0: one per CPU)"})
	}
	return flags
}

// parseDevice turns --device into a gotch device, checking CUDA exists.
func parseDevice(s string) (gotch.Device, error) {
	switch {
	case s == "cpu":
		return gotch.CPU, nil
	case s == "auto":
		if torch.CUDAAvailable() {
			return gotch.CudaBuilder(0), nil
		}
		return gotch.CPU, nil
	case s == "cuda" || strings.HasPrefix(s, "cuda:"):
		idx := 0
		if s != "cuda" {
			n, err := strconv.Atoi(strings.TrimPrefix(s, "cuda:"))
			if err != nil || n < 0 {
				return gotch.CPU, usagef("--device %q: want cuda:N with N a device number", s)
			}
			idx = n
		}
		if count := torch.CUDADeviceCount(); idx >= count {
			return gotch.CPU, usagef("--device %s: libtorch %s sees %d CUDA device(s) (see gsrmt-cli env)", s, torch.Version(), count)
		}
		return gotch.CudaBuilder(uint(idx)), nil
	}
	return gotch.CPU, usagef("--device %q: accepted values are auto, cpu, cuda, cuda:N", s)
}

func applyRuntime(c *cli.Context) error {
	if c.Int("threads") < 0 {
		return usagef("--threads %d: want a positive count (0: OMP_NUM_THREADS when set, else one per CPU)", c.Int("threads"))
	}
	if c.Int("workers") < 0 {
		return usagef("--workers %d: want a positive count (0: one per CPU)", c.Int("workers"))
	}
	if n := c.Int("threads"); n > 0 {
		return torch.SetNumThreads(n)
	}
	// Debian's libtorch starts with one thread; PyTorch uses every core.
	if os.Getenv("OMP_NUM_THREADS") == "" && torch.NumThreads() < runtime.NumCPU() {
		return torch.SetNumThreads(runtime.NumCPU())
	}
	return nil
}

func trainCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "dataset", Value: "cifar10", Usage: "cifar10, mini-imagenet, fashion-mnist, mnist or imagefolder"},
		&cli.StringFlag{Name: "data-dir", Usage: "data set folder (fashion-mnist: default /usr/share/datasets/fashion-mnist)"},
		&cli.BoolFlag{Name: "download", Usage: "download CIFAR-10 into --data-dir when it is missing"},
		&cli.Uint64Flag{Name: "split-seed", Usage: "seed of Mini-ImageNet's pooled train/test split"},
		&cli.BoolFlag{Name: "skip-bad-images", Usage: "skip and count corrupt images instead of stopping"},
		&cli.StringFlag{Name: "recipe", Value: "default", Usage: "default (RMT/DeiT), cifar or mini-imagenet: sets the hyper-parameters below, which flags override"},
		&cli.IntFlag{Name: "epochs", Value: 300, Usage: "training epochs"},
		&cli.IntFlag{Name: "batch-size", Value: 128, Usage: "images per step"},
		&cli.Float64Flag{Name: "lr", Usage: "peak learning rate (default: the recipe's, 5e-4 x batch/512)"},
		&cli.Float64Flag{Name: "min-lr", Usage: "final learning rate of the cosine (default 1e-5)"},
		&cli.Float64Flag{Name: "weight-decay", Usage: "AdamW's decoupled weight decay (default 0.05)"},
		&cli.Float64Flag{Name: "warmup-epochs", Usage: "epochs of linear warmup (default 5)"},
		&cli.Float64Flag{Name: "label-smoothing", Usage: "label smoothing (default 0.1)"},
		&cli.Float64Flag{Name: "mixup", Usage: "Mixup alpha, 0 for off (default 0.8)"},
		&cli.Float64Flag{Name: "cutmix", Usage: "CutMix alpha, 0 for off (default 1.0)"},
		&cli.BoolFlag{Name: "randaugment", Usage: "RandAugment (2 ops, magnitude 9)"},
		&cli.IntFlag{Name: "crop-padding", Value: 4, Usage: "zero padding of the random crop at a data set's native side (CIFAR 32, Fashion-MNIST 28); 0: no crop"},
		&cli.Float64Flag{Name: "random-erasing", Usage: "Random Erasing probability (0: off)"},
		&cli.Float64Flag{Name: "grad-clip", Usage: "clip the global gradient norm to this value (0: off)"},
		&cli.Float64Flag{Name: "ema", Usage: "keep an EMA of the weights with this decay, e.g. 0.9998 (0: off)"},
		&cli.BoolFlag{Name: "amp", Usage: "bf16 autocast (CUDA only)"},
		&cli.BoolFlag{Name: "drop-last", Value: true, Usage: "drop the last partial training batch"},
		&cli.Uint64Flag{Name: "seed", Value: 0, Usage: "seeds libtorch and every Go random source"},
		&cli.StringFlag{Name: "out", Value: "runs/gsrmt", Usage: "run folder: config.json, metrics.csv, last.pt, best.pt, curves.png"},
		&cli.StringFlag{Name: "resume", Usage: "continue the run saved in this last.pt"},
		&cli.IntFlag{Name: "limit-train", Usage: "use the first N training images (0: all)"},
		&cli.IntFlag{Name: "limit-eval", Usage: "use the first N test images (0: all)"},
		&cli.IntFlag{Name: "eval-every", Value: 1, Usage: "evaluate every N epochs (and after the last)"},
	}
	flags = append(flags, modelFlags(10)...)
	flags = append(flags, runtimeFlags(true)...)
	return &cli.Command{
		Name:  "train",
		Usage: "train a model (AdamW, warmup + cosine, Mixup/CutMix, EMA) and evaluate it every epoch",
		Description: `Writes the run folder: config.json (every value used), metrics.csv (one row per epoch),
last.pt and best.pt (PyTorch-compatible checkpoints) and curves.png. Ctrl-C finishes the step, writes
last.pt and exits 0; --resume last.pt continues exactly where it stopped.

Examples:
   gsrmt-cli train --dataset fashion-mnist --img-size 28 --variant swat --preset nano \
       --epochs 1 --batch-size 64 --threads 2 --out runs/fmnist
   gsrmt-cli train --dataset cifar10 --data-dir data/cifar10 --download --recipe cifar \
       --variant swat --preset tiny --out runs/cifar-swat
   gsrmt-cli train --dataset mini-imagenet --data-dir data/mini-imagenet --recipe mini-imagenet \
       --variant retention --preset paper --batch-size 128 --amp --device cuda --out runs/mini-ret
   gsrmt-cli train ... --resume runs/cifar-swat/last.pt`,
		Flags:  flags,
		Action: runTrain,
	}
}

func runTrain(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("train takes no arguments, got %q (flags start with --)", c.Args().Slice())
	}
	dataset := strings.ToLower(c.String("dataset"))
	if err := oneOfFlag("dataset", dataset, datasets.Names()); err != nil {
		return err
	}
	o := train.Options{Dataset: dataset, DataDir: c.String("data-dir"), Download: c.Bool("download"),
		SplitSeed: c.Uint64("split-seed"), SkipBadImages: c.Bool("skip-bad-images")}
	if c.IsSet("img-size") {
		o.ImgSize = c.Int("img-size")
	} else if n := map[string]int{"cifar10": 32, "fashion-mnist": 28, "mnist": 28}[dataset]; n > 0 {
		o.ImgSize = n
	}
	o.Batch = c.Int("batch-size")
	recipe := c.String("recipe")
	if err := oneOfFlag("recipe", recipe, train.Recipes); err != nil {
		return err
	}
	if err := o.ApplyRecipe(recipe); err != nil {
		return usagef("--recipe: %v", err)
	}
	if c.IsSet("epochs") || recipe == "default" {
		o.Epochs = c.Int("epochs")
	}
	set := func(name string, dst *float64) {
		if c.IsSet(name) {
			*dst = c.Float64(name)
		}
	}
	set("lr", &o.LR)
	set("min-lr", &o.MinLR)
	set("weight-decay", &o.WD)
	set("warmup-epochs", &o.Warmup)
	set("label-smoothing", &o.Smooth)
	set("mixup", &o.Mixup)
	set("cutmix", &o.CutMix)
	set("random-erasing", &o.Erasing)
	set("grad-clip", &o.GradClip)
	set("ema", &o.EMA)
	if !c.IsSet("min-lr") && o.MinLR > o.LR {
		o.MinLR = o.LR // small batches scale the recipe's lr below its 1e-5 floor
	}
	if c.IsSet("randaugment") {
		o.RandAug = c.Bool("randaugment")
	}
	o.AMP, o.DropLast, o.CropPad = c.Bool("amp"), c.Bool("drop-last"), c.Int("crop-padding")
	o.Seed, o.Out, o.Resume = c.Uint64("seed"), c.String("out"), c.String("resume")
	o.LimitTr, o.LimitEv, o.EvalEvery = c.Int("limit-train"), c.Int("limit-eval"), c.Int("eval-every")
	o.Threads, o.Workers = c.Int("threads"), c.Int("workers")
	if o.ImgSize == 0 {
		o.ImgSize = c.Int("img-size")
	}

	cfg, err := configFromFlags(c)
	if err != nil {
		return err
	}
	o.Model = cfg
	if o.Device, err = parseDevice(c.String("device")); err != nil {
		return err
	}
	if err := applyRuntime(c); err != nil {
		return err
	}
	if err := o.Validate(); err != nil {
		return usagef("--%v", err)
	}
	if o.Resume != "" {
		if _, err := os.Stat(o.Resume); err != nil {
			return usagef("--resume %s: %v", o.Resume, err)
		}
	}
	o.Log = c.App.ErrWriter
	if f, ok := o.Log.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		o.Terminal = true
	}
	if o.Dataset == datasets.NameFashionMNIST && o.DataDir == "" {
		o.DataDir = "/usr/share/datasets/fashion-mnist"
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := train.Run(ctx, o)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if res.Interrupted {
		fmt.Fprintf(c.App.Writer, "stopped after %d steps; resume with: gsrmt-cli train ... --resume %s/last.pt\n", res.Steps, res.RunDir)
		return nil
	}
	last := res.Metrics[len(res.Metrics)-1]
	fmt.Fprintf(c.App.Writer, "test top-1 %.2f %%, top-5 %.2f %%, loss %.4f after %d epochs (best top-1 %.2f %%); run folder %s\n",
		last.TestTop1, last.TestTop5, last.TestLoss, last.Epoch, res.Best, res.RunDir)
	return nil
}
