package train

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"

	"github.com/gsrmt/gsrmt/checkpoints"
	"github.com/gsrmt/gsrmt/gsrmt"
)

// selectOnKey is the checkpoint "metrics" entry that names the split that
// chose best.pt.
const selectOnKey = "select_on"

// valCount is the validation images for the start-up line ("" without).
func (r *run) valCount() string {
	if r.data.Val == nil {
		return ""
	}
	return fmt.Sprintf(" / %d val", r.data.Val.Len())
}

// finishRun evaluates the test split once at the end of a run with a
// validation split, whose epochs evaluated it only when best.pt was chosen
// on it: the last weights (the model's and the EMA's) fill the last row's
// test columns, and best.pt's weights, when it was chosen on the
// validation split, give res.BestTest (timm's validate.py on the best
// checkpoint). metrics.csv, last.pt and config.json are rewritten to hold
// them.
func (r *run) finishRun(res *Result) error {
	if r.valL == nil || len(r.metrics) == 0 {
		return nil
	}
	last := &r.metrics[len(r.metrics)-1]
	if math.IsNaN(last.TestTop1) {
		if err := r.evaluateOn(evalSplit{splitTest, r.testL}, r.evaluated(), last, "at the end of the run"); err != nil {
			return err
		}
	}
	if r.o.selectionSplit() == splitVal && r.pos.BestEpoch > 0 {
		ev, err := r.evaluateBest()
		if err != nil {
			return err
		}
		r.bestTest, res.BestTest = ev, ev
	}
	if err := r.saveLast(); err != nil {
		return err
	}
	if err := r.writeMetrics(); err != nil {
		return err
	}
	if err := r.writeConfig(); err != nil {
		return err
	}
	fmt.Fprintln(r.o.Log, r.finalLine(*last))
	return nil
}

// evaluateBest evaluates the weights best.pt holds on the test split (every
// rank reads the file, as every rank reads --resume's). It returns nil
// when best.pt is not in the run folder (a run resumed into another
// folder before a new best).
func (r *run) evaluateBest() (*EvalResult, error) {
	if _, err := r.rep.sum(0); err != nil { // rank 0 has written best.pt
		return nil, err
	}
	path := filepath.Join(r.o.Out, "best.pt")
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintf(r.o.Log, "%s is missing (the run was resumed into another folder): best.pt's test result is not measured; run gsrmt-cli eval on the best.pt of the first folder\n", path)
		return nil, nil
	}
	st, err := checkpoints.LoadTraining(path)
	if err != nil {
		return nil, fmt.Errorf("the test result of best.pt: %w", err)
	}
	m, err := gsrmt.New(r.model.Config, r.o.Device)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	if _, err := checkpoints.LoadModelState(m, st.Model, true); err != nil {
		return nil, fmt.Errorf("the test result of %s: %w", path, err)
	}
	var row EpochMetrics
	row.clearEval()
	if err := r.evaluateOn(evalSplit{splitTest, r.testL}, []weightsOf{{sourceModel, m}}, &row, "of best.pt"); err != nil {
		return nil, err
	}
	return &EvalResult{Loss: row.TestLoss, Top1: row.TestTop1, Top5: row.TestTop5, Images: r.data.Test.Len()}, nil
}

// finalLine is the log line of a run's end-of-run test evaluation.
func (r *run) finalLine(last EpochMetrics) string {
	s := fmt.Sprintf("test split after epoch %d: last weights top-1 %.2f %%, top-5 %.2f %%, loss %.4f", last.Epoch, last.TestTop1, last.TestTop5, last.TestLoss)
	if r.ema != nil {
		s += fmt.Sprintf(" (EMA top-1 %.2f %%)", last.EMATop1)
	}
	if r.bestTest != nil {
		s += fmt.Sprintf("; best.pt, %s: top-1 %.2f %%, top-5 %.2f %%, loss %.4f", r.bestSummary(), r.bestTest.Top1, r.bestTest.Top5, r.bestTest.Loss)
	}
	return s
}
