// Package train holds gsrmt's training pieces: AdamW with decoupled weight
// decay, the learning-rate schedule, gradient clipping and the training loop.
package train

import (
	"fmt"

	"github.com/gsrmt/gsrmt/checkpoints"
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
// Its moments and step count can be saved and restored for an exact resume
// (State, SetState).
type AdamW struct {
	Config AdamWConfig
	Step   int64 // number of updates taken

	params []*gsrmt.Param
	m, v   []*ts.Tensor // first and second moments, created on the first step
	decay  []bool       // weight decay per parameter
	// foreach: the multi-tensor update (parameters on CUDA).
	foreach bool
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
	for _, p := range o.params {
		o.decay = append(o.decay, !p.NoDecay)
	}
	dev, err := o.params[0].Tensor.Device()
	if err != nil {
		return nil, fmt.Errorf("adamw: device of %s: %w", o.params[0].Name, err)
	}
	o.foreach = dev.IsCuda()
	return o, nil
}

// ZeroGrad clears every parameter's gradient in place.
func (o *AdamW) ZeroGrad() error {
	if err := torch.ZeroGrad(o.tensors()); err != nil {
		return fmt.Errorf("adamw: %w", err)
	}
	return nil
}

func (o *AdamW) tensors() []*ts.Tensor {
	t := make([]*ts.Tensor, len(o.params))
	for i, p := range o.params {
		t[i] = p.Tensor
	}
	return t
}

// Update takes one AdamW step at learning rate lr, exactly as
// torch.optim.AdamW: p *= 1 - lr*wd; m = b1 m + (1-b1) g;
// v = b2 v + (1-b2) g^2; p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
// Parameters without a gradient are skipped. On the CPU it runs PyTorch's
// single-tensor form (foreach=False, bit-identical to PyTorch's); on CUDA
// the multi-tensor form, PyTorch's default there.
func (o *AdamW) Update(lr float64) (err error) {
	defer torch.Catch(&err, fmt.Sprintf("adamw: step %d", o.Step+1))
	params := o.tensors()
	if o.m == nil {
		for _, p := range params {
			o.m = append(o.m, p.MustZerosLike(false))
			o.v = append(o.v, p.MustZerosLike(false))
		}
	}
	c := o.Config
	err = torch.AdamW(params, o.m, o.v, o.decay, torch.AdamWStep{LR: lr, Beta1: c.Beta1, Beta2: c.Beta2, Eps: c.Eps,
		WeightDecay: c.WeightDecay, Step: o.Step + 1, Foreach: o.foreach})
	if err != nil {
		return fmt.Errorf("adamw: %w", err)
	}
	o.Step++
	return nil
}

// State returns AdamW's state for a checkpoint (torch's state_dict): the
// step count, the hyper-parameters (beta1, beta2, eps, weight_decay, and lr
// as given, since AdamW is handed its rate at every Update: the caller
// records the schedule's base rate) and CPU copies of the moments by
// parameter name (none before the first step).
func (o *AdamW) State(lr float64) (*checkpoints.OptimizerState, error) {
	names := make([]string, len(o.params))
	for i, p := range o.params {
		names[i] = p.Name
	}
	c := o.Config
	hyper := map[string]float64{"lr": lr, "beta1": c.Beta1, "beta2": c.Beta2, "eps": c.Eps, "weight_decay": c.WeightDecay}
	return checkpoints.NewOptimizerState(o.Step, hyper, names, o.m, o.v)
}

// SetState restores a state saved by State (torch's load_state_dict): the
// step count and the moments, copied to the parameters' device. The
// hyper-parameters stay the optimizer's own.
func (o *AdamW) SetState(st *checkpoints.OptimizerState) error {
	dev, err := o.params[0].Tensor.Device()
	if err != nil {
		return fmt.Errorf("adamw: restore moments: %w", torch.Error(err))
	}
	m, v, err := st.TorchMoments(dev)
	if err != nil {
		return err
	}
	defer func() {
		for _, t := range m {
			t.MustDrop()
		}
		for _, t := range v {
			t.MustDrop()
		}
	}()
	return o.setMoments(st.Step, m, v)
}

// setMoments copies moments by parameter name, and sets the step count.
func (o *AdamW) setMoments(step int64, m, v map[string]*ts.Tensor) (err error) {
	defer torch.Catch(&err, "adamw: restore moments")
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
