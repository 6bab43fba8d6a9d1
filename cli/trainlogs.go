package main

import (
	"path/filepath"

	"github.com/gsrmt/gsrmt/train"
	"github.com/urfave/cli/v2"
)

// logFlags choose the step-level logs a run writes besides events.jsonl
// (docs/LOGS.md).
func logFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "tensorboard", Usage: "also write TensorBoard event files, to --out's " + train.TensorBoardDir + " folder (or --tensorboard-dir)"},
		&cli.StringFlag{Name: "tensorboard-dir", Usage: "folder for the TensorBoard event files (implies --tensorboard)"},
	}
}

// tensorBoardOption sets o.TensorBoard from --tensorboard and
// --tensorboard-dir. Without either, a resumed run keeps its checkpoint's
// choice and a new run writes none.
func tensorBoardOption(c *cli.Context, o *train.Options) error {
	switch {
	case c.IsSet("tensorboard-dir"):
		if c.String("tensorboard-dir") == "" {
			return usagef("--tensorboard-dir: want a folder (or leave the flag out)")
		}
		if c.IsSet("tensorboard") && !c.Bool("tensorboard") {
			return usagef("--tensorboard=false contradicts --tensorboard-dir %s: give one of them", c.String("tensorboard-dir"))
		}
		o.TensorBoard = c.String("tensorboard-dir")
	case c.IsSet("tensorboard") && c.Bool("tensorboard"):
		o.TensorBoard = filepath.Join(o.Out, train.TensorBoardDir)
	case c.IsSet("tensorboard"):
		o.TensorBoard = ""
	}
	return nil
}
