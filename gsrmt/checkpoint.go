package gsrmt

import (
	"fmt"
	"runtime"

	"github.com/gsrmt/gsrmt/internal/torch"
	"github.com/sugarme/gotch/ts"
)

// Activation checkpointing (torch.utils.checkpoint, which libtorch's C++
// API lacks), driven from Go, per block as timm's checkpoint_seq over each
// stage's blocks: the segments are the stem and every block of every stage
// (a stage's downsample runs with its last block). The training forward
// runs them without autograd, keeping only each segment's input, and the
// head with autograd. Backward then walks the segments in reverse: it
// recomputes one with autograd from its saved input (detached, requiring
// grad), and backpropagates the gradient of its output through it, which
// accumulates the segment's parameter gradients and yields the gradient
// of its input for the segment before. At most one block's activations
// are alive at a time, for one extra forward of the stem and the blocks.
//
// The recomputation must repeat the forward exactly: drop-path masks are
// recorded in the first pass and replayed (so the generator advances once,
// as without checkpointing), and the BatchNorm running statistics and
// counters, which the recomputation's training-mode BatchNorm updates a
// second time, are restored afterwards (momentum applied once).

// Recompute holds what a checkpointed forward kept for its backward.
type Recompute struct {
	m *Model
	// inputs[i] is segment i's input: the caller's images for the stem
	// (i = 0, a handle of its own: the caller may drop x before Backward),
	// the previous segment's output for the others.
	inputs []*ts.Tensor
	segs   []segmentRef
	head   *ts.Tensor // the last stage's output, the head's input (requires grad)
	// autocast, when set, is called with true before each recomputation
	// and false after it, so that it runs in the forward's precision.
	autocast func(on bool) error
}

// ForwardCheckpointed is Forward in training mode with activation
// checkpointing per block: it returns the logits and the Recompute whose
// Backward must be called with the loss (instead of the loss's own
// backward), or Close when no backward follows. autocast, when not nil,
// must switch the caller's autocast on and off: the caller runs this
// forward under it, and Backward runs the recomputations under it. The
// caller holds runtime.LockOSThread, as for Forward with grad mode off.
func (m *Model) ForwardCheckpointed(x *ts.Tensor, autocast func(on bool) error) (logits *ts.Tensor, rc *Recompute, err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	rc = &Recompute{m: m, autocast: autocast, segs: m.segments()}
	defer func() {
		if err != nil {
			rc.Close()
			rc = nil
		}
	}()
	defer torch.Catch(&err, "gsrmt: checkpointed forward")
	if dims := shape(x); len(dims) != 4 || dims[1] != int64(m.Config.InChans) {
		return nil, nil, fmt.Errorf("gsrmt: forward: input shape %v: want (B, %d, H, W)", dims, m.Config.InChans)
	}
	tape := m.reg.tape
	tape.startRecording()
	h := x.MustShallowClone()
	noGrad(func() {
		for _, seg := range rc.segs {
			rc.inputs = append(rc.inputs, h)
			tape.beginSegment()
			h = m.segment(seg, h)
		}
	})
	tape.stop()
	rc.head = h.MustSetRequiresGrad(true, true)
	sc := newScope()
	defer sc.close()
	return m.headForward(sc, rc.head, true), rc, nil
}

// segmentRef names a checkpointed segment: the stem (stage -1), or a block
// of a stage, the last one with the stage's downsample.
type segmentRef struct{ stage, block int }

// segments lists the model's segments in forward order.
func (m *Model) segments() []segmentRef {
	segs := []segmentRef{{stage: -1}}
	for s, st := range m.stages {
		for b := range st.blocks {
			segs = append(segs, segmentRef{stage: s, block: b})
		}
	}
	return segs
}

// segment runs a segment in training mode on h and returns its output,
// which the caller owns.
func (m *Model) segment(seg segmentRef, h *ts.Tensor) *ts.Tensor {
	sc := newScope()
	defer sc.close()
	var out *ts.Tensor
	if seg.stage < 0 {
		out = m.stemForward(sc, h, true)
	} else {
		st := m.stages[seg.stage]
		size := shape(h)
		b := st.blocks[seg.block]
		out = sc.t(b.forward(h, true, st.tablesFor(int(size[1]), int(size[2])).forBlock(b.plan)))
		if seg.block == len(st.blocks)-1 {
			out = st.downsample(sc, out, true)
		}
	}
	if !sc.forget(out) {
		out = out.MustShallowClone() // a segment that returned its input
	}
	return out
}

// Backward backpropagates loss, a scalar computed from the logits of
// ForwardCheckpointed, into the parameters' gradients, recomputing the
// blocks and the stem on the way; it frees the saved inputs.
func (rc *Recompute) Backward(loss *ts.Tensor) (err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer rc.Close()
	defer torch.Catch(&err, "gsrmt: checkpointed backward")
	if err := loss.Backward(); err != nil {
		return err
	}
	grad := rc.head.MustGrad(false) // of the last stage's output
	saved := rc.m.saveBuffers()
	defer restoreBuffers(rc.m, saved)
	for i := len(rc.inputs) - 1; i >= 0; i-- {
		var err error
		if grad, err = rc.backwardSegment(i, grad); err != nil {
			return err
		}
	}
	return nil
}

// backwardSegment recomputes segment i from its saved input with autograd
// and backpropagates grad, its output's gradient, through it. It drops
// grad and returns the gradient of the segment's input (nil for the stem).
func (rc *Recompute) backwardSegment(i int, grad *ts.Tensor) (*ts.Tensor, error) {
	defer grad.MustDrop()
	in := rc.inputs[i]
	if i > 0 {
		in = in.MustDetach(false).MustSetRequiresGrad(true, true)
		defer in.MustDrop()
	}
	rc.m.reg.tape.replaySegment(i)
	defer rc.m.reg.tape.stop()
	if err := rc.setAutocast(true); err != nil {
		return nil, err
	}
	out := rc.m.segment(rc.segs[i], in)
	if err := rc.setAutocast(false); err != nil {
		out.MustDrop()
		return nil, err
	}
	err := torch.BackwardWithGrad(out, grad)
	out.MustDrop()
	if err != nil || i == 0 {
		return nil, err
	}
	return in.MustGrad(false), nil
}

func (rc *Recompute) setAutocast(on bool) error {
	if rc.autocast == nil {
		return nil
	}
	return rc.autocast(on)
}

// Close frees the saved inputs and the recorded masks (Backward calls it).
func (rc *Recompute) Close() {
	for _, t := range rc.inputs {
		t.MustDrop()
	}
	if rc.head != nil {
		rc.head.MustDrop()
	}
	rc.inputs, rc.head = nil, nil
	rc.m.reg.tape.reset()
}

// saveBuffers copies the BatchNorm running statistics and counters (the
// state entries that are not trainable).
func (m *Model) saveBuffers() map[*Param]*ts.Tensor {
	saved := map[*Param]*ts.Tensor{}
	noGrad(func() {
		for _, p := range m.reg.params {
			if !p.Trainable {
				saved[p] = p.Tensor.MustDetachCopy(false)
			}
		}
	})
	return saved
}

// restoreBuffers writes back, and frees, what saveBuffers copied.
func restoreBuffers(m *Model, saved map[*Param]*ts.Tensor) {
	noGrad(func() {
		for p, t := range saved {
			p.Tensor.Copy_(t)
			t.MustDrop()
		}
	})
}

// dropTape records the drop-path masks of a checkpointed forward, segment
// by segment, and replays a segment's masks in its recomputation. Off (the
// zero value) it does nothing: every forward draws its own masks.
type dropTape struct {
	recording bool
	replaying bool
	masks     []*ts.Tensor
	starts    []int // index in masks of each segment's first mask
	next      int   // the mask to replay next
}

func (t *dropTape) startRecording() {
	t.reset()
	t.recording = true
}

// beginSegment marks where the next segment's masks start.
func (t *dropTape) beginSegment() { t.starts = append(t.starts, len(t.masks)) }

// record keeps a copy of a mask drawn while recording.
func (t *dropTape) record(mask *ts.Tensor) {
	if t.recording {
		t.masks = append(t.masks, mask.MustShallowClone())
	}
}

// replaySegment makes the next masks those segment i recorded.
func (t *dropTape) replaySegment(i int) {
	t.replaying, t.next = true, t.starts[i]
}

// replay returns the next recorded mask while replaying, else nil.
func (t *dropTape) replay() *ts.Tensor {
	if !t.replaying {
		return nil
	}
	if t.next >= len(t.masks) {
		panic(fmt.Errorf("gsrmt: the recomputation draws more drop-path masks than the forward recorded (%d)", len(t.masks)))
	}
	t.next++
	return t.masks[t.next-1]
}

// stop ends recording or replaying; the masks stay until reset.
func (t *dropTape) stop() { t.recording, t.replaying = false, false }

// reset stops and frees the masks.
func (t *dropTape) reset() {
	t.stop()
	for _, m := range t.masks {
		m.MustDrop()
	}
	t.masks, t.starts, t.next = nil, nil, 0
}
