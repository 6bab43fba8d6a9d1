package gsrmt

import (
	"fmt"
	"math"
	"runtime"

	"github.com/gsrmt/gsrmt/internal/torch"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// Model is a Gated-SwinRMT (or RMT baseline) classifier on one device.
type Model struct {
	Config Config
	Device gotch.Device

	reg    *registry
	stem   *stem
	stages []*stage
	head   *head
}

type stem struct {
	conv [4]*conv2d
	bn   [4]*batchNorm
}

type stage struct {
	blocks     []*block
	downConv   *conv2d
	downNorm   *batchNorm
	layerScale bool
}

type block struct {
	ls1, ls2     *ts.Tensor // nil unless layerscale
	cpe          *conv2d
	norm1, norm2 *layerNorm
	attn         *attention
	fc1, fc2     *linear
	dwconv       *conv2d
	dropPath     float64
}

type head struct {
	proj *linear
	bn   *batchNorm
	fc   *linear
}

// New builds a model with MODEL.md's initialisation on device (parameters
// are created on their final device and dtype; see GOTCH-NOTES.md).
func New(cfg Config, device gotch.Device) (m *Model, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("gsrmt: invalid config: %w", err)
	}
	defer recoverTorch(&err, "gsrmt: build model")
	r := newRegistry(device)
	m = &Model{Config: cfg, Device: device, reg: r}

	c0 := cfg.Dims[0]
	m.stem = &stem{}
	in := cfg.InChans
	outs := [4]int{c0 / 2, c0 / 2, c0, c0}
	strides := [4]int{2, 1, 2, 1}
	for i := 0; i < 4; i++ {
		m.stem.conv[i] = newConv2d(r, fmt.Sprintf("stem.conv%d", i+1), in, outs[i], 3, strides[i], 1, 1)
		m.stem.bn[i] = newBatchNorm(r, fmt.Sprintf("stem.bn%d", i+1), outs[i])
		in = outs[i]
	}

	total := 0
	for _, d := range cfg.Depths {
		total += d
	}
	n := 0
	for s := 0; s < 4; s++ {
		st := &stage{layerScale: cfg.LayerScale[s]}
		for i := 0; i < cfg.Depths[s]; i++ {
			rate := 0.0
			if total > 1 {
				rate = cfg.DropPath * float64(n) / float64(total-1)
			}
			st.blocks = append(st.blocks, newBlock(r, fmt.Sprintf("stages.%d.blocks.%d", s, i), cfg, s, i, rate))
			n++
		}
		if s < 3 {
			st.downConv = newConv2d(r, fmt.Sprintf("stages.%d.downsample.conv", s), cfg.Dims[s], cfg.Dims[s+1], 3, 2, 1, 1)
			st.downNorm = newBatchNorm(r, fmt.Sprintf("stages.%d.downsample.bn", s), cfg.Dims[s+1])
		}
		m.stages = append(m.stages, st)
	}
	m.head = &head{
		proj: newLinear(r, "head.proj", cfg.Dims[3], cfg.HeadHidden),
		bn:   newBatchNorm(r, "head.bn", cfg.HeadHidden),
		fc:   newLinear(r, "head.fc", cfg.HeadHidden, cfg.NumClasses),
	}
	return m, nil
}

func newBlock(r *registry, name string, cfg Config, s, i int, dropPath float64) *block {
	dim := cfg.Dims[s]
	b := &block{dropPath: dropPath}
	if cfg.LayerScale[s] {
		// PyTorch lists a module's own parameters before its children's.
		b.ls1 = r.add(name+".ls1", r.ones(int64(dim)).MustMulScalar(ts.FloatScalar(1e-6), true), true, true)
		b.ls2 = r.add(name+".ls2", r.ones(int64(dim)).MustMulScalar(ts.FloatScalar(1e-6), true), true, true)
	}
	b.cpe = newConv2d(r, name+".cpe", dim, dim, 3, 1, 1, dim)
	b.norm1 = newLayerNorm(r, name+".norm1", dim)
	b.attn = newAttention(r, name+".attn", cfg, s, i)
	b.norm2 = newLayerNorm(r, name+".norm2", dim)
	hidden := int(cfg.MLPRatios[s] * float64(dim))
	b.fc1 = newLinear(r, name+".ffn.fc1", dim, hidden)
	b.dwconv = newConv2d(r, name+".ffn.dwconv", hidden, hidden, 3, 1, 1, hidden)
	b.fc2 = newLinear(r, name+".ffn.fc2", hidden, dim)
	return b
}

// Forward computes logits (B, classes) for normalized images (B, C, H, W).
// train selects batch statistics (updating the running ones) and drop path;
// otherwise running statistics and no drop path. The caller owns the result.
// Gradients flow unless grad mode is off: libtorch keeps it per OS thread,
// so a caller that turns it off must hold runtime.LockOSThread.
func (m *Model) Forward(x *ts.Tensor, train bool) (logits *ts.Tensor, err error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	defer recoverTorch(&err, "gsrmt: forward")
	if dims := x.MustSize(); len(dims) != 4 || dims[1] != int64(m.Config.InChans) {
		return nil, fmt.Errorf("gsrmt: forward: input shape %v: want (B, %d, H, W)", dims, m.Config.InChans)
	}
	sc := newScope()
	defer sc.close()

	h := x
	for i := 0; i < 4; i++ {
		h = sc.t(m.stem.conv[i].forward(h))
		h = sc.t(m.stem.bn[i].forward(h, train))
		if i < 3 {
			h = sc.t(h.MustGelu("none", false))
		}
	}
	h = sc.t(h.MustPermute([]int64{0, 2, 3, 1}, false)) // channels-last (B, h, w, C0)
	for _, st := range m.stages {
		for _, b := range st.blocks {
			// Each block frees its intermediates as it returns (autograd keeps
			// what backward needs), and its input once consumed, so that an
			// evaluation forward holds one block's tensors at a time, as eager
			// PyTorch does.
			next := b.forward(h, train)
			sc.release(h)
			h = sc.t(next)
		}
		if st.downConv != nil {
			nchw := sc.t(h.MustPermute([]int64{0, 3, 1, 2}, false))
			y := sc.t(st.downNorm.forward(sc.t(st.downConv.forward(nchw)), train))
			h = sc.t(y.MustPermute([]int64{0, 2, 3, 1}, false))
		}
	}
	p := sc.t(m.head.proj.forward(h))
	p = sc.t(p.MustPermute([]int64{0, 3, 1, 2}, false)) // (B, 1024, h, w)
	p = sc.t(sc.t(m.head.bn.forward(p, train)).MustSilu(false))
	pooled := sc.t(p.MustMeanDim([]int64{2, 3}, false, gotch.Float, false))
	return m.head.fc.forward(pooled), nil
}

// forward runs one block on a channels-last map (section 2). The caller
// owns the result; the block's intermediates are freed before it returns.
func (b *block) forward(x *ts.Tensor, train bool) *ts.Tensor {
	sc := newScope()
	defer sc.close()
	x = sc.t(x.MustAdd(sc.t(b.cpe.forwardChannelsLast(x)), false))
	a := sc.t(b.attn.forward(sc, sc.t(b.norm1.forward(x))))
	if b.ls1 != nil {
		a = sc.t(a.MustMul(b.ls1, false))
	}
	x = sc.t(x.MustAdd(dropPath(sc, a, b.dropPath, train), false))

	f := sc.t(sc.t(b.fc1.forward(sc.t(b.norm2.forward(x)))).MustGelu("none", false))
	f = sc.t(f.MustAdd(sc.t(b.dwconv.forwardChannelsLast(f)), false))
	f = sc.t(b.fc2.forward(f))
	if b.ls2 != nil {
		f = sc.t(f.MustMul(b.ls2, false))
	}
	return x.MustAdd(dropPath(sc, f, b.dropPath, train), false)
}

// dropPath is per-sample stochastic depth: x / keep * floor(U + keep).
func dropPath(sc *scope, x *ts.Tensor, rate float64, train bool) *ts.Tensor {
	if !train || rate == 0 {
		return x
	}
	keep := 1 - rate
	dims := x.MustSize()
	shape := make([]int64, len(dims))
	for i := range shape {
		shape[i] = 1
	}
	shape[0] = dims[0]
	u := sc.t(ts.MustRand(shape, x.DType(), x.MustDevice()))
	mask := sc.t(sc.t(u.MustAddScalar(sc.scalar(keep), false)).MustFloor(false))
	scaled := sc.t(x.MustDivScalar(sc.scalar(keep), false))
	return sc.t(scaled.MustMul(mask, false))
}

// Params returns every state entry in PyTorch's state_dict order. The
// num_batches_tracked counters are returned as fresh int64 scalars the
// caller must drop; the other tensors belong to the model.
func (m *Model) Params() []*Param {
	out := make([]*Param, 0, len(m.reg.params))
	counters := map[string]*batchNorm{}
	for _, bn := range m.reg.bns {
		counters[bn.name+".num_batches_tracked"] = bn
	}
	for _, p := range m.reg.params {
		if isBNCounter(p.Name) {
			bn := counters[p.Name]
			t := ts.MustOfSlice([]int64{bn.tracked}).MustSqueeze(true) // 0-dim, as PyTorch stores it
			out = append(out, &Param{Name: p.Name, Tensor: t, NoDecay: true})
			continue
		}
		out = append(out, p)
	}
	return out
}

// Trainable returns the parameters that receive gradients, in state_dict order.
func (m *Model) Trainable() []*Param {
	var out []*Param
	for _, p := range m.reg.params {
		if p.Trainable {
			out = append(out, p)
		}
	}
	return out
}

// NumParams counts trainable parameters, as sum(p.numel() for p in model.parameters()).
func (m *Model) NumParams() int64 {
	var n int64
	for _, p := range m.Trainable() {
		n += int64(p.Tensor.Numel())
	}
	return n
}

// NonFinite returns the names of the state entries (parameters and
// BatchNorm statistics) that hold a NaN or an infinity, in state_dict order;
// none for a healthy model. A model with such entries computes NaN logits.
func (m *Model) NonFinite() (names []string, err error) {
	defer recoverTorch(&err, "gsrmt: check for non-finite values")
	noGrad(func() {
		for _, p := range m.reg.params {
			if p.Tensor == nil {
				continue // num_batches_tracked: an integer
			}
			all := p.Tensor.MustIsfinite(false).MustAll(true).MustTotype(gotch.Int64, true)
			finite := all.Int64Values()[0] != 0
			all.MustDrop()
			if !finite {
				names = append(names, p.Name)
			}
		}
	})
	return names, nil
}

// SetTensor copies src into the state entry name (shapes must match); for
// num_batches_tracked it sets the counter.
func (m *Model) SetTensor(name string, src *ts.Tensor) (err error) {
	defer recoverTorch(&err, "gsrmt: set "+name)
	if isBNCounter(name) {
		for _, bn := range m.reg.bns {
			if bn.name+".num_batches_tracked" == name {
				if src.Numel() != 1 {
					return fmt.Errorf("gsrmt: %s: want a scalar, got shape %v", name, src.MustSize())
				}
				bn.tracked = src.Int64Values()[0]
				return nil
			}
		}
	}
	p, ok := m.reg.byName[name]
	if !ok {
		return fmt.Errorf("gsrmt: no state entry named %q", name)
	}
	want, got := p.Tensor.MustSize(), src.MustSize()
	if shapeString(want) != shapeString(got) {
		return fmt.Errorf("gsrmt: %s: shape %v, want %v", name, got, want)
	}
	noGrad(func() {
		c := src.MustTo(m.Device, false).MustTotype(gotch.Float, true)
		defer c.MustDrop()
		p.Tensor.Copy_(c)
	})
	return nil
}

// noGrad runs fn with autograd off on this OS thread (grad mode is
// per-thread in libtorch), restoring the previous mode even on a panic.
func noGrad(fn func()) { torch.NoGrad(fn) }

// Close frees the model's tensors and cached tables.
func (m *Model) Close() {
	for _, p := range m.reg.params {
		if p.Tensor != nil {
			p.Tensor.MustDrop()
		}
	}
	for _, st := range m.stages {
		for _, b := range st.blocks {
			for _, t := range b.attn.tables {
				t.drop()
			}
		}
	}
	m.reg.params = nil
}

// scope collects intermediate tensors of one forward and drops them at the end.
type scope struct {
	tensors []*ts.Tensor
	scalars []*ts.Scalar
}

func newScope() *scope { return &scope{tensors: make([]*ts.Tensor, 0, 256)} }

func (s *scope) t(x *ts.Tensor) *ts.Tensor {
	s.tensors = append(s.tensors, x)
	return x
}

func (s *scope) scalar(v float64) *ts.Scalar {
	x := ts.FloatScalar(v)
	s.scalars = append(s.scalars, x)
	return x
}

// release drops each of xs now if the scope holds it (searching from the
// most recent tensor) and forgets it; other tensors are left alone.
func (s *scope) release(xs ...*ts.Tensor) {
	for _, x := range xs {
		for i := len(s.tensors) - 1; i >= 0; i-- {
			if s.tensors[i] == x {
				x.MustDrop()
				s.tensors = append(s.tensors[:i], s.tensors[i+1:]...)
				break
			}
		}
	}
}

// next registers y, the result computed from prev, and releases prev
// (when the scope holds it and it is not y itself): eager PyTorch frees an
// intermediate as its last reference goes, and so does a forward here, which
// keeps the working set small (autograd holds what backward needs).
func (s *scope) next(prev, y *ts.Tensor) *ts.Tensor {
	s.t(y)
	if prev != y {
		s.release(prev)
	}
	return y
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

// recoverTorch turns a panic from gotch's Must* helpers into an error.
func recoverTorch(err *error, what string) {
	if r := recover(); r != nil {
		if re, ok := r.(runtime.Error); ok {
			panic(re)
		}
		if e, ok := r.(error); ok {
			*err = fmt.Errorf("%s: %w", what, e)
			return
		}
		*err = fmt.Errorf("%s: %v", what, r)
	}
}

func sqrt(x float64) float64 { return math.Sqrt(x) }

func negInf() float64 { return math.Inf(-1) }
