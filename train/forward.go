package train

import (
	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/gsrmt/gsrmt/internal/torch"
	"github.com/sugarme/gotch/ts"
)

// forwardTrain runs the model's training forward on x, under autocast with
// --amp and with activation checkpointing per block with
// --checkpoint-activations, and returns the logits (the caller drops them)
// and what backpropagates a loss computed from them.
func (r *run) forwardTrain(x *ts.Tensor) (logits *ts.Tensor, bp backprop, err error) {
	if err := r.autocast(true); err != nil {
		return nil, bp, err
	}
	if r.o.CheckpointActivations {
		var around func(bool) error
		if r.o.AMP {
			around = r.autocast
		}
		logits, bp.rc, err = r.model.ForwardCheckpointed(x, around)
	} else {
		logits, err = r.model.Forward(x, true)
	}
	if aerr := r.autocast(false); aerr != nil && err == nil {
		bp.release()
		logits.MustDrop()
		return nil, backprop{}, aerr
	}
	return logits, bp, err
}

// autocast turns CUDA autocast on or off in --amp-dtype's precision; it
// does nothing without --amp.
func (r *run) autocast(on bool) error {
	if !r.o.AMP {
		return nil
	}
	dtype := torch.BFloat16
	if r.o.AMPDType == AMPFloat16 {
		dtype = torch.Float16
	}
	_, err := torch.SetAutocast(on, dtype)
	return err
}

// backprop backpropagates a loss computed from a training forward's
// logits: the loss's own backward, or the checkpointed model's
// recomputation (gsrmt.Recompute).
type backprop struct{ rc *gsrmt.Recompute }

// run backpropagates loss into the parameters' gradients.
func (p backprop) run(loss *ts.Tensor) error {
	if p.rc == nil {
		return loss.Backward()
	}
	return p.rc.Backward(loss)
}

// release frees what the forward kept when no backward follows.
func (p backprop) release() {
	if p.rc != nil {
		p.rc.Close()
	}
}
