package checkpoints

import (
	"fmt"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/gsrmt/gsrmt/gsrmt"
)

// sectionsFixture is a small training state with every typed section set.
func sectionsFixture(t *testing.T) *TrainingState {
	t.Helper()
	cfg, err := gsrmt.PresetConfig("swat", "nano", 2)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ImageSize = 32
	return &TrainingState{
		ModelConfig: cfg,
		Model:       with(NewOrderedDict(), "w", f32(t, []int64{2}, 1, 2)),
		Run: &RunInfo{Dataset: "imagefolder", DataDir: "/data/x", ClassNames: []string{"a", "b"}, ImgSize: 32,
			NormMean: []float32{0.5, 0.25, 0.125}, NormStd: []float32{0.2, 0.3, 0.4}, SplitSeed: 1<<63 + 5, Recipe: "default"},
		ConfigExtra: map[string]any{"train_options": `{"epochs":3}`},
		Epoch:       1,
		Step:        9,
		Scheduler:   &SchedulerState{Type: "warmup-cosine", BaseLR: 2e-3, MinLR: 1e-5, WarmupSteps: 4, TotalSteps: 27, Step: 9},
		RNG:         map[string]any{"seed": int64(7)},
		Metrics:     map[string]any{"best_top1": 50.0, "best_epoch": int64(1)},
		Position: &Position{Epoch: 1, Batch: 2, LossSum: 4.5, Hits: 3, Seen: 16, Seconds: 0.75, LastLR: 1.5e-3,
			BestTop1: 50, BestEpoch: 1, Skipped: 1},
		Epochs: []EpochRecord{{Epoch: 1, LR: 2e-3, TrainLoss: 1.25, TrainTop1: 40, TestLoss: math.NaN(), TestTop1: math.NaN(),
			TestTop5: math.NaN(), EMATop1: math.NaN(), ImagesPerS: 64, Seconds: 0.5, SkippedImages: 1,
			ValLoss: math.NaN(), ValTop1: math.NaN(), ValTop5: math.NaN(), EMATestLoss: math.NaN(), EMATestTop5: math.NaN(),
			EMAValLoss: math.NaN(), EMAValTop1: math.NaN(), EMAValTop5: math.NaN()}},
	}
}

// oldLayout writes st as the writer did before the sections were typed:
// the run's description as loose config entries, the position and the
// epoch rows as JSON strings (Go field names, null for NaN) in "metrics".
func oldLayout(t *testing.T, st *TrainingState, path string) {
	t.Helper()
	plain := *st
	plain.Run, plain.Position, plain.Epochs = nil, nil, nil
	top, err := trainingDict(nil, &plain)
	if err != nil {
		t.Fatal(err)
	}
	cv, _ := top.Get("config")
	with(cv.(*Dict), "dataset", "imagefolder", "data_dir", "/data/x", "img_size", int64(32),
		"class_names", []any{"a", "b"}, "norm_mean", []any{0.5, 0.25, 0.125},
		"norm_std", []any{float64(float32(0.2)), float64(float32(0.3)), float64(float32(0.4))},
		"split_seed", int64(-1<<63+5), "recipe", "default")
	mv, _ := top.Get("metrics")
	with(mv.(*Dict),
		"epochs_json", `[{"Epoch":1,"LR":0.002,"TrainLoss":1.25,"TrainTop1":40,"ImagesPerS":64,"Seconds":0.5,`+
			`"TestLoss":null,"TestTop1":null,"TestTop5":null,"EMATop1":null,"SkippedImages":1}]`,
		"position_json", `{"Epoch":1,"Batch":2,"LossSum":4.5,"Hits":3,"Seen":16,"Seconds":0.75,"LastLR":0.0015,`+
			`"BestTop1":50,"BestEpoch":1,"Skipped":1}`)
	if err := Save(path, top); err != nil {
		t.Fatal(err)
	}
}

// The typed sections round-trip, and a file of the older layout reads into
// the same sections.
func TestTypedSectionsNewAndOldLayout(t *testing.T) {
	want := sectionsFixture(t)
	dir := t.TempDir()
	newPath, oldPath := filepath.Join(dir, "new.pt"), filepath.Join(dir, "old.pt")
	if err := SaveTraining(newPath, nil, want); err != nil {
		t.Fatal(err)
	}
	oldLayout(t, want, oldPath)
	for _, path := range []string{newPath, oldPath} {
		got, err := LoadTraining(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if !reflect.DeepEqual(got.Run, want.Run) || !reflect.DeepEqual(got.Scheduler, want.Scheduler) ||
			!reflect.DeepEqual(got.Position, want.Position) || !reflect.DeepEqual(got.ConfigExtra, want.ConfigExtra) {
			t.Errorf("%s: run %+v\nscheduler %+v\nposition %+v\nextra %v", path, got.Run, got.Scheduler, got.Position, got.ConfigExtra)
		}
		if fmt.Sprint(got.Epochs) != fmt.Sprint(want.Epochs) || !reflect.DeepEqual(got.Metrics, want.Metrics) {
			t.Errorf("%s: epochs %v metrics %v, want %v %v", path, got.Epochs, got.Metrics, want.Epochs, want.Metrics)
		}
		// Converting an old file writes the current layout.
		if path == oldPath {
			if err := SaveTraining(newPath, nil, got); err != nil {
				t.Fatal(err)
			}
		}
	}

	// The current layout holds plain dicts of numbers, no JSON strings.
	v, err := Load(newPath)
	if err != nil {
		t.Fatal(err)
	}
	mv, _ := v.(*Dict).Get("metrics")
	metrics := mv.(*Dict)
	if strings.Contains(fmt.Sprint(metrics.Keys()), "_json") {
		t.Errorf("metrics keys %v", metrics.Keys())
	}
	pv, _ := metrics.Get("position")
	batch, _ := pv.(*Dict).Get("batch")
	loss, _ := pv.(*Dict).Get("loss_sum")
	ev, _ := metrics.Get("epochs")
	rows, _ := ev.([]any)
	if batch != int64(2) || loss != 4.5 || len(rows) != 1 {
		t.Errorf("position %v, epochs %v", pv, ev)
	} else if tl, _ := rows[0].(*Dict).Get("test_loss"); !math.IsNaN(tl.(float64)) {
		t.Errorf("epoch row %v", rows[0])
	}
	sv, _ := v.(*Dict).Get("scheduler")
	if step, _ := sv.(*Dict).Get("warmup_steps"); step != int64(4) {
		t.Errorf("scheduler %v", sv)
	}
	cv, _ := v.(*Dict).Get("config")
	if seed, _ := cv.(*Dict).Get("split_seed"); fmt.Sprint(seed) != "9223372036854775813" {
		t.Errorf("config split_seed %v", seed)
	}
}

// A section that holds the wrong type is an error naming it.
func TestTypedSectionErrors(t *testing.T) {
	for name, c := range map[string]struct {
		metrics map[string]any
		want    string
	}{
		"position":      {map[string]any{"position": map[string]any{"batch": "two"}}, `"metrics.position.batch"`},
		"epochs":        {map[string]any{"epochs": []any{map[string]any{"epoch": 1.5}}}, `"metrics.epochs.0.epoch"`},
		"position_json": {map[string]any{"position_json": "{"}, "metrics.position_json"},
	} {
		_, _, err := takeMetricSections(c.metrics)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error naming %s", name, err, c.want)
		}
	}
}

// A column that a stored row lacks (a file from before the column existed)
// reads as NaN, not measured; a recorded 0 stays 0.
func TestUnrecordedColumnsReadAsNaN(t *testing.T) {
	row := NewDict()
	with(row, "epoch", int64(2), "lr", 0.001, "train_loss", 1.5, "train_top1", 0.0, "test_loss", 1.25, "test_top1", 50.0,
		"test_top5", 100.0, "ema_test_top1", 0.0, "images_per_s", 10.0, "seconds", 1.0, "skipped_images", int64(0))
	_, rows, err := takeMetricSections(map[string]any{"epochs": []any{row}})
	if err != nil {
		t.Fatal(err)
	}
	r := rows[0]
	if r.Epoch != 2 || r.TestTop1 != 50 || r.TrainTop1 != 0 || r.EMATop1 != 0 {
		t.Errorf("recorded columns changed: %+v", r)
	}
	for name, v := range map[string]float64{"val_loss": r.ValLoss, "val_top1": r.ValTop1, "val_top5": r.ValTop5, "ema_test_loss": r.EMATestLoss,
		"ema_test_top5": r.EMATestTop5, "ema_val_loss": r.EMAValLoss, "ema_val_top1": r.EMAValTop1, "ema_val_top5": r.EMAValTop5} {
		if !math.IsNaN(v) {
			t.Errorf("%s, absent from the file, reads %v, want NaN", name, v)
		}
	}
}
