package train

import (
	"fmt"
	"time"

	"github.com/gsrmt/gsrmt/datasets"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// Gradient accumulation (--grad-accum-steps N), as timm's train.py does it:
// --batch-size is the images of one forward and backward (a micro-batch),
// N consecutive micro-batches make one optimizer step of N x batch images,
// each micro-batch's loss is divided by the number of micro-batches of its
// step before backward, so that the summed gradients are those of the
// mean loss, and Mixup/CutMix and BatchNorm's statistics work per
// micro-batch. An epoch has ceil(batches / N) steps: the last, partial
// group makes a step of its own whose losses are divided by its own count
// (timm's last_accum_steps). The schedule, warmup, --save-every-steps and
// the step count of checkpoints count optimizer steps; an epoch's resume
// position counts loader batches (always at a step's end).

// fillDefaults gives the options added after checkpoints first recorded
// them their defaults when unset (0 or ""): so that Options written by
// code, and options recorded by older runs, mean what they did before.
func (o *Options) fillDefaults() {
	if o.GradAccumSteps == 0 {
		o.GradAccumSteps = 1
	}
	if o.AMPDType == "" {
		o.AMPDType = AMPBFloat16
	}
	// The split that chooses best.pt, explicit so that the recorded option,
	// config.json's select_on and a run started from that file all agree.
	o.SelectOn = o.selectionSplit()
}

// groupEnds reports whether loader batch b (0-based) is the last of its
// optimizer step.
func (r *run) groupEnds(b int) bool {
	return (b+1)%r.o.GradAccumSteps == 0 || b+1 == r.micro
}

func releaseBatches(group []*datasets.Batch) {
	for _, b := range group {
		b.Release()
	}
}

// add sums another micro-batch's status into s.
func (s *stepStatus) add(o stepStatus) {
	s.lossSum += o.lossSum
	s.hits += o.hits
	s.seen += o.seen
	s.nonFinite = s.nonFinite || o.nonFinite
	s.stop = s.stop || o.stop
}

// microStep runs forward and backward on one of the n micro-batches of a
// step: the ranks agree on its loss and on stopping first, and the loss
// backpropagated is divided by n (and multiplied by the fp16 loss scale).
func (r *run) microStep(b *datasets.Batch, n int, stop bool) (stepStatus, error) {
	t0 := time.Now()
	if err := r.rep.stepBuffers(r.model); err != nil {
		return stepStatus{}, fmt.Errorf("step %d: %w", r.step+1, err)
	}
	r.commSec += time.Since(t0).Seconds()
	loss, bp, hits, err := r.forwardLoss(b)
	if err != nil {
		return stepStatus{}, fmt.Errorf("step %d: %w", r.step+1, err)
	}
	defer loss.MustDrop()
	lv := float64(loss.MustTo(gotch.CPU, false).Vals().([]float32)[0])
	t1 := time.Now()
	st, err := r.rep.agree(lv, hits, b.N, stop)
	r.commSec += time.Since(t1).Seconds()
	if err == nil && st.nonFinite {
		err = r.nonFinite(fmt.Sprintf("step %d (epoch %d, batch %d): the loss is %v (try a lower --lr or --grad-clip)",
			r.step+1, r.pos.Epoch+1, r.pos.Batch+1, st.lossSum))
	} else if err != nil {
		err = fmt.Errorf("step %d: %w", r.step+1, err)
	}
	if err != nil {
		bp.release()
		return st, err
	}
	scaled := loss.MustShallowClone()
	if n > 1 {
		div := ts.IntScalar(int64(n))
		scaled = scaled.MustDivScalar(div, true)
		div.MustDrop()
	}
	if r.scaler != nil {
		scaled = r.scaler.ScaleLoss(scaled, true)
	}
	defer scaled.MustDrop()
	if err := bp.run(scaled); err != nil {
		if r.rep.g != nil {
			if gerr := r.rep.g.Err(); gerr != nil { // a collective of --sync-bn's backward failed
				return st, fmt.Errorf("step %d: backward: %w", r.step+1, gerr)
			}
		}
		return st, fmt.Errorf("step %d: backward: %w", r.step+1, err)
	}
	return st, nil
}

// optimizerStep clips the summed gradients (--grad-clip) and takes the
// AdamW step, then updates the EMA. With fp16 loss scaling the gradients
// are unscaled first, and a step whose gradients hold an inf or NaN is
// skipped (skipped reports it); the EMA is updated either way, as timm does.
func (r *run) optimizerStep(lr float64) (skipped bool, err error) {
	params := r.model.Trainable()
	// Clipping and the step log's gradient norm see the true gradients: the
	// scaler unscales them first, as GradScaler.unscale_.
	if r.scaler != nil && (r.o.GradClip > 0 || r.log != nil) {
		if err := r.scaler.Unscale(params); err != nil {
			return false, err
		}
	}
	if r.o.GradClip > 0 {
		r.gradNorm, err = ClipGradNorm(params, r.o.GradClip)
	} else {
		r.gradNorm, err = r.stepGradNorm()
	}
	if err != nil {
		return false, err
	}
	update := func() error { return r.opt.Update(lr) }
	if r.scaler != nil {
		skipped, err = r.scaler.Step(params, update)
	} else {
		err = update()
	}
	if err != nil {
		return skipped, err
	}
	if r.ema != nil {
		if err := r.ema.Update(r.model); err != nil {
			return skipped, err
		}
	}
	return skipped, nil
}

// logSkippedSteps reports an epoch's steps skipped by the loss scaler.
func (r *run) logSkippedSteps(m EpochMetrics) {
	if m.SkippedSteps > 0 {
		fmt.Fprintf(r.o.Log, "epoch %d: skipped %d of %d optimizer steps whose fp16 gradients held inf/NaN (loss scale now %g)\n",
			m.Epoch, m.SkippedSteps, r.spe, r.scaler.Scale())
	}
}
