package gsrmt

import (
	"github.com/gsrmt/gsrmt/internal/torch"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// scope owns the intermediate tensors of one forward (or of one part of
// it) and drops them when it closes. Its methods are the model's small op
// vocabulary: each computes one libtorch op and registers the result, so
// that the forward code reads as the equations of MODEL.md, and gotch is
// called only here and in the layers (params.go).
//
// Lifetimes: a result lives until the scope closes, unless released
// earlier (release: dropped now, as eager PyTorch frees an intermediate
// when its last reference goes; autograd keeps what backward needs) or
// handed to the caller (keep).
type scope struct {
	tensors []*ts.Tensor
	scalars []*ts.Scalar
}

func newScope() *scope { return &scope{tensors: make([]*ts.Tensor, 0, 256)} }

// t registers x, computed elsewhere (by a layer), and returns it.
func (s *scope) t(x *ts.Tensor) *ts.Tensor {
	s.tensors = append(s.tensors, x)
	return x
}

// scalar is a float scalar argument, dropped when the scope closes.
func (s *scope) scalar(v float64) *ts.Scalar {
	x := ts.FloatScalar(v)
	s.scalars = append(s.scalars, x)
	return x
}

// forget removes x from the scope (searching from the most recent tensor)
// and reports whether the scope held it.
func (s *scope) forget(x *ts.Tensor) bool {
	for i := len(s.tensors) - 1; i >= 0; i-- {
		if s.tensors[i] == x {
			s.tensors = append(s.tensors[:i], s.tensors[i+1:]...)
			return true
		}
	}
	return false
}

// release drops each of xs now if the scope holds it; other tensors (a
// parameter, the caller's input, a table) are left alone.
func (s *scope) release(xs ...*ts.Tensor) {
	for _, x := range xs {
		if s.forget(x) {
			x.MustDrop()
		}
	}
}

// keep hands x, a result of this scope, to the caller, who then owns it.
func (s *scope) keep(x *ts.Tensor) *ts.Tensor {
	s.forget(x)
	return x
}

func (s *scope) close() {
	for _, x := range s.tensors {
		x.MustDrop()
	}
	for _, x := range s.scalars {
		x.MustDrop()
	}
	s.tensors, s.scalars = nil, nil
}

// Arithmetic (broadcasting, as torch).

func (s *scope) add(a, b *ts.Tensor) *ts.Tensor { return s.t(a.MustAdd(b, false)) }
func (s *scope) mul(a, b *ts.Tensor) *ts.Tensor { return s.t(a.MustMul(b, false)) }
func (s *scope) div(a, b *ts.Tensor) *ts.Tensor { return s.t(a.MustDiv(b, false)) }

// batchMatmul is matmul for (..., M, K) and (..., K, N) of equal batch
// dims, the attention's batches of small matrices, by torch.BatchMatmul
// (the same results; on the CPU over all threads).
func (s *scope) batchMatmul(a, b *ts.Tensor) *ts.Tensor {
	c, err := torch.BatchMatmul(a, b)
	if err != nil {
		panic(err) // as gotch's Must ops: Model.Forward's torch.Catch returns it
	}
	return s.t(c)
}

func (s *scope) addScalar(x *ts.Tensor, v float64) *ts.Tensor {
	return s.t(x.MustAddScalar(s.scalar(v), false))
}

func (s *scope) mulScalar(x *ts.Tensor, v float64) *ts.Tensor {
	return s.t(x.MustMulScalar(s.scalar(v), false))
}

func (s *scope) divScalar(x *ts.Tensor, v float64) *ts.Tensor {
	return s.t(x.MustDivScalar(s.scalar(v), false))
}

// Elementwise functions and reductions.

func (s *scope) sigmoid(x *ts.Tensor) *ts.Tensor { return s.t(x.MustSigmoid(false)) }
func (s *scope) silu(x *ts.Tensor) *ts.Tensor    { return s.t(x.MustSilu(false)) }
func (s *scope) floor(x *ts.Tensor) *ts.Tensor   { return s.t(x.MustFloor(false)) }

// gelu is the exact (erf) GELU.
func (s *scope) gelu(x *ts.Tensor) *ts.Tensor { return s.t(x.MustGelu("none", false)) }

// softmax is over the last dimension.
func (s *scope) softmax(x *ts.Tensor) *ts.Tensor {
	return s.t(x.MustSoftmax(-1, gotch.Float, false))
}

// sumLast sums over the last dimension, keeping it (size 1).
func (s *scope) sumLast(x *ts.Tensor) *ts.Tensor {
	return s.t(x.MustSumDimIntlist([]int64{-1}, true, gotch.Float, false))
}

// mean averages over dims, dropping them.
func (s *scope) mean(x *ts.Tensor, dims ...int64) *ts.Tensor {
	return s.t(x.MustMeanDim(dims, false, gotch.Float, false))
}

// Shapes and data movement.

func (s *scope) view(x *ts.Tensor, dims ...int64) *ts.Tensor { return s.t(x.MustView(dims, false)) }

func (s *scope) reshape(x *ts.Tensor, dims ...int64) *ts.Tensor {
	return s.t(x.MustReshape(dims, false))
}

func (s *scope) permute(x *ts.Tensor, dims ...int64) *ts.Tensor {
	return s.t(x.MustPermute(dims, false))
}

func (s *scope) transpose(x *ts.Tensor, a, b int64) *ts.Tensor {
	return s.t(x.MustTranspose(a, b, false))
}

func (s *scope) unsqueeze(x *ts.Tensor, dim int64) *ts.Tensor {
	return s.t(x.MustUnsqueeze(dim, false))
}

func (s *scope) squeeze(x *ts.Tensor, dim int64) *ts.Tensor {
	return s.t(x.MustSqueezeDim(dim, false))
}

func (s *scope) expand(x *ts.Tensor, dims ...int64) *ts.Tensor {
	return s.t(x.MustExpand(dims, false, false))
}

func (s *scope) flip(x *ts.Tensor, dims ...int64) *ts.Tensor { return s.t(x.MustFlip(dims, false)) }

// narrow keeps n entries of dim from start.
func (s *scope) narrow(x *ts.Tensor, dim, start, n int64) *ts.Tensor {
	return s.t(x.MustNarrow(dim, start, n, false))
}

// roll shifts cyclically by shifts[i] along dims[i].
func (s *scope) roll(x *ts.Tensor, shifts, dims []int64) *ts.Tensor {
	return s.t(x.MustRoll(shifts, dims, false))
}

// pad zero-pads, pad given last dimension first (torch.nn.functional.pad).
func (s *scope) pad(x *ts.Tensor, pad ...int64) *ts.Tensor {
	return s.t(x.MustConstantPadNd(pad, false))
}

// uniform is U[0, 1) of the given shape, with x's dtype and device.
func (s *scope) uniform(x *ts.Tensor, dims ...int64) *ts.Tensor {
	return s.t(ts.MustRand(dims, x.DType(), x.MustDevice()))
}

// shape is x's size.
func shape(x *ts.Tensor) []int64 { return x.MustSize() }

// constant makes a float32 tensor of the given shape on device from data;
// the caller owns it (a table, not an intermediate).
func constant(device gotch.Device, data []float32, dims []int64) *ts.Tensor {
	t := ts.MustOfSlice(data).MustView(dims, true)
	if device != gotch.CPU {
		t = t.MustTo(device, true)
	}
	return t
}

// drop frees each non-nil tensor of xs once, even when listed twice.
func drop(xs ...*ts.Tensor) {
	seen := map[*ts.Tensor]bool{}
	for _, x := range xs {
		if x != nil && !seen[x] {
			seen[x] = true
			x.MustDrop()
		}
	}
}
