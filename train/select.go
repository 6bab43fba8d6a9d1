package train

import (
	"fmt"
	"math"
	"strings"

	"github.com/gsrmt/gsrmt/datasets"
	"github.com/gsrmt/gsrmt/gsrmt"
)

// Model selection (docs/MODEL-SELECTION.md). Every evaluated epoch
// evaluates the model, and its EMA with --ema, on the selection split
// (--select-on: the validation split of --val-split, or the test split);
// the better of the two top-1s is the epoch's score. best.pt holds the
// weights of the epoch with the best score so far, and the --keep-checkpoints
// history those of the K best epochs by the same score; either file holds
// the EMA's weights as its model when the EMA scored better, and says so
// (checkpoints.RunInfo.Weights).

// The splits a run evaluates, and whose weights it evaluates.
const (
	splitVal    = "val"
	splitTest   = "test"
	sourceModel = "model" // the trained weights
	sourceEMA   = "ema"   // the exponential moving average of the weights
)

// selectionSplit is the split that chooses best.pt: --select-on, by
// default val with a --val-split and test (the behaviour of runs before
// --val-split) without.
func (o *Options) selectionSplit() string {
	switch {
	case o.SelectOn != "":
		return o.SelectOn
	case o.ValSplit != "":
		return splitVal
	}
	return splitTest
}

// validateSelection checks --val-split and --select-on.
func (o *Options) validateSelection() error {
	if _, _, err := parseValSplit(o.ValSplit); err != nil {
		return err
	}
	switch o.SelectOn {
	case "", splitTest:
	case splitVal:
		if o.ValSplit == "" {
			return fmt.Errorf("select-on val: the run has no validation split: add --val-split 0.1 (a tenth of each class held out) or --val-split %s", valSplitDataset)
		}
	default:
		return fmt.Errorf("select-on %q: want val (needs --val-split) or test", o.SelectOn)
	}
	return nil
}

// evalColumns points at a row's loss, top-1 and top-5 of one split and
// source (nil for a pair the row does not hold).
func (m *EpochMetrics) evalColumns(split, source string) (loss, top1, top5 *float64) {
	switch {
	case split == splitTest && source == sourceModel:
		return &m.TestLoss, &m.TestTop1, &m.TestTop5
	case split == splitTest && source == sourceEMA:
		return &m.EMATestLoss, &m.EMATop1, &m.EMATestTop5
	case split == splitVal && source == sourceModel:
		return &m.ValLoss, &m.ValTop1, &m.ValTop5
	case split == splitVal && source == sourceEMA:
		return &m.EMAValLoss, &m.EMAValTop1, &m.EMAValTop5
	}
	return nil, nil, nil
}

// setEval records an evaluation in the row.
func (m *EpochMetrics) setEval(split, source string, ev EvalResult) {
	loss, top1, top5 := m.evalColumns(split, source)
	*loss, *top1, *top5 = ev.Loss, ev.Top1, ev.Top5
}

// clearEval marks every evaluation column of the row as not measured (NaN).
func (m *EpochMetrics) clearEval() {
	for _, split := range []string{splitVal, splitTest} {
		for _, source := range []string{sourceModel, sourceEMA} {
			loss, top1, top5 := m.evalColumns(split, source)
			*loss, *top1, *top5 = math.NaN(), math.NaN(), math.NaN()
		}
	}
}

// selectionScore is the top-1 by which a row competes for best.pt on
// split, and whose weights reached it: the EMA's when its top-1 is
// strictly higher than the model's, else the model's. NaN when the row
// was not evaluated.
func selectionScore(m EpochMetrics, split string) (top1 float64, source string) {
	_, model, _ := m.evalColumns(split, sourceModel)
	_, ema, _ := m.evalColumns(split, sourceEMA)
	if *ema > *model { // false when either is NaN (not evaluated, or no EMA)
		return *ema, sourceEMA
	}
	return *model, sourceModel
}

// evalSplit is a split the run evaluates and its loader.
type evalSplit struct {
	name string
	l    *datasets.Loader
}

// epochSplits are the splits evaluated after an epoch: the validation
// split when there is one, and the test split when there is none or
// best.pt is chosen on it. The test split of a run with a validation
// split is otherwise evaluated once, at the end (finishRun).
func (r *run) epochSplits() []evalSplit {
	var out []evalSplit
	if r.valL != nil {
		out = append(out, evalSplit{splitVal, r.valL})
	}
	if r.valL == nil || r.o.selectionSplit() == splitTest {
		out = append(out, evalSplit{splitTest, r.testL})
	}
	return out
}

// weightsOf is a set of weights the run evaluates.
type weightsOf struct {
	source string
	model  *gsrmt.Model
}

// evaluated are the run's weights: the model's, then the EMA's with --ema.
func (r *run) evaluated() []weightsOf {
	out := []weightsOf{{sourceModel, r.model}}
	if r.ema != nil {
		out = append(out, weightsOf{sourceEMA, r.ema.Model})
	}
	return out
}

// evaluateOn evaluates each of ws on split s into m (sharded over the
// ranks and reduced, as Evaluate does in a group). Non-finite logits or
// loss stop the run: such numbers describe a broken model.
func (r *run) evaluateOn(s evalSplit, ws []weightsOf, m *EpochMetrics, when string) error {
	for _, w := range ws {
		who := "model"
		if w.source == sourceEMA {
			who = "EMA"
		}
		ev, err := Evaluate(w.model, s.l, EvalOptions{Device: r.o.Device, Group: r.o.Group})
		if err != nil {
			return fmt.Errorf("evaluate the %s on the %s split %s: %w", who, s.name, when, err)
		}
		if !ev.Finite() {
			return r.nonFinite(fmt.Sprintf("%s the %s's %s logits are non-finite for %d of %d images (loss %v)", when, who, s.name, ev.NonFinite, ev.Images, ev.Loss))
		}
		m.setEval(s.name, w.source, ev)
	}
	return nil
}

// epochLine is the log line of a finished epoch: training, then each
// evaluated split (the EMA's top-1 too), then best.pt when it changed.
func (r *run) epochLine(m EpochMetrics, newBest bool) string {
	o := &r.o
	var b strings.Builder
	fmt.Fprintf(&b, "epoch %d/%d: lr %.3g, train loss %.4f, train top-1 %.2f %%", m.Epoch, o.Epochs, m.LR, m.TrainLoss, m.TrainTop1)
	for _, s := range r.epochSplits() {
		loss, top1, top5 := m.evalColumns(s.name, sourceModel)
		fmt.Fprintf(&b, ", %s loss %.4f, %s top-1 %.2f %%, top-5 %.2f %%", s.name, *loss, s.name, *top1, *top5)
		if r.ema != nil {
			_, etop1, _ := m.evalColumns(s.name, sourceEMA)
			fmt.Fprintf(&b, " (EMA %.2f %%)", *etop1)
		}
	}
	fmt.Fprintf(&b, ", %.0f images/s, %.1f s", m.ImagesPerS, m.Seconds)
	if newBest {
		fmt.Fprintf(&b, "; best.pt: %s", r.bestSummary())
	}
	return b.String()
}

// bestSummary says what best.pt holds: "epoch 3, val top-1 45.00 % (the
// EMA's weights)".
func (r *run) bestSummary() string {
	whose := "the model's weights"
	if r.pos.BestSource == sourceEMA {
		whose = "the EMA's weights"
	}
	return fmt.Sprintf("epoch %d, %s top-1 %.2f %% (%s)", r.pos.BestEpoch, r.o.selectionSplit(), r.pos.BestTop1, whose)
}

// offer makes row m the best so far when its score on split beats the
// best's (strictly: a tie keeps the earlier epoch, as --keep-checkpoints
// does), and reports whether it did.
func (p *progress) offer(m EpochMetrics, split string) bool {
	top1, source := selectionScore(m, split)
	if !(top1 > p.BestTop1) { // NaN: not evaluated
		return false
	}
	p.BestTop1, p.BestEpoch, p.BestSource = top1, m.Epoch, source
	return true
}

// improveBest writes best.pt when the row of the epoch just evaluated
// becomes the best (offer); it reports whether it did.
func (r *run) improveBest(m EpochMetrics) (bool, error) {
	if !r.pos.offer(m, r.o.selectionSplit()) {
		return false, nil
	}
	return true, r.saveBest()
}

// bestSource is whose weights best.pt holds (files from before the source
// was recorded hold the model's).
func (p progress) bestSource() string {
	if p.BestSource == "" {
		return sourceModel
	}
	return p.BestSource
}

// bestReport is config.json's "best": the epoch best.pt holds, the split
// that chose it, whose weights it holds and their top-1 there.
type bestReport struct {
	Epoch  int     `json:"epoch"`
	Split  string  `json:"split"`
	Source string  `json:"source"` // model or ema
	Top1   float64 `json:"top1"`
}

// bestReport is best.pt's description, nil before the first evaluation.
func (r *run) bestReport() *bestReport {
	if r.pos.BestEpoch == 0 {
		return nil
	}
	return &bestReport{Epoch: r.pos.BestEpoch, Split: r.o.selectionSplit(), Source: r.pos.bestSource(), Top1: r.pos.BestTop1}
}
