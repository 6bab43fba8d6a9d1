package train

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestBestEpochs(t *testing.T) {
	nan := math.NaN()
	rows := []EpochMetrics{{Epoch: 1, TestTop1: 40}, {Epoch: 2, TestTop1: nan}, {Epoch: 3, TestTop1: 55},
		{Epoch: 4, TestTop1: 50}, {Epoch: 5, TestTop1: 55}}
	if got := bestEpochs(rows, 3, splitTest); !reflect.DeepEqual(got, []int{3, 5, 4}) {
		t.Errorf("best 3 epochs %v, want [3 5 4] (ties keep the earlier epoch first, NaN never counts)", got)
	}
	if got := bestEpochs(rows, 0, splitTest); len(got) != 0 {
		t.Errorf("best 0 epochs %v", got)
	}
}

func TestHistoryFiles(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"checkpoint-3.pt", "checkpoint-12.pt", "checkpoint-x.pt", "best.pt", ".checkpoint-4.pt.tmp-1"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := historyFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]string{3: filepath.Join(dir, "checkpoint-3.pt"), 12: filepath.Join(dir, "checkpoint-12.pt")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("history files %v, want %v", got, want)
	}
}
