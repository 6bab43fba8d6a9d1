package main

import (
	"encoding/json"
	"fmt"

	"github.com/gsrmt/gsrmt/train"
	"github.com/urfave/cli/v2"
)

func benchCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.IntFlag{Name: "batch-size", Value: 64, Usage: "images per step"},
		&cli.IntFlag{Name: "steps", Value: 20, Usage: "timed steps (the medians are reported)"},
		&cli.IntFlag{Name: "warmup", Value: 3, Usage: "untimed steps first"},
		&cli.BoolFlag{Name: "amp", Usage: "bf16 autocast (CUDA only)"},
		&cli.BoolFlag{Name: "json", Usage: "print one JSON object"},
	}
	flags = append(flags, modelFlags(100)...)
	flags = append(flags, runtimeFlags()...)
	return &cli.Command{
		Name:  "bench",
		Usage: "time a training step (forward, backward, AdamW) and an evaluation forward on random inputs",
		Description: `Reports the median milliseconds per step and images per second after --warmup steps, and the
process's peak resident memory. bench/compare.sh runs the PyTorch counterpart on the same config.

Examples:
   gsrmt-cli bench --variant swat --preset nano --img-size 32 --batch-size 64 --threads 2
   gsrmt-cli bench --variant retention --preset paper --img-size 224 --batch-size 64 --device cuda --amp --json`,
		Flags: flags,
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("bench takes no arguments, got %q", c.Args().Slice())
			}
			for _, f := range []string{"batch-size", "steps"} {
				if c.Int(f) < 1 {
					return usagef("--%s %d: want at least 1", f, c.Int(f))
				}
			}
			if c.Int("warmup") < 0 {
				return usagef("--warmup %d: want a non-negative count", c.Int("warmup"))
			}
			cfg, err := configFromFlags(c)
			if err != nil {
				return err
			}
			dev, err := parseDevice(c.String("device"))
			if err != nil {
				return err
			}
			if err := applyRuntime(c); err != nil {
				return err
			}
			if c.Bool("amp") && !c.IsSet("device") && dev.Name != "CUDA" {
				return usagef("--amp: bf16 autocast needs a CUDA device; this machine has none (see gsrmt-cli env)")
			}
			res, err := train.Bench(cfg, cfg.ImageSize, c.Int("batch-size"), c.Int("steps"), c.Int("warmup"), dev, c.Bool("amp"))
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return json.NewEncoder(c.App.Writer).Encode(res)
			}
			w := c.App.Writer
			fmt.Fprintf(w, "%s %s, %d px, batch %d, %d threads, %s%s\n", res.Variant, res.Preset, res.ImgSize, res.Batch, res.Threads, res.Device,
				map[bool]string{true: ", bf16 autocast"}[res.AMP])
			fmt.Fprintf(w, "train step:   %8.1f ms  %8.1f images/s\n", res.TrainMsPerStep, res.TrainImagesPerS)
			fmt.Fprintf(w, "eval forward: %8.1f ms  %8.1f images/s\n", res.EvalMsPerStep, res.EvalImagesPerS)
			fmt.Fprintf(w, "memory:       peak %.0f MB resident; %.0f MB after warm-up, %.0f MB at the end\n", res.PeakRSSMB, res.RSSAfterWarmupMB, res.RSSEndMB)
			return nil
		},
	}
}
