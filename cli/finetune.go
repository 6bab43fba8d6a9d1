package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gsrmt/gsrmt/checkpoints"
	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/gsrmt/gsrmt/train"
	"github.com/urfave/cli/v2"
)

// keyUsage is --key's help, the same for every command that reads weights
// from a file.
const keyUsage = `the entry of the checkpoint's dict that holds the weights, e.g. model_ema or state_dict_ema ` +
	`(default: state_dict, then model, then model_state_dict, as timm looks them up; a gsrmt checkpoint: model, or ema)`

// keyFlag is --key of eval, predict, convert and train (for --finetune).
func keyFlag() cli.Flag {
	return &cli.StringFlag{Name: "key", Usage: keyUsage}
}

// openWeights opens a weights file with --key (checkpoints.OpenKey) and
// says on stderr which entry the weights came from and which entries were
// ignored, for a checkpoint dict of another training script.
func openWeights(c *cli.Context, path string) (*checkpoints.Checkpoint, error) {
	ck, err := checkpoints.OpenKey(path, c.String("key"))
	if errors.Is(err, checkpoints.ErrNoKey) {
		return nil, usagef("--key: %v", err)
	}
	if err != nil {
		return nil, err
	}
	if ck.Kind == "dict" {
		fmt.Fprintf(c.App.ErrWriter, "note: %s: the weights are its %q entry; ignored: %s\n", path, ck.Key, strings.Join(ck.Ignored, ", "))
	}
	return ck, nil
}

// finetuneHelp ends train's --help: what --finetune does.
const finetuneHelp = `--finetune FILE starts a new run from FILE's weights: a gsrmt checkpoint, a bare state_dict, the
checkpoint dict of timm's, DeiT/RMT's or Swin's training script (--key picks its entry), or
safetensors. Every tensor must fit the model except the classifier (head.fc), which is re-initialized
when the class count differs; the optimizer, schedule and epoch start fresh. Without model flags a
gsrmt checkpoint's recorded model is the architecture. The load report goes to the log and to
config.json ("finetune_report"). See docs/FINETUNING.md.`

// finetuneFlags are train's flags for starting from other weights.
func finetuneFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "finetune", Usage: "start from this file's weights (gsrmt checkpoint, bare state_dict, timm/DeiT/Swin checkpoint or " +
			"safetensors) with fresh optimizer, schedule and epochs; a classifier of another class count is re-initialized. " +
			"Without model flags, a gsrmt checkpoint's recorded model is the architecture"},
		keyFlag(),
	}
}

// finetuneOptions sets --finetune and --key. With --resume FILE, --finetune
// is refused: resuming restores a run, weights included. Under --resume
// auto the flag must equal what the run recorded (train.ResumeConflicts);
// the resumed run does not load the file again.
func finetuneOptions(c *cli.Context, o *train.Options, resume string) error {
	if !c.IsSet("finetune") {
		if c.IsSet("key") && resume == "" {
			return usagef("--key %q names the entry of the --finetune file that holds the weights: give --finetune", c.String("key"))
		}
		return nil
	}
	path := c.String("finetune")
	if resume != "" && c.String("resume") != "auto" {
		return usagef("--finetune %s with --resume %s: resuming restores a run (weights, optimizer, schedule and position); "+
			"start a new run with --finetune, or resume without it", path, resume)
	}
	if _, err := os.Stat(path); err != nil {
		return usagef("--finetune %s: %v", path, err)
	}
	if c.Bool("overwrite") && sameFolder(filepath.Dir(path), o.Out) {
		return usagef("--finetune %s is in --out %s, whose run files --overwrite removes before the file is read: copy it elsewhere first, or choose another --out", path, o.Out)
	}
	o.Finetune, o.FinetuneKey = path, c.String("key")
	return nil
}

// sameFolder reports whether a and b name the same existing folder.
func sameFolder(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// trainModelConfig is the model a new run trains: the model flags', or with
// --finetune and no model flag the model config a gsrmt checkpoint records
// (--drop-path applies on top; the class count and image size come from
// the data, as always). A file without a config uses the flags' defaults.
func trainModelConfig(c *cli.Context) (gsrmt.Config, error) {
	path := c.String("finetune")
	if path == "" || anyModelFlagSet(c, "drop-path") {
		return configFromFlags(c)
	}
	cfg, _, err := checkpoints.ReadConfig(path)
	if errors.Is(err, checkpoints.ErrNoConfig) {
		return configFromFlags(c)
	}
	if err != nil {
		return cfg, fmt.Errorf("--finetune: %w", err)
	}
	if c.IsSet("drop-path") {
		if d := c.Float64("drop-path"); d < 0 || d >= 1 {
			return cfg, usagef("--drop-path %v: want a rate in [0, 1)", d)
		}
		cfg.DropPath = c.Float64("drop-path")
	}
	fmt.Fprintf(c.App.ErrWriter, "note: the model is the one %s records (%s %s); model flags choose another\n", path, cfg.Variant, presetName(cfg))
	return cfg, nil
}

// presetName is a config's preset, or "custom".
func presetName(cfg gsrmt.Config) string {
	if cfg.Preset == "" {
		return "custom"
	}
	return cfg.Preset
}
