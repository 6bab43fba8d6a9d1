package main

import (
	"strings"

	"github.com/gsrmt/gsrmt/train"
	"github.com/sugarme/gotch"
	"github.com/urfave/cli/v2"
)

// --amp takes an optional precision: `--amp` is bf16 autocast (as before),
// `--amp fp16` / `--amp=fp16` (or float16, bf16, bfloat16) chooses it, the
// same as `--amp --amp-dtype fp16` (timm's --amp-dtype). urfave/cli's
// boolean flag takes no value, so train's arguments are rewritten into
// that form before parsing.

// precisionFlags are train's flags for memory and precision
// (docs/MEMORY-AND-PRECISION.md); --amp itself is among the optimization flags.
func precisionFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "grad-accum-steps", Value: 1, Usage: "sum the gradients of N batches per optimizer step (effective batch N x --batch-size, as timm; the recipe's lr scales with it)"},
		&cli.StringFlag{Name: "amp-dtype", Value: "bf16", Usage: "--amp's precision: " + ampDTypeNames + " (--amp fp16 sets it)"},
		&cli.BoolFlag{Name: "checkpoint-activations", Usage: "recompute each block's activations in backward instead of keeping them: less memory, one more forward per step"},
	}
}

// precisionHelp is the paragraph of train's --help about these flags.
const precisionHelp = `
Memory and precision (docs/MEMORY-AND-PRECISION.md): --grad-accum-steps N sums the gradients of N
batches of --batch-size images per optimizer step (effective batch N x --batch-size, as timm; epochs,
warmup and the schedule count optimizer steps); --checkpoint-activations recomputes each block in
backward instead of keeping its activations; --amp is bf16 autocast, --amp fp16 is fp16 autocast with
dynamic loss scaling for GPUs without bf16 (steps with inf/NaN gradients are skipped and counted in
metrics.csv's skipped_steps).
`

// ampDTypes maps each accepted spelling to train's name for it.
var ampDTypes = map[string]string{
	"fp16": train.AMPFloat16, "float16": train.AMPFloat16, "half": train.AMPFloat16,
	"bf16": train.AMPBFloat16, "bfloat16": train.AMPBFloat16,
}

// ampDTypeNames lists the accepted spellings, for messages.
const ampDTypeNames = "fp16 (float16) or bf16 (bfloat16)"

// splitAMPValue rewrites `--amp DTYPE` and `--amp=DTYPE` in train's
// arguments into `--amp --amp-dtype DTYPE`; other arguments, and other
// commands', are returned unchanged.
func splitAMPValue(args []string) []string {
	if len(args) < 2 || args[1] != "train" {
		return args
	}
	out := make([]string, 0, len(args)+1)
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, value, hasValue := strings.Cut(a, "=")
		if name != "--amp" && name != "-amp" {
			out = append(out, a)
			if a == "--" {
				return append(out, args[i+1:]...)
			}
			continue
		}
		if !hasValue && i+1 < len(args) {
			if _, ok := ampDTypes[strings.ToLower(args[i+1])]; ok {
				value, hasValue = args[i+1], true
				i++
			}
		}
		if _, ok := ampDTypes[strings.ToLower(value)]; hasValue && ok {
			out = append(out, "--amp", "--amp-dtype", value)
			continue
		}
		out = append(out, a) // bare --amp, or --amp=true/false
	}
	return out
}

// ampDType resolves --amp-dtype's spelling, or names the accepted ones.
func ampDType(value string) (string, error) {
	if d, ok := ampDTypes[strings.ToLower(value)]; ok {
		return d, nil
	}
	return "", usagef("--amp-dtype %q: want %s", value, ampDTypeNames)
}

// applyPrecisionFlags sets --amp-dtype (when given) and
// --checkpoint-activations, and refuses --amp on the CPU (autocast is
// CUDA's here), --amp-dtype without --amp and --grad-accum-steps below 1.
func applyPrecisionFlags(c *cli.Context, o *train.Options) error {
	if c.IsSet("amp-dtype") {
		d, err := ampDType(c.String("amp-dtype"))
		if err != nil {
			return err
		}
		o.AMPDType = d
	}
	o.CheckpointActivations = c.Bool("checkpoint-activations")
	if n := c.Int("grad-accum-steps"); c.IsSet("grad-accum-steps") && n < 1 {
		return usagef("--grad-accum-steps %d: want at least 1 (1: a step per batch)", n)
	}
	if c.IsSet("amp-dtype") && !o.AMP {
		return usagef("--amp-dtype %s chooses --amp's precision: add --amp (or write --amp %s)", c.String("amp-dtype"), c.String("amp-dtype"))
	}
	if o.AMP && o.Device == gotch.CPU {
		dtype := o.AMPDType
		if dtype == "" {
			dtype = train.AMPBFloat16
		}
		return usagef("--amp (%s autocast) needs a CUDA device: this run is on the CPU (drop --amp, or give --device cuda)", dtype)
	}
	return nil
}
