package main

import (
	"fmt"

	"github.com/gsrmt/gsrmt/checkpoints"
	"github.com/gsrmt/gsrmt/datasets"
	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/sugarme/gotch"
	"github.com/urfave/cli/v2"
)

// loaded is a model restored from a checkpoint for eval and predict.
type loaded struct {
	model   *gsrmt.Model
	cfg     gsrmt.Config
	run     *checkpoints.RunInfo // the data it was trained on, when the checkpoint records it (our files)
	classes []string             // names, when the checkpoint records them
	norm    datasets.Normalize
	ours    bool // the file records its config
	ema     bool // the weights are the checkpoint's EMA weights (--ema)
}

// emaFlag is the --ema flag of eval and predict: use the EMA weights that a
// gsrmt training checkpoint of a run with train --ema holds.
func emaFlag() cli.Flag {
	return &cli.BoolFlag{Name: "ema", Usage: "use the EMA weights of a gsrmt training checkpoint (a run trained with --ema) instead of the model's"}
}

// openCheckpoint applies --device, --threads, --tf32 and --cudnn-benchmark,
// then loads --checkpoint.
func openCheckpoint(c *cli.Context) (*loaded, gotch.Device, error) {
	dev, err := parseDevice(c.String("device"))
	if err != nil {
		return nil, dev, err
	}
	if err := applyRuntime(c); err != nil {
		return nil, dev, err
	}
	if err := cudaSpeed(c, dev).Apply(dev); err != nil {
		return nil, dev, err
	}
	l, err := loadForInference(c, c.String("checkpoint"), dev)
	return l, dev, err
}

// loadForInference builds the model a checkpoint describes (or, for a bare
// state_dict, the one the model flags describe) and loads its weights
// strictly: with --ema, the EMA weights of a gsrmt training checkpoint
// (an error when it holds none). The file is read once, and its config is checked against its
// tensors and gsrmt's limits before the model is allocated
// (checkpoints.Checkpoint.BuildModel).
func loadForInference(c *cli.Context, path string, dev gotch.Device) (*loaded, error) {
	l := &loaded{}
	ck, err := openWeights(c, path)
	if err != nil {
		return nil, fmt.Errorf("--checkpoint: %w", err)
	}
	if c.Bool("ema") {
		if ck.Training == nil || ck.Training.EMA == nil {
			return nil, fmt.Errorf("--ema: %s holds no EMA weights (a %s file): give a training checkpoint (last.pt, best.pt) of a run trained with --ema, or drop --ema", path, ck.Kind)
		}
		ck.State, l.ema = ck.Training.EMA, true
	}
	if ck.Config != nil {
		l.cfg, l.run, l.ours = *ck.Config, ck.Run, true
		for _, flag := range []string{"variant", "preset", "classes", "model-config"} {
			if c.IsSet(flag) {
				fmt.Fprintf(c.App.ErrWriter, "note: --%s is ignored: %s records its model config\n", flag, path)
			}
		}
		if c.IsSet("img-size") {
			l.cfg.ImageSize = c.Int("img-size")
		}
	} else {
		if !c.IsSet("variant") && !c.IsSet("preset") && !c.IsSet("model-config") {
			return nil, usagef("--checkpoint %s is a bare state_dict: say which model it holds with --variant, --preset, --classes and --img-size", path)
		}
		if l.cfg, err = configFromFlags(c); err != nil {
			return nil, err
		}
	}
	if l.cfg.ImageSize == 0 {
		l.cfg.ImageSize = c.Int("img-size")
	}
	if l.model, err = ck.BuildModel(l.cfg, dev); err != nil {
		return nil, fmt.Errorf("--checkpoint %w", err)
	}
	l.norm = datasets.Normalize{Mean: datasets.ImageNetMean, Std: datasets.ImageNetStd}
	if r := l.run; r != nil {
		if len(r.NormMean) == 3 && len(r.NormStd) == 3 {
			l.norm = datasets.Normalize{Mean: [3]float32(r.NormMean), Std: [3]float32(r.NormStd), OutChannels: 3}
		}
		if len(r.ClassNames) == l.cfg.NumClasses {
			l.classes = r.ClassNames
		}
	}
	return l, nil
}

// runInfo is what the checkpoint records about its data (zero when nothing).
func (l *loaded) runInfo() checkpoints.RunInfo {
	if l.run == nil {
		return checkpoints.RunInfo{}
	}
	return *l.run
}

func (l *loaded) label(i int) string {
	if i < len(l.classes) {
		return l.classes[i]
	}
	return fmt.Sprint(i)
}
