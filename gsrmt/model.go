package gsrmt

import (
	"fmt"
	"runtime"
	"sync"

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

// stage is a stage's blocks and downsample, and the tables its blocks
// share (built per map size on first use, freed by Model.Close).
type stage struct {
	plan     StagePlan
	blocks   []*block
	downConv *conv2d // nil in the last stage
	downNorm *batchNorm
	weight   weighting
	device   gotch.Device

	mu     sync.Mutex
	tables map[[2]int]*stageTables // per map size (h, w)
}

type block struct {
	plan         BlockPlan
	ls1, ls2     *ts.Tensor // nil unless layerscale
	cpe          *conv2d
	norm1, norm2 *layerNorm
	attn         *attention
	fc1, fc2     *linear
	dwconv       *conv2d
	tape         *dropTape // the model's, shared by its blocks
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
	defer torch.Catch(&err, "gsrmt: build model")
	p := NewPlan(cfg)
	r := newRegistry(device)
	m = &Model{Config: cfg, Device: device, reg: r, stem: &stem{}}
	for i, c := range p.Stem {
		m.stem.conv[i] = newConv2d(r, fmt.Sprintf("stem.conv%d", i+1), c.In, c.Out, 3, c.Stride, 1, 1)
		m.stem.bn[i] = newBatchNorm(r, fmt.Sprintf("stem.bn%d", i+1), c.Out)
	}
	for _, sp := range p.Stages {
		m.stages = append(m.stages, newStage(r, p.Variant, sp))
	}
	m.head = &head{
		proj: newLinear(r, "head.proj", p.Stages[3].Dim, p.HeadHidden),
		bn:   newBatchNorm(r, "head.bn", p.HeadHidden),
		fc:   newLinear(r, Classifier, p.HeadHidden, p.NumClasses),
	}
	return m, nil
}

func newStage(r *registry, v Variant, sp StagePlan) *stage {
	st := &stage{plan: sp, weight: newWeighting(v, sp), device: r.device, tables: map[[2]int]*stageTables{}}
	for _, bp := range sp.Blocks {
		st.blocks = append(st.blocks, newBlock(r, sp, bp, st.weight))
	}
	if sp.DownDim > 0 {
		st.downConv = newConv2d(r, fmt.Sprintf("stages.%d.downsample.conv", sp.Index), sp.Dim, sp.DownDim, 3, 2, 1, 1)
		st.downNorm = newBatchNorm(r, fmt.Sprintf("stages.%d.downsample.bn", sp.Index), sp.DownDim)
	}
	return st
}

func newBlock(r *registry, sp StagePlan, bp BlockPlan, wt weighting) *block {
	dim, name := sp.Dim, bp.Name
	b := &block{plan: bp, tape: r.tape}
	if sp.LayerScale {
		// PyTorch lists a module's own parameters before its children's.
		b.ls1 = r.add(name+".ls1", r.full(1e-6, int64(dim)), true, true)
		b.ls2 = r.add(name+".ls2", r.full(1e-6, int64(dim)), true, true)
	}
	b.cpe = newConv2d(r, name+".cpe", dim, dim, 3, 1, 1, dim)
	b.norm1 = newLayerNorm(r, name+".norm1", dim)
	b.attn = newAttention(r, name+".attn", sp, wt)
	b.norm2 = newLayerNorm(r, name+".norm2", dim)
	b.fc1 = newLinear(r, name+".ffn.fc1", dim, sp.Hidden)
	b.dwconv = newConv2d(r, name+".ffn.dwconv", sp.Hidden, sp.Hidden, 3, 1, 1, sp.Hidden)
	b.fc2 = newLinear(r, name+".ffn.fc2", sp.Hidden, dim)
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
	defer torch.Catch(&err, "gsrmt: forward")
	if dims := shape(x); len(dims) != 4 || dims[1] != int64(m.Config.InChans) {
		return nil, fmt.Errorf("gsrmt: forward: input shape %v: want (B, %d, H, W)", dims, m.Config.InChans)
	}
	sc := newScope()
	defer sc.close()

	h := m.stemForward(sc, x, train) // channels-last (B, h, w, C0)
	for _, st := range m.stages {
		h = st.forward(sc, h, train) // (B, h, w, C_s), then (B, h/2, w/2, C_s+1) after a downsample
	}
	return m.headForward(sc, h, train), nil // (B, classes)
}

// stemForward runs the convolutional stem on images (B, C, H, W) and
// returns the channels-last map (B, h, w, C0), registered in sc.
func (m *Model) stemForward(sc *scope, x *ts.Tensor, train bool) *ts.Tensor {
	h := x
	for i := range m.stem.conv {
		h = sc.t(m.stem.conv[i].forward(h))      // (B, C, H', W')
		h = sc.t(m.stem.bn[i].forward(h, train)) // (B, C, H', W')
		if i < 3 {
			h = sc.gelu(h)
		}
	}
	return sc.permute(h, 0, 2, 3, 1)
}

// headForward runs the head on the last stage's map (B, h, w, C3) and
// returns the logits (B, classes), which the caller owns.
func (m *Model) headForward(sc *scope, h *ts.Tensor, train bool) *ts.Tensor {
	p := sc.t(m.head.proj.forward(h))              // (B, h, w, 1024)
	p = sc.permute(p, 0, 3, 1, 2)                  // (B, 1024, h, w)
	p = sc.silu(sc.t(m.head.bn.forward(p, train))) // (B, 1024, h, w)
	pooled := sc.mean(p, 2, 3)                     // (B, 1024)
	return m.head.fc.forward(pooled)               // (B, classes)
}

// forward runs the stage's blocks on a channels-last map x (registered in
// sc), each with its share of the stage's tables, then the downsample.
func (st *stage) forward(sc *scope, x *ts.Tensor, train bool) *ts.Tensor {
	size := shape(x)
	t := st.tablesFor(int(size[1]), int(size[2]))
	for _, b := range st.blocks {
		// Each block frees its intermediates as it returns (autograd keeps
		// what backward needs), and its input once consumed, so that an
		// evaluation forward holds one block's tensors at a time, as eager
		// PyTorch does.
		next := b.forward(x, train, t.forBlock(b.plan))
		sc.release(x)
		x = sc.t(next)
	}
	return st.downsample(sc, x, train)
}

// downsample is the stage's strided convolution and BatchNorm on its
// output map x (B, h, w, C), registered in sc; the last stage returns x.
func (st *stage) downsample(sc *scope, x *ts.Tensor, train bool) *ts.Tensor {
	if st.downConv == nil {
		return x
	}
	nchw := sc.permute(x, 0, 3, 1, 2)                                      // (B, C, h, w)
	y := sc.t(st.downNorm.forward(sc.t(st.downConv.forward(nchw)), train)) // (B, C', h/2, w/2)
	return sc.permute(y, 0, 2, 3, 1)                                       // (B, h/2, w/2, C')
}

// tablesFor returns (building it once) the stage's tables for an h x w map.
func (st *stage) tablesFor(h, w int) *stageTables {
	st.mu.Lock()
	defer st.mu.Unlock()
	t, ok := st.tables[[2]int{h, w}]
	if !ok {
		t = newStageTables(st.plan, st.weight, st.device, h, w)
		st.tables[[2]int{h, w}] = t
	}
	return t
}

// forward runs one block on a channels-last map (section 2). The caller
// owns the result; the block's intermediates are freed before it returns.
func (b *block) forward(x *ts.Tensor, train bool, t blockTables) *ts.Tensor {
	sc := newScope()
	defer sc.close()
	x = sc.add(x, sc.t(b.cpe.forwardChannelsLast(x)))          // x + CPE(x)
	a := sc.t(b.attn.forward(sc, sc.t(b.norm1.forward(x)), t)) // Attn(LN1(x))
	if b.ls1 != nil {
		a = sc.mul(a, b.ls1) // ls1 Attn(LN1(x))
	}
	x = sc.add(x, dropPath(sc, b.tape, a, b.plan.DropPath, train))

	f := sc.gelu(sc.t(b.fc1.forward(sc.t(b.norm2.forward(x))))) // GELU(fc1(LN2(x))): (B, h, w, rC)
	f = sc.add(f, sc.t(b.dwconv.forwardChannelsLast(f)))        // f + DWConv(f)
	f = sc.t(b.fc2.forward(f))                                  // fc2(f): (B, h, w, C)
	if b.ls2 != nil {
		f = sc.mul(f, b.ls2) // ls2 FFN(LN2(x))
	}
	return sc.keep(sc.add(x, dropPath(sc, b.tape, f, b.plan.DropPath, train)))
}

// dropPath is per-sample stochastic depth: x / keep * floor(U + keep), U of
// shape (B, 1, ..., 1). The tape records the masks of a checkpointed
// forward and replays them in its recomputation.
func dropPath(sc *scope, tape *dropTape, x *ts.Tensor, rate float64, train bool) *ts.Tensor {
	if !train || rate == 0 {
		return x
	}
	if mask := tape.replay(); mask != nil {
		return sc.mul(sc.divScalar(x, 1-rate), mask)
	}
	keep := 1 - rate
	dims := shape(x)
	u := make([]int64, len(dims))
	for i := range u {
		u[i] = 1
	}
	u[0] = dims[0]
	mask := sc.floor(sc.addScalar(sc.uniform(x, u...), keep)) // 1 with probability keep, else 0
	tape.record(mask)
	return sc.mul(sc.divScalar(x, keep), mask)
}

// SetTrainBatchNorm makes every BatchNorm layer of the model call f in
// training forwards (Forward with train set), in place of libtorch's
// batch_norm over this process's batch; nil restores libtorch's. The
// num_batches_tracked counters still advance; evaluation (running
// statistics) is unchanged. Data-parallel training sets
// dist.Group.SyncBatchNorm here for --sync-bn. Call it between forwards,
// not during one.
func (m *Model) SetTrainBatchNorm(f BatchNormFunc) {
	m.reg.bnHook.train = f
}

// Params returns every state entry in PyTorch's state_dict order: the
// model's state_dict(). The tensors belong to the model.
func (m *Model) Params() []*Param {
	return append([]*Param(nil), m.reg.params...)
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
	defer torch.Catch(&err, "gsrmt: check for non-finite values")
	noGrad(func() {
		for _, p := range m.reg.params {
			if p.Counter {
				continue // an integer
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

// SetTensor copies src into the state entry name (shapes must match); a
// num_batches_tracked counter takes any one-element integer tensor.
func (m *Model) SetTensor(name string, src *ts.Tensor) (err error) {
	defer torch.Catch(&err, "gsrmt: set "+name)
	p, ok := m.reg.byName[name]
	if !ok {
		return fmt.Errorf("gsrmt: no state entry named %q", name)
	}
	if p.Counter {
		if src.Numel() != 1 {
			return fmt.Errorf("gsrmt: %s: want a scalar, got shape %v", name, src.MustSize())
		}
		v := ts.MustOfSlice([]int64{src.MustTotype(gotch.Int64, false).Int64Values(true)[0]}).MustSqueeze(true)
		if p.Tensor.MustDevice() != gotch.CPU {
			v = v.MustTo(p.Tensor.MustDevice(), true)
		}
		p.Tensor.Copy_(v)
		v.MustDrop()
		return nil
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

// Close frees the model's tensors and the stages' tables.
func (m *Model) Close() {
	for _, p := range m.reg.params {
		if p.Tensor != nil {
			p.Tensor.MustDrop()
		}
	}
	for _, st := range m.stages {
		st.mu.Lock()
		for _, t := range st.tables {
			t.drop()
		}
		st.tables = map[[2]int]*stageTables{}
		st.mu.Unlock()
	}
	m.reg.params = nil
}
