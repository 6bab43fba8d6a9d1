package main

import (
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"strings"

	"github.com/gsrmt/gsrmt/datasets"
	"github.com/gsrmt/gsrmt/internal/plot"
	"github.com/gsrmt/gsrmt/train"
	"github.com/urfave/cli/v2"
)

func evalCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "checkpoint", Required: true, Usage: "a .pt (ours, a bare state_dict, or a dict holding one) or .safetensors file"},
		&cli.StringFlag{Name: "dataset", Usage: "data set (default: the one the checkpoint was trained on)"},
		&cli.StringFlag{Name: "data-dir", Usage: "data set folder (default: the checkpoint's)"},
		&cli.StringFlag{Name: "split", Value: "test", Usage: "test, val or train"},
		&cli.Uint64Flag{Name: "split-seed", Usage: "seed of Mini-ImageNet's pooled split"},
		&cli.IntFlag{Name: "batch-size", Value: 128, Usage: "images per forward"},
		&cli.IntFlag{Name: "limit-eval", Usage: "use the first N images of the split (0: all)"},
		&cli.BoolFlag{Name: "json", Usage: `print one JSON object {"top1", "top5", "loss", "images", "ema", ...}`},
		&cli.BoolFlag{Name: "per-class", Usage: "add per-class accuracy and write a confusion-matrix PNG"},
		&cli.StringFlag{Name: "confusion-png", Usage: "where --per-class writes the confusion matrix (default: next to the checkpoint)"},
		emaFlag(),
		keyFlag(),
	}
	flags = append(flags, modelFlags(10)...)
	flags = append(flags, runtimeFlags(true)...)
	return &cli.Command{
		Name:  "eval",
		Usage: "evaluate a checkpoint on a data set split: loss, top-1, top-5",
		Description: `Our checkpoints record the model, data set and normalization; a bare state_dict (for
example one written by PyTorch) needs --variant, --preset, --classes and --img-size, and --dataset.
The checkpoint dict of timm's, DeiT/RMT's or Swin's training script works too: its weights are
taken from "state_dict", then "model"; --key names another entry, e.g. model_ema (docs/FINETUNING.md).

Examples:
   gsrmt-cli eval --checkpoint runs/fmnist/best.pt
   gsrmt-cli eval --checkpoint runs/cifar-swat/best.pt --json
   gsrmt-cli eval --checkpoint runs/fmnist/best.pt --per-class
   gsrmt-cli eval --checkpoint runs/cifar-swat/last.pt --ema     (a run trained with --ema)
   gsrmt-cli eval --checkpoint model_state.pt --variant swat --preset tiny --classes 100 \
       --img-size 224 --dataset mini-imagenet --data-dir data/mini-imagenet`,
		Flags:  flags,
		Action: runEval,
	}
}

func runEval(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("eval takes no arguments, got %q", c.Args().Slice())
	}
	split, err := datasets.ParseSplit(c.String("split"))
	if err != nil {
		return usagef("--split %q: accepted values are test, val, train", c.String("split"))
	}
	if c.Int("batch-size") < 1 {
		return usagef("--batch-size %d: want at least 1", c.Int("batch-size"))
	}
	if err := checkImgSize(c); err != nil {
		return err
	}
	if c.Int("limit-eval") < 0 {
		return usagef("--limit-eval %d: want a non-negative count", c.Int("limit-eval"))
	}
	l, dev, err := openCheckpoint(c)
	if err != nil {
		return err
	}
	defer l.model.Close()
	dataset, dir := c.String("dataset"), c.String("data-dir")
	if dataset == "" {
		dataset = l.runInfo().Dataset
	}
	if dir == "" {
		dir = l.runInfo().DataDir
	}
	if dataset == "" {
		return usagef("--dataset: the checkpoint does not say which data set it was trained on; give --dataset and --data-dir")
	}
	if err := oneOfFlag("dataset", dataset, datasets.Names()); err != nil {
		return err
	}
	if dir == "" {
		dir = datasets.DefaultDir(dataset)
	}
	if !l.ours || c.IsSet("dataset") {
		l.norm = datasets.NormalizationFor(dataset)
	}
	ds, tf, err := train.EvalData(dataset, dir, split, l.cfg.ImageSize, c.Int("limit-eval"), c.Uint64("split-seed"))
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	if n := len(ds.Classes()); n != l.cfg.NumClasses {
		return fmt.Errorf("eval: %s has %d classes, the model %d", dataset, n, l.cfg.NumClasses)
	}
	loader, err := train.EvalLoader(ds, tf, l.norm, c.Int("batch-size"), c.Int("workers"))
	if err != nil {
		return err
	}
	defer loader.Close()
	bad, err := l.model.NonFinite()
	if err != nil {
		return err
	}
	res, err := train.Evaluate(l.model, loader, train.EvalOptions{Device: dev, Classes: l.cfg.NumClasses, Confusion: c.Bool("per-class")})
	if err != nil {
		return err
	}
	if err := reportEval(c, l, ds, dataset, split, res); err != nil {
		return err
	}
	return nonFiniteError(c.String("checkpoint"), bad, res)
}

// nonFiniteError is the error (exit 1) of an evaluation whose model holds
// NaN or infinite values or computed non-finite logits: the numbers printed
// describe a broken model, not its accuracy.
func nonFiniteError(path string, bad []string, res train.EvalResult) error {
	switch {
	case len(bad) > 0:
		names := bad
		if len(names) > 5 {
			names = append(names[:5:5], fmt.Sprintf("and %d more", len(bad)-5))
		}
		return fmt.Errorf("eval: %s holds non-finite values in %s: the model is broken (NaN logits count as wrong)", path, strings.Join(names, ", "))
	case !res.Finite():
		return fmt.Errorf("eval: %s computed non-finite logits for %d of %d images (loss %v): the model is broken (NaN logits count as wrong)",
			path, res.NonFinite, res.Images, res.Loss)
	}
	return nil
}

// reportEval prints an evaluation as a table or JSON, and writes the
// confusion matrix when asked.
func reportEval(c *cli.Context, l *loaded, ds datasets.Dataset, dataset string, split datasets.Split, res train.EvalResult) error {
	png := ""
	if c.Bool("per-class") {
		png = c.String("confusion-png")
		if png == "" {
			base := strings.TrimSuffix(filepath.Base(c.String("checkpoint")), filepath.Ext(c.String("checkpoint")))
			png = filepath.Join(filepath.Dir(c.String("checkpoint")), base+"-confusion.png")
		}
		if err := plot.ConfusionMatrix(png, ds.Classes(), res.Confusion); err != nil {
			return err
		}
	}
	if c.Bool("json") {
		out := map[string]any{"top1": res.Top1, "top5": res.Top5, "loss": jsonFloat(res.Loss), "images": res.Images,
			"non_finite_logits": res.NonFinite, "ema": l.ema}
		if c.Bool("per-class") {
			out["per_class_top1"] = perClassMap(ds.Classes(), res.PerClass())
			out["confusion_png"] = png
		}
		return json.NewEncoder(c.App.Writer).Encode(out)
	}
	w := c.App.Writer
	weights := ""
	if l.ema {
		weights = " (EMA weights)"
	}
	fmt.Fprintf(w, "checkpoint  %s%s\n", c.String("checkpoint"), weights)
	fmt.Fprintf(w, "data        %s %s split (%d images, %d px)\n", dataset, split, res.Images, l.cfg.ImageSize)
	fmt.Fprintf(w, "top-1       %.2f %%\n", res.Top1)
	fmt.Fprintf(w, "top-5       %.2f %%\n", res.Top5)
	fmt.Fprintf(w, "loss        %.4f\n", res.Loss)
	if res.NonFinite > 0 {
		fmt.Fprintf(w, "non-finite  %d images' logits (counted as wrong)\n", res.NonFinite)
	}
	if c.Bool("per-class") {
		fmt.Fprintf(w, "\n%-24s %s\n", "class", "top-1")
		for i, acc := range res.PerClass() {
			fmt.Fprintf(w, "%-24s %6.2f %%\n", ds.Classes()[i], acc)
		}
		fmt.Fprintf(w, "\nconfusion matrix: %s\n", png)
	}
	return nil
}

func perClassMap(names []string, acc []float64) map[string]float64 {
	m := make(map[string]float64, len(names))
	for i, n := range names {
		m[n] = acc[i]
	}
	return m
}

// jsonFloat is v for JSON: NaN and infinities, which encoding/json refuses,
// become null.
func jsonFloat(v float64) any {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	return v
}
