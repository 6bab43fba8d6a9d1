package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/gsrmt/gsrmt/checkpoints"
	"github.com/urfave/cli/v2"
)

func averageCommand() *cli.Command {
	return &cli.Command{
		Name:      "average",
		Usage:     "average the weights of several checkpoints of one model (as timm's avg_checkpoints.py)",
		UsageText: "gsrmt-cli average --in A.pt B.pt [C.pt ...] --out AVG.pt [--ema] [--json]",
		Description: `Averages the state_dicts of 2 or more checkpoints of the same model: gsrmt checkpoints, bare
PyTorch state_dicts or safetensors files (anything eval --checkpoint reads). Every input must hold the
same names and shapes, and the same model config where two record one; a file that differs is refused,
naming it and the first differing entry. Floating-point tensors are averaged in float64 and written
as float32; integer tensors (BatchNorm's num_batches_tracked) are taken from the last file (timm
averages them too and casts back). A "module." or "_orig_mod." prefix is removed.
The output is a gsrmt checkpoint with the averaged weights and the first recorded config and run
description (so eval and predict need no model flags), and no optimizer, scheduler or EMA state; a
safetensors file for a .safetensors --out; a bare state_dict when no input records a config.
--out must not be one of the inputs. --in takes the files after it, up to the next flag.
With --ema the files' EMA weights are averaged instead (each must have them).

Examples:
   gsrmt-cli average --in runs/a/last.pt runs/b/last.pt runs/c/last.pt --out avg.pt
   gsrmt-cli average --in runs/cifar/best.pt runs/cifar/last.pt --out ema-avg.pt --ema --json
   gsrmt-cli eval --checkpoint avg.pt`,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "in", Usage: "the checkpoints to average: 2 or more files, after one --in or each after its own"},
			&cli.StringFlag{Name: "out", Usage: "output file (written atomically; not one of the inputs)"},
			&cli.BoolFlag{Name: "ema", Usage: "average the files' EMA weights instead of their model weights"},
			&cli.BoolFlag{Name: "json", Usage: "print {\"out\", \"inputs\", \"tensors\"} as JSON"},
		},
		Action: runAverage,
	}
}

func runAverage(c *cli.Context) error {
	job, err := parseAverage(c)
	if err != nil {
		return err
	}
	res, err := job.run()
	if err != nil {
		return err
	}
	return job.report(c.App.Writer, res)
}

// averageJob is a parsed `average` command.
type averageJob struct {
	in     []string
	out    string
	ema    bool
	asJSON bool
}

// parseAverage checks the flags of `average`. urfave/cli takes one value
// per --in and stops reading flags at the first argument, so the files that
// follow --in (`--in a.pt b.pt --out avg.pt`) and any flags after them
// arrive as arguments: averageTail reads those. The inputs must be 2 or
// more and --out none of them.
func parseAverage(c *cli.Context) (*averageJob, error) {
	j := &averageJob{in: c.StringSlice("in"), out: c.String("out"), ema: c.Bool("ema"), asJSON: c.Bool("json")}
	if c.NArg() > 0 {
		if len(j.in) == 0 {
			return nil, usagef("average: %q: give the checkpoints with --in (--in a.pt b.pt ...)", c.Args().Slice())
		}
		if err := j.averageTail(c.Args().Slice()); err != nil {
			return nil, err
		}
	}
	if len(j.in) < 2 {
		return nil, usagef("average: --in needs 2 or more checkpoints, got %d", len(j.in))
	}
	if j.out == "" {
		return nil, usagef("average: --out is required: the file to write")
	}
	for _, in := range j.in {
		if sameFile(in, j.out) {
			return nil, usagef("average: --out %s is the same file as the input %s: write the average to another path", j.out, in)
		}
	}
	return j, nil
}

// averageTail reads the arguments after the last flag urfave/cli parsed:
// more inputs of the --in before them, and the command's flags.
func (j *averageJob) averageTail(args []string) error {
	fs := flag.NewFlagSet("average", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Func("in", "", func(v string) error { j.in = append(j.in, v); return nil })
	fs.StringVar(&j.out, "out", j.out, "")
	fs.BoolVar(&j.ema, "ema", j.ema, "")
	fs.BoolVar(&j.asJSON, "json", j.asJSON, "")
	for len(args) > 0 {
		if a := args[0]; len(a) < 2 || a[0] != '-' {
			j.in = append(j.in, a)
			args = args[1:]
			continue
		}
		if err := fs.Parse(args); err != nil {
			return usagef("average: %v (see gsrmt-cli average --help)", err)
		}
		args = fs.Args()
	}
	return nil
}

// sameFile reports whether a and b are one file: the same path, or the
// same file through a link (os.SameFile). A path that does not exist is no
// file's.
func sameFile(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}

// run averages the inputs and writes --out.
func (j *averageJob) run() (*checkpoints.Averaged, error) {
	a, err := checkpoints.AverageFiles(j.in, j.ema)
	if err != nil {
		return nil, fmt.Errorf("average: %w", err)
	}
	if err := a.Save(j.out); err != nil {
		return nil, fmt.Errorf("average: %w", err)
	}
	return a, nil
}

// report says what was averaged and written, or prints it as JSON.
func (j *averageJob) report(w io.Writer, a *checkpoints.Averaged) error {
	tensors := a.State.Len()
	if j.asJSON {
		return json.NewEncoder(w).Encode(map[string]any{"out": j.out, "inputs": len(a.Paths), "tensors": tensors})
	}
	what := "weights"
	if j.ema {
		what = "EMA weights"
	}
	for _, p := range a.Paths {
		fmt.Fprintf(w, "read  %s\n", p)
	}
	fmt.Fprintf(w, "averaged the %s of %d files: %d float tensors (mean, float32), %d integer tensors (from %s)\n",
		what, len(a.Paths), a.Averaged, a.Kept, a.Paths[len(a.Paths)-1])
	if cfg := a.Config; cfg != nil {
		name := cfg.Preset
		if name == "" {
			name = "custom"
		}
		fmt.Fprintf(w, "model %s %s, %d classes, %d px: every name and shape checked\n", cfg.Variant, name, cfg.NumClasses, cfg.ImageSize)
	}
	fmt.Fprintf(w, "wrote %s (%d tensors)\n", j.out, tensors)
	return nil
}
