package train

import (
	"math"

	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/gsrmt/gsrmt/internal/torch"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// ClipGradNorm scales the gradients of params so that their global L2 norm
// is at most maxNorm, as torch.nn.utils.clip_grad_norm_ does: the norm of
// the per-parameter norms, and a factor maxNorm / (norm + 1e-6) applied when
// it is below 1. It returns the norm before clipping. (gotch's own clipping
// deadlocks; this one uses plain tensor ops.)
func ClipGradNorm(params []*gsrmt.Param, maxNorm float64) (norm float64, err error) {
	defer torch.Catch(&err, "clip gradients")
	var grads []*ts.Tensor
	defer dropAll(&grads)
	torch.NoGrad(func() {
		total := globalGradNorm(params, &grads)
		if total == nil {
			return
		}
		norm = scalarValue(total)
		total.MustDrop()
		coef := maxNorm / (norm + 1e-6)
		if coef < 1 && !math.IsNaN(norm) {
			s := ts.FloatScalar(coef)
			for _, g := range grads {
				g.MustMulScalar_(s)
			}
			s.MustDrop()
		}
	})
	return norm, nil
}

// GradNorm is the global L2 norm of the gradients of params, as
// ClipGradNorm measures it, without changing them.
func GradNorm(params []*gsrmt.Param) (norm float64, err error) {
	defer torch.Catch(&err, "gradient norm")
	total, err := gradNormTensor(params)
	if err != nil || total == nil {
		return 0, err
	}
	defer total.MustDrop()
	return scalarValue(total), nil
}

// gradNormTensor is GradNorm as a one-element tensor on the gradients'
// device, computed without waiting for it (nil without gradients); the
// caller drops it.
func gradNormTensor(params []*gsrmt.Param) (total *ts.Tensor, err error) {
	defer torch.Catch(&err, "gradient norm")
	var grads []*ts.Tensor
	defer dropAll(&grads)
	torch.NoGrad(func() { total = globalGradNorm(params, &grads) })
	return total, nil
}

// definedGrads returns the gradients of the trainable params that are
// defined (a parameter that took no part in the loss has none); the caller
// drops them.
func definedGrads(params []*gsrmt.Param) []*ts.Tensor {
	var grads []*ts.Tensor
	for _, p := range params {
		if !p.Trainable {
			continue
		}
		g := p.Tensor.MustGrad(false)
		if !g.MustDefined() {
			g.MustDrop()
			continue
		}
		grads = append(grads, g)
	}
	return grads
}

// globalGradNorm appends the defined gradients of the trainable params to
// grads (the caller drops them) and returns the norm of their norms, or nil
// when there are none.
func globalGradNorm(params []*gsrmt.Param, grads *[]*ts.Tensor) *ts.Tensor {
	var sq []*ts.Tensor
	for _, g := range definedGrads(params) {
		*grads = append(*grads, g)
		sq = append(sq, g.MustNorm(false))
	}
	if len(sq) == 0 {
		return nil
	}
	stacked := ts.MustStack(sq, 0)
	for _, n := range sq {
		n.MustDrop()
	}
	return stacked.MustNorm(true)
}

// scalarValue copies a one-element tensor's value to the host (on CUDA,
// waiting for it).
func scalarValue(t *ts.Tensor) float64 {
	c := t.MustTotype(gotch.Double, false).MustTo(gotch.CPU, true)
	defer c.MustDrop()
	return c.Vals().([]float64)[0]
}

func dropAll(tensors *[]*ts.Tensor) {
	for _, t := range *tensors {
		t.MustDrop()
	}
}
