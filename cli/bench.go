package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/gsrmt/gsrmt/internal/torch"
	"github.com/gsrmt/gsrmt/train"
	"github.com/urfave/cli/v2"
)

func benchCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.IntFlag{Name: "batch-size", Value: 64, Usage: "images per step"},
		&cli.IntFlag{Name: "steps", Value: 20, Usage: "timed steps (the medians are reported)"},
		&cli.IntFlag{Name: "warmup", Value: 3, Usage: "untimed steps first"},
		&cli.BoolFlag{Name: "amp", Usage: "bf16 autocast (CUDA only)"},
		&cli.BoolFlag{Name: "checkpoint-activations", Usage: "training steps with activation checkpointing per block (train's flag): compare peak_rss_mb / peak_device_mb"},
		&cli.BoolFlag{Name: "json", Usage: "print one JSON object"},
		&cli.BoolFlag{Name: "csv", Usage: "print a CSV header and one row"},
		&cli.StringFlag{Name: "memory-log", Usage: "write `FILE.csv` with the resident memory (step,rss_mb) every --memory-every training steps"},
		&cli.IntFlag{Name: "memory-every", Value: 100, Usage: "training steps between --memory-log rows"},
		&cli.StringFlag{Name: "profile", Usage: "write a Chrome trace `FILE.json` of the libtorch ops of one more training step and evaluation forward"},
	}
	flags = append(flags, modelFlags(100)...)
	flags = append(flags, runtimeFlags(false)...)
	return &cli.Command{
		Name:  "bench",
		Usage: "time a training step (forward, backward, AdamW) and an evaluation forward on random inputs",
		Description: `Reports the median milliseconds per step and images per second after --warmup steps, and the
process's peak resident memory (and on CUDA the device's). bench/compare.py runs it and the PyTorch
counterpart on the same configs, interleaved, and prints the ratios.

A long run checks that memory stays flat: --steps 5000 --memory-log mem.csv writes the resident
memory every 100 training steps; train_rss_growth_pct is the growth over the timed training steps.

Examples:
   gsrmt-cli bench --variant swat --preset nano --img-size 32 --batch-size 64 --threads 2
   gsrmt-cli bench --preset nano --img-size 32 --threads 2 --steps 5000 --memory-log mem.csv --csv
   gsrmt-cli bench --variant retention --preset paper --img-size 224 --batch-size 64 --device cuda --amp --json`,
		Flags:  flags,
		Action: runBench,
	}
}

func runBench(c *cli.Context) error {
	cfg, opts, err := benchOptions(c)
	if err != nil {
		return err
	}
	var logErr error
	if path := c.String("memory-log"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("--memory-log: %w", err)
		}
		defer f.Close()
		fmt.Fprintln(f, "step,rss_mb")
		opts.MemoryEvery = c.Int("memory-every")
		opts.MemoryLog = func(step int, rss float64) {
			if _, err := fmt.Fprintf(f, "%d,%.1f\n", step, rss); err != nil && logErr == nil {
				logErr = fmt.Errorf("--memory-log %s: %w", path, err)
			}
		}
	}
	res, err := train.Bench(cfg, opts)
	if err != nil {
		return err
	}
	if logErr != nil {
		return logErr
	}
	switch {
	case c.Bool("json"):
		return json.NewEncoder(c.App.Writer).Encode(res)
	case c.Bool("csv"):
		_, err := fmt.Fprintf(c.App.Writer, "%s\n%s\n", train.BenchCSVHeader, res.CSV())
		return err
	}
	printBench(c.App.Writer, res)
	return nil
}

// benchOptions checks bench's flags and returns the model and what to run.
func benchOptions(c *cli.Context) (gsrmt.Config, train.BenchOptions, error) {
	var opts train.BenchOptions
	if c.NArg() > 0 {
		return gsrmt.Config{}, opts, usagef("bench takes no arguments, got %q", c.Args().Slice())
	}
	for _, f := range []string{"batch-size", "steps"} {
		if c.Int(f) < 1 {
			return gsrmt.Config{}, opts, usagef("--%s %d: want at least 1", f, c.Int(f))
		}
	}
	if c.Int("warmup") < 0 {
		return gsrmt.Config{}, opts, usagef("--warmup %d: want a non-negative count", c.Int("warmup"))
	}
	cfg, err := configFromFlags(c)
	if err != nil {
		return cfg, opts, err
	}
	dev, err := parseDevice(c.String("device"))
	if err != nil {
		return cfg, opts, err
	}
	if err := applyRuntime(c); err != nil {
		return cfg, opts, err
	}
	switch {
	case c.Bool("amp") && !c.IsSet("device") && dev.Name != "CUDA":
		return cfg, opts, usagef("--amp: bf16 autocast needs a CUDA device; this machine has none (see gsrmt-cli env)")
	case c.Bool("json") && c.Bool("csv"):
		return cfg, opts, usagef("--json and --csv: choose one output format")
	case c.Int("memory-every") < 1:
		return cfg, opts, usagef("--memory-every %d: want at least 1 step", c.Int("memory-every"))
	}
	opts = train.BenchOptions{ImgSize: cfg.ImageSize, Batch: c.Int("batch-size"), Steps: c.Int("steps"),
		Warmup: c.Int("warmup"), Device: dev, AMP: c.Bool("amp"), Profile: c.String("profile"),
		CheckpointActivations: c.Bool("checkpoint-activations"), CUDASpeed: cudaSpeed(c, dev)}
	return cfg, opts, nil
}

// printBench writes a benchmark's result as a table.
func printBench(w io.Writer, res train.BenchResult) {
	fmt.Fprintf(w, "%s %s, %d px, batch %d, %d threads, %s%s%s\n", res.Variant, res.Preset, res.ImgSize, res.Batch, res.Threads, res.Device,
		map[bool]string{true: ", bf16 autocast"}[res.AMP], map[bool]string{true: ", " + res.CUDASpeed.String()}[res.Device != "cpu"])
	if res.Device == "cpu" && torch.ReferenceBLAS(res.BLAS) {
		fmt.Fprintf(w, "BLAS:         %s is Netlib's reference BLAS: install libopenblas0-openmp for 2-4x faster steps\n", res.BLAS)
	}
	if !res.GoSysmonIdle && res.Device == "cpu" {
		fmt.Fprintf(w, "Go sysmon:    %s; its wake-ups preempt libtorch's threads\n", sysmonState)
	}
	fmt.Fprintf(w, "train step:   %8.1f ms  %8.1f images/s\n", res.TrainMsPerStep, res.TrainImagesPerS)
	fmt.Fprintf(w, "eval forward: %8.1f ms  %8.1f images/s\n", res.EvalMsPerStep, res.EvalImagesPerS)
	fmt.Fprintf(w, "memory:       peak %.0f MB resident; %.1f MB after warm-up, %.1f MB after the training steps (%+.2f %%), %.1f MB at the end\n",
		res.PeakRSSMB, res.RSSAfterWarmupMB, res.RSSAfterTrainMB, res.TrainRSSGrowthPct, res.RSSEndMB)
	fmt.Fprintf(w, "C heap:       %.1f MB in use after warm-up, %.1f MB after the training steps (%+.2f %%)\n",
		res.HeapAfterWarmupMB, res.HeapAfterTrainMB, res.TrainHeapGrowthPct)
	if res.PeakDeviceMB > 0 {
		fmt.Fprintf(w, "device:       peak %.0f MB in use on %s (context and caching allocator included)\n", res.PeakDeviceMB, res.Device)
	}
}
