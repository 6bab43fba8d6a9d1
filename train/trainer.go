package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/gsrmt/gsrmt/checkpoints"
	"github.com/gsrmt/gsrmt/datasets"
	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/gsrmt/gsrmt/internal/torch"
	"github.com/schollz/progressbar/v3"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// EpochMetrics is one row of metrics.csv.
type EpochMetrics struct {
	Epoch      int     `json:"epoch"` // 1-based
	LR         float64 `json:"lr"`    // learning rate of the epoch's last step
	TrainLoss  float64 `json:"train_loss"`
	TrainTop1  float64 `json:"train_top1"` // % of training samples whose own label wins (mixed batches too)
	TestLoss   float64 `json:"test_loss"`  // NaN when not evaluated this epoch
	TestTop1   float64 `json:"test_top1"`
	TestTop5   float64 `json:"test_top5"`
	EMATop1    float64 `json:"ema_test_top1"` // NaN without --ema
	ImagesPerS float64 `json:"images_per_s"`
	Seconds    float64 `json:"seconds"`
	// SkippedImages counts training images of the epoch that failed to load
	// and were skipped (--skip-bad-images).
	SkippedImages int64 `json:"skipped_images"`
	// The validation split's metrics (--val-split) and the EMA's on both
	// splits (--ema); NaN when not evaluated (MetricsColumns).
	ValLoss     float64 `json:"val_loss"`
	ValTop1     float64 `json:"val_top1"`
	ValTop5     float64 `json:"val_top5"`
	EMATestLoss float64 `json:"ema_test_loss"`
	EMATestTop5 float64 `json:"ema_test_top5"`
	EMAValLoss  float64 `json:"ema_val_loss"`
	EMAValTop1  float64 `json:"ema_val_top1"`
	EMAValTop5  float64 `json:"ema_val_top5"`
	// SkippedSteps counts the epoch's optimizer steps skipped because the
	// fp16 gradients held an inf or NaN (--amp-dtype float16).
	SkippedSteps int64 `json:"skipped_steps"`
}

// progress is the position inside an epoch, saved with an interrupted run.
type progress struct {
	Epoch     int     // 0-based epoch in progress
	Batch     int     // batches of it already done
	LossSum   float64 // sum over seen samples
	Hits      int64
	Seen      int64
	Seconds   float64
	LastLR    float64
	BestTop1  float64 // best top-1 on the selection split
	BestEpoch int
	Skipped   int64 // training images skipped so far in the epoch

	BestSource string // whose weights reached BestTop1: sourceModel or sourceEMA
	// SkippedSteps counts the optimizer steps skipped so far in the epoch
	// for non-finite fp16 gradients.
	SkippedSteps int64
}

// Result summarises a finished (or interrupted) run.
type Result struct {
	Metrics     []EpochMetrics
	Interrupted bool // stopped by the context (Ctrl-C); last.pt holds the position
	Steps       int64
	Best        float64 // best top-1 on the selection split (BestSplit)
	RunDir      string
	// BestEpoch, BestSplit and BestSource say which epoch best.pt holds,
	// on which split it was chosen (val or test) and whose weights (model
	// or ema); BestTest is best.pt's test result, measured at the end of a
	// run chosen on its validation split (nil otherwise: then Best is it).
	BestEpoch  int
	BestSplit  string
	BestSource string
	BestTest   *EvalResult
}

// ErrNonFinite is returned when the loss, the logits or the model's weights
// or BatchNorm statistics become NaN or infinite.
var ErrNonFinite = errors.New("non-finite values")

// ErrBatchTooLarge is returned when --batch-size exceeds the training set.
var ErrBatchTooLarge = errors.New("the batch is larger than the training set")

// Run trains a model as the options say. Cancelling ctx finishes the current
// step, writes last.pt and returns a Result with Interrupted set.
func Run(ctx context.Context, o Options) (*Result, error) {
	runtime.LockOSThread() // libtorch's grad mode and autocast are per OS thread
	defer runtime.UnlockOSThread()
	restoreThreads()
	if o.Log == nil {
		o.Log = io.Discard
	}
	o.fillDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.AMP && o.Device == gotch.CPU {
		return nil, fmt.Errorf("amp: --amp is %s autocast on CUDA; this run is on the CPU (run without --amp, or pick --device cuda)", o.AMPDType)
	}
	rep := replica{g: o.Group}
	o.WorldSize = rep.world()
	if o.Batch%o.WorldSize != 0 {
		return nil, fmt.Errorf("batch-size %d: the global batch must divide evenly among the %d ranks", o.Batch, o.WorldSize)
	}
	if rep.writer() {
		dir, err := openRunDir(&o)
		if err != nil {
			return nil, err
		}
		defer dir.close()
	} else {
		o.Log, o.Terminal = io.Discard, false // rank 0 reports for the group
	}
	if o.Threads > 0 {
		if err := torch.SetNumThreads(o.Threads); err != nil {
			return nil, err
		}
	}
	if err := o.CUDASpeed.Apply(o.Device); err != nil {
		return nil, err
	}
	if err := torch.ManualSeed(o.Seed); err != nil {
		return nil, err
	}
	data, err := openData(ctx, &o, o.Log)
	if err != nil {
		return nil, err
	}
	if n := data.Train.Len(); o.Batch > n {
		return nil, fmt.Errorf("batch-size %d: %w of %d images (the learning rate is scaled by the batch): choose --batch-size %d or less",
			o.Batch, ErrBatchTooLarge, n, n)
	}
	classes := data.Train.Classes()
	o.Model.NumClasses = len(classes)
	o.Model.ImageSize = o.ImgSize
	r := &run{o: o, data: data, classes: classes, rep: rep}
	defer r.close()
	if err := r.setup(); err != nil {
		return nil, err
	}
	return r.loop(ctx)
}

type run struct {
	o       Options
	data    *DataPlan
	classes []string

	model   *gsrmt.Model
	opt     *AdamW
	ema     *EMA
	sched   Schedule
	trainL  *datasets.Loader
	testL   *datasets.Loader
	spe     int // optimizer steps per epoch
	step    int64
	pos     progress
	metrics []EpochMetrics

	valL *datasets.Loader // the validation split's (--val-split); nil without
	// bestTest is best.pt's test result, measured at the end of a run
	// chosen on its validation split (finishRun); nil before or without.
	bestTest *EvalResult

	rep       replica  // the data-parallel group, if any
	commSec   float64  // seconds of this epoch's steps spent in collectives
	minBatch  int      // smallest batch the model trains on (gsrmt.MinTrainBatch)
	resumed   *Options // the options the resumed checkpoint recorded, if any
	lastSaved int64    // step of the last.pt this run wrote; -1 before the first
	log       *stepLog // events.jsonl and TensorBoard (rank 0); nil on the others
	gradNorm  float64  // the last step's global gradient norm, for the log

	finetune *checkpoints.FinetuneReport // what --finetune loaded, if anything
	cores    *coreShare                  // threads sized to the free CPUs; nil when off

	micro  int         // loader batches per epoch: GradAccumSteps of them make a step
	scaler *GradScaler // fp16 loss scaling (--amp-dtype float16), else nil
}

func (r *run) close() {
	if r.log != nil {
		r.log.close()
	}
	if r.trainL != nil {
		r.trainL.Close()
	}
	if r.testL != nil {
		r.testL.Close()
	}
	if r.valL != nil {
		r.valL.Close()
	}
	if r.ema != nil {
		r.ema.Close()
	}
	if r.opt != nil {
		r.opt.Close()
	}
	if r.scaler != nil {
		r.scaler.Close()
	}
	if r.model != nil {
		r.model.Close()
	}
}

func (r *run) setup() error {
	o := &r.o
	var err error
	if r.model, err = gsrmt.New(o.Model, o.Device); err != nil {
		return err
	}
	if o.Finetune != "" && o.Resume == "" {
		if err := r.loadFinetune(); err != nil {
			return err
		}
	}
	if err := r.rep.join(r.model); err != nil {
		return err
	}
	r.rep.useSyncBN(r.model, o.SyncBN)
	if r.opt, err = NewAdamW(r.model.Trainable(), AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: o.WeightDecay}); err != nil {
		return err
	}
	if o.EMA > 0 {
		if r.ema, err = NewEMA(r.model, o.EMA); err != nil {
			return err
		}
	}
	if err := r.openLoaders(); err != nil {
		return err
	}
	r.lastSaved = -1
	r.minBatch = gsrmt.MinTrainBatch(o.Model, o.ImgSize)
	r.cores = newCoreShare(o)
	if o.AMP && o.AMPDType == AMPFloat16 {
		r.scaler = NewGradScaler(o.Device)
	}
	total := int64(r.spe * o.Epochs)
	r.sched = Schedule{BaseLR: o.LR, MinLR: o.MinLR, WarmupSteps: int64(math.Round(o.WarmupEpochs * float64(r.spe))), TotalSteps: total}
	if r.sched.WarmupSteps > total {
		r.sched.WarmupSteps = total
	}
	if o.Resume != "" {
		if err := r.restore(o.Resume); err != nil {
			return fmt.Errorf("resume from %s: %w", o.Resume, err)
		}
		fmt.Fprintf(o.Log, "resumed from %s at epoch %d, batch %d (step %d)\n", o.Resume, r.pos.Epoch+1, r.pos.Batch, r.step)
		if was := r.resumed; was != nil && was.WorldSize != 0 && was.WorldSize != o.WorldSize {
			fmt.Fprintf(o.Log, "the checkpoint was written by %d ranks, this run has %d: the rest of epoch %d follows the new world size's sample order (the same global batch and schedule)\n",
				was.WorldSize, o.WorldSize, r.pos.Epoch+1)
		}
	} else {
		r.pos.BestTop1 = -1 // no evaluation yet
	}
	if rank := r.rep.rank(); rank > 0 {
		// Ranks draw their own drop-path masks (timm seeds seed + rank); a
		// resumed rank derives its generator from the step, since last.pt
		// holds rank 0's.
		if err := torch.ManualSeed(o.Seed + uint64(rank)*1_000_003 + uint64(r.step)); err != nil {
			return err
		}
	}
	if err := r.writeConfig(); err != nil {
		return err
	}
	if r.rep.writer() {
		if r.log, err = openStepLog(o, r.step); err != nil {
			return err
		}
	}
	fmt.Fprintf(o.Log, "training %s %s on %s (%d train%s / %d test images, %d classes) at %d px on %v%s: %d epochs of %d steps; best.pt chosen on the %s split\n",
		o.Model.Variant, o.Model.Preset, o.Dataset, r.data.Train.Len(), r.valCount(), r.data.Test.Len(), len(r.classes), o.ImgSize, DeviceName(o.Device), o.CUDASpeed.note(o.Device), o.Epochs, r.spe,
		o.selectionSplit())
	return nil
}

// openLoaders opens the training, test and validation loaders (each rank
// its shard) and sizes an epoch: its loader batches (micro) and optimizer
// steps (spe).
func (r *run) openLoaders() error {
	o := &r.o
	var err error
	if r.trainL, err = r.data.trainLoader(o, len(r.classes), r.rep.shard(true)); err != nil {
		return fmt.Errorf("training data: %w", err)
	}
	if r.testL, err = r.data.evalLoader(o, r.data.Test, o.Batch/o.WorldSize, r.rep.shard(false)); err != nil {
		return fmt.Errorf("test data: %w", err)
	}
	if r.data.Val != nil {
		if r.valL, err = r.data.evalLoader(o, r.data.Val, o.Batch/o.WorldSize, r.rep.shard(false)); err != nil {
			return fmt.Errorf("validation data: %w", err)
		}
	}
	r.micro = r.trainL.NumBatches()
	r.spe = (r.micro + o.GradAccumSteps - 1) / o.GradAccumSteps // timm: a partial last group is a step
	if r.spe == 0 {
		return fmt.Errorf("training data: %d images give no batch of %d", r.data.Train.Len(), o.Batch)
	}
	return nil
}

func (r *run) loop(ctx context.Context) (*Result, error) {
	o := &r.o
	res := &Result{RunDir: o.Out}
	for epoch := r.pos.Epoch; epoch < o.Epochs; epoch++ {
		if r.pos.Epoch != epoch {
			r.pos = progress{Epoch: epoch, BestTop1: r.pos.BestTop1, BestEpoch: r.pos.BestEpoch, BestSource: r.pos.BestSource}
		}
		interrupted, err := r.trainEpoch(ctx, epoch)
		if err != nil {
			return nil, err
		}
		if interrupted {
			if err := r.saveLast(); err != nil {
				return nil, fmt.Errorf("interrupted at step %d; writing last.pt failed: %w", r.step, err)
			}
			fmt.Fprintf(o.Log, "interrupted at epoch %d, step %d: wrote %s (continue with --resume)\n", epoch+1, r.step, filepath.Join(o.Out, "last.pt"))
			res.Interrupted = true
			break
		}
		if err := r.endEpoch(epoch); err != nil {
			return nil, err
		}
		if ctx.Err() != nil && epoch+1 < o.Epochs {
			fmt.Fprintf(o.Log, "interrupted after epoch %d: last.pt is up to date (continue with --resume)\n", epoch+1)
			res.Interrupted = true
			break
		}
	}
	if !res.Interrupted {
		if err := r.finishRun(res); err != nil {
			return nil, err
		}
	}
	res.Metrics, res.Steps, res.Best = r.metrics, r.step, r.pos.BestTop1
	res.BestEpoch, res.BestSplit, res.BestSource = r.pos.BestEpoch, o.selectionSplit(), r.pos.bestSource()
	return res, nil
}

// endEpoch checks the model, evaluates it when due, and writes the epoch's
// metrics and checkpoints: best.pt when the selection split's top-1 improved
// (improveBest), then last.pt.
// A model that holds or computes non-finite values stops the run unsaved.
func (r *run) endEpoch(epoch int) error {
	o := &r.o
	m := EpochMetrics{
		Epoch: epoch + 1, LR: r.pos.LastLR,
		TrainLoss: r.pos.LossSum / float64(r.pos.Seen), TrainTop1: 100 * float64(r.pos.Hits) / float64(r.pos.Seen),
		Seconds: r.pos.Seconds, ImagesPerS: float64(r.pos.Seen) / r.pos.Seconds, SkippedImages: r.pos.Skipped,
		SkippedSteps: r.pos.SkippedSteps,
	}
	m.clearEval()
	if err := r.rep.syncBuffers(r.model); err != nil { // every rank saves and evaluates rank 0's statistics
		return err
	}
	if err := r.rep.checkSame(r.model, fmt.Sprintf("after epoch %d", epoch+1), false); err != nil {
		return err
	}
	if err := r.checkFinite(fmt.Sprintf("after epoch %d", epoch+1)); err != nil {
		return err
	}
	if (epoch+1)%o.EvalEvery == 0 || epoch+1 == o.Epochs {
		if err := r.evaluate(epoch, &m); err != nil {
			return err
		}
	}
	r.metrics = append(r.metrics, m)
	if r.log != nil {
		if err := r.log.epoch(m, r.step); err != nil {
			return err
		}
	}
	// Hand the heap's free memory back once an epoch: gsrmt-cli keeps freed
	// memory for reuse between steps (torch.KeepFreedMemory), and this bounds
	// what fragmentation can add over a long run.
	torch.TrimHeap()
	restoreThreads()
	r.pos = progress{Epoch: epoch + 1, BestTop1: r.pos.BestTop1, BestEpoch: r.pos.BestEpoch, BestSource: r.pos.BestSource}
	newBest, err := r.improveBest(m)
	if err != nil {
		return err
	}
	if err := r.updateHistory(epoch + 1); err != nil {
		return err
	}
	if err := r.saveLast(); err != nil {
		return err
	}
	if err := r.writeMetrics(); err != nil {
		return err
	}
	if err := r.writeConfig(); err != nil {
		return err
	}
	if r.rep.g != nil {
		fmt.Fprintf(o.Log, "epoch %d: rank 0 spent %.1f s of its %.1f s of steps in collectives (%.0f %%)\n",
			m.Epoch, r.commSec, m.Seconds, 100*r.commSec/m.Seconds)
	}
	r.commSec = 0
	if m.SkippedImages > 0 {
		fmt.Fprintf(o.Log, "epoch %d: skipped %d training images that failed to load (--skip-bad-images)\n", m.Epoch, m.SkippedImages)
	}
	r.logSkippedSteps(m)
	fmt.Fprintln(o.Log, r.epochLine(m, newBest))
	return nil
}

// evaluate fills m's columns of the splits due after the epoch
// (epochSplits) from the model and its EMA.
func (r *run) evaluate(epoch int, m *EpochMetrics) error {
	for _, s := range r.epochSplits() {
		if err := r.evaluateOn(s, r.evaluated(), m, fmt.Sprintf("after epoch %d", epoch+1)); err != nil {
			return err
		}
	}
	return nil
}

// checkFinite stops the run when a weight or BatchNorm statistic of the
// model or its EMA is NaN or infinite.
func (r *run) checkFinite(when string) error {
	bad, err := r.model.NonFinite()
	if err != nil {
		return err
	}
	if len(bad) > 0 {
		return r.nonFinite(fmt.Sprintf("%s the model holds non-finite values in %s", when, listNames(bad, 5)))
	}
	if r.ema != nil {
		if bad, err = r.ema.Model.NonFinite(); err != nil {
			return err
		}
		if len(bad) > 0 {
			return r.nonFinite(fmt.Sprintf("%s the EMA holds non-finite values in %s", when, listNames(bad, 5)))
		}
	}
	return nil
}

// nonFinite is the error that stops a run whose numbers became NaN or
// infinite: what happened, and what was and was not saved.
func (r *run) nonFinite(what string) error {
	return fmt.Errorf("%s: %w; stopping without saving this state. %s", what, ErrNonFinite, r.savedSummary())
}

// savedSummary says which checkpoints in the run folder hold the last good
// state, or that none was written.
func (r *run) savedSummary() string {
	o := &r.o
	var parts []string
	switch {
	case r.lastSaved >= 0:
		parts = append(parts, fmt.Sprintf("%s holds step %d, the last good state", filepath.Join(o.Out, "last.pt"), r.lastSaved))
	case o.Resume != "":
		parts = append(parts, fmt.Sprintf("this run wrote no checkpoint; %s, which it resumed from, is unchanged", o.Resume))
	default:
		parts = append(parts, "this run wrote no checkpoint (the first is written at the end of epoch 1)")
	}
	if r.pos.BestEpoch > 0 {
		parts = append(parts, fmt.Sprintf("%s holds %s", filepath.Join(o.Out, "best.pt"), r.bestSummary()))
	}
	return strings.Join(parts, "; ")
}

// saveLast writes last.pt (rank 0) and remembers its step.
func (r *run) saveLast() error {
	if r.rep.writer() {
		if err := r.save(filepath.Join(r.o.Out, "last.pt")); err != nil {
			return err
		}
	}
	r.lastSaved = r.step
	return nil
}

// saveBest writes best.pt (rank 0).
func (r *run) saveBest() error {
	if !r.rep.writer() {
		return nil
	}
	return r.saveWeights(filepath.Join(r.o.Out, "best.pt"), r.pos.bestSource())
}

// writeConfig rewrites config.json (rank 0).
func (r *run) writeConfig() error {
	if !r.rep.writer() {
		return nil
	}
	return writeConfig(filepath.Join(r.o.Out, "config.json"), r)
}

// writeMetrics rewrites metrics.csv and the curves (rank 0).
func (r *run) writeMetrics() error {
	if !r.rep.writer() {
		return nil
	}
	return writeMetrics(r.o.Out, r.metrics, r.titleForPlot())
}

// listNames joins at most n names, saying how many more there are.
func listNames(names []string, n int) string {
	if len(names) <= n {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:n], ", "), len(names)-n)
}

func (r *run) titleForPlot() string {
	c := r.o.Model
	return fmt.Sprintf("%s %s on %s, %d px", c.Variant, c.Preset, r.o.Dataset, r.o.ImgSize)
}

// trainEpoch runs the steps of one epoch from r.pos.Batch on. It returns
// interrupted = true when ctx was cancelled (after finishing a step; in a
// group, when any rank's was, at the same step on every rank).
func (r *run) trainEpoch(ctx context.Context, epoch int) (bool, error) {
	o := &r.o
	it := r.trainL.Epoch(context.WithoutCancel(ctx), epoch)
	defer it.Close()
	bar := r.progressBar(epoch)
	skippedBefore := r.trainL.Skipped()
	defer func() { r.pos.Skipped += r.trainL.Skipped() - skippedBefore }()
	var group []*datasets.Batch // the micro-batches of the step being gathered
	defer func() { releaseBatches(group) }()
	for b := 0; ; b++ {
		batch, err := it.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return false, fmt.Errorf("epoch %d, batch %d: %w", epoch+1, b+1, err)
		}
		if b < r.pos.Batch { // resumed inside this epoch: these batches are done
			skippedBefore += int64(batch.Skipped) // counted before the interruption
			batch.Release()
			continue
		}
		if nominal := batch.N + batch.Skipped; nominal < r.minBatch || (r.rep.g == nil && batch.N < r.minBatch) {
			// As PyTorch refuses it: BatchNorm cannot train on one value per
			// channel. Every rank's batch has the same nominal size, so all skip.
			fmt.Fprintf(o.Log, "epoch %d, batch %d: skipped a batch of %d image (the head's BatchNorm needs at least %d in training; --drop-last avoids such batches)\n",
				epoch+1, b+1, batch.N, r.minBatch)
			batch.Release()
		} else {
			group = append(group, batch)
		}
		if !r.groupEnds(b) {
			continue
		}
		if len(group) == 0 {
			r.pos.Batch = b + 1
			continue
		}
		start := time.Now()
		lr := r.sched.LR(r.step)
		st, err := r.trainStep(group, lr, ctx.Err() != nil)
		releaseBatches(group)
		group = group[:0]
		if err != nil {
			return false, err
		}
		r.step++
		r.pos.Batch = b + 1
		r.pos.LossSum += st.lossSum
		r.pos.Hits += st.hits
		r.pos.Seen += st.seen
		r.pos.Seconds += time.Since(start).Seconds()
		r.pos.LastLR = lr
		r.pos.SkippedSteps += st.skippedSteps
		r.logStep(bar, epoch, b/o.GradAccumSteps, lr)
		if err := r.recordStep(st, lr, time.Since(start)); err != nil {
			return false, err
		}
		if err := r.afterStep(); err != nil {
			return false, err
		}
		if o.OnStep != nil {
			o.OnStep(r.step)
		}
		if st.stop && b+1 < r.micro {
			if bar != nil {
				_ = bar.Exit()
			}
			return true, nil
		}
	}
	if bar != nil {
		_ = bar.Finish()
	}
	return false, nil
}

// afterStep runs the checks and saves due after a step: the replicas'
// agreement (--check-replicas) and the mid-epoch last.pt (--save-every-steps).
func (r *run) afterStep() error {
	o := &r.o
	if err := r.cores.adjust(o); err != nil {
		return err
	}
	if o.CheckReplicas {
		if err := r.rep.checkSame(r.model, fmt.Sprintf("after step %d", r.step), true); err != nil {
			return err
		}
	}
	if o.SaveEverySteps > 0 && r.step%int64(o.SaveEverySteps) == 0 && r.pos.Batch < r.micro {
		if err := r.rep.syncBuffers(r.model); err != nil {
			return err
		}
		return r.saveLast()
	}
	return nil
}

// progressBar is the epoch's bar on a terminal, or nil for log lines.
func (r *run) progressBar(epoch int) *progressbar.ProgressBar {
	o := &r.o
	if !o.Terminal {
		return nil
	}
	bar := progressbar.NewOptions(r.spe,
		progressbar.OptionSetWriter(o.Log), progressbar.OptionSetDescription(fmt.Sprintf("epoch %d/%d", epoch+1, o.Epochs)),
		progressbar.OptionShowCount(), progressbar.OptionSetWidth(30), progressbar.OptionClearOnFinish(),
		progressbar.OptionThrottle(200*time.Millisecond))
	_ = bar.Set((r.pos.Batch + o.GradAccumSteps - 1) / o.GradAccumSteps)
	return bar
}

// logStep reports the epoch so far on the bar, or as a line ten times an
// epoch, after the epoch's step b (0-based).
func (r *run) logStep(bar *progressbar.ProgressBar, epoch, b int, lr float64) {
	o := &r.o
	loss, acc, speed := r.pos.LossSum/float64(r.pos.Seen), 100*float64(r.pos.Hits)/float64(r.pos.Seen), float64(r.pos.Seen)/r.pos.Seconds
	if bar != nil {
		bar.Describe(fmt.Sprintf("epoch %d/%d loss %.4f acc %.1f%% lr %.2e %.0f img/s", epoch+1, o.Epochs, loss, acc, lr, speed))
		_ = bar.Set(b + 1)
	} else if (b+1)%max(1, r.spe/10) == 0 {
		fmt.Fprintf(o.Log, "epoch %d/%d step %d/%d: loss %.4f, accuracy %.2f %%, lr %.3g, %.0f images/s\n", epoch+1, o.Epochs, b+1, r.spe,
			loss, acc, lr, speed)
	}
}

// trainStep runs forward and backward on each micro-batch of a step
// (--grad-accum-steps; microStep), then the optimizer once. In a group the
// ranks agree on each micro-batch's loss and on stopping before its
// backward, and average their gradients once, after the last micro-batch
// (DDP's no_sync). It returns the step's sums over every rank and
// micro-batch: loss, samples whose label won, samples.
func (r *run) trainStep(group []*datasets.Batch, lr float64, stop bool) (stepStatus, error) {
	if err := r.opt.ZeroGrad(); err != nil {
		return stepStatus{}, err
	}
	var total stepStatus
	for _, b := range group {
		st, err := r.microStep(b, len(group), stop)
		total.add(st)
		if err != nil {
			return total, err
		}
	}
	t2 := time.Now()
	if err := r.rep.averageGrads(r.model); err != nil {
		return total, fmt.Errorf("step %d: %w", r.step+1, err)
	}
	r.commSec += time.Since(t2).Seconds()
	skipped, err := r.optimizerStep(lr)
	if skipped {
		total.skippedSteps = 1
	}
	return total, err
}

// forwardLoss runs the model on a batch (under autocast with --amp) and
// returns the loss tensor, what backpropagates a loss computed from it
// (activation checkpointing recomputes the stages there) and the number
// of samples whose label won.
func (r *run) forwardLoss(b *datasets.Batch) (loss *ts.Tensor, bp backprop, hits int, err error) {
	o := &r.o
	k := r.model.Config.NumClasses
	x, err := batchTensor(b, o.Device)
	if err != nil {
		return nil, bp, 0, err
	}
	defer x.MustDrop()
	var targets *ts.Tensor
	switch {
	case b.Targets != nil:
		targets = floatTensor(b.Targets, []int64{int64(b.N), int64(k)}, o.Device)
	case o.LabelSmoothing > 0:
		targets = floatTensor(SmoothedTargets(b.Labels, k, o.LabelSmoothing), []int64{int64(b.N), int64(k)}, o.Device)
	}
	if targets != nil {
		defer targets.MustDrop()
	}
	logits, bp, err := r.forwardTrain(x)
	if err != nil {
		return nil, bp, 0, err
	}
	logits32 := logits.MustTotype(gotch.Float, true)
	defer logits32.MustDrop()
	if targets != nil {
		loss, err = SoftTargetCrossEntropy(logits32, targets)
	} else {
		labels := ts.MustOfSlice(b.Labels).MustTo(o.Device, true)
		loss, err = CrossEntropy(logits32, labels)
		labels.MustDrop()
	}
	if err != nil {
		bp.release()
		return nil, bp, 0, err
	}
	cpu := logits32.MustDetach(false).MustTo(gotch.CPU, true)
	hits = TopK(cpu.Vals().([]float32), b.Labels, k, 1)[0]
	cpu.MustDrop()
	return loss, bp, hits, nil
}

func floatTensor(v []float32, shape []int64, dev gotch.Device) *ts.Tensor {
	t := ts.MustOfSlice(v).MustView(shape, true)
	if dev != gotch.CPU {
		t = t.MustTo(dev, true)
	}
	return t
}

// batchTensor copies a float32 NCHW batch into a tensor on dev.
func batchTensor(b *datasets.Batch, dev gotch.Device) (*ts.Tensor, error) {
	if b.Float == nil {
		return nil, fmt.Errorf("batch %d of epoch %d holds no float data", b.Index, b.Epoch)
	}
	return floatTensor(b.Float[:b.N*b.C*b.H*b.W], []int64{int64(b.N), int64(b.C), int64(b.H), int64(b.W)}, dev), nil
}
