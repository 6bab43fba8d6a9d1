package train

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
)

// The checkpoint history (--keep-checkpoints K, timm's CheckpointSaver
// max_history): besides best.pt and last.pt, the run folder keeps
// checkpoint-EPOCH.pt for the K evaluated epochs with the best score on the
// selection split, the rule that chooses best.pt (selectionScore: the better
// of the model's and the EMA's top-1; ties: the earlier epoch), each with
// the weights that scored. Which epochs those are follows from metrics.csv's
// rows alone, so a resumed run keeps the same history.

// historyFile matches the name of a history checkpoint.
var historyFile = regexp.MustCompile(`^checkpoint-([0-9]+)\.pt$`)

// historyGlob matches every history checkpoint's name (filepath.Glob).
const historyGlob = "checkpoint-*.pt"

// historyName is the file of epoch's history checkpoint.
func historyName(epoch int) string { return fmt.Sprintf("checkpoint-%d.pt", epoch) }

// bestEpochs returns the k evaluated epochs of rows with the highest score
// on split (selectionScore), best first (NaN rows, not evaluated, never
// count).
func bestEpochs(rows []EpochMetrics, k int, split string) []int {
	type scored struct {
		epoch int
		top1  float64
	}
	var evaluated []scored
	for _, m := range rows {
		if top1, _ := selectionScore(m, split); top1 == top1 {
			evaluated = append(evaluated, scored{m.Epoch, top1})
		}
	}
	sort.SliceStable(evaluated, func(i, j int) bool { return evaluated[i].top1 > evaluated[j].top1 })
	var out []int
	for i := 0; i < len(evaluated) && i < k; i++ {
		out = append(out, evaluated[i].epoch)
	}
	return out
}

// updateHistory writes the epoch just finished as a history checkpoint when
// it ranks among the best --keep-checkpoints, and removes the history
// checkpoints that no longer do (rank 0).
func (r *run) updateHistory(epoch int) error {
	o := &r.o
	if o.KeepCheckpoints <= 0 || !r.rep.writer() {
		return nil
	}
	keep := map[int]bool{}
	for _, e := range bestEpochs(r.metrics, o.KeepCheckpoints, o.selectionSplit()) {
		keep[e] = true
	}
	if keep[epoch] {
		_, source := selectionScore(r.metrics[len(r.metrics)-1], o.selectionSplit())
		if err := r.saveWeights(filepath.Join(o.Out, historyName(epoch)), source); err != nil {
			return err
		}
	}
	files, err := historyFiles(o.Out)
	if err != nil {
		return err
	}
	for e, name := range files {
		if !keep[e] {
			if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("checkpoint history: %w", err)
			}
		}
	}
	return nil
}

// historyFiles maps each history checkpoint in dir to its path, by epoch.
func historyFiles(dir string) (map[int]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("checkpoint history: %w", err)
	}
	out := map[int]string{}
	for _, e := range entries {
		if m := historyFile.FindStringSubmatch(e.Name()); m != nil {
			n, _ := strconv.Atoi(m[1])
			out[n] = filepath.Join(dir, e.Name())
		}
	}
	return out, nil
}
