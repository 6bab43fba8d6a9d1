package gsrmt

import (
	"fmt"
	"math"
	"testing"
)

// stagePlanWant is one stage's layout worked out by hand (MODEL.md section 5).
type stagePlanWant struct {
	side    int // the stage map's side
	global  bool
	padded  int
	windows int
	shifted int // blocks with a cyclic shift
}

func checkStages(t *testing.T, name string, p Plan, side int, want [4]stagePlanWant) {
	t.Helper()
	_, maps := p.Maps(side)
	for s, w := range want {
		sp := p.Stages[s]
		l := sp.Layout(maps[s][0], maps[s][1])
		shifted := 0
		for _, b := range sp.Blocks {
			if l.Shift(b) > 0 {
				shifted++
				if l.Shift(b) != 3 {
					t.Errorf("%s stage %d: %s shifts by %d, want M/2 = 3", name, s, b.Name, l.Shift(b))
				}
			}
		}
		got := stagePlanWant{maps[s][0], l.Global, l.Padded[0], l.Windows, shifted}
		if maps[s][1] != maps[s][0] || l.Padded[1] != l.Padded[0] {
			t.Errorf("%s stage %d: map %v padded %v, want square", name, s, maps[s], l.Padded)
		}
		if got != w {
			t.Errorf("%s at %d px, stage %d: %+v, want %+v", name, side, s, got, w)
		}
	}
}

func TestPlanOfNano(t *testing.T) {
	p := NewPlan(preset(t, "swat", "nano", 10))
	// Stem at 224 px: 112 (s2), 112, 56 (s2), 56.
	if stem, _ := p.Maps(224); stem != [4][2]int{{112, 112}, {112, 112}, {56, 56}, {56, 56}} {
		t.Errorf("stem maps at 224 px: %v", stem)
	}
	if want := [4]ConvPlan{{3, 16, 2}, {16, 16, 1}, {16, 32, 2}, {32, 32, 1}}; p.Stem != want {
		t.Errorf("stem %v, want %v", p.Stem, want)
	}
	// 224 px: maps 56, 28, 14, 7; windows 8x8, 4x4, 2x2, then the collapse (7 < 2M).
	// One block per stage, so nothing shifts.
	checkStages(t, "nano", p, 224, [4]stagePlanWant{
		{56, false, 56, 64, 0}, {28, false, 28, 16, 0}, {14, false, 14, 4, 0}, {7, true, 7, 1, 0}})
	// 32 px (CIFAR-10): maps 8, 4, 2, 1, all global.
	checkStages(t, "nano", p, 32, [4]stagePlanWant{
		{8, true, 8, 1, 0}, {4, true, 4, 1, 0}, {2, true, 2, 1, 0}, {1, true, 1, 1, 0}})
	// 100 px: maps 25, 13, 7, 4; stage 0 padded to 28 (4x4 windows), 13 < 14 collapses.
	checkStages(t, "nano", p, 100, [4]stagePlanWant{
		{25, false, 28, 16, 0}, {13, true, 13, 1, 0}, {7, true, 7, 1, 0}, {4, true, 4, 1, 0}})
	s0 := p.Stages[0]
	if s0.Dim != 32 || s0.Heads != 2 || s0.HeadDim != 16 || s0.Hidden != 64 || s0.Window != 7 || s0.DownDim != 64 {
		t.Errorf("nano stage 0: %+v", s0)
	}
	if p.Stages[3].DownDim != 0 || p.HeadHidden != 1024 || p.NumClasses != 10 {
		t.Errorf("nano last stage and head: %+v, %d, %d", p.Stages[3], p.HeadHidden, p.NumClasses)
	}
}

func TestPlanOfPaper(t *testing.T) {
	p := NewPlan(preset(t, "retention", "paper", 100))
	// Depths 4, 4, 18, 4: the odd blocks of the windowed stages 0-2 shift; stage 3 is global at 224 px.
	checkStages(t, "paper", p, 224, [4]stagePlanWant{
		{56, false, 56, 64, 2}, {28, false, 28, 16, 2}, {14, false, 14, 4, 9}, {7, true, 7, 1, 0}})
	checkStages(t, "paper", p, 32, [4]stagePlanWant{
		{8, true, 8, 1, 0}, {4, true, 4, 1, 0}, {2, true, 2, 1, 0}, {1, true, 1, 1, 0}})
	// Drop path rises linearly over the 30 blocks: block n gets 0.3 n / 29.
	n := 0
	for s, sp := range p.Stages {
		for i, b := range sp.Blocks {
			if want := 0.3 * float64(n) / 29; math.Abs(b.DropPath-want) > 1e-15 {
				t.Errorf("stage %d block %d: drop path %v, want %v", s, i, b.DropPath, want)
			}
			if want := fmt.Sprintf("stages.%d.blocks.%d", s, i); b.Name != want {
				t.Errorf("block name %q, want %q", b.Name, want)
			}
			if wantShift := 3 * (i % 2); b.Shift != wantShift {
				t.Errorf("%s: shift %d, want %d", b.Name, b.Shift, wantShift)
			}
			n++
		}
	}
	if last := p.Stages[3].Blocks[3].DropPath; last != 0.3 {
		t.Errorf("last block's drop path %v, want 0.3", last)
	}
	for s, want := range [4]bool{false, false, true, true} {
		if p.Stages[s].LayerScale != want {
			t.Errorf("stage %d: layerscale %v", s, p.Stages[s].LayerScale)
		}
	}
	if sp := p.Stages[3]; sp.HeadDim != 32 || sp.Hidden != 2560 || len(sp.Gammas) != 20 {
		t.Errorf("paper stage 3: head dim %d, hidden %d, %d gammas", sp.HeadDim, sp.Hidden, len(sp.Gammas))
	}
}

// Each variant's attention parts (sections 7.1-7.3) and switches.
func TestPlanOfVariants(t *testing.T) {
	cases := []struct {
		variant, gate, norm string
		gate0               int // G1 width in stage 0 (C = 32, H = 2)
		valueGate, rowNorm  bool
		window              int
	}{
		{"swat", "elementwise", "row", 0, true, true, 7},
		{"swat", "elementwise", "none", 0, true, false, 7},
		{"retention", "elementwise", "row", 32, false, false, 7},
		{"retention", "headwise", "row", 2, false, false, 7},
		{"retention", "none", "row", 0, false, false, 7},
		{"rmt", "elementwise", "row", 0, false, false, 0},
	}
	for _, c := range cases {
		cfg := preset(t, c.variant, "nano", 10)
		cfg.Gate, cfg.SwatNorm = c.gate, c.norm
		p := NewPlan(cfg)
		s0 := p.Stages[0]
		if p.Variant != Variant(c.variant) || s0.GateWidth != c.gate0 || s0.ValueGate != c.valueGate ||
			s0.RowNorm != c.rowNorm || s0.Window != c.window {
			t.Errorf("%+v: plan %s, stage 0 %+v", c, p.Variant, s0)
		}
		for s, sp := range p.Stages {
			if sp.Full2D != (p.Variant == RMT && s == 3) {
				t.Errorf("%s stage %d: full 2-D %v", c.variant, s, sp.Full2D)
			}
		}
	}
	cfg := preset(t, "swat", "tiny", 10)
	cfg.Windows = false
	for s, sp := range NewPlan(cfg).Stages {
		if l := sp.Layout(56, 56); !l.Global || sp.Window != 0 || l.Shift(sp.Blocks[1]) != 0 {
			t.Errorf("windows off, stage %d: window %d, layout %+v", s, sp.Window, l)
		}
	}
}

// Describe reports the plan: maps, layouts and shifts agree stage by stage.
func TestPlanAgreesWithDescribe(t *testing.T) {
	for _, v := range Variants {
		for _, name := range []string{"nano", "paper"} {
			cfg := preset(t, v, name, 10)
			p := NewPlan(cfg)
			for _, side := range []int{32, 100, 224, 240} {
				in := Describe(cfg, side)
				stem, maps := p.Maps(side)
				if in.StemOutput != stem[3] {
					t.Errorf("%s %s %d px: Describe's stem map %v, plan %v", v, name, side, in.StemOutput, stem[3])
				}
				for s, st := range in.Stages {
					sp := p.Stages[s]
					l := sp.Layout(maps[s][0], maps[s][1])
					shifted := 0
					for _, b := range sp.Blocks {
						if l.Shift(b) > 0 {
							shifted++
						}
					}
					if st.Map != l.Map || st.Global != l.Global || st.Window != l.Window || st.Padded != l.Padded ||
						st.Windows != l.Windows || st.ShiftedBlocks != shifted || st.Full2D != sp.Full2D ||
						st.Dim != sp.Dim || st.Heads != sp.Heads || st.Blocks != len(sp.Blocks) {
						t.Errorf("%s %s %d px stage %d: Describe %+v, plan %+v", v, name, side, s, st, l)
					}
				}
			}
		}
	}
}
