package train

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/gsrmt/gsrmt/checkpoints"
	"github.com/gsrmt/gsrmt/internal/torch"
)

// save writes the run's whole state (DATA.md's checkpoint dict): model,
// optimizer moments, schedule position, EMA, libtorch's CPU generator,
// metrics so far and the position inside the current epoch.
func (r *run) save(path string) error {
	o := &r.o
	names, m, v := r.opt.Moments()
	hyper := map[string]float64{"lr": o.LR, "beta1": r.opt.Config.Beta1, "beta2": r.opt.Config.Beta2,
		"eps": r.opt.Config.Eps, "weight_decay": r.opt.Config.WeightDecay}
	opt, err := checkpoints.NewOptimizerState(r.opt.Step, hyper, names, m, v)
	if err != nil {
		return err
	}
	rngState, err := torch.CPURNGState()
	if err != nil {
		return err
	}
	rngTensor, err := checkpoints.NewTensor(checkpoints.Uint8, []int64{int64(len(rngState))}, rngState)
	if err != nil {
		return err
	}
	rows, err := json.Marshal(metricsForJSON(r.metrics))
	if err != nil {
		return err
	}
	pos, err := json.Marshal(r.pos)
	if err != nil {
		return err
	}
	options, err := json.Marshal(o)
	if err != nil {
		return err
	}
	st := &checkpoints.TrainingState{
		ConfigExtra: map[string]any{
			"dataset": o.Dataset, "data_dir": o.DataDir, "img_size": int64(o.ImgSize),
			"class_names": toAny(r.classes), "norm_mean": floatsAny(r.data.Normalize.Mean[:]),
			"norm_std": floatsAny(r.data.Normalize.Std[:]), "split_seed": int64(o.SplitSeed), "recipe": o.Recipe,
			optionsKey: string(options),
		},
		Epoch:     int64(r.pos.Epoch),
		Step:      r.step,
		Optimizer: opt,
		Scheduler: map[string]any{"type": "warmup-cosine", "base_lr": r.sched.BaseLR, "min_lr": r.sched.MinLR,
			"warmup_steps": r.sched.WarmupSteps, "total_steps": r.sched.TotalSteps, "step": r.step},
		RNG: map[string]any{"seed": int64(o.Seed), "torch_cpu": rngTensor},
		Metrics: map[string]any{
			"best_top1": finiteOr(r.pos.BestTop1, -1), "best_epoch": int64(r.pos.BestEpoch),
			"epochs_json": string(rows), "position_json": string(pos),
		},
	}
	if n := len(r.metrics); n > 0 {
		last := r.metrics[n-1]
		st.Metrics["last_top1"] = finiteOr(last.TestTop1, -1)
		st.Metrics["last_top5"] = finiteOr(last.TestTop5, -1)
		st.Metrics["last_loss"] = finiteOr(last.TestLoss, -1)
	}
	if r.ema != nil {
		if st.EMA, err = checkpoints.ModelStateDict(r.ema.Model); err != nil {
			return err
		}
	}
	return checkpoints.SaveTraining(path, r.model, st)
}

// restore loads a checkpoint written by save into the run: it checks that
// the checkpoint belongs to a run with these options, then loads the model,
// the optimizer, the EMA, libtorch's generator and the position.
func (r *run) restore(path string) error {
	st, err := checkpoints.LoadTraining(path)
	if err != nil {
		return err
	}
	if err := r.checkRecorded(st); err != nil {
		return err
	}
	if _, err := checkpoints.LoadModelState(r.model, st.Model, true); err != nil {
		return err
	}
	if err := r.restoreOptimizer(st.Optimizer); err != nil {
		return err
	}
	if r.ema != nil {
		if st.EMA == nil {
			return fmt.Errorf("--ema is set but the checkpoint holds no EMA weights")
		}
		if _, err := checkpoints.LoadModelState(r.ema.Model, st.EMA, true); err != nil {
			return fmt.Errorf("ema: %w", err)
		}
	}
	if t, ok := st.RNG["torch_cpu"].(*checkpoints.Tensor); ok {
		b, err := t.Bytes()
		if err != nil {
			return err
		}
		if err := torch.SetCPURNGState(b); err != nil {
			return err
		}
	}
	return r.restorePosition(st)
}

// checkRecorded refuses a checkpoint whose model, seed or recorded options
// differ from the run's (ResumeConflicts).
func (r *run) checkRecorded(st *checkpoints.TrainingState) error {
	want, got := r.o.Model, st.ModelConfig
	want.DropPath, got.DropPath = 0, 0
	if !reflect.DeepEqual(want, got) {
		a, _ := json.Marshal(got)
		b, _ := json.Marshal(want)
		return fmt.Errorf("the checkpoint's model %s differs from this run's %s: give the same model flags", a, b)
	}
	if s, ok := st.RNG["seed"].(int64); ok && uint64(s) != r.o.Seed {
		return fmt.Errorf("the checkpoint was trained with --seed %d, this run has --seed %d", s, r.o.Seed)
	}
	if s, ok := st.ConfigExtra[optionsKey].(string); ok {
		var saved Options
		if err := json.Unmarshal([]byte(s), &saved); err != nil {
			return fmt.Errorf("the recorded training options: %w", err)
		}
		if bad := ResumeConflicts(&saved, &r.o); len(bad) > 0 {
			return fmt.Errorf("%s: resume with the checkpoint's options (drop those flags) or start a new run", strings.Join(bad, "; "))
		}
		r.resumed = &saved
	}
	return nil
}

// restoreOptimizer loads AdamW's moments; a checkpoint without them is
// refused unless the options say ResetOptimizer.
func (r *run) restoreOptimizer(st *checkpoints.OptimizerState) error {
	hasMoments := st != nil && len(st.ExpAvg) > 0
	if r.o.ResetOptimizer {
		return nil
	}
	if !hasMoments {
		return fmt.Errorf("the checkpoint holds no optimizer state (a converted or exported file?): resuming would restart AdamW's moments; " +
			"resume from the run's own last.pt, or add --reset-optimizer to continue with fresh moments")
	}
	m, v, err := st.TorchMoments(r.o.Device)
	if err != nil {
		return err
	}
	err = r.opt.SetMoments(st.Step, m, v)
	for _, t := range m {
		t.MustDrop()
	}
	for _, t := range v {
		t.MustDrop()
	}
	return err
}

// restorePosition loads the step, the metrics so far and the position inside
// the epoch, and refuses a checkpoint that has already run every epoch.
func (r *run) restorePosition(st *checkpoints.TrainingState) error {
	r.step = st.Step
	if s, ok := st.Metrics["epochs_json"].(string); ok {
		var rows []epochJSON
		if err := json.Unmarshal([]byte(s), &rows); err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		r.metrics = metricsFromJSON(rows)
	}
	if s, ok := st.Metrics["position_json"].(string); ok {
		if err := json.Unmarshal([]byte(s), &r.pos); err != nil {
			return fmt.Errorf("position: %w", err)
		}
	}
	if r.pos.Epoch >= r.o.Epochs {
		return fmt.Errorf("the checkpoint has finished %d epochs; ask for more with --epochs", r.pos.Epoch)
	}
	return nil
}

// optionsKey is the checkpoint's "config" entry that records the run's
// Options as JSON (their flag names), so that --resume can restore them.
const optionsKey = "train_options"

// ReadOptions returns the training options recorded in a checkpoint written
// by a training run; nil (and no error) for an older checkpoint that
// recorded none. Device, threads, workers, the run folder and the log are
// not recorded: the caller sets them.
func ReadOptions(path string) (*Options, error) {
	_, extra, err := checkpoints.ReadConfig(path)
	if err != nil {
		return nil, err
	}
	s, ok := extra[optionsKey].(string)
	if !ok {
		return nil, nil
	}
	var o Options
	if err := json.Unmarshal([]byte(s), &o); err != nil {
		return nil, fmt.Errorf("%s: the recorded training options: %w", path, err)
	}
	return &o, nil
}

// epochJSON is EpochMetrics with NaN written as null.
type epochJSON struct {
	Epoch                                         int
	LR, TrainLoss, TrainTop1, ImagesPerS, Seconds float64
	TestLoss, TestTop1, TestTop5, EMATop1         *float64
	SkippedImages                                 int64
}

func metricsForJSON(rows []EpochMetrics) []epochJSON {
	ptr := func(v float64) *float64 {
		if v != v {
			return nil
		}
		return &v
	}
	out := make([]epochJSON, len(rows))
	for i, m := range rows {
		out[i] = epochJSON{m.Epoch, m.LR, m.TrainLoss, m.TrainTop1, m.ImagesPerS, m.Seconds,
			ptr(m.TestLoss), ptr(m.TestTop1), ptr(m.TestTop5), ptr(m.EMATop1), m.SkippedImages}
	}
	return out
}

func metricsFromJSON(rows []epochJSON) []EpochMetrics {
	val := func(p *float64) float64 {
		if p == nil {
			return nan()
		}
		return *p
	}
	out := make([]EpochMetrics, len(rows))
	for i, m := range rows {
		out[i] = EpochMetrics{Epoch: m.Epoch, LR: m.LR, TrainLoss: m.TrainLoss, TrainTop1: m.TrainTop1,
			ImagesPerS: m.ImagesPerS, Seconds: m.Seconds, TestLoss: val(m.TestLoss), TestTop1: val(m.TestTop1),
			TestTop5: val(m.TestTop5), EMATop1: val(m.EMATop1), SkippedImages: m.SkippedImages}
	}
	return out
}

func toAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func floatsAny(s []float32) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = float64(v)
	}
	return out
}

func finiteOr(v, def float64) float64 {
	if v != v || v > 1e308 || v < -1e308 {
		return def
	}
	return v
}
