package train

import (
	"encoding/csv"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// row is an evaluated epoch with the given top-1s (NaN: not measured).
func row(epoch int, val, emaVal, test, emaTest float64) EpochMetrics {
	m := EpochMetrics{Epoch: epoch}
	m.clearEval()
	m.ValTop1, m.EMAValTop1, m.TestTop1, m.EMATop1 = val, emaVal, test, emaTest
	return m
}

// HoldOut on hand-counted classes: round(f x n) per class, at most n-1,
// disjoint and complete, sorted, the same for the same seed, and a class's
// draw independent of the other classes.
func TestHoldOut(t *testing.T) {
	classes := []string{"a", "b", "c"}
	// 10 of a, 7 of b, 1 of c, interleaved.
	var labels []int
	for i := 0; i < 10; i++ {
		labels = append(labels, 0)
		if i < 7 {
			labels = append(labels, 1)
		}
		if i == 3 {
			labels = append(labels, 2)
		}
	}
	train, val, err := HoldOut(labels, classes, 0.3, 5)
	if err != nil {
		t.Fatal(err)
	}
	perClass := func(pos []int) []int {
		n := make([]int, len(classes))
		for _, p := range pos {
			n[labels[p]]++
		}
		return n
	}
	// round(3.0) = 3 of a, round(2.1) = 2 of b, round(0.3) = 0 of c (and c's only image stays in training).
	if got := perClass(val); !reflect.DeepEqual(got, []int{3, 2, 0}) {
		t.Errorf("validation images per class %v, want [3 2 0]", got)
	}
	if got := perClass(train); !reflect.DeepEqual(got, []int{7, 5, 1}) {
		t.Errorf("training images per class %v, want [7 5 1]", got)
	}
	all := append(append([]int(nil), train...), val...)
	slices.Sort(all)
	for i, p := range all {
		if p != i {
			t.Fatalf("train and val together are %v, want each of the %d positions once", all, len(labels))
		}
	}
	if !slices.IsSorted(train) || !slices.IsSorted(val) {
		t.Errorf("positions not sorted: train %v, val %v", train, val)
	}
	train2, val2, _ := HoldOut(labels, classes, 0.3, 5)
	if !slices.Equal(train, train2) || !slices.Equal(val, val2) {
		t.Errorf("the same seed gave %v then %v", val, val2)
	}
	// With half held out, a's 10 images can be split C(10,5) = 252 ways: two
	// seeds drawing the same is a defect, not chance.
	_, h1, _ := HoldOut(labels[:0:0], classes, 0.5, 1)
	if len(h1) != 0 {
		t.Errorf("no labels, held out %v", h1)
	}
	_, v1, _ := HoldOut(labels, classes, 0.5, 1)
	_, v2, _ := HoldOut(labels, classes, 0.5, 2)
	if slices.Equal(v1, v2) {
		t.Errorf("seeds 1 and 2 held out the same images %v", v1)
	}
	// Class a alone (its positions renumbered) holds out the same images.
	var onlyA []int
	var aPos []int
	for i, l := range labels {
		if l == 0 {
			onlyA = append(onlyA, 0)
			aPos = append(aPos, i)
		}
	}
	_, va, _ := HoldOut(onlyA, classes, 0.3, 5)
	var wantA []int
	for _, p := range val {
		if labels[p] == 0 {
			wantA = append(wantA, slices.Index(aPos, p))
		}
	}
	if !slices.Equal(va, wantA) {
		t.Errorf("class a alone held out %v, within the full set %v", va, wantA)
	}
	if _, _, err := HoldOut([]int{0, 3}, classes, 0.5, 0); err == nil {
		t.Error("a label outside the classes was accepted")
	}
}

// best.pt follows the selection split, not the other one: the sequence
// below improves on val at epochs 1, 3 and 4 and on test at 1, 2 and 5.
func TestBestFollowsTheSelectionSplit(t *testing.T) {
	nan := math.NaN()
	rows := []EpochMetrics{
		row(1, 40, nan, 50, nan),
		row(2, 35, nan, 70, nan), // test's best, val worse
		row(3, 60, nan, 45, nan),
		{Epoch: 4},               // not evaluated (--eval-every)
		row(5, 60, nan, 80, nan), // a val tie keeps epoch 3
		row(6, 65, nan, 30, nan),
	}
	rows[3].clearEval()
	for _, c := range []struct {
		split    string
		improved []int
		best     int
		top1     float64
	}{{splitVal, []int{1, 3, 6}, 6, 65}, {splitTest, []int{1, 2, 5}, 5, 80}} {
		p := progress{BestTop1: -1}
		var improved []int
		for _, m := range rows {
			if p.offer(m, c.split) {
				improved = append(improved, m.Epoch)
			}
		}
		if !slices.Equal(improved, c.improved) || p.BestEpoch != c.best || p.BestTop1 != c.top1 || p.BestSource != sourceModel {
			t.Errorf("on %s: best.pt written after epochs %v, ending at epoch %d (%v, %s); want %v, epoch %d (%v, model)",
				c.split, improved, p.BestEpoch, p.BestTop1, p.BestSource, c.improved, c.best, c.top1)
		}
	}
	if got := bestEpochs(rows, 2, splitVal); !slices.Equal(got, []int{6, 3}) {
		t.Errorf("--keep-checkpoints 2 on val: %v, want [6 3]", got)
	}
	if got := bestEpochs(rows, 2, splitTest); !slices.Equal(got, []int{5, 2}) {
		t.Errorf("--keep-checkpoints 2 on test: %v, want [5 2]", got)
	}
}

// With an EMA the better of the two competes and is named; the history
// ranks epochs by the same score.
func TestBestTakesTheBetterOfModelAndEMA(t *testing.T) {
	nan := math.NaN()
	rows := []EpochMetrics{
		row(1, 40, 30, nan, nan), // model 40
		row(2, 38, 45, nan, nan), // EMA 45: best
		row(3, 44, 44, nan, nan), // tie between them: the model's, but not above 45
		row(4, 50, 49, nan, nan), // model 50: best
	}
	p := progress{BestTop1: -1}
	var sources []string
	for _, m := range rows {
		if p.offer(m, splitVal) {
			sources = append(sources, p.BestSource)
		}
	}
	if want := []string{sourceModel, sourceEMA, sourceModel}; !slices.Equal(sources, want) || p.BestEpoch != 4 {
		t.Errorf("best.pt sources %v ending at epoch %d, want %v ending at 4", sources, p.BestEpoch, want)
	}
	if top1, source := selectionScore(rows[2], splitVal); top1 != 44 || source != sourceModel {
		t.Errorf("a tie scores %v from %s, want 44 from the model", top1, source)
	}
	if got := bestEpochs(rows, 3, splitVal); !slices.Equal(got, []int{4, 2, 3}) {
		t.Errorf("history by the better of model and EMA %v, want [4 2 3]", got)
	}
}

func TestValidateSelection(t *testing.T) {
	for _, c := range []struct {
		val, on, err string
	}{
		{"", "", ""}, {"", "test", ""}, {"0.1", "", ""}, {"0.1", "val", ""}, {"0.1", "test", ""}, {"dataset", "val", ""},
		{"", "val", "select-on val: the run has no validation split"},
		{"0.1", "train", `select-on "train"`},
		{"1", "", `val-split "1"`}, {"0", "", `val-split "0"`}, {"-0.2", "", `val-split "-0.2"`}, {"tenth", "", `val-split "tenth"`},
		{"NaN", "", `val-split "NaN"`},
	} {
		o := Options{ValSplit: c.val, SelectOn: c.on}
		err := o.validateSelection()
		if (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("--val-split %q --select-on %q: error %v, want %q", c.val, c.on, err, c.err)
		}
	}
	for _, c := range []struct{ val, on, want string }{{"", "", splitTest}, {"0.1", "", splitVal}, {"0.1", "test", splitTest}} {
		o := Options{ValSplit: c.val, SelectOn: c.on}
		if got := o.selectionSplit(); got != c.want {
			t.Errorf("--val-split %q --select-on %q selects on %s, want %s", c.val, c.on, got, c.want)
		}
	}
}

// metrics.csv holds the model's and the EMA's columns of both splits,
// empty where not measured.
func TestMetricsCSVHoldsModelAndEMAColumns(t *testing.T) {
	dir := t.TempDir()
	m := row(1, 40, 45, nan(), nan())
	m.ValLoss, m.ValTop5, m.EMAValLoss, m.EMAValTop5 = 1.5, 90, 1.25, 95
	last := row(2, 41, 46, 39, 44)
	last.TestLoss, last.TestTop5, last.EMATestLoss, last.EMATestTop5 = 1.75, 85, 1.5, 88
	if err := writeMetrics(dir, []EpochMetrics{m, last}, "t"); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "metrics.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	get := func(r int, col string) string { return recs[r][slices.Index(recs[0], col)] }
	want := map[string][2]string{
		"val_loss": {"1.5", ""}, "val_top1": {"40", "41"}, "val_top5": {"90", ""},
		"ema_val_loss": {"1.25", ""}, "ema_val_top1": {"45", "46"}, "ema_val_top5": {"95", ""},
		"test_loss": {"", "1.75"}, "test_top1": {"", "39"}, "test_top5": {"", "85"},
		"ema_test_loss": {"", "1.5"}, "ema_test_top1": {"", "44"}, "ema_test_top5": {"", "88"},
	}
	for col, w := range want {
		if !slices.Contains(recs[0], col) {
			t.Errorf("metrics.csv has no column %s: %v", col, recs[0])
			continue
		}
		if got := [2]string{get(1, col), get(2, col)}; got != w {
			t.Errorf("%s: %q, want %q", col, got, w)
		}
	}
}
