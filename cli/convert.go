package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gsrmt/gsrmt/checkpoints"
	"github.com/urfave/cli/v2"
)

// Output formats of `convert --to`.
var convertFormats = []string{"pt", "state-dict", "safetensors"}

// modelFlagNames are the flags of modelFlags: they describe the model of a
// bare state_dict.
var modelFlagNames = []string{"variant", "preset", "model-config", "classes", "img-size", "window",
	"no-windows", "rope", "no-rope", "gate", "swat-norm", "drop-path"}

func convertCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "in", Usage: "input: a .pt (gsrmt checkpoint, bare state_dict, or a dict holding one under model/state_dict/model_state_dict) or a .safetensors file"},
		&cli.StringFlag{Name: "out", Usage: "output file (written atomically)"},
		&cli.StringFlag{Name: "to", Usage: "output format: pt, state-dict or safetensors (default: safetensors for a .safetensors --out; otherwise pt when a model config is known, else state-dict)"},
		&cli.BoolFlag{Name: "ema", Usage: "convert the EMA weights of a gsrmt training checkpoint instead of the model's"},
	}
	return &cli.Command{
		Name:      "convert",
		Usage:     "convert weights between gsrmt checkpoints, bare PyTorch state_dicts and safetensors",
		UsageText: "gsrmt-cli convert --in FILE --out FILE [--to pt|state-dict|safetensors] [--ema] [model flags for a bare state_dict]",
		Description: `Output formats (--to):
   pt           gsrmt checkpoint (format gsrmt-checkpoint-v1): "model" (the state_dict) and "config", plus
                epoch, step, metrics and the config's normalization/data set entries when the input has them;
                no optimizer, scheduler, EMA or RNG state. Needs a model config: the input's, or the model
                flags (--variant, --preset, --classes, --img-size, ... or --model-config) for a bare state_dict.
   state-dict   bare state_dict, as torch.save(model.state_dict(), path) writes; PyTorch reads it with
                torch.load(path, weights_only=True) and load_state_dict(strict=True).
   safetensors  the state_dict in the safetensors format, with the model config JSON in the metadata
                ("config") when one is known.
When a model config is known, the weights are checked against it (every name and shape, as a strict
load, and gsrmt's size limits) before anything is written. --out must not be the --in file (same path
or a link to it). A "module." (DataParallel) or "_orig_mod." (torch.compile) prefix on every key is
removed. Tensors keep their dtype. --classes defaults to the rows of head.fc.weight.

Examples:
   gsrmt-cli convert --in runs/cifar/best.pt --out best.safetensors
   gsrmt-cli convert --in runs/cifar/last.pt --out ema.pt --to state-dict --ema
   gsrmt-cli convert --in torch_state_dict.pt --out gsrmt.pt --variant swat --preset nano --classes 10 --img-size 32
   gsrmt-cli convert --in model.safetensors --out model.pt --to state-dict`,
		Flags:  append(flags, modelFlags(100)...),
		Action: runConvert,
	}
}

func runConvert(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("convert takes no arguments, got %q (use --in and --out)", c.Args().Slice())
	}
	in, out := c.String("in"), c.String("out")
	if in == "" {
		return usagef("convert: --in is required: the checkpoint to convert")
	}
	if out == "" {
		return usagef("convert: --out is required: the file to write")
	}
	if err := distinctFiles(in, out); err != nil {
		return err
	}
	to := c.String("to")
	if c.IsSet("to") {
		if err := oneOfFlag("to", to, convertFormats); err != nil {
			return err
		}
	}
	var modelFlag string
	for _, name := range modelFlagNames {
		if c.IsSet(name) {
			modelFlag = name
			break
		}
	}

	ck, err := checkpoints.ReadCheckpoint(in)
	if err != nil {
		return err
	}
	state := ck.State
	if c.Bool("ema") {
		if ck.Training == nil || ck.Training.EMA == nil {
			return fmt.Errorf("convert: --ema: %s holds no EMA weights (%s file)", in, ck.Kind)
		}
		state = ck.Training.EMA
	}
	state, prefix := checkpoints.StripPrefix(state)

	cfg := ck.Config
	extra := ck.ConfigExtra
	switch {
	case cfg != nil && modelFlag != "":
		return usagef("convert: --%s: %s already records a model config; the model flags apply only to a bare state_dict", modelFlag, in)
	case cfg == nil && modelFlag != "":
		fc, err := configFromFlags(c)
		if err != nil {
			return err
		}
		if !c.IsSet("classes") && !c.IsSet("model-config") {
			if v, ok := state.Get("head.fc.weight"); ok {
				if t, ok := v.(*checkpoints.Tensor); ok && len(t.Shape) == 2 {
					fc.NumClasses = int(t.Shape[0])
				}
			}
		}
		cfg = &fc
	}

	explicit := c.IsSet("to")
	if !explicit {
		switch {
		case strings.EqualFold(filepath.Ext(out), ".safetensors"):
			to = "safetensors"
		case cfg != nil:
			to = "pt"
		default:
			to = "state-dict"
		}
	}
	if to == "pt" && cfg == nil {
		return usagef("convert --to pt: %s is a %s without a model config: give the model flags (--variant, --preset, --classes, --img-size, or --model-config), or --to state-dict", in, ck.Kind)
	}

	if cfg != nil {
		if err := checkpoints.CheckModelState(*cfg, state); err != nil {
			return fmt.Errorf("convert: %s: %w", in, err)
		}
	}

	switch to {
	case "pt":
		st := &checkpoints.TrainingState{ModelConfig: *cfg, ConfigExtra: extra, Model: state}
		if tr := ck.Training; tr != nil {
			st.Epoch, st.Step, st.Metrics = tr.Epoch, tr.Step, tr.Metrics
		}
		err = checkpoints.SaveTraining(out, nil, st)
	case "state-dict":
		err = checkpoints.Save(out, state)
	case "safetensors":
		err = checkpoints.SaveStateSafetensors(out, state, cfg, extra)
	}
	if err != nil {
		return err
	}

	var elems int64
	for _, e := range state.Entries() {
		if t, ok := e.Value.(*checkpoints.Tensor); ok {
			elems += t.Numel()
		}
	}
	w := c.App.Writer
	what := "weights"
	if c.Bool("ema") {
		what = "EMA weights"
	}
	fmt.Fprintf(w, "read  %s (%s): %s, %d tensors, %s elements\n", in, ck.Kind, what, state.Len(), humanCount(elems))
	if prefix != "" {
		fmt.Fprintf(w, "      removed the %q prefix from every key\n", prefix)
	}
	if cfg != nil {
		name := cfg.Preset
		if name == "" {
			name = "custom"
		}
		fmt.Fprintf(w, "model %s %s, %d classes, %d px: every name and shape checked\n", cfg.Variant, name, cfg.NumClasses, cfg.ImageSize)
	}
	how := ""
	if !explicit {
		how = " (chosen from --out; set --to to change)"
	}
	fmt.Fprintf(w, "wrote %s (%s)%s\n", out, to, how)
	return nil
}

// distinctFiles refuses an --out that is the --in file (the same path, or
// the same file through a symbolic or hard link): convert drops the
// optimizer, scheduler, EMA and RNG state, so writing over the input would
// lose them.
func distinctFiles(in, out string) error {
	refuse := func() error {
		return usagef("convert: --out %s is the same file as --in %s: write the converted checkpoint to another path (convert drops the optimizer and EMA state, so it never rewrites its input)", out, in)
	}
	if filepath.Clean(in) == filepath.Clean(out) {
		return refuse()
	}
	fo, err := os.Stat(out)
	if err != nil {
		return nil // no such file yet (or unreadable: the write reports it)
	}
	fi, err := os.Stat(in)
	if err != nil {
		return nil // reading --in reports it
	}
	if os.SameFile(fi, fo) {
		return refuse()
	}
	return nil
}
