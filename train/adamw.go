// Package train holds gsrmt's training pieces: AdamW with decoupled weight
// decay, the learning-rate schedule, gradient clipping and the training loop.
package train

import (
	"fmt"
	"math"
	"runtime"

	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/gsrmt/gsrmt/internal/torch"
	"github.com/sugarme/gotch/ts"
)

// AdamWConfig holds AdamW's hyper-parameters (PyTorch's defaults but for the
// weight decay, which follows the RMT/DeiT recipe).
type AdamWConfig struct {
	Beta1, Beta2 float64
	Eps          float64
	WeightDecay  float64 // decoupled; not applied to parameters marked NoDecay
}

// DefaultAdamW is betas (0.9, 0.999), eps 1e-8, weight decay 0.05.
func DefaultAdamW() AdamWConfig {
	return AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.05}
}

// AdamW is torch.optim.AdamW over a model's trainable parameters, with two
// groups: weight decay for weights, none for biases, norms and LayerScale.
// Its moments and step count can be saved and restored for an exact resume.
type AdamW struct {
	Config AdamWConfig
	Step   int64 // number of updates taken

	params []*gsrmt.Param
	m, v   []*ts.Tensor // first and second moments, created on the first step
}

// NewAdamW prepares an optimizer for params (those with Trainable set).
func NewAdamW(params []*gsrmt.Param, cfg AdamWConfig) (*AdamW, error) {
	if cfg.Beta1 < 0 || cfg.Beta1 >= 1 || cfg.Beta2 < 0 || cfg.Beta2 >= 1 {
		return nil, fmt.Errorf("adamw: betas (%v, %v): each must be in [0, 1)", cfg.Beta1, cfg.Beta2)
	}
	if cfg.Eps <= 0 || cfg.WeightDecay < 0 {
		return nil, fmt.Errorf("adamw: eps %v and weight decay %v: want eps > 0 and decay >= 0", cfg.Eps, cfg.WeightDecay)
	}
	o := &AdamW{Config: cfg}
	for _, p := range params {
		if p.Trainable {
			o.params = append(o.params, p)
		}
	}
	if len(o.params) == 0 {
		return nil, fmt.Errorf("adamw: no trainable parameters")
	}
	return o, nil
}

// ZeroGrad clears every parameter's gradient.
func (o *AdamW) ZeroGrad() {
	for _, p := range o.params {
		g := p.Tensor.MustGrad(false)
		if g.MustDefined() {
			g.MustZero_()
		}
		g.MustDrop()
	}
}

// Update takes one AdamW step at learning rate lr, exactly as PyTorch 1.13's
// single-tensor AdamW: p *= 1 - lr*wd; m = b1 m + (1-b1) g;
// v = b2 v + (1-b2) g^2; p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
// Parameters without a gradient are skipped.
func (o *AdamW) Update(lr float64) (err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("adamw: step %d: %v", o.Step+1, r)
		}
	}()
	prev := torch.SetGradEnabled(false)
	defer torch.SetGradEnabled(prev)

	if o.m == nil {
		for _, p := range o.params {
			o.m = append(o.m, p.Tensor.MustZerosLike(false))
			o.v = append(o.v, p.Tensor.MustZerosLike(false))
		}
	}
	o.Step++
	c := o.Config
	bc1 := 1 - math.Pow(c.Beta1, float64(o.Step))
	bc2 := 1 - math.Pow(c.Beta2, float64(o.Step))
	stepSize := lr / bc1
	sqrtBC2 := math.Sqrt(bc2)

	scalars := []*ts.Scalar{}
	sc := func(v float64) *ts.Scalar {
		s := ts.FloatScalar(v)
		scalars = append(scalars, s)
		return s
	}
	defer func() {
		for _, s := range scalars {
			s.MustDrop()
		}
	}()
	for i, p := range o.params {
		g := p.Tensor.MustGrad(false)
		if !g.MustDefined() {
			g.MustDrop()
			continue
		}
		if !p.NoDecay && c.WeightDecay != 0 {
			p.Tensor.MustMulScalar_(sc(1 - lr*c.WeightDecay))
		}
		m, v := o.m[i], o.v[i]
		m.MustMulScalar_(sc(c.Beta1))
		gs := g.MustMulScalar(sc(1-c.Beta1), false)
		m.MustAdd_(gs)
		gs.MustDrop()
		v.MustMulScalar_(sc(c.Beta2))
		g2 := g.MustMul(g, false)
		g2.MustMulScalar_(sc(1 - c.Beta2))
		v.MustAdd_(g2)
		g2.MustDrop()
		denom := v.MustSqrt(false)
		denom.MustDivScalar_(sc(sqrtBC2))
		denom.MustAddScalar_(sc(c.Eps))
		upd := m.MustDiv(denom, false)
		upd.MustMulScalar_(sc(-stepSize))
		p.Tensor.MustAdd_(upd)
		upd.MustDrop()
		denom.MustDrop()
		g.MustDrop()
	}
	return nil
}

// Moments returns the optimizer state per parameter name (nil before the
// first step): first and second moments. The tensors belong to the optimizer.
func (o *AdamW) Moments() (names []string, m, v []*ts.Tensor) {
	for _, p := range o.params {
		names = append(names, p.Name)
	}
	return names, o.m, o.v
}

// SetMoments restores moments saved by Moments (copied), and the step count.
func (o *AdamW) SetMoments(step int64, m, v map[string]*ts.Tensor) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("adamw: restore moments: %v", r)
		}
	}()
	if len(m) != len(o.params) || len(v) != len(o.params) {
		return fmt.Errorf("adamw: restore moments: %d/%d entries for %d parameters", len(m), len(v), len(o.params))
	}
	o.Close()
	for _, p := range o.params {
		mt, ok1 := m[p.Name]
		vt, ok2 := v[p.Name]
		if !ok1 || !ok2 {
			return fmt.Errorf("adamw: restore moments: no state for %s", p.Name)
		}
		dev := p.Tensor.MustDevice()
		o.m = append(o.m, mt.MustTo(dev, false).MustDetachCopy(true))
		o.v = append(o.v, vt.MustTo(dev, false).MustDetachCopy(true))
	}
	o.Step = step
	return nil
}

// Close frees the moments.
func (o *AdamW) Close() {
	for i := range o.m {
		o.m[i].MustDrop()
		o.v[i].MustDrop()
	}
	o.m, o.v = nil, nil
}
