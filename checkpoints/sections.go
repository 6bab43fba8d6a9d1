package checkpoints

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
)

// The typed sections of a training checkpoint. Each is stored as a plain
// dict of ints, floats and strings under its fields' json names (lists of
// such dicts for EpochRecord), and each belongs to a component that fills
// and reads it: RunInfo to the run's data, SchedulerState to the learning
// rate schedule, Position and EpochRecord to the training loop
// (train.Schedule.State, the run's progress and its metrics rows).

// RunInfo describes the data a model was trained on, the facts that eval
// and predict need to prepare images as training did. A checkpoint stores
// its fields among the "config" entries, and a run folder's config.json
// (which embeds RunInfo) under the same names.
type RunInfo struct {
	Dataset    string    `json:"dataset"`     // cifar10, cifar100, mini-imagenet, fashion-mnist, mnist, imagefolder
	DataDir    string    `json:"data_dir"`    // the data's folder, as given
	ClassNames []string  `json:"class_names"` // by label index
	ImgSize    int       `json:"img_size"`    // side of the model's input, in pixels
	NormMean   []float32 `json:"norm_mean"`   // normalization per channel, after scaling to [0, 1]
	NormStd    []float32 `json:"norm_std"`
	SplitSeed  uint64    `json:"split_seed"` // seed of the train/test split, where the data set has none
	Recipe     string    `json:"recipe"`     // the hyper-parameter recipe: default, cifar or mini-imagenet
	// Weights says whose weights the file's "model" entry holds: "ema" when
	// a training run chose the EMA's for best.pt or a history checkpoint
	// (docs/MODEL-SELECTION.md), "model" or empty for the trained model's,
	// "mixed" for an average (AverageFiles) of files of both kinds.
	Weights string `json:"weights,omitempty"`
}

// SchedulerState is the "scheduler" section: the learning-rate schedule
// (train.Schedule) and the step it has reached.
type SchedulerState struct {
	Type        string  `json:"type"` // "warmup-cosine"
	BaseLR      float64 `json:"base_lr"`
	MinLR       float64 `json:"min_lr"`
	WarmupSteps int64   `json:"warmup_steps"`
	TotalSteps  int64   `json:"total_steps"`
	Step        int64   `json:"step"`
}

// ScalerState is the "amp_scaler" section (timm's key): the dynamic loss
// scale of fp16 training under the names of torch.cuda.amp.GradScaler's
// state_dict(), so that a resumed run continues with the same scale.
type ScalerState struct {
	Scale          float64 `json:"scale"`
	GrowthFactor   float64 `json:"growth_factor"`
	BackoffFactor  float64 `json:"backoff_factor"`
	GrowthInterval int64   `json:"growth_interval"`
	GrowthTracker  int64   `json:"_growth_tracker"` // good steps since the scale last changed
}

// scalerFrom reads the "amp_scaler" section; absent or None is nil.
func scalerFrom(v any) (*ScalerState, error) {
	if v == nil {
		return nil, nil
	}
	m, err := plainDict(v, "amp_scaler")
	if err != nil {
		return nil, err
	}
	s := &ScalerState{}
	if err := decodePlain(m, reflect.ValueOf(s).Elem(), "amp_scaler"); err != nil {
		return nil, err
	}
	return s, nil
}

// Position is where a run stands inside an epoch, so that an interrupted
// run resumes at the next batch with the epoch's sums so far; stored in
// "metrics" as "position". Its fields are those of the training loop's
// progress, in the same order and types (the loop converts one into the
// other).
type Position struct {
	Epoch     int     `json:"epoch"`      // 0-based epoch in progress
	Batch     int     `json:"batch"`      // batches of it already done
	LossSum   float64 `json:"loss_sum"`   // sum over seen samples
	Hits      int64   `json:"hits"`       // samples whose label won
	Seen      int64   `json:"seen"`       // samples trained on
	Seconds   float64 `json:"seconds"`    // spent training in the epoch
	LastLR    float64 `json:"last_lr"`    // learning rate of the last step
	BestTop1  float64 `json:"best_top1"`  // best selection top-1 so far (--select-on), -1 before any
	BestEpoch int     `json:"best_epoch"` // its 1-based epoch
	Skipped   int64   `json:"skipped"`    // training images skipped so far in the epoch
	// BestSource is whose weights reached BestTop1: "model" or "ema"
	// (empty in files written before it was recorded: the model's).
	BestSource string `json:"best_source"`
	// SkippedSteps counts the epoch's optimizer steps skipped so far for
	// non-finite fp16 gradients (train's loss scaler).
	SkippedSteps int64 `json:"skipped_steps"`
}

// EpochRecord is one finished epoch's metrics (a row of metrics.csv, as
// train.EpochMetrics, whose fields it has in the same order and types);
// stored in "metrics" as the list "epochs". NaN marks what was not
// measured (an epoch without evaluation, a run without EMA).
type EpochRecord struct {
	Epoch         int     `json:"epoch"` // 1-based
	LR            float64 `json:"lr"`
	TrainLoss     float64 `json:"train_loss"`
	TrainTop1     float64 `json:"train_top1"`
	TestLoss      float64 `json:"test_loss"`
	TestTop1      float64 `json:"test_top1"`
	TestTop5      float64 `json:"test_top5"`
	EMATop1       float64 `json:"ema_test_top1"`
	ImagesPerS    float64 `json:"images_per_s"`
	Seconds       float64 `json:"seconds"`
	SkippedImages int64   `json:"skipped_images"`
	// The validation split's metrics (--val-split), the EMA's on both
	// splits (--ema); files written before these were recorded lack them.
	ValLoss      float64 `json:"val_loss"`
	ValTop1      float64 `json:"val_top1"`
	ValTop5      float64 `json:"val_top5"`
	EMATestLoss  float64 `json:"ema_test_loss"`
	EMATestTop5  float64 `json:"ema_test_top5"`
	EMAValLoss   float64 `json:"ema_val_loss"`
	EMAValTop1   float64 `json:"ema_val_top1"`
	EMAValTop5   float64 `json:"ema_val_top5"`
	SkippedSteps int64   `json:"skipped_steps"` // optimizer steps skipped for non-finite fp16 gradients
}

// The "metrics" keys of the typed sections, and those of the JSON strings
// that files written before the sections were typed hold instead (with Go
// field names as keys, and null for NaN).
const (
	positionKey       = "position"
	epochsKey         = "epochs"
	legacyPositionKey = "position_json"
	legacyEpochsKey   = "epochs_json"
)

// metricsDict is the "metrics" entry: the plain metrics, then the position
// and the epoch rows when there are any.
func metricsDict(metrics map[string]any, pos *Position, epochs []EpochRecord) (*Dict, error) {
	for _, k := range []string{positionKey, epochsKey, legacyPositionKey, legacyEpochsKey} {
		if _, ok := metrics[k]; ok {
			return nil, fmt.Errorf("metrics entry %q is reserved: set TrainingState.Position or Epochs", k)
		}
	}
	d, err := plainMap(metrics, "metrics")
	if err != nil {
		return nil, err
	}
	if pos != nil {
		if err := setPlain(d, positionKey, *pos, "metrics"); err != nil {
			return nil, err
		}
	}
	if epochs != nil {
		if err := setPlain(d, epochsKey, epochs, "metrics"); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// setPlain sets d[key] to the plain form of v.
func setPlain(d *Dict, key string, v any, path string) error {
	pv, err := plainValue(v, sub(path, key), 0)
	if err != nil {
		return err
	}
	return d.Set(key, pv)
}

// plainMap converts a caller's map for saving; nil becomes an empty dict.
func plainMap(m map[string]any, path string) (*Dict, error) {
	if m == nil {
		return NewDict(), nil
	}
	return plainMapDict(reflect.ValueOf(m), path, 0)
}

// takeMetricSections removes the position and the epoch rows from a loaded
// "metrics" dict, typed: from the dicts of the current layout, or from the
// JSON strings of older files.
func takeMetricSections(metrics map[string]any) (*Position, []EpochRecord, error) {
	var pos *Position
	var epochs []EpochRecord
	for _, s := range []struct {
		key, legacy string
		dst         any
	}{{positionKey, legacyPositionKey, &pos}, {epochsKey, legacyEpochsKey, &epochs}} {
		v, ok := metrics[s.key]
		if js, old := metrics[s.legacy].(string); old && !ok {
			if err := json.Unmarshal([]byte(js), &v); err != nil {
				return nil, nil, fmt.Errorf("metrics.%s: %w", s.legacy, err)
			}
			ok = true
		}
		delete(metrics, s.key)
		delete(metrics, s.legacy)
		if !ok {
			continue
		}
		if err := decodePlain(v, reflect.ValueOf(s.dst).Elem(), "metrics."+s.key); err != nil {
			return nil, nil, err
		}
		if s.key == epochsKey {
			if err := markUnrecorded(v, epochs, "metrics."+s.key); err != nil {
				return nil, nil, err
			}
		}
	}
	return pos, epochs, nil
}

// markUnrecorded sets to NaN each float column of the decoded rows that
// the stored row lacks: a column the file did not record (one written
// before the column existed) was not measured, as NaN says.
func markUnrecorded(v any, rows []EpochRecord, path string) error {
	items, ok := v.([]any)
	if !ok {
		return nil
	}
	t := reflect.TypeOf(EpochRecord{})
	for i, item := range items[:min(len(items), len(rows))] {
		m, err := plainDict(item, sub(path, i))
		if err != nil {
			return err
		}
		row := reflect.ValueOf(&rows[i]).Elem()
		for f := 0; f < t.NumField(); f++ {
			field := t.Field(f)
			_, byKey := m[fieldKey(field)]
			_, byName := m[field.Name]
			if field.Type.Kind() == reflect.Float64 && !byKey && !byName {
				row.Field(f).SetFloat(math.NaN())
			}
		}
	}
	return nil
}

// schedulerFrom reads the "scheduler" section; an empty dict (a converted
// file's) is nil.
func schedulerFrom(v any) (*SchedulerState, error) {
	m, err := plainDict(v, "scheduler")
	if err != nil || len(m) == 0 {
		return nil, err
	}
	s := &SchedulerState{}
	if err := decodePlain(m, reflect.ValueOf(s).Elem(), "scheduler"); err != nil {
		return nil, err
	}
	return s, nil
}
