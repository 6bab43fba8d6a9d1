package gsrmt

import "fmt"

// Variant is one of the three models of MODEL.md section 7. Config keeps
// it as a string (its JSON field); variantOf converts it once, and the rest
// of the package compares typed values.
type Variant string

// The variants of MODEL.md section 7.
const (
	SWAT      Variant = "swat"      // Gated-SwinRMT-SWAT (7.2)
	Retention Variant = "retention" // Gated-SwinRMT-Retention (7.1)
	RMT       Variant = "rmt"       // the RMT baseline (7.3)
)

// variantOf is cfg.Variant typed.
func variantOf(cfg Config) Variant { return Variant(cfg.Variant) }

// Retention's G1 gate modes (section 7.1), as Config.Gate spells them.
const (
	gateElementwise = "elementwise"
	gateHeadwise    = "headwise"
)

// Plan is a Config laid out part by part (MODEL.md sections 2-5 and 7): the
// sizes, switches and rates that New builds, the attention reads and
// Describe counts, computed once by NewPlan. What depends on the input's
// side (the stage maps and their windows) is Maps' and Layout's.
type Plan struct {
	Variant    Variant
	Stem       [4]ConvPlan // conv1..conv4, each followed by its BatchNorm
	Stages     [4]StagePlan
	HeadHidden int // head.proj's width
	NumClasses int
}

// ConvPlan is one 3x3 stem convolution with padding 1 (section 2).
type ConvPlan struct{ In, Out, Stride int }

// StagePlan is one stage: what its blocks share, each block, and the
// downsample after it.
type StagePlan struct {
	Index      int
	Dim        int // C
	Heads      int // H
	HeadDim    int // d = C / H
	Hidden     int // FFN width: int(mlp_ratio * C)
	LayerScale bool
	// Attention (sections 4-7).
	Window    int       // M, or 0 where the stage always attends globally (windows off, or rmt)
	Full2D    bool      // rmt's last stage: one 2-D pass over all tokens
	RoPE      bool      // theta_shift on q and k
	ValueGate bool      // SWAT's SwiGLU value gate (vgate)
	GateWidth int       // retention's G1 gate: C elementwise, H headwise, 0 without one
	RowNorm   bool      // SWAT's row normalization
	Gammas    []float64 // per-head decay gamma_j (section 4)
	Blocks    []BlockPlan
	DownDim   int // channels after the downsample; 0 in the last stage
}

// BlockPlan is one block of a stage.
type BlockPlan struct {
	Name     string  // "stages.{s}.blocks.{i}" (section 9)
	Shift    int     // M/2 on odd blocks of a windowed stage, else 0 (section 5.3)
	DropPath float64 // stochastic depth, rising linearly over all blocks (section 2)
}

// NewPlan lays out cfg (checked by Validate, or at least with positive
// sizes). It allocates no tensor.
func NewPlan(cfg Config) Plan {
	p := Plan{Variant: variantOf(cfg), HeadHidden: cfg.HeadHidden, NumClasses: cfg.NumClasses}
	c0 := cfg.Dims[0]
	in := cfg.InChans
	outs, strides := [4]int{c0 / 2, c0 / 2, c0, c0}, [4]int{2, 1, 2, 1}
	for i := range p.Stem {
		p.Stem[i] = ConvPlan{In: in, Out: outs[i], Stride: strides[i]}
		in = outs[i]
	}
	total := 0
	for _, d := range cfg.Depths {
		total += max(d, 0)
	}
	n := 0 // blocks before this one, over all stages
	for s := range p.Stages {
		sp := newStagePlan(cfg, p.Variant, s)
		for i := 0; i < cfg.Depths[s]; i++ {
			b := BlockPlan{Name: fmt.Sprintf("stages.%d.blocks.%d", s, i)}
			if sp.Window > 0 && i%2 == 1 {
				b.Shift = sp.Window / 2
			}
			if total > 1 {
				b.DropPath = cfg.DropPath * float64(n) / float64(total-1)
			}
			sp.Blocks = append(sp.Blocks, b)
			n++
		}
		p.Stages[s] = sp
	}
	return p
}

// newStagePlan is stage s of cfg without its blocks.
func newStagePlan(cfg Config, v Variant, s int) StagePlan {
	sp := StagePlan{
		Index: s, Dim: cfg.Dims[s], Heads: cfg.Heads[s], LayerScale: cfg.LayerScale[s],
		Hidden: int(cfg.MLPRatios[s] * float64(cfg.Dims[s])),
		Full2D: v == RMT && s == 3, RoPE: cfg.RoPE, ValueGate: v == SWAT,
		RowNorm: v == SWAT && cfg.SwatNorm == "row",
	}
	if sp.Heads > 0 {
		sp.HeadDim = sp.Dim / sp.Heads
		sp.Gammas = Gammas(sp.Heads, cfg.DecayA[s], cfg.DecayR[s])
	}
	if v != RMT && cfg.Windows {
		sp.Window = cfg.WindowSize
	}
	if v == Retention {
		switch cfg.Gate {
		case gateElementwise:
			sp.GateWidth = sp.Dim
		case gateHeadwise:
			sp.GateWidth = sp.Heads
		}
	}
	if s < 3 {
		sp.DownDim = cfg.Dims[s+1]
	}
	return sp
}

// convOut is the output side of a 3x3 conv with padding 1 and the stride
// (floor, as PyTorch).
func convOut(n, stride int) int { return (n+2-3)/stride + 1 }

// Maps returns, for square images of the given side, the map after each
// stem convolution and each stage's map (the stage-s downsample halves the
// map of stage s into that of stage s+1).
func (p Plan) Maps(side int) (stem, stages [4][2]int) {
	h, w := side, side
	for i, c := range p.Stem {
		h, w = convOut(h, c.Stride), convOut(w, c.Stride)
		stem[i] = [2]int{h, w}
	}
	for s := range stages {
		stages[s] = [2]int{h, w}
		h, w = convOut(h, 2), convOut(w, 2)
	}
	return stem, stages
}

// Layout is how a stage attends on one h x w map (section 5).
type Layout struct {
	Map     [2]int // h, w
	Global  bool   // one window, no shift: windows off, rmt, or the adaptive collapse
	Window  int    // M, or 0 when global
	Padded  [2]int // the map padded to multiples of M (the map itself when global)
	Windows int    // windows per image
}

// Layout is section 5 on an h x w map: global (one window) when the stage
// has no windows or h < 2M or w < 2M (5.1); otherwise the map padded at the
// bottom and right to multiples of M (5.2), in M x M windows (5.5).
func (s StagePlan) Layout(h, w int) Layout {
	m := s.Window
	if m <= 0 || h < 2*m || w < 2*m {
		return Layout{Map: [2]int{h, w}, Global: true, Padded: [2]int{h, w}, Windows: 1}
	}
	hp, wp := ceilDiv(h, m)*m, ceilDiv(w, m)*m
	return Layout{Map: [2]int{h, w}, Window: m, Padded: [2]int{hp, wp}, Windows: (hp / m) * (wp / m)}
}

// Shift is a block's cyclic shift on this layout: none when global (5.3).
func (l Layout) Shift(b BlockPlan) int {
	if l.Global {
		return 0
	}
	return b.Shift
}
