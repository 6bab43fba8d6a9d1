package main

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"

	"github.com/gsrmt/gsrmt/datasets"
	"github.com/gsrmt/gsrmt/internal/torch"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
	"github.com/urfave/cli/v2"
)

type prediction struct {
	Image  string    `json:"image"`
	Logits []float32 `json:"logits"`
	Probs  []float32 `json:"probs"`
	TopK   []topK    `json:"topk"`
}

type topK struct {
	Index int     `json:"index"`
	Label string  `json:"label"`
	Prob  float32 `json:"prob"`
}

func predictCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "checkpoint", Required: true, Usage: "a .pt or .safetensors file"},
		&cli.StringSliceFlag{Name: "image", Required: true, Usage: "an image file (JPEG or PNG); repeat for more"},
		&cli.IntFlag{Name: "topk", Value: 5, Usage: "how many classes to list per image"},
		&cli.BoolFlag{Name: "json", Usage: "print a JSON list, one object per image"},
	}
	flags = append(flags, modelFlags(10)...)
	flags = append(flags, runtimeFlags(false)...)
	return &cli.Command{
		Name:  "predict",
		Usage: "classify image files with a checkpoint: top-k labels and probabilities",
		Description: `An image of exactly the model's size is used as is; a square image up to 1.5x smaller is
zero-padded or resized to it, as training on such images does (docs/DATASETS.md); any other is
resized (shorter side to img-size / 0.875) and center-cropped. Pixels are scaled to [0, 1] and
normalized with the checkpoint's normalization (ImageNet's for a bare state_dict).

Examples:
   gsrmt-cli predict --checkpoint runs/fmnist/best.pt --image shirt.png
   gsrmt-cli predict --checkpoint runs/cifar-swat/best.pt --image a.jpg --image b.jpg --topk 3 --json`,
		Flags:  flags,
		Action: runPredict,
	}
}

func runPredict(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("predict takes no arguments, got %q (use --image FILE)", c.Args().Slice())
	}
	l, dev, err := openCheckpoint(c)
	if err != nil {
		return err
	}
	defer l.model.Close()
	k := c.Int("topk")
	if k < 1 {
		return usagef("--topk %d: want at least 1", k)
	}
	k = min(k, l.cfg.NumClasses)
	side := l.cfg.ImageSize
	var preds []prediction
	for _, path := range c.StringSlice("image") {
		img := &datasets.Image{}
		if err := datasets.DecodeImageFile(path, img); err != nil {
			return fmt.Errorf("--image: %w", err) // the error names the file
		}
		x := datasets.PrepareForModel(img, side, l.norm)
		logits, err := forwardOne(l, x, side, dev)
		if err != nil {
			return fmt.Errorf("--image %s: %w", path, err)
		}
		preds = append(preds, describe(l, path, logits, k))
	}
	if c.Bool("json") {
		return json.NewEncoder(c.App.Writer).Encode(preds)
	}
	for _, p := range preds {
		fmt.Fprintf(c.App.Writer, "%s\n", p.Image)
		for _, t := range p.TopK {
			fmt.Fprintf(c.App.Writer, "  %6.2f %%  %s (%d)\n", 100*t.Prob, t.Label, t.Index)
		}
	}
	return nil
}

func forwardOne(l *loaded, x []float32, side int, dev gotch.Device) (logits []float32, err error) {
	torch.NoGrad(func() {
		in := ts.MustOfSlice(x).MustView([]int64{1, 3, int64(side), int64(side)}, true).MustTo(dev, true)
		defer in.MustDrop()
		out, e := l.model.Forward(in, false)
		if e != nil {
			err = e
			return
		}
		cpu := out.MustTotype(gotch.Float, true).MustTo(gotch.CPU, true)
		defer cpu.MustDrop()
		logits = cpu.Vals().([]float32)
	})
	return logits, err
}

func describe(l *loaded, path string, logits []float32, k int) prediction {
	maxV := logits[0]
	for _, v := range logits {
		maxV = max(maxV, v)
	}
	probs := make([]float32, len(logits))
	var sum float64
	for i, v := range logits {
		e := math.Exp(float64(v - maxV))
		probs[i] = float32(e)
		sum += e
	}
	for i := range probs {
		probs[i] = float32(float64(probs[i]) / sum)
	}
	idx := make([]int, len(probs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return probs[idx[a]] > probs[idx[b]] })
	p := prediction{Image: path, Logits: logits, Probs: probs}
	for _, i := range idx[:k] {
		p.TopK = append(p.TopK, topK{Index: i, Label: l.label(i), Prob: probs[i]})
	}
	return p
}
