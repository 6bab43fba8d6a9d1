package train

import (
	"fmt"

	"github.com/gsrmt/gsrmt/checkpoints"
	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/gsrmt/gsrmt/internal/torch"
	"github.com/sugarme/gotch/ts"
)

// EMA keeps an exponential moving average of a model's state in a second
// model (timm's ModelEmaV2): after every update, each float entry
// (parameters and BatchNorm statistics) becomes
// decay*ema + (1-decay)*model; BatchNorm counters are copied.
type EMA struct {
	Decay float64
	Model *gsrmt.Model
}

// NewEMA builds the average model as a copy of m.
func NewEMA(m *gsrmt.Model, decay float64) (*EMA, error) {
	if decay <= 0 || decay >= 1 {
		return nil, fmt.Errorf("ema decay %v: want a value in (0, 1), e.g. 0.9998", decay)
	}
	avg, err := gsrmt.New(m.Config, m.Device)
	if err != nil {
		return nil, fmt.Errorf("ema: %w", err)
	}
	if err := CopyState(avg, m); err != nil {
		avg.Close()
		return nil, fmt.Errorf("ema: %w", err)
	}
	return &EMA{Decay: decay, Model: avg}, nil
}

// CopyState copies every state entry of src into dst (same config).
func CopyState(dst, src *gsrmt.Model) error {
	for _, p := range src.Params() {
		if err := dst.SetTensor(p.Name, p.Tensor); err != nil {
			return err
		}
	}
	return nil
}

// Update moves the average towards m.
func (e *EMA) Update(m *gsrmt.Model) (err error) {
	defer torch.Catch(&err, "ema update")
	src := m.Params()
	dst := e.Model.Params()
	weight := ts.FloatScalar(1 - e.Decay)
	defer weight.MustDrop()
	torch.NoGrad(func() {
		for i, p := range src {
			q := dst[i]
			if p.Counter {
				if err = e.Model.SetTensor(p.Name, p.Tensor); err != nil {
					return
				}
				continue
			}
			// ema = ema + (1 - decay) * (model - ema), as torch's lerp_.
			q.Tensor.MustLerp_(p.Tensor, weight)
		}
	})
	return err
}

// State returns the average's state_dict for a checkpoint, CPU copies.
func (e *EMA) State() (*checkpoints.Dict, error) { return checkpoints.ModelStateDict(e.Model) }

// SetState loads a state_dict saved by State into the average, strictly.
func (e *EMA) SetState(state *checkpoints.Dict) error {
	_, err := checkpoints.LoadModelState(e.Model, state, true)
	return err
}

// Close frees the average model.
func (e *EMA) Close() { e.Model.Close() }
