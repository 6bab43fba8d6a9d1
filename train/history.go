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
// checkpoint-EPOCH.pt for the K evaluated epochs with the best test top-1
// (ties: the earlier epoch). Which epochs those are follows from
// metrics.csv's rows alone, so a resumed run keeps the same history.

// historyFile matches the name of a history checkpoint.
var historyFile = regexp.MustCompile(`^checkpoint-([0-9]+)\.pt$`)

// historyGlob matches every history checkpoint's name (filepath.Glob).
const historyGlob = "checkpoint-*.pt"

// historyName is the file of epoch's history checkpoint.
func historyName(epoch int) string { return fmt.Sprintf("checkpoint-%d.pt", epoch) }

// bestEpochs returns the k evaluated epochs of rows with the highest test
// top-1, best first (NaN rows, not evaluated, never count).
func bestEpochs(rows []EpochMetrics, k int) []int {
	var evaluated []EpochMetrics
	for _, m := range rows {
		if m.TestTop1 == m.TestTop1 {
			evaluated = append(evaluated, m)
		}
	}
	sort.SliceStable(evaluated, func(i, j int) bool { return evaluated[i].TestTop1 > evaluated[j].TestTop1 })
	var out []int
	for i := 0; i < len(evaluated) && i < k; i++ {
		out = append(out, evaluated[i].Epoch)
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
	for _, e := range bestEpochs(r.metrics, o.KeepCheckpoints) {
		keep[e] = true
	}
	if keep[epoch] {
		if err := r.save(filepath.Join(o.Out, historyName(epoch))); err != nil {
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
