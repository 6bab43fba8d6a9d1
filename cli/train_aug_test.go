package main

import (
	"errors"
	"strings"
	"testing"

	"github.com/gsrmt/gsrmt/train"
	"github.com/urfave/cli/v2"
)

// trainOptionsFor parses `gsrmt-cli train args...` into options without
// training.
func trainOptionsFor(t *testing.T, args ...string) (train.Options, error) {
	t.Helper()
	cmd := trainCommand()
	var o train.Options
	var err error
	cmd.Action = func(c *cli.Context) error {
		o, err = trainOptions(c)
		return nil
	}
	app := &cli.App{Commands: []*cli.Command{cmd}, OnUsageError: func(_ *cli.Context, e error, _ bool) error { return e }}
	if runErr := app.Run(append([]string{"gsrmt-cli", "train", "--out", t.TempDir(), "--device", "cpu"}, args...)); runErr != nil {
		return o, runErr
	}
	return o, err
}

func TestTrainAugmentFlags(t *testing.T) {
	o, err := trainOptionsFor(t, "--dataset", "fashion-mnist", "--recipe", "rmt", "--batch-size", "512")
	if err != nil {
		t.Fatal(err)
	}
	if o.AA != "rand-m9-mstd0.5-inc1" || o.Interpolation != "bicubic" || o.AugRepeats != 3 || o.RandomErasingMode != "pixel" ||
		o.RandAugment || o.EMA != 0.99996 || !o.SyncBN {
		t.Errorf("--recipe rmt gave aa %q interpolation %q aug-repeats %d erasing %q randaugment %v ema %v sync-bn %v",
			o.AA, o.Interpolation, o.AugRepeats, o.RandomErasingMode, o.RandAugment, o.EMA, o.SyncBN)
	}
	// Flags override the recipe; --aa replaces the recipe's torchvision RandAugment.
	o, err = trainOptionsFor(t, "--dataset", "fashion-mnist", "--recipe", "rmt", "--interpolation", "bilinear", "--aug-repeats", "0", "--aa", "rand-m7")
	if err != nil || o.Interpolation != "bilinear" || o.AugRepeats != 0 || o.AA != "rand-m7" {
		t.Errorf("overrides: %v, interpolation %q aug-repeats %d aa %q", err, o.Interpolation, o.AugRepeats, o.AA)
	}
	o, err = trainOptionsFor(t, "--dataset", "fashion-mnist", "--recipe", "mini-imagenet", "--aa", "rand-m9-mstd0.5")
	if err != nil || o.RandAugment || o.AA != "rand-m9-mstd0.5" {
		t.Errorf("mini-imagenet --aa: %v, randaugment %v aa %q", err, o.RandAugment, o.AA)
	}
	// Bad values are usage errors naming the flag.
	for _, c := range [][]string{
		{"--aa", "original", `--aa "original"`},
		{"--aa", "rand-m9", "--randaugment", "--randaugment asks"},
		{"--interpolation", "nearest", `--interpolation "nearest"`},
		{"--aug-repeats", "-1", "--aug-repeats -1"},
		{"--random-erasing-mode", "rand", `--random-erasing-mode "rand"`},
	} {
		_, err := trainOptionsFor(t, append([]string{"--dataset", "fashion-mnist"}, c[:len(c)-1]...)...)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), c[len(c)-1]) {
			t.Errorf("%v: %v, want a usage error with %q", c[:len(c)-1], err, c[len(c)-1])
		}
	}
}
