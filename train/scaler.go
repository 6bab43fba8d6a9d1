package train

import (
	"fmt"

	"github.com/gsrmt/gsrmt/checkpoints"
	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/gsrmt/gsrmt/internal/torch"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// The --amp-dtype values: autocast's lower precision.
const (
	AMPBFloat16 = "bfloat16" // bf16 autocast, no loss scaling (the default)
	AMPFloat16  = "float16"  // fp16 autocast with dynamic loss scaling (GradScaler)
)

// GradScaler's defaults (torch.cuda.amp.GradScaler).
const (
	scalerInitScale      = 65536.0
	scalerGrowthFactor   = 2.0
	scalerBackoffFactor  = 0.5
	scalerGrowthInterval = 2000
)

// GradScaler is torch.cuda.amp.GradScaler for fp16 training: the loss is
// multiplied by Scale before backward, so that small fp16 gradients do not
// flush to zero; the gradients are divided by it again (Unscale) before
// clipping and the optimizer; a step whose gradients hold an inf or NaN is
// skipped, and the scale halves; after GrowthInterval good steps in a row
// it doubles. Scale and the tracker live in 1-element tensors on the
// model's device, updated by libtorch's own kernels on CUDA.
type GradScaler struct {
	GrowthFactor, BackoffFactor float64
	GrowthInterval              int64

	scale    *ts.Tensor // float32
	tracker  *ts.Tensor // int32: good steps since the scale last changed
	foundInf *ts.Tensor // float32: set by Unscale
	unscaled bool       // Unscale ran since the last Update
}

// NewGradScaler returns a scaler with GradScaler's defaults (scale 65536,
// growth 2 every 2000 good steps, backoff 0.5) on dev.
func NewGradScaler(dev gotch.Device) *GradScaler {
	s := &GradScaler{GrowthFactor: scalerGrowthFactor, BackoffFactor: scalerBackoffFactor, GrowthInterval: scalerGrowthInterval}
	s.scale = ts.MustOfSlice([]float32{scalerInitScale}).MustTo(dev, true)
	s.tracker = ts.MustOfSlice([]int32{0}).MustTo(dev, true)
	s.foundInf = ts.MustOfSlice([]float32{0}).MustTo(dev, true)
	return s
}

// Scale returns the current loss scale.
func (s *GradScaler) Scale() float64 {
	return firstValue(s.scale)
}

// ScaleLoss returns loss x scale (GradScaler.scale), dropping loss when del
// is set; the caller drops the result.
func (s *GradScaler) ScaleLoss(loss *ts.Tensor, del bool) *ts.Tensor {
	return loss.MustMul(s.scale, del)
}

// Unscale divides the parameters' gradients by the scale in place and
// records whether any is not finite (GradScaler.unscale_: inv_scale is
// computed in double, then rounded to float32). It runs once per step;
// Step calls it when the caller has not (for gradient clipping).
func (s *GradScaler) Unscale(params []*gsrmt.Param) (err error) {
	if s.unscaled {
		return nil
	}
	defer torch.Catch(&err, "loss scaler: unscale")
	grads := definedGrads(params)
	defer dropAll(&grads)
	inv := s.scale.MustTotype(gotch.Double, false).MustReciprocal(true).MustTotype(gotch.Float, true)
	defer inv.MustDrop()
	fill(s.foundInf, 0)
	if err := torch.AMPUnscale(grads, s.foundInf, inv); err != nil {
		return err
	}
	s.unscaled = true
	return nil
}

// Step runs update (the optimizer step) unless the unscaled gradients hold
// an inf or NaN, then updates the scale (GradScaler.step and update). It
// reports whether the step was skipped.
func (s *GradScaler) Step(params []*gsrmt.Param, update func() error) (skipped bool, err error) {
	if err := s.Unscale(params); err != nil {
		return false, err
	}
	s.unscaled = false
	found := firstValue(s.foundInf) != 0
	if !found {
		if err := update(); err != nil {
			return false, err
		}
	}
	if err := torch.AMPUpdateScale(s.scale, s.tracker, s.foundInf, s.GrowthFactor, s.BackoffFactor, s.GrowthInterval); err != nil {
		return found, err
	}
	return found, nil
}

// State returns the scaler's checkpoint section (GradScaler.state_dict).
func (s *GradScaler) State() *checkpoints.ScalerState {
	tracker := int64(firstValue(s.tracker))
	return &checkpoints.ScalerState{Scale: s.Scale(), GrowthFactor: s.GrowthFactor, BackoffFactor: s.BackoffFactor,
		GrowthInterval: s.GrowthInterval, GrowthTracker: tracker}
}

// SetState restores a state written by State (GradScaler.load_state_dict).
func (s *GradScaler) SetState(st *checkpoints.ScalerState) error {
	if !(st.Scale > 0) || st.GrowthTracker < 0 || st.GrowthInterval < 1 {
		return fmt.Errorf("loss scaler: invalid state (scale %v, growth tracker %d, interval %d)", st.Scale, st.GrowthTracker, st.GrowthInterval)
	}
	s.GrowthFactor, s.BackoffFactor, s.GrowthInterval = st.GrowthFactor, st.BackoffFactor, st.GrowthInterval
	fill(s.scale, st.Scale)
	fill(s.tracker, float64(st.GrowthTracker))
	return nil
}

// Close frees the scaler's tensors.
func (s *GradScaler) Close() {
	for _, t := range []*ts.Tensor{s.scale, s.tracker, s.foundInf} {
		t.MustDrop()
	}
}

// fill sets every element of t to v in place.
func fill(t *ts.Tensor, v float64) {
	sc := ts.FloatScalar(v)
	t.MustFill_(sc)
	sc.MustDrop()
}

// firstValue is t's first element as a float64 (exact for the scale, a
// float32, and the tracker, an int32).
func firstValue(t *ts.Tensor) float64 {
	c := t.MustTo(gotch.CPU, false).MustTotype(gotch.Double, true)
	defer c.MustDrop()
	return c.Vals().([]float64)[0]
}
