package gsrmt

import (
	"sync"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// attention is the token mixer of one block (MODEL.md sections 4-7).
type attention struct {
	variant       string
	heads, dim    int
	headDim       int
	scale         float64
	window, shift int // window 0: always global (windows off, or rmt)
	rope          bool
	gateMode      string
	swatNorm      string
	full2D        bool // rmt's last stage
	gammas        []float64
	slopes        []float64
	device        gotch.Device

	q, k, v, o *linear
	lce        *conv2d
	vgate      *linear // swat
	gate       *linear // retention, unless gate == none

	mu     sync.Mutex
	tables map[[2]int]*passTables // per map size (h, w)
}

// passTables holds everything a forward on one map size needs that does not
// depend on the input: built once, reused by every later forward.
type passTables struct {
	global         bool
	hp, wp, nW     int
	cos, sinSigned *ts.Tensor // (1, h, w, 1, d)
	// Width pass (L = columns) and height pass (L = rows); shapes broadcast
	// against S viewed as (B, nW, H, X, L, L).
	addW, addH *ts.Tensor // retention: |delta| log gamma + mask (-inf); swat: ALiBi
	mulW, mulH *ts.Tensor // swat: gamma^|delta| * mask; nil otherwise
	full       *ts.Tensor // rmt last stage: (1, H, hw, hw) Manhattan bias
}

func newAttention(r *registry, name string, cfg Config, stage, index int) *attention {
	dim, heads := cfg.Dims[stage], cfg.Heads[stage]
	a := &attention{
		variant: cfg.Variant, heads: heads, dim: dim, headDim: dim / heads,
		rope: cfg.RoPE, gateMode: cfg.Gate, swatNorm: cfg.SwatNorm,
		gammas: Gammas(heads, cfg.DecayA[stage], cfg.DecayR[stage]),
		slopes: AlibiSlopes(heads), device: r.device, tables: map[[2]int]*passTables{},
	}
	a.scale = 1 / sqrt(float64(a.headDim))
	if cfg.Variant != "rmt" && cfg.Windows {
		a.window = cfg.WindowSize
		if index%2 == 1 {
			a.shift = cfg.WindowSize / 2
		}
	}
	a.full2D = cfg.Variant == "rmt" && stage == 3
	a.q = newLinear(r, name+".q", dim, dim)
	a.k = newLinear(r, name+".k", dim, dim)
	a.v = newLinear(r, name+".v", dim, dim)
	a.o = newLinear(r, name+".o", dim, dim)
	a.lce = newConv2d(r, name+".lce", dim, dim, 5, 1, 2, dim)
	if cfg.Variant == "swat" {
		a.vgate = newLinear(r, name+".vgate", dim, dim)
	}
	if cfg.Variant == "retention" && cfg.Gate != "none" {
		out := dim
		if cfg.Gate == "headwise" {
			out = heads
		}
		a.gate = newLinear(r, name+".gate", dim, out)
	}
	return a
}

// isGlobal is the adaptive collapse of section 5.1.
func (a *attention) isGlobal(h, w int) bool {
	return a.window <= 0 || h < 2*a.window || w < 2*a.window
}

func (a *attention) tensor(data []float32, dims ...int64) *ts.Tensor {
	t := ts.MustOfSlice(data).MustView(dims, true)
	if a.device != gotch.CPU {
		t = t.MustTo(a.device, true)
	}
	return t
}

// tablesFor returns (building once) the tables for an h x w map.
func (a *attention) tablesFor(h, w int) *passTables {
	a.mu.Lock()
	defer a.mu.Unlock()
	if t, ok := a.tables[[2]int{h, w}]; ok {
		return t
	}
	H := int64(a.heads)
	t := &passTables{global: a.isGlobal(h, w), nW: 1, hp: h, wp: w}
	if a.rope {
		cos, sin := RopeTables(h, w, a.headDim)
		t.cos = a.tensor(cos, 1, int64(h), int64(w), 1, int64(a.headDim))
		t.sinSigned = a.tensor(sin, 1, int64(h), int64(w), 1, int64(a.headDim))
	}
	switch {
	case a.full2D:
		n := int64(h * w)
		t.full = a.tensor(manhattanBias(a.gammas, h, w), 1, H, n, n)
	case t.global:
		// One window: the whole map, no mask. S is (B, 1, H, X, L, L).
		t.addW, t.mulW = a.passTable(w, nil, 1, 1)
		t.addH, t.mulH = a.passTable(h, nil, 1, 1)
	default:
		m := a.window
		ids, hp, wp := RegionIDs(h, w, m, a.shift)
		maskW, maskH, nW := windowPassMasks(ids, hp, wp, m)
		t.hp, t.wp, t.nW = hp, wp, nW
		t.addW, t.mulW = a.passTable(m, maskW, nW, m)
		t.addH, t.mulH = a.passTable(m, maskH, nW, m)
	}
	a.tables[[2]int{h, w}] = t
	return t
}

// passTable combines the variant's per-head table (H, L, L) with a window
// mask (nW, X, L, L) into tensors of shape (nW, H, X, L, L), or (1, H, 1, L,
// L) without a mask.
func (a *attention) passTable(l int, mask []bool, nW, x int) (add, mul *ts.Tensor) {
	H := a.heads
	var perHead, perHeadMul []float32
	if a.variant == "swat" {
		perHead = alibiBias(a.slopes, l)
		perHeadMul = decayPow(a.gammas, l)
	} else {
		perHead = decayBias(a.gammas, l)
	}
	if mask == nil {
		add = a.tensor(perHead, 1, int64(H), 1, int64(l), int64(l))
		if perHeadMul != nil {
			mul = a.tensor(perHeadMul, 1, int64(H), 1, int64(l), int64(l))
		}
		return add, mul
	}
	ll := l * l
	addData := make([]float32, nW*H*x*ll)
	var mulData []float32
	if perHeadMul != nil {
		mulData = make([]float32, nW*H*x*ll)
	}
	negInf := float32(negInf())
	for wi := 0; wi < nW; wi++ {
		for hd := 0; hd < H; hd++ {
			for xi := 0; xi < x; xi++ {
				for p := 0; p < ll; p++ {
					dst := ((wi*H+hd)*x+xi)*ll + p
					ok := mask[(wi*x+xi)*ll+p]
					addData[dst] = perHead[hd*ll+p]
					if perHeadMul != nil {
						// SWAT: masked pairs get P = 0 through the multiplicative table.
						if ok {
							mulData[dst] = perHeadMul[hd*ll+p]
						}
					} else if !ok {
						addData[dst] = negInf
					}
				}
			}
		}
	}
	add = a.tensor(addData, int64(nW), int64(H), int64(x), int64(l), int64(l))
	if mulData != nil {
		mul = a.tensor(mulData, int64(nW), int64(H), int64(x), int64(l), int64(l))
	}
	return add, mul
}

func (t *passTables) drop() {
	for _, x := range []*ts.Tensor{t.cos, t.sinSigned, t.addW, t.addH, t.mulW, t.mulH, t.full} {
		if x != nil {
			x.MustDrop()
		}
	}
}

// weight applies the variant's weight(S, delta) of section 7 to logits S
// of shape (B, nW, H, X, L, L), using the precomputed tables.
func (a *attention) weight(sc *scope, s, add, mul *ts.Tensor) *ts.Tensor {
	logits := sc.t(s.MustAdd(add, false))
	if a.variant != "swat" {
		return sc.next(logits, logits.MustSoftmax(-1, gotch.Float, false))
	}
	sig := sc.next(logits, logits.MustSigmoid(false))
	p := sc.next(sig, sig.MustMul(mul, false))
	if a.swatNorm != "row" {
		return p
	}
	sum := sc.t(p.MustSumDimIntlist([]int64{-1}, true, gotch.Float, false))
	den := sc.next(sum, sum.MustAddScalar(sc.scalar(1e-6), false))
	out := sc.t(p.MustDiv(den, false))
	sc.release(p, den)
	return out
}

// rope applies q*cos + rot(q)*sin with rot done as a pair swap (section 4).
func (a *attention) applyRope(sc *scope, x *ts.Tensor, t *passTables) *ts.Tensor {
	shape := x.MustSize()
	d := shape[len(shape)-1]
	pairs := sc.t(x.MustView(append(append([]int64{}, shape[:len(shape)-1]...), d/2, 2), false))
	swapped := sc.t(sc.t(pairs.MustFlip([]int64{-1}, false)).MustView(shape, false))
	xc := sc.t(x.MustMul(t.cos, false))
	xs := sc.t(swapped.MustMul(t.sinSigned, false))
	return sc.t(xc.MustAdd(xs, false))
}

// forward maps X = LN1(x), (B, h, w, C), to the attention output (B, h, w, C).
func (a *attention) forward(sc *scope, x *ts.Tensor) *ts.Tensor {
	size := x.MustSize()
	B, h, w := size[0], size[1], size[2]
	H, d, C := int64(a.heads), int64(a.headDim), int64(a.dim)
	t := a.tablesFor(int(h), int(w))

	q := sc.t(a.q.forward(x))
	k := sc.t(sc.t(a.k.forward(x)).MustMulScalar(sc.scalar(a.scale), false))
	v := sc.t(a.v.forward(x))
	if a.variant == "swat" {
		g := sc.t(sc.t(a.vgate.forward(x)).MustSilu(false))
		v = sc.t(v.MustMul(g, false))
	}
	lce := sc.t(a.lce.forwardChannelsLast(v))

	heads := []int64{B, h, w, H, d}
	q = sc.t(q.MustView(heads, false))
	k = sc.t(k.MustView(heads, false))
	v = sc.t(v.MustView(heads, false))
	if a.rope {
		q = a.applyRope(sc, q, t)
		k = a.applyRope(sc, k, t)
	}

	var y *ts.Tensor
	switch {
	case a.full2D:
		y = a.full2DPass(sc, q, k, v, t)
	case t.global:
		y = a.globalPasses(sc, q, k, v, t)
	default:
		y = a.windowedPasses(sc, q, k, v, t)
	}
	y = sc.t(sc.t(y.MustReshape([]int64{B, h, w, C}, false)).MustAdd(lce, false))
	if a.gate != nil {
		g := sc.t(sc.t(a.gate.forward(x)).MustSigmoid(false))
		if a.gateMode == "headwise" {
			// One value per head, broadcast over its d channels.
			g = sc.t(sc.t(g.MustUnsqueeze(-1, false)).MustExpand([]int64{B, h, w, H, d}, false, false))
			g = sc.t(g.MustReshape([]int64{B, h, w, C}, false))
		}
		y = sc.t(g.MustMul(y, false))
	}
	return a.o.forward(y)
}

// decomposed runs the width then height passes of section 6 on q, k, v of
// shape (B, nW, H, R, K, d).
func (a *attention) decomposed(sc *scope, q, k, v *ts.Tensor, t *passTables) *ts.Tensor {
	// Each pass's scores and weights live in their own scope, freed once
	// the pass's output exists.
	pass := func(q, k, v, add, mul *ts.Tensor) *ts.Tensor {
		in := newScope()
		defer in.close()
		kT := in.t(k.MustTranspose(-1, -2, false))
		s := in.next(kT, q.MustMatmul(kT, false))
		w := a.weight(in, s, add, mul)
		in.release(s)
		return sc.t(w.MustMatmul(v, false))
	}
	u := pass(q, k, v, t.addW, t.mulW) // (B,nW,H,R,K,d), scores (B,nW,H,R,K,K)
	qt := sc.t(q.MustTranspose(3, 4, false))
	kt := sc.t(k.MustTranspose(3, 4, false))
	ut := sc.t(u.MustTranspose(3, 4, false))
	y := pass(qt, kt, ut, t.addH, t.mulH) // (B,nW,H,K,R,d), scores (B,nW,H,K,R,R)
	return sc.t(y.MustTranspose(3, 4, false))
}

// globalPasses: the whole map is one window (section 5.1).
func (a *attention) globalPasses(sc *scope, q, k, v *ts.Tensor, t *passTables) *ts.Tensor {
	perm := []int64{0, 3, 1, 2, 4} // (B, H, h, w, d)
	toPass := func(x *ts.Tensor) *ts.Tensor {
		return sc.t(sc.t(x.MustPermute(perm, false)).MustUnsqueeze(1, false)) // (B, 1, H, h, w, d)
	}
	y := a.decomposed(sc, toPass(q), toPass(k), toPass(v), t)
	return sc.t(sc.t(y.MustSqueezeDim(1, false)).MustPermute([]int64{0, 2, 3, 1, 4}, false))
}

// windowedPasses pads, shifts, partitions, runs the passes and reverses (section 5).
func (a *attention) windowedPasses(sc *scope, q, k, v *ts.Tensor, t *passTables) *ts.Tensor {
	size := q.MustSize()
	h, w := size[1], size[2]
	M, s := int64(a.window), int64(a.shift)
	prep := func(x *ts.Tensor) *ts.Tensor {
		return windowPartition(sc, shiftMap(sc, padMap(sc, x, int64(t.hp), int64(t.wp)), -s), M)
	}
	y := a.decomposed(sc, prep(q), prep(k), prep(v), t) // (B, nW, H, M, M, d)
	y = shiftMap(sc, windowReverse(sc, y, int64(t.hp), int64(t.wp)), s)
	return cropMap(sc, y, h, w)
}

// padMap zero-pads a (B, h, w, ...) map at the bottom and right to hp x wp.
func padMap(sc *scope, x *ts.Tensor, hp, wp int64) *ts.Tensor {
	size := x.MustSize()
	h, w := size[1], size[2]
	if hp == h && wp == w {
		return x
	}
	pad := make([]int64, 2*(len(size)-1)) // last dimension first, as torch.nn.functional.pad
	pad[len(pad)-3], pad[len(pad)-1] = wp-w, hp-h
	return sc.t(x.MustConstantPadNd(pad, false))
}

// cropMap keeps the top-left h x w of a (B, hp, wp, ...) map.
func cropMap(sc *scope, x *ts.Tensor, h, w int64) *ts.Tensor {
	size := x.MustSize()
	if size[1] != h {
		x = sc.t(x.MustNarrow(1, 0, h, false))
	}
	if size[2] != w {
		x = sc.t(x.MustNarrow(2, 0, w, false))
	}
	return x
}

// shiftMap rolls a (B, h, w, ...) map by (s, s) over rows and columns.
func shiftMap(sc *scope, x *ts.Tensor, s int64) *ts.Tensor {
	if s == 0 {
		return x
	}
	return sc.t(x.MustRoll([]int64{s, s}, []int64{1, 2}, false))
}

// windowPartition turns (B, Hp, Wp, H, d) into (B, nW, H, M, M, d), windows row-major.
func windowPartition(sc *scope, x *ts.Tensor, m int64) *ts.Tensor {
	size := x.MustSize()
	B, hp, wp, H, d := size[0], size[1], size[2], size[3], size[4]
	nh, nw := hp/m, wp/m
	x = sc.t(x.MustReshape([]int64{B, nh, m, nw, m, H, d}, false))
	x = sc.t(x.MustPermute([]int64{0, 1, 3, 5, 2, 4, 6}, false)) // (B, nh, nw, H, M, M, d)
	return sc.t(x.MustReshape([]int64{B, nh * nw, H, m, m, d}, false))
}

// windowReverse is the inverse of windowPartition.
func windowReverse(sc *scope, y *ts.Tensor, hp, wp int64) *ts.Tensor {
	size := y.MustSize()
	B, H, m, d := size[0], size[2], size[3], size[5]
	nh, nw := hp/m, wp/m
	y = sc.t(y.MustReshape([]int64{B, nh, nw, H, m, m, d}, false))
	y = sc.t(y.MustPermute([]int64{0, 1, 4, 2, 5, 3, 6}, false)) // (B, nh, M, nw, M, H, d)
	return sc.t(y.MustReshape([]int64{B, hp, wp, H, d}, false))
}

// full2DPass is RMT's last stage: softmax(q k^T + Manhattan decay) over all tokens.
func (a *attention) full2DPass(sc *scope, q, k, v *ts.Tensor, t *passTables) *ts.Tensor {
	size := q.MustSize()
	B, h, w, H, d := size[0], size[1], size[2], size[3], size[4]
	flat := func(x *ts.Tensor) *ts.Tensor {
		return sc.t(sc.t(x.MustReshape([]int64{B, h * w, H, d}, false)).MustTranspose(1, 2, false)) // (B, H, hw, d)
	}
	qf, kf, vf := flat(q), flat(k), flat(v)
	s := sc.t(qf.MustMatmul(sc.t(kf.MustTranspose(-1, -2, false)), false))
	attn := sc.t(sc.t(s.MustAdd(t.full, false)).MustSoftmax(-1, gotch.Float, false))
	y := sc.t(attn.MustMatmul(vf, false)) // (B, H, hw, d)
	return sc.t(sc.t(y.MustTranspose(1, 2, false)).MustReshape([]int64{B, h, w, H, d}, false))
}
