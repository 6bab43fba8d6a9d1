package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/gsrmt/gsrmt/internal/atomicfile"
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
		&cli.StringSliceFlag{Name: "image", Usage: "an image file (JPEG or PNG), a folder (searched recursively for .jpg, .jpeg, .png) or a glob; repeat for more (or give them as arguments)"},
		&cli.IntFlag{Name: "topk", Value: 5, Usage: "how many classes to list per image"},
		&cli.BoolFlag{Name: "json", Usage: "print a JSON list, one object per image"},
		&cli.IntFlag{Name: "batch-size", Value: 128, Usage: "images per forward"},
		&cli.StringFlag{Name: "out", Usage: "write the predictions to this file (atomically) instead of stdout: CSV (.csv) or JSON lines (.jsonl, .json)"},
		&cli.StringFlag{Name: "format", Usage: "format of --out: csv or jsonl (default: by its extension)"},
		&cli.StringFlag{Name: "tta", Value: ttaNone, Usage: "test-time augmentation: none, or flip (average the probabilities of the image and its mirror image)"},
		&cli.BoolFlag{Name: "skip-bad-images", Usage: "skip and count images that fail to load instead of stopping"},
		emaFlag(),
		keyFlag(),
	}
	flags = append(flags, modelFlags(10)...)
	flags = append(flags, runtimeFlags(true)...)
	return &cli.Command{
		Name:      "predict",
		Usage:     "classify image files with a checkpoint: top-k labels and probabilities",
		ArgsUsage: "[FILE|FOLDER|GLOB ...]",
		Description: `Images are image files, folders (every .jpg, .jpeg and .png in them and their sub-folders) and
glob patterns (expanded here, so a quoted "dir/*.jpg" works), as arguments or with --image;
results are sorted by path. Worker goroutines (--workers) decode the images while the model
classifies --batch-size of them per forward. An image of exactly the model's size is used as is; a
square image up to 1.5x smaller is zero-padded or resized to it, as training on such images does
(docs/DATASETS.md); any other is resized (shorter side to img-size / 0.875) and center-cropped.
Pixels are scaled to [0, 1] and normalized with the checkpoint's normalization (ImageNet's for a
bare state_dict).

Without --out, predictions go to stdout: text, or one JSON list with --json. --out FILE writes CSV
(columns image, index_0.., label_0.., prob_0.. of the top-k classes, as timm's inference.py) or JSON
lines (one --json object per line), and prints the throughput. --tta flip averages each image's
softmax with its mirror image's. --ema uses the EMA weights of a training checkpoint.

Examples:
   gsrmt-cli predict --checkpoint runs/fmnist/best.pt --image shirt.png
   gsrmt-cli predict --checkpoint runs/cifar-swat/best.pt --image a.jpg --image b.jpg --topk 3 --json
   gsrmt-cli predict --checkpoint runs/cifar-swat/best.pt --out preds.csv photos/ 'more/*.jpg' c.png
   gsrmt-cli predict --checkpoint runs/cifar-swat/last.pt --ema --tta flip --batch-size 64 \
       --skip-bad-images --out preds.jsonl photos/`,
		Flags:  flags,
		Action: runPredict,
	}
}

// The values of --tta.
const (
	ttaNone = "none"
	ttaFlip = "flip"
)

// predictOptions are predict's checked flags and arguments.
type predictOptions struct {
	inputs []string // files, folders and globs
	out    string   // the file to write ("": stdout)
	format string   // formatText, formatJSON, formatCSV or formatJSONL
}

// parsePredict checks predict's flags and arguments before anything is
// loaded.
func parsePredict(c *cli.Context) (*predictOptions, error) {
	o := &predictOptions{inputs: append(c.StringSlice("image"), c.Args().Slice()...), out: c.String("out"), format: formatText}
	for _, a := range c.Args().Slice() {
		if strings.HasPrefix(a, "-") {
			return nil, usagef("predict: %s after the first input: give the flags before the files, folders and globs (a file whose name starts with -: ./%s)", a, a)
		}
	}
	if len(o.inputs) == 0 {
		return nil, usagef("predict: no images: give image files, folders or globs as arguments or with --image")
	}
	if k := c.Int("topk"); k < 1 {
		return nil, usagef("--topk %d: want at least 1", k)
	}
	if b := c.Int("batch-size"); b < 1 {
		return nil, usagef("--batch-size %d: want at least 1", b)
	}
	if err := oneOfFlag("tta", c.String("tta"), []string{ttaNone, ttaFlip}); err != nil {
		return nil, err
	}
	if err := checkImgSize(c); err != nil {
		return nil, err
	}
	switch {
	case o.out == "" && c.IsSet("format"):
		return nil, usagef("--format %s: it is the format of --out; without --out, predict prints text, or JSON with --json", c.String("format"))
	case o.out == "" && c.Bool("json"):
		o.format = formatJSON
	case o.out != "" && c.Bool("json"):
		return nil, usagef("--json prints to stdout; with --out %s, give --format jsonl (or a .jsonl name) for JSON lines", o.out)
	case o.out != "":
		f, err := outputFormat(o.out, c.String("format"))
		if err != nil {
			return nil, err
		}
		o.format = f
	}
	return o, nil
}

func runPredict(c *cli.Context) error {
	o, err := parsePredict(c)
	if err != nil {
		return err
	}
	files, err := expandInputs(o.inputs)
	if err != nil {
		return err
	}
	l, dev, err := openCheckpoint(c)
	if err != nil {
		return err
	}
	defer l.model.Close()
	bp := &batchPredictor{l: l, dev: dev, k: min(c.Int("topk"), l.cfg.NumClasses), batch: c.Int("batch-size"),
		workers: c.Int("workers"), tta: c.String("tta") == ttaFlip, skipBad: c.Bool("skip-bad-images")}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var st predictStats
	if o.out == "" {
		st, err = bp.writeTo(ctx, files, newPredictionWriter(o.format, c.App.Writer, bp.k))
	} else {
		err = atomicfile.Write(o.out, func(w io.Writer) error {
			bw := bufio.NewWriter(w)
			if st, err = bp.writeTo(ctx, files, newPredictionWriter(o.format, bw, bp.k)); err != nil {
				return err
			}
			return bw.Flush()
		})
	}
	for _, e := range st.skipped {
		fmt.Fprintf(c.App.ErrWriter, "predict: skipped: %v\n", e) // the error names the file
	}
	if err != nil {
		return err
	}
	if o.out != "" {
		fmt.Fprintf(c.App.Writer, "wrote %d predictions (%s) to %s: %.1f images/s over %.2f s\n",
			st.images, o.format, o.out, st.imagesPerSecond(), st.seconds)
	}
	if len(st.skipped) > 0 {
		fmt.Fprintf(c.App.ErrWriter, "predict: skipped %d of %d images that failed to load (--skip-bad-images)\n", len(st.skipped), len(files))
	}
	return nil
}

// describe is the prediction of one image from its logits and class
// probabilities: the k most probable classes, ties in class order.
func describe(l *loaded, path string, logits, probs []float32, k int) prediction {
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
