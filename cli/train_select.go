package main

import (
	"fmt"

	"github.com/gsrmt/gsrmt/train"
	"github.com/urfave/cli/v2"
)

// selectionFlags choose the split that chooses best.pt
// (docs/MODEL-SELECTION.md).
func selectionFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "val-split", Usage: "hold out this fraction of each class of the training set (seeded by --split-seed) as a validation split that chooses best.pt, e.g. 0.1; \"dataset\": the data set's own val/ split"},
		&cli.StringFlag{Name: "select-on", Usage: "split whose top-1 chooses best.pt and --keep-checkpoints: val (needs --val-split) or test (default: val with --val-split, else test)"},
	}
}

// trainSummary is train's last line: the test split's result of the last
// epoch, best.pt (the epoch, the split that chose it, whose weights) and,
// for a best.pt chosen on the validation split, its test result.
func trainSummary(res *train.Result) string {
	last := res.Metrics[len(res.Metrics)-1]
	whose := "the model's weights"
	if res.BestSource == "ema" {
		whose = "the EMA's weights"
	}
	best := fmt.Sprintf("best.pt: epoch %d, %s top-1 %.2f %% (%s)", res.BestEpoch, res.BestSplit, res.Best, whose)
	if t := res.BestTest; t != nil {
		best += fmt.Sprintf(", test top-1 %.2f %%, top-5 %.2f %%", t.Top1, t.Top5)
	}
	return fmt.Sprintf("test top-1 %.2f %%, top-5 %.2f %%, loss %.4f after %d epochs (%s); run folder %s",
		last.TestTop1, last.TestTop5, last.TestLoss, last.Epoch, best, res.RunDir)
}
