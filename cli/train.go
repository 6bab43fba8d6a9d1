package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/gsrmt/gsrmt/checkpoints"
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
	return append(flags, cudaSpeedFlags()...)
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
	if n := c.Int("threads"); n > runtime.NumCPU() {
		fmt.Fprintf(c.App.ErrWriter, "--threads %d: this machine offers %d CPUs to the process; using %d (more threads than CPUs only wait on each other)\n",
			n, runtime.NumCPU(), runtime.NumCPU())
		return torch.SetNumThreads(runtime.NumCPU())
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
	var flags []cli.Flag
	for _, g := range []struct {
		name  string
		flags []cli.Flag
	}{{"Data", trainDataFlags()}, {"Optimization", optimizationFlags()}, {"Augmentation", augmentationFlags()}, {"Model", modelFlags(10)},
		{"Run folder", runFolderFlags()}, {"Fine-tuning", finetuneFlags()}, {"Runtime", append(runtimeFlags(true), fixedThreadsFlag())}, {"Distributed", trainDistFlags()}} {
		flags = append(flags, inCategory(g.name, g.flags)...)
	}
	return &cli.Command{
		Name:        "train",
		Usage:       "train a model (AdamW, warmup + cosine, Mixup/CutMix, EMA) and evaluate it every epoch",
		Description: trainDescription,
		Flags:       flags,
		Action:      runTrain,
	}
}

// fixedThreadsFlag turns off train's thread sizing to the free CPUs
// (train.Options.FixedThreads).
func fixedThreadsFlag() cli.Flag {
	return &cli.BoolFlag{Name: "fixed-threads", Usage: "keep --threads libtorch threads while other processes use the CPUs (default: use the CPUs they leave free, checked every 2 s)"}
}

// trainDescription is train's --help text.
const trainDescription = `Writes the run folder: config.json (every value used), metrics.csv (one row per epoch),
last.pt and best.pt (PyTorch-compatible checkpoints) and curves.png. Ctrl-C finishes the step, writes
last.pt and exits 0; --resume last.pt continues exactly where it stopped, with the options it
recorded (flags that contradict them are refused; --epochs may extend the run). A folder that holds
a run is never overwritten unless --overwrite is given, and only one process trains into it at a time.
best.pt holds the epoch with the best top-1 on the --select-on split (the --val-split validation
split, else the test split), from the model or its --ema, whichever scored better; with a
validation split the test split is evaluated once, at the end (docs/MODEL-SELECTION.md).

` + precisionHelp + `
Examples:
   gsrmt-cli train --dataset fashion-mnist --img-size 28 --variant swat --preset nano \
       --epochs 1 --batch-size 64 --threads 2 --out runs/fmnist
   gsrmt-cli train --dataset cifar10 --data-dir data/cifar10 --download --recipe cifar \
       --variant swat --preset tiny --out runs/cifar-swat
   gsrmt-cli train --dataset cifar100 --data-dir data/cifar100 --download --recipe cifar \
       --variant swat --preset tiny --out runs/cifar100-swat
   gsrmt-cli train --dataset mini-imagenet --data-dir data/mini-imagenet --recipe mini-imagenet \
       --variant retention --preset paper --batch-size 128 --amp --device cuda --out runs/mini-ret
   gsrmt-cli train --dataset imagefolder --data-dir data/imagenet --recipe rmt \
       --variant retention --preset paper --batch-size 1024 --nproc 8 --device cuda --out runs/rmt
   gsrmt-cli train --dataset cifar10 --data-dir data/cifar10 --recipe cifar --variant swat --preset tiny \
       --val-split 0.1 --ema 0.9998 --out runs/cifar-val   # best.pt chosen on 10 % of train, test measured at the end
   gsrmt-cli train --dataset mini-imagenet --data-dir data/mini-imagenet --recipe mini-imagenet \
       --variant retention --preset paper --batch-size 64 --grad-accum-steps 2 \
       --checkpoint-activations --amp fp16 --device cuda --out runs/mini-ret-t4   # a GPU without bf16
   gsrmt-cli train --resume runs/cifar-swat/last.pt
   gsrmt-cli train --resume runs/cifar-swat/last.pt --epochs 400   # extend a finished run
   gsrmt-cli train --config runs/cifar-swat/config.json --seed 1 --out runs/cifar-swat-s1 --tensorboard
   gsrmt-cli train --finetune runs/cifar-swat/best.pt --dataset imagefolder --data-dir data/flowers \
       --epochs 30 --lr 1e-4 --out runs/flowers   # the model best.pt records; a new classifier

Every run appends one JSON line per step to events.jsonl (loss, lr, grad norm, images/s, memory);
--tensorboard also writes TensorBoard event files. --config FILE takes every flag not given on the
command line from a run's config.json or a JSON/YAML file of flag names (docs/LOGS.md).

` + finetuneHelp

// trainDataFlags choose the data set, its splits and how much of it.
func trainDataFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: "dataset", Value: "cifar10", Usage: "cifar10, cifar100, mini-imagenet, fashion-mnist, mnist or imagefolder"},
		&cli.StringFlag{Name: "data-dir", Usage: "data set folder (fashion-mnist: default /usr/share/datasets/fashion-mnist)"},
		&cli.BoolFlag{Name: "download", Usage: "download CIFAR-10 or CIFAR-100 into --data-dir when it is missing (MD5-checked)"},
		&cli.Uint64Flag{Name: "split-seed", Usage: "seed of Mini-ImageNet's pooled train/test split"},
		&cli.BoolFlag{Name: "skip-bad-images", Usage: "skip and count corrupt images instead of stopping"},
		&cli.IntFlag{Name: "limit-train", Usage: "use the first N training images (0: all)"},
		&cli.IntFlag{Name: "limit-eval", Usage: "use the first N test images (0: all)"},
	}, selectionFlags()...)
}

// optimizationFlags set the optimizer, schedule, precision and seed.
func optimizationFlags() []cli.Flag {
	optimization := []cli.Flag{
		&cli.StringFlag{Name: "recipe", Value: "default", Usage: "default (DeiT's optimizer and mixing), cifar, mini-imagenet, or rmt (RMT's main.py: timm RandAugment, bicubic, 3 repeats, EMA; docs/RECIPES.md): sets the hyper-parameters below, which flags override"},
		&cli.IntFlag{Name: "epochs", Value: 300, Usage: "training epochs"},
		&cli.IntFlag{Name: "batch-size", Value: 128, Usage: "images per forward/backward (the global batch in a distributed run); a step takes --grad-accum-steps of them"},
		&cli.Float64Flag{Name: "lr", Usage: "peak learning rate (default: the recipe's, 5e-4 x batch/512)"},
		&cli.Float64Flag{Name: "min-lr", Usage: "final learning rate of the cosine (default 1e-5)"},
		&cli.Float64Flag{Name: "weight-decay", Usage: "AdamW's decoupled weight decay (default 0.05)"},
		&cli.Float64Flag{Name: "warmup-epochs", Usage: "epochs of linear warmup (default 5)"},
		&cli.Float64Flag{Name: "label-smoothing", Usage: "label smoothing (default 0.1)"},
		&cli.Float64Flag{Name: "grad-clip", Usage: "clip the global gradient norm to this value (0: off)"},
		&cli.Float64Flag{Name: "ema", Usage: "keep an EMA of the weights with this decay, e.g. 0.9998 (0: off)"},
		&cli.BoolFlag{Name: "amp", Usage: "autocast on CUDA: bf16; --amp fp16 for fp16 with dynamic loss scaling (V100, T4)"},
		&cli.BoolFlag{Name: "drop-last", Value: true, Usage: "drop the last partial training batch"},
		&cli.Uint64Flag{Name: "seed", Value: 0, Usage: "seeds libtorch and every Go random source"},
	}
	return append(optimization, precisionFlags()...)
}

// augmentationFlags set the training augmentation.
func augmentationFlags() []cli.Flag {
	return []cli.Flag{
		&cli.Float64Flag{Name: "mixup", Usage: "Mixup alpha, 0 for off (default 0.8)"},
		&cli.Float64Flag{Name: "cutmix", Usage: "CutMix alpha, 0 for off (default 1.0)"},
		&cli.BoolFlag{Name: "randaugment", Usage: "RandAugment (2 ops, magnitude 9)"},
		&cli.StringFlag{Name: "aa", Usage: "timm's RandAugment policy, e.g. rand-m9-mstd0.5-inc1 (m magnitude, n ops, mstd magnitude noise, mmax bound, inc1 increasing ops, w0 weights, p op probability); replaces the recipe's --randaugment"},
		&cli.StringFlag{Name: "interpolation", Usage: "bilinear or bicubic, for the training crop, --aa's geometric ops and the evaluation resize (default bilinear)"},
		&cli.IntFlag{Name: "aug-repeats", Usage: "repeated augmentation: each image N times an epoch, on different ranks, epoch length kept (timm's RepeatAugSampler; 0: off)"},
		&cli.IntFlag{Name: "crop-padding", Value: 4, Usage: "zero padding of the random crop at up to 1.5x a data set's native side (CIFAR 32, Fashion-MNIST 28); 0: no crop"},
		&cli.Float64Flag{Name: "random-erasing", Usage: "Random Erasing probability (0: off)"},
		&cli.StringFlag{Name: "random-erasing-mode", Usage: "zero (torchvision's, default) or pixel (timm's: per-pixel normal noise, area 0.02-1/3)"},
	}
}

// runFolderFlags set where the run is written, resumed and logged.
func runFolderFlags() []cli.Flag {
	runFolder := []cli.Flag{
		&cli.StringFlag{Name: "out", Value: "runs/gsrmt", Usage: "run folder: config.json, metrics.csv, last.pt, best.pt, curves.png"},
		&cli.StringFlag{Name: "resume", Usage: "continue the run saved in this last.pt, with its recorded options (auto: --out's last.pt when there is one)"},
		&cli.BoolFlag{Name: "overwrite", Usage: "replace the run already in --out (its files are removed first)"},
		&cli.BoolFlag{Name: "reset-optimizer", Usage: "let --resume start from a file without optimizer state, with fresh AdamW moments"},
		&cli.IntFlag{Name: "eval-every", Value: 1, Usage: "evaluate every N epochs (and after the last)"},
		&cli.IntFlag{Name: "save-every-steps", Usage: "also write last.pt every N steps inside an epoch (0: at each epoch's end only)"},
		&cli.BoolFlag{Name: "json", Usage: `print one JSON object at the end: {"run_dir", "steps", "interrupted", "best_top1", "best": {"epoch", "split", "source"}, "best_test", "epochs", "last": {metrics.csv's columns}}`},
		&cli.IntFlag{Name: "keep-checkpoints", Usage: "also keep checkpoint-EPOCH.pt for the K evaluated epochs with the best top-1 on the --select-on split (0: best.pt and last.pt only)"},
		&cli.StringFlag{Name: "config", Usage: "take every flag not given from this file: a run's config.json, or JSON/YAML of flag names (docs/LOGS.md)"},
	}
	return append(runFolder, logFlags()...)
}

// trainDistFlags are the data-parallel flags of train.
func trainDistFlags() []cli.Flag {
	return append(distFlags(),
		&cli.BoolFlag{Name: "sync-bn", Usage: "BatchNorm statistics over the global batch (torch.nn.SyncBatchNorm)"},
		&cli.BoolFlag{Name: "check-replicas", Usage: "verify after every step that the ranks hold identical weights (a debugging aid)"},
	)
}

func runTrain(c *cli.Context) error {
	cleanup, err := applyConfigFile(c)
	defer cleanup()
	if err != nil {
		return err
	}
	if n := c.Int("nproc"); n > 1 {
		return launchLocal(c, n)
	} else if n < 0 {
		return usagef("--nproc %d: want a count of local ranks (0 or 1: this process alone)", n)
	}
	o, err := trainOptions(c)
	if err != nil {
		return err
	}
	if o.Group, err = joinGroup(c, &o); err != nil {
		return err
	}
	if err := injectFault(&o); err != nil {
		return err
	}
	ctx, stop := interruptContext(c.App.ErrWriter)
	defer stop()
	res, err := train.Run(ctx, o)
	if err != nil && o.Group != nil {
		// No Close: its barrier would wait for ranks that are in another
		// collective. Exiting closes the connections, and the others fail.
		err = fmt.Errorf("rank %d of %d: %w", o.Group.Rank(), o.Group.Size(), err)
	} else if o.Group != nil {
		if err := o.Group.Close(); err != nil {
			return err
		}
		if o.Group.Rank() != 0 {
			return nil // rank 0 reports for the group
		}
	}
	switch {
	case errors.Is(err, train.ErrRunExists), errors.Is(err, train.ErrBatchTooLarge), errors.Is(err, checkpoints.ErrNoKey):
		return usagef("train: %v", err)
	case err != nil:
		return fmt.Errorf("train: %w", err)
	case c.Bool("json"):
		return json.NewEncoder(c.App.Writer).Encode(trainReport(res))
	case res.Interrupted:
		fmt.Fprintf(c.App.Writer, "stopped after %d steps; resume with: gsrmt-cli train --resume %s\n", res.Steps, filepath.Join(res.RunDir, "last.pt"))
		return nil
	}
	fmt.Fprintln(c.App.Writer, trainSummary(res))
	return nil
}

// trainReport is train --json's object: where the run is, how far it got,
// its best test top-1 and its last epoch's metrics (NaN, not measured, as
// null).
func trainReport(res *train.Result) map[string]any {
	out := map[string]any{"run_dir": res.RunDir, "steps": res.Steps, "interrupted": res.Interrupted,
		"best_top1": jsonFloat(res.Best), "epochs": len(res.Metrics)}
	if res.BestEpoch > 0 {
		out["best"] = map[string]any{"epoch": res.BestEpoch, "split": res.BestSplit, "source": res.BestSource}
	}
	if t := res.BestTest; t != nil {
		out["best_test"] = map[string]any{"top1": jsonFloat(t.Top1), "top5": jsonFloat(t.Top5), "loss": jsonFloat(t.Loss), "images": t.Images}
	}
	if n := len(res.Metrics); n > 0 {
		m := res.Metrics[n-1]
		out["last"] = map[string]any{"epoch": m.Epoch, "lr": m.LR, "train_loss": jsonFloat(m.TrainLoss),
			"train_top1": jsonFloat(m.TrainTop1), "test_loss": jsonFloat(m.TestLoss), "test_top1": jsonFloat(m.TestTop1),
			"test_top5": jsonFloat(m.TestTop5), "ema_test_top1": jsonFloat(m.EMATop1), "images_per_s": m.ImagesPerS,
			"seconds": m.Seconds, "skipped_images": m.SkippedImages,
			"val_loss": jsonFloat(m.ValLoss), "val_top1": jsonFloat(m.ValTop1), "val_top5": jsonFloat(m.ValTop5),
			"ema_test_loss": jsonFloat(m.EMATestLoss), "ema_test_top5": jsonFloat(m.EMATestTop5),
			"ema_val_loss": jsonFloat(m.EMAValLoss), "ema_val_top1": jsonFloat(m.EMAValTop1), "ema_val_top5": jsonFloat(m.EMAValTop5),
			"skipped_steps": m.SkippedSteps}
	}
	return out
}

// interruptContext is cancelled by the first SIGINT or SIGTERM: the run
// finishes its step, writes last.pt and stops. The handler is then removed,
// so that a second Ctrl-C ends the process at once, as users expect when a
// step takes long.
func interruptContext(log io.Writer) (context.Context, context.CancelFunc) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		<-ctx.Done()
		stop()
		if errors.Is(context.Cause(ctx), context.Canceled) {
			fmt.Fprintln(log, "stopping after this step to write last.pt; press Ctrl-C again to quit at once (nothing more is saved)")
		}
	}()
	return ctx, stop
}

// inCategory puts flags under a heading of --help.
func inCategory(name string, flags []cli.Flag) []cli.Flag {
	for _, f := range flags {
		switch f := f.(type) {
		case *cli.StringFlag:
			f.Category = name
		case *cli.IntFlag:
			f.Category = name
		case *cli.Float64Flag:
			f.Category = name
		case *cli.BoolFlag:
			f.Category = name
		case *cli.Uint64Flag:
			f.Category = name
		case *cli.DurationFlag:
			f.Category = name
		}
	}
	return flags
}

// trainOptions turns the flags into training options. With --resume, the
// options the checkpoint recorded are the base and only the flags given
// explicitly apply (train.Run refuses those that contradict it).
func trainOptions(c *cli.Context) (train.Options, error) {
	if c.NArg() > 0 {
		return train.Options{}, usagef("train takes no arguments, got %q (flags start with --)", c.Args().Slice())
	}
	if c.IsSet("classes") {
		return train.Options{}, usagef("--classes: train takes the class count from the data set (its folders or labels); remove the flag")
	}
	resume, out, err := resumeAndOut(c)
	if err != nil {
		return train.Options{}, err
	}
	var saved *train.Options
	if resume != "" {
		if saved, err = train.ReadOptions(resume); err != nil {
			return train.Options{}, usagef("--resume %s: %v", resume, err)
		}
	}
	var o train.Options
	if saved != nil {
		o, err = resumedOptions(c, *saved)
	} else {
		o, err = freshOptions(c)
	}
	if err != nil {
		return o, err
	}
	o.Out, o.Resume = out, resume
	if err := tensorBoardOption(c, &o); err != nil {
		return o, err
	}
	if err := finetuneOptions(c, &o, resume); err != nil {
		return o, err
	}
	o.Overwrite, o.ResetOptimizer, o.CheckReplicas = c.Bool("overwrite"), c.Bool("reset-optimizer"), c.Bool("check-replicas")
	if c.String("resume") == "auto" && resume == "" {
		// An attempt that died before its first checkpoint left config.json
		// (and nothing to resume): --resume auto starts afresh over it.
		o.Overwrite = true
	}
	o.Threads, o.Workers, o.FixedThreads = c.Int("threads"), c.Int("workers"), c.Bool("fixed-threads")
	if o.Device, err = parseDevice(c.String("device")); err != nil {
		return o, err
	}
	o.CUDASpeed = cudaSpeed(c, o.Device)
	if err := applyPrecisionFlags(c, &o); err != nil {
		return o, err
	}
	if err := applyRuntime(c); err != nil {
		return o, err
	}
	if o.Threads > runtime.NumCPU() {
		o.Threads = runtime.NumCPU() // applyRuntime said so
	}
	if err := o.Validate(); err != nil {
		return o, usagef("--%v", err)
	}
	if saved != nil {
		if bad := train.ResumeConflicts(saved, &o); len(bad) > 0 {
			return o, usagef("--resume %s: %s: resume with the checkpoint's options (drop those flags) or start a new run with another --out",
				resume, strings.Join(bad, "; "))
		}
	}
	o.Log = c.App.ErrWriter
	if f, ok := o.Log.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		o.Terminal = true
	}
	return o, nil
}

// resumeAndOut resolves --resume (a file, or "auto": --out's last.pt when it
// exists) and --out (default: the resumed checkpoint's folder).
func resumeAndOut(c *cli.Context) (resume, out string, err error) {
	resume, out = c.String("resume"), c.String("out")
	if resume == "auto" {
		resume = ""
		if last := filepath.Join(out, "last.pt"); fileExists(last) {
			resume = last
		}
		return resume, out, nil
	}
	if resume == "" {
		return "", out, nil
	}
	if _, err := os.Stat(resume); err != nil {
		return "", "", usagef("--resume %s: %v", resume, err)
	}
	if !c.IsSet("out") {
		out = filepath.Dir(resume)
	}
	return resume, out, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// resumedOptions starts from the options a checkpoint recorded and applies
// the flags given explicitly.
func resumedOptions(c *cli.Context, o train.Options) (train.Options, error) {
	applyTrainFlags(c, &o)
	if anyModelFlagSet(c) {
		cfg, err := configFromFlags(c)
		if err != nil {
			return o, err
		}
		cfg.NumClasses, cfg.ImageSize = o.Model.NumClasses, o.Model.ImageSize
		o.Model = cfg
	}
	return o, nil
}

// freshOptions builds the options of a new run: the recipe's values, then
// every flag given explicitly.
func freshOptions(c *cli.Context) (train.Options, error) {
	dataset := strings.ToLower(c.String("dataset"))
	if err := oneOfFlag("dataset", dataset, datasets.Names()); err != nil {
		return train.Options{}, err
	}
	o := train.Options{Dataset: dataset}
	if c.IsSet("img-size") {
		o.ImgSize = c.Int("img-size")
	} else if n := datasets.NativeSide(dataset); n > 0 {
		o.ImgSize = n
	}
	o.Batch, o.GradAccumSteps = c.Int("batch-size"), c.Int("grad-accum-steps")
	recipe := c.String("recipe")
	if err := oneOfFlag("recipe", recipe, train.Recipes); err != nil {
		return o, err
	}
	if err := o.ApplyRecipe(recipe); err != nil {
		return o, usagef("--recipe: %v", err)
	}
	if c.IsSet("epochs") || recipe == "default" {
		o.Epochs = c.Int("epochs")
	}
	o.Seed, o.DropLast, o.CropPadding, o.EvalEvery = c.Uint64("seed"), c.Bool("drop-last"), c.Int("crop-padding"), c.Int("eval-every")
	o.DataDir = c.String("data-dir")
	applyTrainFlags(c, &o)
	if !c.IsSet("min-lr") && o.MinLR > o.LR {
		o.MinLR = o.LR // small batches scale the recipe's lr below its 1e-5 floor
	}
	if o.ImgSize == 0 {
		o.ImgSize = c.Int("img-size")
	}
	if o.DataDir == "" {
		o.DataDir = datasets.DefaultDir(o.Dataset)
	}
	cfg, err := trainModelConfig(c)
	if err != nil {
		return o, err
	}
	o.Model = cfg
	return o, nil
}

// applyTrainFlags sets the options whose flags were given explicitly.
func applyTrainFlags(c *cli.Context, o *train.Options) {
	floats := map[string]*float64{"lr": &o.LR, "min-lr": &o.MinLR, "weight-decay": &o.WeightDecay, "warmup-epochs": &o.WarmupEpochs,
		"label-smoothing": &o.LabelSmoothing, "mixup": &o.Mixup, "cutmix": &o.CutMix, "random-erasing": &o.RandomErasing,
		"grad-clip": &o.GradClip, "ema": &o.EMA}
	for name, dst := range floats {
		if c.IsSet(name) {
			*dst = c.Float64(name)
		}
	}
	ints := map[string]*int{"aug-repeats": &o.AugRepeats, "crop-padding": &o.CropPadding, "limit-train": &o.LimitTrain, "limit-eval": &o.LimitEval, "eval-every": &o.EvalEvery,
		"save-every-steps": &o.SaveEverySteps, "keep-checkpoints": &o.KeepCheckpoints, "img-size": &o.ImgSize, "batch-size": &o.Batch, "epochs": &o.Epochs,
		"grad-accum-steps": &o.GradAccumSteps}
	for name, dst := range ints {
		if c.IsSet(name) {
			*dst = c.Int(name)
		}
	}
	bools := map[string]*bool{"randaugment": &o.RandAugment, "amp": &o.AMP, "drop-last": &o.DropLast,
		"download": &o.Download, "skip-bad-images": &o.SkipBadImages, "sync-bn": &o.SyncBN}
	for name, dst := range bools {
		if c.IsSet(name) {
			*dst = c.Bool(name)
		}
	}
	strs := map[string]*string{"dataset": &o.Dataset, "recipe": &o.Recipe, "data-dir": &o.DataDir, "aa": &o.AA, "interpolation": &o.Interpolation,
		"random-erasing-mode": &o.RandomErasingMode, "val-split": &o.ValSplit, "select-on": &o.SelectOn}
	for name, dst := range strs {
		if c.IsSet(name) {
			*dst = c.String(name)
		}
	}
	o.Dataset = strings.ToLower(o.Dataset)
	if c.IsSet("aa") && !c.IsSet("randaugment") {
		o.RandAugment = false // --aa replaces the recipe's torchvision RandAugment
	}
	if c.IsSet("seed") {
		o.Seed = c.Uint64("seed")
	}
	if c.IsSet("split-seed") {
		o.SplitSeed = c.Uint64("split-seed")
	}
}

// anyModelFlagSet reports whether a flag that describes the model was given
// (--classes, --img-size and the flags named in except aside).
func anyModelFlagSet(c *cli.Context, except ...string) bool {
	for _, f := range modelFlags(0) {
		if name := f.Names()[0]; name != "classes" && name != "img-size" && !slices.Contains(except, name) && c.IsSet(name) {
			return true
		}
	}
	return false
}
