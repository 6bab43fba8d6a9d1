package train

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"

	"github.com/gsrmt/gsrmt/checkpoints"
	"github.com/gsrmt/gsrmt/internal/torch"
)

// save writes the run's whole state (DATA.md's checkpoint dict), assembled
// from the sections its components own: the model, AdamW, the schedule,
// the EMA, libtorch's CPU generator, the metrics so far and the position
// inside the current epoch.
func (r *run) save(path string) error { return r.saveWeights(path, sourceModel) }

// saveWeights is save with the weights of source (sourceModel, or
// sourceEMA: the EMA's, for a best.pt or history checkpoint chosen on the
// EMA) as the file's model entry; the run info says which.
func (r *run) saveWeights(path, source string) error {
	o := &r.o
	opt, err := r.opt.State(o.LR)
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
	options, err := json.Marshal(o)
	if err != nil {
		return err
	}
	run := r.runInfo()
	run.Weights = source
	weights := r.model
	if source == sourceEMA {
		weights = r.ema.Model
	}
	extra := map[string]any{optionsKey: string(options)}
	if err := r.finetuneExtra(extra); err != nil {
		return err
	}
	st := &checkpoints.TrainingState{
		Run:         &run,
		ConfigExtra: extra,
		Epoch:       int64(r.pos.Epoch),
		Step:        r.step,
		Optimizer:   opt,
		Scheduler:   r.sched.State(r.step),
		RNG:         map[string]any{"seed": int64(o.Seed), "torch_cpu": rngTensor},
		Metrics: map[string]any{"best_top1": finiteOr(r.pos.BestTop1, -1), "best_epoch": int64(r.pos.BestEpoch),
			"best_source": r.pos.bestSource(), selectOnKey: o.selectionSplit()},
		Position: r.pos.state(),
		Epochs:   epochRecords(r.metrics),
	}
	if n := len(r.metrics); n > 0 {
		last := r.metrics[n-1]
		st.Metrics["last_top1"] = finiteOr(last.TestTop1, -1)
		st.Metrics["last_top5"] = finiteOr(last.TestTop5, -1)
		st.Metrics["last_loss"] = finiteOr(last.TestLoss, -1)
	}
	if r.ema != nil {
		if st.EMA, err = r.ema.State(); err != nil {
			return err
		}
	}
	if r.scaler != nil {
		st.Scaler = r.scaler.State()
	}
	return checkpoints.SaveTraining(path, weights, st)
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
	if st.Run != nil && st.Run.Weights == sourceEMA {
		return fmt.Errorf("its model entry holds the EMA's weights (a best.pt or history checkpoint chosen on the EMA), not the weights the optimizer state belongs to: resume from the run's last.pt")
	}
	if err := r.restoreFinetune(st.ConfigExtra); err != nil {
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
		if err := r.ema.SetState(st.EMA); err != nil {
			return fmt.Errorf("ema: %w", err)
		}
	}
	if r.scaler != nil && st.Scaler != nil { // none: a fresh scale, as GradScaler's
		if err := r.scaler.SetState(st.Scaler); err != nil {
			return err
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
		saved, err := decodeOptions(s)
		if err != nil {
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
	return r.opt.SetState(st)
}

// restorePosition loads the step, the metrics so far and the position inside
// the epoch, and refuses a checkpoint that has already run every epoch.
func (r *run) restorePosition(st *checkpoints.TrainingState) error {
	r.step = st.Step
	if st.Epochs != nil {
		r.metrics = make([]EpochMetrics, len(st.Epochs))
		for i, e := range st.Epochs {
			r.metrics[i] = EpochMetrics(e)
		}
	}
	if st.Position != nil {
		r.pos = progress(*st.Position)
	}
	if r.pos.Epoch >= r.o.Epochs {
		return fmt.Errorf("the checkpoint has finished %d epochs; ask for more with --epochs", r.pos.Epoch)
	}
	return nil
}

// state is the position's checkpoint section: checkpoints.Position has
// progress's fields, so that the two convert into each other.
func (p progress) state() *checkpoints.Position {
	s := checkpoints.Position(p)
	return &s
}

// epochRecords are the metrics rows' checkpoint section.
func epochRecords(rows []EpochMetrics) []checkpoints.EpochRecord {
	out := make([]checkpoints.EpochRecord, len(rows))
	for i, m := range rows {
		out[i] = checkpoints.EpochRecord(m)
	}
	return out
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
	o, err := decodeOptions(s)
	if err != nil {
		return nil, fmt.Errorf("%s: the recorded training options: %w", path, err)
	}
	return &o, nil
}

// decodeOptions reads the options a checkpoint recorded (optionsKey), with
// the options that older versions did not record given their defaults
// (fillDefaults), so that they compare equal to those of a run resuming them.
func decodeOptions(s string) (Options, error) {
	var o Options
	if err := json.Unmarshal([]byte(s), &o); err != nil {
		return o, err
	}
	o.fillDefaults()
	return o, nil
}

func finiteOr(v, def float64) float64 {
	if v != v || v > 1e308 || v < -1e308 {
		return def
	}
	return v
}
