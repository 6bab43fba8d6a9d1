package gsrmt

import (
	"math"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// weighting is weight(S, delta) of MODEL.md section 7, the one part in which
// the variants' attentions differ; newWeighting picks it once per stage.
type weighting interface {
	// passTables returns the tables of a 1-D pass of length l: one added to
	// the logits and one multiplying the activations (no data: none), for
	// the pass mask (nW, X, L, L) of windowPassMasks, or nil when global.
	passTables(l int, mask []bool, nW, x int) (add, mul table)
	// apply turns logits S (..., L, L) into weights, given the pass's
	// tables as tensors that broadcast against S.
	apply(sc *scope, s, add, mul *ts.Tensor) *ts.Tensor
}

// newWeighting is SWAT's sigmoid with ALiBi and multiplicative decay, or
// the softmax with additive log-decay of retention and rmt.
func newWeighting(v Variant, sp StagePlan) weighting {
	if v == SWAT {
		return sigmoidDecay{heads: sp.Heads, gammas: sp.Gammas, slopes: AlibiSlopes(sp.Heads), rowNorm: sp.RowNorm}
	}
	return softmaxDecay{heads: sp.Heads, gammas: sp.Gammas}
}

// softmaxDecay is retention's and rmt's weight (sections 7.1, 7.3):
// softmax_j(S + |delta| log gamma), masked pairs -inf.
type softmaxDecay struct {
	heads  int
	gammas []float64
}

func (w softmaxDecay) passTables(l int, mask []bool, nW, x int) (add, mul table) {
	return windowTable(decayBias(w.gammas, l), w.heads, l, mask, nW, x, float32(math.Inf(-1))), table{}
}

func (w softmaxDecay) apply(sc *scope, s, add, _ *ts.Tensor) *ts.Tensor {
	logits := sc.add(s, add) // S + |delta| log gamma: (..., L, L)
	a := sc.softmax(logits)  // softmax over j: (..., L, L)
	sc.release(logits)
	return a
}

// sigmoidDecay is SWAT's weight (section 7.2): P = sigmoid(S + m delta)
// gamma^|delta|, masked pairs 0, then (row norm) P / (sum_j P + 1e-6).
type sigmoidDecay struct {
	heads          int
	gammas, slopes []float64
	rowNorm        bool
}

func (w sigmoidDecay) passTables(l int, mask []bool, nW, x int) (add, mul table) {
	add = windowTable(alibiBias(w.slopes, l), w.heads, l, nil, 1, 1, 0) // the same in every window
	mul = windowTable(decayPow(w.gammas, l), w.heads, l, mask, nW, x, 0)
	return add, mul
}

func (w sigmoidDecay) apply(sc *scope, s, add, mul *ts.Tensor) *ts.Tensor {
	logits := sc.add(s, add) // S' = S + m delta: (..., L, L)
	sig := sc.sigmoid(logits)
	sc.release(logits)
	p := sc.mul(sig, mul) // P = sigmoid(S') gamma^|delta|, 0 where masked: (..., L, L)
	sc.release(sig)
	if !w.rowNorm {
		return p
	}
	sum := sc.sumLast(p)           // sum_j P: (..., L, 1)
	den := sc.addScalar(sum, 1e-6) // sum_j P + 1e-6: (..., L, 1)
	out := sc.div(p, den)          // (..., L, L)
	sc.release(sum, p, den)
	return out
}

// stageTables is what the blocks of one stage read on one h x w map and
// that does not depend on the input (sections 4, 5, 7): built once per
// stage and map size and handed to each block, as RMT's BasicLayer builds
// its RetNetRelPos2d once for all its blocks.
type stageTables struct {
	layout         Layout
	cos, sinSigned *ts.Tensor     // RoPE, (1, h, w, 1, d); nil with rope off
	passes         [2]*passTables // unshifted blocks, shifted blocks (windowed stages with a shifted block)
	full           *ts.Tensor     // rmt's last stage: (1, H, hw, hw) Manhattan log-decay
}

// passTables are the weighting's tables of the width and the height pass;
// shapes broadcast against S viewed as (B, nW, H, X, L, L).
type passTables struct {
	addW, mulW *ts.Tensor // width pass: L = columns
	addH, mulH *ts.Tensor // height pass: L = rows
}

// blockTables is one block's share of its stage's tables: its shift on
// this layout and the pass tables for that shift.
type blockTables struct {
	*stageTables
	shift int
	pass  *passTables
}

func newStageTables(sp StagePlan, wt weighting, device gotch.Device, h, w int) *stageTables {
	t := &stageTables{layout: sp.Layout(h, w)}
	if sp.RoPE {
		cos, sin := RopeTables(h, w, sp.HeadDim)
		dims := []int64{1, int64(h), int64(w), 1, int64(sp.HeadDim)}
		t.cos, t.sinSigned = constant(device, cos, dims), constant(device, sin, dims)
	}
	switch {
	case sp.Full2D:
		n := int64(h * w)
		t.full = constant(device, manhattanBias(sp.Gammas, h, w), []int64{1, int64(sp.Heads), n, n})
	case t.layout.Global: // one window: the whole map, no mask
		t.passes[0] = newPassTables(wt, device, w, h, nil, nil, 1, 1)
	default:
		for i, b := range sp.Blocks[:min(2, len(sp.Blocks))] { // block 0 unshifted, block 1 shifted
			m := t.layout.Window
			ids, hp, wp := RegionIDs(h, w, m, b.Shift)
			maskW, maskH, nW := windowPassMasks(ids, hp, wp, m)
			t.passes[i] = newPassTables(wt, device, m, m, maskW, maskH, nW, m)
		}
	}
	return t
}

// newPassTables makes the tensors of both passes: width over lw columns,
// height over lh rows, nW windows of x rows (columns) each.
func newPassTables(wt weighting, device gotch.Device, lw, lh int, maskW, maskH []bool, nW, x int) *passTables {
	tensor := func(t table) *ts.Tensor {
		if t.data == nil {
			return nil
		}
		return constant(device, t.data, t.dims)
	}
	addW, mulW := wt.passTables(lw, maskW, nW, x)
	addH, mulH := wt.passTables(lh, maskH, nW, x)
	return &passTables{addW: tensor(addW), mulW: tensor(mulW), addH: tensor(addH), mulH: tensor(mulH)}
}

// forBlock is block b's share of the tables.
func (t *stageTables) forBlock(b BlockPlan) blockTables {
	s := t.layout.Shift(b)
	if s > 0 {
		return blockTables{t, s, t.passes[1]}
	}
	return blockTables{t, 0, t.passes[0]}
}

func (t *stageTables) drop() {
	all := []*ts.Tensor{t.cos, t.sinSigned, t.full}
	for _, p := range t.passes {
		if p != nil {
			all = append(all, p.addW, p.mulW, p.addH, p.mulH)
		}
	}
	drop(all...)
}

// attention is the token mixer of one block (MODEL.md sections 4-7).
type attention struct {
	heads, headDim, dim int64
	scale               float64   // d^-1/2
	rope                bool      // section 4
	gateHeads           bool      // a headwise G1 gate: one value per head
	weight              weighting // section 7

	q, k, v, o *linear
	lce        *conv2d
	vgate      *linear // swat
	gate       *linear // retention, unless gate is none
}

func newAttention(r *registry, name string, sp StagePlan, wt weighting) *attention {
	dim := sp.Dim
	a := &attention{
		heads: int64(sp.Heads), headDim: int64(sp.HeadDim), dim: int64(dim),
		scale: 1 / math.Sqrt(float64(sp.HeadDim)), rope: sp.RoPE, weight: wt,
		gateHeads: sp.GateWidth > 0 && sp.GateWidth != dim,
	}
	a.q = newLinear(r, name+".q", dim, dim)
	a.k = newLinear(r, name+".k", dim, dim)
	a.v = newLinear(r, name+".v", dim, dim)
	a.o = newLinear(r, name+".o", dim, dim)
	a.lce = newConv2d(r, name+".lce", dim, dim, 5, 1, 2, dim)
	if sp.ValueGate {
		a.vgate = newLinear(r, name+".vgate", dim, dim)
	}
	if sp.GateWidth > 0 {
		a.gate = newLinear(r, name+".gate", dim, sp.GateWidth)
	}
	return a
}

// forward maps X = LN1(x), (B, h, w, C), to the attention output (B, h, w, C).
func (a *attention) forward(sc *scope, x *ts.Tensor, t blockTables) *ts.Tensor {
	size := shape(x)
	B, h, w := size[0], size[1], size[2]
	H, d, C := a.heads, a.headDim, a.dim
	q := sc.t(a.q.forward(x))                        // X Wq + bq: (B, h, w, C)
	k := sc.mulScalar(sc.t(a.k.forward(x)), a.scale) // (X Wk + bk) d^-1/2: (B, h, w, C)
	v := sc.t(a.v.forward(x))                        // X Wv + bv: (B, h, w, C)
	if a.vgate != nil {
		v = sc.mul(v, sc.silu(sc.t(a.vgate.forward(x)))) // SWAT: v SiLU(X Wvg + bvg): (B, h, w, C)
	}
	lce := sc.t(a.lce.forwardChannelsLast(v)) // LCE(v): (B, h, w, C)
	q = sc.view(q, B, h, w, H, d)             // (B, h, w, H, d)
	k = sc.view(k, B, h, w, H, d)             // (B, h, w, H, d)
	v = sc.view(v, B, h, w, H, d)             // (B, h, w, H, d)
	if a.rope {
		q = rotate(sc, q, t.cos, t.sinSigned) // q cos + rot(q) sin: (B, h, w, H, d)
		k = rotate(sc, k, t.cos, t.sinSigned) // k cos + rot(k) sin: (B, h, w, H, d)
	}
	var y *ts.Tensor
	switch {
	case t.full != nil:
		y = a.full2D(sc, q, k, v, t.full) // (B, h, w, H, d)
	case t.layout.Global:
		y = a.global(sc, q, k, v, t.pass) // (B, h, w, H, d)
	default:
		y = a.windowed(sc, q, k, v, t) // (B, h, w, H, d)
	}
	y = sc.add(sc.reshape(y, B, h, w, C), lce) // y + LCE(v): (B, h, w, C)
	if a.gate != nil {
		y = sc.mul(a.g1(sc, x, B, h, w), y) // g (y + LCE(v)): (B, h, w, C)
	}
	return a.o.forward(y) // Wo (...) + bo: (B, h, w, C)
}

// g1 is retention's gate sigmoid(X Wg + bg) as (B, h, w, C): headwise, one
// value per head, broadcast over its d channels (section 7.1).
func (a *attention) g1(sc *scope, x *ts.Tensor, B, h, w int64) *ts.Tensor {
	g := sc.sigmoid(sc.t(a.gate.forward(x))) // (B, h, w, C), headwise (B, h, w, H)
	if !a.gateHeads {
		return g
	}
	g = sc.expand(sc.unsqueeze(g, -1), B, h, w, a.heads, a.headDim) // (B, h, w, H, d)
	return sc.reshape(g, B, h, w, a.dim)                            // (B, h, w, C)
}

// rotate is RoPE (section 4): x cos + rot(x) sin, with rot as a swap of
// each pair against the signed sine of RopeTables.
func rotate(sc *scope, x, cos, sinSigned *ts.Tensor) *ts.Tensor {
	size := shape(x)
	n := len(size)
	pairs := sc.view(x, append(append([]int64{}, size[:n-1]...), size[n-1]/2, 2)...) // (..., d/2, 2)
	swapped := sc.view(sc.flip(pairs, -1), size...)                                  // (x1, x0) per pair: (..., d)
	xc := sc.mul(x, cos)                                                             // x cos: (..., d)
	xs := sc.mul(swapped, sinSigned)                                                 // rot(x) sin: (..., d)
	return sc.add(xc, xs)                                                            // (..., d)
}

// decomposed runs the width then the height pass of section 6 on q, k, v
// of shape (B, nW, H, R, K, d).
func (a *attention) decomposed(sc *scope, q, k, v *ts.Tensor, p *passTables) *ts.Tensor {
	u := a.pass(sc, q, k, v, p.addW, p.mulW)    // width: (B, nW, H, R, K, d), weights (B, nW, H, R, K, K)
	qt := sc.transpose(q, 3, 4)                 // (B, nW, H, K, R, d)
	kt := sc.transpose(k, 3, 4)                 // (B, nW, H, K, R, d)
	ut := sc.transpose(u, 3, 4)                 // (B, nW, H, K, R, d)
	y := a.pass(sc, qt, kt, ut, p.addH, p.mulH) // height: (B, nW, H, K, R, d), weights (B, nW, H, K, R, R)
	return sc.transpose(y, 3, 4)                // (B, nW, H, R, K, d)
}

// pass is one 1-D pass over the last two axes: weight(q k^T, delta) v. Its
// logits and weights live in their own scope, freed once its output exists.
func (a *attention) pass(sc *scope, q, k, v, add, mul *ts.Tensor) *ts.Tensor {
	in := newScope()
	defer in.close()
	kT := in.transpose(k, -1, -2) // (..., d, L)
	s := in.batchMatmul(q, kT)    // S = q k^T: (..., L, L)
	in.release(kT)
	w := a.weight.apply(in, s, add, mul) // A = weight(S, delta): (..., L, L)
	in.release(s)
	return sc.batchMatmul(w, v) // A v: (..., L, d)
}

// global attends over the whole map as one window (section 5.1).
func (a *attention) global(sc *scope, q, k, v *ts.Tensor, p *passTables) *ts.Tensor {
	one := func(x *ts.Tensor) *ts.Tensor {
		return sc.unsqueeze(sc.permute(x, 0, 3, 1, 2, 4), 1) // (B, 1, H, h, w, d)
	}
	y := a.decomposed(sc, one(q), one(k), one(v), p)   // (B, 1, H, h, w, d)
	return sc.permute(sc.squeeze(y, 1), 0, 2, 3, 1, 4) // (B, h, w, H, d)
}

// windowed attends within (shifted) windows (section 5) on q, k, v of
// shape (B, h, w, H, d): pad -> shift -> partition -> attend -> reverse ->
// unshift -> crop. The region mask of the shift is in the pass tables.
func (a *attention) windowed(sc *scope, q, k, v *ts.Tensor, t blockTables) *ts.Tensor {
	size := shape(q)
	h, w := size[1], size[2]
	hp, wp := int64(t.layout.Padded[0]), int64(t.layout.Padded[1])
	m, s := int64(t.layout.Window), int64(t.shift)
	split := func(x *ts.Tensor) *ts.Tensor {
		x = padMap(sc, x, hp, wp)        // pad bottom and right with zeros: (B, Hp, Wp, H, d)
		x = shiftMap(sc, x, -s)          // cyclic shift by (-s, -s): (B, Hp, Wp, H, d)
		return windowPartition(sc, x, m) // partition: (B, nW, H, M, M, d)
	}
	y := a.decomposed(sc, split(q), split(k), split(v), t.pass) // attend in each window: (B, nW, H, M, M, d)
	y = windowReverse(sc, y, hp, wp)                            // reverse: (B, Hp, Wp, H, d)
	y = shiftMap(sc, y, s)                                      // undo the shift: (B, Hp, Wp, H, d)
	return cropMap(sc, y, h, w)                                 // crop the padding: (B, h, w, H, d)
}

// padMap zero-pads a (B, h, w, ...) map at the bottom and right to hp x wp.
func padMap(sc *scope, x *ts.Tensor, hp, wp int64) *ts.Tensor {
	size := shape(x)
	h, w := size[1], size[2]
	if hp == h && wp == w {
		return x
	}
	pad := make([]int64, 2*(len(size)-1)) // last dimension first, as torch.nn.functional.pad
	pad[len(pad)-3], pad[len(pad)-1] = wp-w, hp-h
	return sc.pad(x, pad...)
}

// cropMap keeps the top-left h x w of a (B, hp, wp, ...) map.
func cropMap(sc *scope, x *ts.Tensor, h, w int64) *ts.Tensor {
	size := shape(x)
	if size[1] != h {
		x = sc.narrow(x, 1, 0, h)
	}
	if size[2] != w {
		x = sc.narrow(x, 2, 0, w)
	}
	return x
}

// shiftMap rolls a (B, h, w, ...) map by (s, s) over rows and columns.
func shiftMap(sc *scope, x *ts.Tensor, s int64) *ts.Tensor {
	if s == 0 {
		return x
	}
	return sc.roll(x, []int64{s, s}, []int64{1, 2})
}

// windowPartition turns (B, Hp, Wp, H, d) into (B, nW, H, M, M, d), windows row-major.
func windowPartition(sc *scope, x *ts.Tensor, m int64) *ts.Tensor {
	size := shape(x)
	B, hp, wp, H, d := size[0], size[1], size[2], size[3], size[4]
	nh, nw := hp/m, wp/m
	x = sc.reshape(x, B, nh, m, nw, m, H, d)   // (B, nh, M, nw, M, H, d)
	x = sc.permute(x, 0, 1, 3, 5, 2, 4, 6)     // (B, nh, nw, H, M, M, d)
	return sc.reshape(x, B, nh*nw, H, m, m, d) // (B, nW, H, M, M, d)
}

// windowReverse is the inverse of windowPartition.
func windowReverse(sc *scope, y *ts.Tensor, hp, wp int64) *ts.Tensor {
	size := shape(y)
	B, H, m, d := size[0], size[2], size[3], size[5]
	nh, nw := hp/m, wp/m
	y = sc.reshape(y, B, nh, nw, H, m, m, d) // (B, nh, nw, H, M, M, d)
	y = sc.permute(y, 0, 1, 4, 2, 5, 3, 6)   // (B, nh, M, nw, M, H, d)
	return sc.reshape(y, B, hp, wp, H, d)    // (B, Hp, Wp, H, d)
}

// full2D is rmt's last stage (section 7.3): weight(q k^T, Manhattan
// distance) over all h*w tokens.
func (a *attention) full2D(sc *scope, q, k, v, full *ts.Tensor) *ts.Tensor {
	size := shape(q)
	B, h, w, H, d := size[0], size[1], size[2], size[3], size[4]
	flat := func(x *ts.Tensor) *ts.Tensor {
		return sc.transpose(sc.reshape(x, B, h*w, H, d), 1, 2) // (B, H, hw, d)
	}
	qf, kf, vf := flat(q), flat(k), flat(v)
	s := sc.batchMatmul(qf, sc.transpose(kf, -1, -2))       // q k^T: (B, H, hw, hw)
	attn := a.weight.apply(sc, s, full, nil)                // softmax(q k^T + (|dy| + |dx|) log gamma): (B, H, hw, hw)
	y := sc.batchMatmul(attn, vf)                           // (B, H, hw, d)
	return sc.reshape(sc.transpose(y, 1, 2), B, h, w, H, d) // (B, h, w, H, d)
}
