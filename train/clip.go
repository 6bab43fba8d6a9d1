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
	defer func() {
		for _, g := range grads {
			g.MustDrop()
		}
	}()
	torch.NoGrad(func() {
		var sq []*ts.Tensor
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
			n := g.MustNorm(false)
			sq = append(sq, n)
		}
		if len(sq) == 0 {
			return
		}
		stacked := ts.MustStack(sq, 0)
		for _, n := range sq {
			n.MustDrop()
		}
		total := stacked.MustNorm(true)
		norm = float64(total.MustTotype(gotch.Double, true).Vals().([]float64)[0])
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
