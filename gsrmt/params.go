package gsrmt

import (
	"errors"
	"fmt"
	"math"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// Param is one entry of the model's state: a trainable parameter or a
// BatchNorm buffer, under its MODEL.md section 9 name. The model owns every
// tensor.
type Param struct {
	Name      string
	Tensor    *ts.Tensor
	Trainable bool // receives gradients and optimizer updates
	NoDecay   bool // biases, norms and LayerScale: no weight decay
	// Counter marks BatchNorm's num_batches_tracked: an int64 0-dim tensor
	// (as PyTorch stores it) that each training forward advances by one.
	Counter bool
}

// registry collects parameters in PyTorch's state_dict order while the
// model is built.
type registry struct {
	device gotch.Device
	params []*Param
	byName map[string]*Param
	bns    []*batchNorm
	bnHook *bnHook   // shared by the model's BatchNorm layers
	tape   *dropTape // shared by the model's blocks (drop-path masks)
}

func newRegistry(device gotch.Device) *registry {
	return &registry{device: device, byName: map[string]*Param{}, bnHook: &bnHook{}, tape: &dropTape{}}
}

// BatchNormFunc computes a BatchNorm in training in place of libtorch's
// batch_norm over this process's batch, e.g. dist.Group.SyncBatchNorm's
// statistics over every rank's batch (torch.nn.SyncBatchNorm): it
// normalizes x (B, C, ...) with batch statistics, updates runningMean and
// runningVar in place with momentum (PyTorch's convention), applies weight
// and bias, and returns a new tensor in the autograd graph, or an error.
type BatchNormFunc func(x, weight, bias, runningMean, runningVar *ts.Tensor, momentum, eps float64) (*ts.Tensor, error)

// bnHook holds the model's BatchNormFunc (nil: libtorch's batch_norm).
type bnHook struct{ train BatchNormFunc }

func (r *registry) add(name string, t *ts.Tensor, trainable, noDecay bool) *ts.Tensor {
	if trainable {
		t = t.MustSetRequiresGrad(true, true)
	}
	p := &Param{Name: name, Tensor: t, Trainable: trainable, NoDecay: noDecay}
	r.params = append(r.params, p)
	r.byName[name] = p
	return t
}

func (r *registry) zeros(dims ...int64) *ts.Tensor {
	return ts.MustZeros(dims, gotch.Float, r.device)
}

func (r *registry) ones(dims ...int64) *ts.Tensor {
	return ts.MustOnes(dims, gotch.Float, r.device)
}

// full is a tensor of value v (ones times v).
func (r *registry) full(v float64, dims ...int64) *ts.Tensor {
	s := ts.FloatScalar(v)
	defer s.MustDrop()
	return r.ones(dims...).MustMulScalar(s, true)
}

func (r *registry) uniform(bound float64, dims ...int64) *ts.Tensor {
	t := ts.MustEmpty(dims, gotch.Float, r.device)
	t.MustUniform_(-bound, bound)
	return t
}

// truncNormal follows torch.nn.init.trunc_normal_(std, a=-2, b=2): uniform
// in [2*cdf(a)-1, 2*cdf(b)-1], inverse error function, scale, shift, clamp.
func (r *registry) truncNormal(std float64, dims ...int64) *ts.Tensor {
	const a, b = -2.0, 2.0
	cdf := func(x float64) float64 { return (1 + math.Erf(x/std/math.Sqrt2)) / 2 }
	t := ts.MustEmpty(dims, gotch.Float, r.device)
	t.MustUniform_(2*cdf(a)-1, 2*cdf(b)-1)
	t.MustErfinv_()
	t2 := t.MustMulScalar(ts.FloatScalar(std*math.Sqrt2), true)
	lo, hi := ts.FloatScalar(a), ts.FloatScalar(b)
	t2.MustClamp_(lo, hi)
	lo.MustDrop()
	hi.MustDrop()
	return t2
}

// linear is torch.nn.Linear with gsrmt's init: weight trunc-normal std 0.02, bias 0.
type linear struct{ w, b *ts.Tensor }

func newLinear(r *registry, name string, in, out int) *linear {
	return &linear{
		w: r.add(name+".weight", r.truncNormal(0.02, int64(out), int64(in)), true, false),
		b: r.add(name+".bias", r.zeros(int64(out)), true, true),
	}
}

func (l *linear) forward(x *ts.Tensor) *ts.Tensor { return ts.MustLinear(x, l.w, l.b) }

// conv2d is torch.nn.Conv2d with bias and PyTorch's default init
// (kaiming-uniform with a = sqrt(5): U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias).
type conv2d struct {
	w, b            *ts.Tensor
	stride, padding int64
	groups          int64
}

func newConv2d(r *registry, name string, in, out, k, stride, padding, groups int) *conv2d {
	fanIn := float64(in / groups * k * k)
	bound := 1 / math.Sqrt(fanIn)
	return &conv2d{
		w:      r.add(name+".weight", r.uniform(bound, int64(out), int64(in/groups), int64(k), int64(k)), true, false),
		b:      r.add(name+".bias", r.uniform(bound, int64(out)), true, true),
		stride: int64(stride), padding: int64(padding), groups: int64(groups),
	}
}

func (c *conv2d) forward(x *ts.Tensor) *ts.Tensor {
	return ts.MustConv2d(x, c.w, c.b, []int64{c.stride, c.stride}, []int64{c.padding, c.padding}, []int64{1, 1}, c.groups)
}

// forwardChannelsLast applies the conv to a (B, h, w, C) map and returns (B, h, w, C').
func (c *conv2d) forwardChannelsLast(x *ts.Tensor) *ts.Tensor {
	nchw := x.MustPermute([]int64{0, 3, 1, 2}, false)
	y := c.forward(nchw)
	nchw.MustDrop()
	return y.MustPermute([]int64{0, 2, 3, 1}, true)
}

// batchNorm is torch.nn.BatchNorm2d (eps 1e-5, momentum 0.1) with its
// running statistics and num_batches_tracked.
type batchNorm struct {
	w, b, mean, vari *ts.Tensor
	tracked          *ts.Tensor // int64, 0-dim
	name             string
	hook             *bnHook // the model's training BatchNormFunc, if any
}

// ErrOneValuePerChannel is returned by a training forward whose batch leaves
// one value per channel at a BatchNorm (a batch of one image where the map is
// 1x1): PyTorch raises "Expected more than 1 value per channel when training".
var ErrOneValuePerChannel = errors.New("BatchNorm in training needs more than 1 value per channel (a batch of one image)")

func newBatchNorm(r *registry, name string, c int) *batchNorm {
	bn := &batchNorm{name: name, hook: r.bnHook}
	bn.w = r.add(name+".weight", r.ones(int64(c)), true, true)
	bn.b = r.add(name+".bias", r.zeros(int64(c)), true, true)
	bn.mean = r.add(name+".running_mean", r.zeros(int64(c)), false, true)
	bn.vari = r.add(name+".running_var", r.ones(int64(c)), false, true)
	bn.tracked = ts.MustOfSlice([]int64{0}).MustSqueeze(true) // 0-dim (gotch's Zeros needs a dimension)
	if r.device != gotch.CPU {
		bn.tracked = bn.tracked.MustTo(r.device, true)
	}
	p := &Param{Name: name + ".num_batches_tracked", Tensor: bn.tracked, NoDecay: true, Counter: true}
	r.params = append(r.params, p)
	r.byName[p.Name] = p
	return bn
}

// forward normalizes x (B, C, ...). In training it refuses, as PyTorch's
// F.batch_norm does, an input with one value per channel: its variance is
// undefined and libtorch would silently write NaN into the running variance.
// With the model's BatchNormFunc set, training calls it instead (it judges
// the number of values itself: a synchronized BatchNorm counts every
// rank's); its error panics, which Model.Forward returns.
func (bn *batchNorm) forward(x *ts.Tensor, train bool) *ts.Tensor {
	if f := bn.hook.train; train && f != nil {
		y, err := f(x, bn.w, bn.b, bn.mean, bn.vari, 0.1, 1e-5)
		if err != nil {
			panic(fmt.Errorf("%s: %w", bn.name, err))
		}
		one := ts.IntScalar(1)
		bn.tracked.MustAddScalar_(one)
		one.MustDrop()
		return y
	}
	if train {
		dims := x.MustSize()
		values := dims[0]
		for _, d := range dims[2:] {
			values *= d
		}
		if values == 1 {
			panic(fmt.Errorf("%s: %w (input %v)", bn.name, ErrOneValuePerChannel, dims))
		}
		one := ts.IntScalar(1)
		bn.tracked.MustAddScalar_(one)
		one.MustDrop()
	}
	return ts.MustBatchNorm(x, bn.w, bn.b, bn.mean, bn.vari, train, 0.1, 1e-5, true)
}

// layerNorm is torch.nn.LayerNorm over the last dimension, eps 1e-6.
type layerNorm struct {
	w, b *ts.Tensor
	dim  int64
}

func newLayerNorm(r *registry, name string, c int) *layerNorm {
	return &layerNorm{
		w:   r.add(name+".weight", r.ones(int64(c)), true, true),
		b:   r.add(name+".bias", r.zeros(int64(c)), true, true),
		dim: int64(c),
	}
}

func (l *layerNorm) forward(x *ts.Tensor) *ts.Tensor {
	return ts.MustLayerNorm(x, []int64{l.dim}, l.w, l.b, 1e-6, true)
}

func shapeString(dims []int64) string { return fmt.Sprint(dims) }
