package main

import (
	"fmt"

	"github.com/gsrmt/gsrmt/train"
)

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
