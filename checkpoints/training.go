package checkpoints

import (
	"errors"
	"fmt"

	"github.com/gsrmt/gsrmt/checkpoints/torchfmt"
	"github.com/gsrmt/gsrmt/gsrmt"
)

// Format is the value of the "format" entry of gsrmt's training checkpoints.
const Format = "gsrmt-checkpoint-v1"

// ErrNoConfig is returned (wrapped) by ReadConfig for a checkpoint without a
// model config, such as a bare state_dict: the caller needs the model flags.
var ErrNoConfig = errors.New("checkpoint holds no model config (a bare state_dict?)")

// TrainingState is the content of a training checkpoint, in neutral form:
// tensors are checkpoint Tensors on the CPU, which the caller moves to its
// device (ToTorchTensor, ToTorchTensors, OptimizerState.TorchMoments). Each
// section comes from the component that owns it (AdamW, the schedule, the
// EMA, the training loop); SaveTraining only assembles them.
//
// The file is a dict with, in this order: "model" (the state_dict),
// "config" (the gsrmt.Config fields under their JSON names, the RunInfo
// fields and ConfigExtra, one flat dict), "epoch", "step", "optimizer"
// (None when Optimizer is nil), "scheduler" (SchedulerState's fields, an
// empty dict when it is nil), "ema" (None when EMA is nil), "rng",
// "metrics" (Metrics' entries, then "position" and "epochs" when Position
// and Epochs are set) and "format" ("gsrmt-checkpoint-v1").
type TrainingState struct {
	// ModelConfig is the model's config. SaveTraining takes it from the
	// model when one is given.
	ModelConfig gsrmt.Config
	// Run describes the data the model was trained on; nil when the file
	// records none.
	Run *RunInfo
	// ConfigExtra holds the other "config" entries, such as the training
	// options. Keys must be neither gsrmt.Config nor RunInfo JSON names.
	ConfigExtra map[string]any
	// Model is the state_dict. SaveTraining takes it from the model when one
	// is given; LoadTraining fills it.
	Model *Dict

	Epoch int64 // epochs completed
	Step  int64 // optimizer steps taken

	Optimizer *OptimizerState // nil: none saved
	Scheduler *SchedulerState // nil: none saved
	EMA       *Dict           // optional second state_dict (exponential moving average of the weights)
	RNG       map[string]any
	// Metrics holds plain results (best and last accuracy, ...); the keys
	// "position" and "epochs" are Position's and Epochs'.
	Metrics  map[string]any
	Position *Position     // where an interrupted epoch stands; nil: none saved
	Scaler   *ScalerState  // fp16 loss scaling ("amp_scaler"); nil: none saved
	Epochs   []EpochRecord // the finished epochs' metrics; nil: none saved
}

// SaveTraining writes a training checkpoint to path, atomically (see Save).
// With m not nil the model's weights and config are saved (st.Model and
// st.ModelConfig are ignored); with m nil, st.Model and st.ModelConfig are.
// st may be nil for a checkpoint of the weights and config alone.
func SaveTraining(path string, m *gsrmt.Model, st *TrainingState) error {
	top, err := trainingDict(m, st)
	if err != nil {
		return fmt.Errorf("checkpoints: save %s: %w", path, err)
	}
	return Save(path, top)
}

// trainingDict assembles the file's dict from the sections of st.
func trainingDict(m *gsrmt.Model, st *TrainingState) (*Dict, error) {
	if st == nil {
		st = &TrainingState{}
	}
	state, cfg, err := modelSection(m, st)
	if err != nil {
		return nil, err
	}
	cfgDict, err := configDict(cfg, st.Run, st.ConfigExtra)
	if err != nil {
		return nil, err
	}
	var opt, sched, ema any
	if st.Optimizer != nil {
		if opt, err = st.Optimizer.dict(); err != nil {
			return nil, err
		}
	}
	if sched, err = plainValue(st.Scheduler, "scheduler", 0); err != nil {
		return nil, err
	}
	if sched == nil {
		sched = NewDict()
	}
	if st.EMA != nil {
		if _, err := torchfmt.NamedTensors(st.EMA); err != nil {
			return nil, fmt.Errorf("ema: %w", err)
		}
		ema = st.EMA
	}
	rng, err := plainMap(st.RNG, "rng")
	if err != nil {
		return nil, err
	}
	metrics, err := metricsDict(st.Metrics, st.Position, st.Epochs)
	if err != nil {
		return nil, err
	}
	top := NewDict()
	for _, e := range []DictEntry{{Key: "model", Value: state}, {Key: "config", Value: cfgDict},
		{Key: "epoch", Value: st.Epoch}, {Key: "step", Value: st.Step}, {Key: "optimizer", Value: opt},
		{Key: "scheduler", Value: sched}, {Key: "ema", Value: ema}, {Key: "rng", Value: rng},
		{Key: "metrics", Value: metrics}, {Key: "format", Value: Format}} {
		top.Set(e.Key, e.Value) // cannot fail: strings are hashable
	}
	if st.Scaler != nil {
		if err := setPlain(top, scalerKey, *st.Scaler, ""); err != nil {
			return nil, err
		}
	}
	return top, nil
}

// modelSection returns the state_dict and config to save: the model's, or
// st's without one, checked.
func modelSection(m *gsrmt.Model, st *TrainingState) (*Dict, gsrmt.Config, error) {
	var err error
	state, cfg := st.Model, st.ModelConfig
	if m != nil {
		if state, err = ModelStateDict(m); err != nil {
			return nil, cfg, err
		}
		cfg = m.Config
	}
	if state == nil {
		return nil, cfg, errors.New("no model state: pass a model or set TrainingState.Model")
	}
	if _, err := torchfmt.NamedTensors(state); err != nil {
		return nil, cfg, fmt.Errorf("model: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, cfg, fmt.Errorf("model config: %w", err)
	}
	return state, cfg, nil
}

// LoadTraining reads a training checkpoint written by SaveTraining (format
// "gsrmt-checkpoint-v1"), of this layout or the older one whose position
// and epoch rows were JSON strings ("position_json", "epochs_json").
// Tensors come back as checkpoint Tensors on the CPU; plain values as
// int64 or float64, dicts with string keys as map[string]any, lists as
// []any. Errors name the file.
func LoadTraining(path string) (*TrainingState, error) {
	v, err := Load(path)
	if err != nil {
		return nil, err
	}
	st, err := trainingFromValue(v)
	if err != nil {
		return nil, fmt.Errorf("checkpoints: %s: %w", path, err)
	}
	return st, nil
}

// trainingFromValue reads the sections of a loaded training checkpoint.
func trainingFromValue(v any) (*TrainingState, error) {
	top, ok := v.(*Dict)
	if !ok {
		return nil, fmt.Errorf("not a gsrmt training checkpoint: the file holds a %T, not a dict", v)
	}
	if f, _ := top.Get("format"); f != Format {
		return nil, fmt.Errorf("not a gsrmt training checkpoint: format %v, want %q (LoadWeights reads bare state_dicts)", f, Format)
	}
	st := &TrainingState{}
	var err error
	if st.Model, err = stateDictEntry(top, "model", true); err != nil {
		return nil, err
	}
	cv, _ := top.Get("config")
	cfgMap, err := plainDict(cv, "config")
	if err != nil {
		return nil, err
	}
	if st.ModelConfig, st.Run, st.ConfigExtra, err = configFromMap(cfgMap); err != nil {
		return nil, fmt.Errorf("\"config\": %w", err)
	}
	if st.Epoch, err = intEntry(top, "epoch"); err != nil {
		return nil, err
	}
	if st.Step, err = intEntry(top, "step"); err != nil {
		return nil, err
	}
	if ov, _ := top.Get("optimizer"); ov != nil {
		od, ok := ov.(*Dict)
		if !ok {
			return nil, fmt.Errorf("\"optimizer\" is a %T, not a dict", ov)
		}
		if st.Optimizer, err = optimizerFromDict(od); err != nil {
			return nil, fmt.Errorf("\"optimizer\": %w", err)
		}
	}
	if st.EMA, err = stateDictEntry(top, "ema", false); err != nil {
		return nil, err
	}
	return st, readPlainSections(top, st)
}

// scalerKey is the fp16 loss scaler's entry, timm's name for it.
const scalerKey = "amp_scaler"

// readPlainSections reads "scheduler", "rng", "metrics" and "amp_scaler".
func readPlainSections(top *Dict, st *TrainingState) error {
	sv, _ := top.Get("scheduler")
	var err error
	if st.Scheduler, err = schedulerFrom(sv); err != nil {
		return err
	}
	rv, _ := top.Get("rng")
	if st.RNG, err = plainDict(rv, "rng"); err != nil {
		return err
	}
	mv, _ := top.Get("metrics")
	if st.Metrics, err = plainDict(mv, "metrics"); err != nil {
		return err
	}
	if st.Position, st.Epochs, err = takeMetricSections(st.Metrics); err != nil {
		return err
	}
	av, _ := top.Get(scalerKey)
	st.Scaler, err = scalerFrom(av)
	return err
}

// stateDictEntry returns the state_dict under key: required, or nil when
// it is absent or None.
func stateDictEntry(top *Dict, key string, required bool) (*Dict, error) {
	v, _ := top.Get(key)
	if v == nil && !required {
		return nil, nil
	}
	d, ok := v.(*Dict)
	if !ok {
		return nil, fmt.Errorf("%q is a %T, not a state_dict", key, v)
	}
	if _, err := torchfmt.NamedTensors(d); err != nil {
		return nil, fmt.Errorf("%q: %w", key, err)
	}
	return d, nil
}

func intEntry(d *Dict, key string) (int64, error) {
	v, ok := d.Get(key)
	if !ok || v == nil {
		return 0, nil
	}
	n, ok := v.(int64)
	if !ok {
		return 0, fmt.Errorf("%q is a %T (%v), not an integer", key, v, v)
	}
	return n, nil
}

// ReadConfig returns the model config recorded in a checkpoint (the
// "config" entry of our .pt files, or the "config" metadata of our
// safetensors files) and the config entries that are neither the model's
// nor the run's (Open gives the RunInfo too). For a file without one, such
// as a bare state_dict, the error wraps ErrNoConfig. Errors name the file.
func ReadConfig(path string) (gsrmt.Config, map[string]any, error) {
	ck, err := Open(path)
	if err != nil {
		return gsrmt.Config{}, nil, err
	}
	if ck.Config == nil {
		return gsrmt.Config{}, nil, fmt.Errorf("checkpoints: %s: %w", path, ErrNoConfig)
	}
	return *ck.Config, ck.ConfigExtra, nil
}
