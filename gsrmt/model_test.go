package gsrmt

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/gsrmt/gsrmt/internal/torch"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

func build(t *testing.T, cfg Config) *Model {
	t.Helper()
	m, err := New(cfg, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func preset(t *testing.T, variant, name string, classes int) Config {
	t.Helper()
	c, err := PresetConfig(variant, name, classes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// MODEL.md section 3.
func TestParamCountsOfSpecTable(t *testing.T) {
	table := map[string][3]int64{
		"nano":  {1588980, 1588980, 1501460},
		"tiny":  {14504708, 14504708, 13411716},
		"small": {28358148, 28358148, 26044740},
		"paper": {77298140, 77298140, 71784220},
	}
	for _, p := range Presets {
		if testing.Short() && (p == "small" || p == "paper") {
			continue
		}
		for vi, v := range Variants {
			for _, classes := range []int{100, 10} {
				want := table[p][vi]
				if classes == 10 {
					want -= 92250
				}
				m := build(t, preset(t, v, p, classes))
				if got := m.NumParams(); got != want {
					t.Errorf("%s %s, %d classes: %d parameters, want %d", v, p, classes, got, want)
				}
				if got := Describe(preset(t, v, p, classes), 224).Params; got != want {
					t.Errorf("%s %s, %d classes: Describe counts %d parameters, want %d", v, p, classes, got, want)
				}
				m.Close()
			}
		}
	}
}

// specNames lists the state_dict keys and shapes of MODEL.md section 9 for a
// config, written from the spec independently of the model code.
func specNames(c Config) map[string][]int64 {
	out := map[string][]int64{}
	bn := func(p string, n int) {
		for _, s := range []string{"weight", "bias", "running_mean", "running_var"} {
			out[p+"."+s] = []int64{int64(n)}
		}
		out[p+".num_batches_tracked"] = []int64{}
	}
	conv := func(p string, out_, in, k int) {
		out[p+".weight"] = []int64{int64(out_), int64(in), int64(k), int64(k)}
		out[p+".bias"] = []int64{int64(out_)}
	}
	lin := func(p string, in, o int) {
		out[p+".weight"] = []int64{int64(o), int64(in)}
		out[p+".bias"] = []int64{int64(o)}
	}
	c0 := c.Dims[0]
	conv("stem.conv1", c0/2, 3, 3)
	conv("stem.conv2", c0/2, c0/2, 3)
	conv("stem.conv3", c0, c0/2, 3)
	conv("stem.conv4", c0, c0, 3)
	bn("stem.bn1", c0/2)
	bn("stem.bn2", c0/2)
	bn("stem.bn3", c0)
	bn("stem.bn4", c0)
	for s := 0; s < 4; s++ {
		C := c.Dims[s]
		for i := 0; i < c.Depths[s]; i++ {
			p := fmt.Sprintf("stages.%d.blocks.%d", s, i)
			conv(p+".cpe", C, 1, 3)
			out[p+".norm1.weight"], out[p+".norm1.bias"] = []int64{int64(C)}, []int64{int64(C)}
			for _, n := range []string{"q", "k", "v", "o"} {
				lin(p+".attn."+n, C, C)
			}
			conv(p+".attn.lce", C, 1, 5)
			if c.Variant == "swat" {
				lin(p+".attn.vgate", C, C)
			}
			if c.Variant == "retention" && c.Gate == "elementwise" {
				lin(p+".attn.gate", C, C)
			}
			if c.Variant == "retention" && c.Gate == "headwise" {
				lin(p+".attn.gate", C, c.Heads[s])
			}
			out[p+".norm2.weight"], out[p+".norm2.bias"] = []int64{int64(C)}, []int64{int64(C)}
			r := int(c.MLPRatios[s] * float64(C))
			lin(p+".ffn.fc1", C, r)
			conv(p+".ffn.dwconv", r, 1, 3)
			lin(p+".ffn.fc2", r, C)
			if c.LayerScale[s] {
				out[p+".ls1"], out[p+".ls2"] = []int64{int64(C)}, []int64{int64(C)}
			}
		}
		if s < 3 {
			conv(fmt.Sprintf("stages.%d.downsample.conv", s), c.Dims[s+1], C, 3)
			bn(fmt.Sprintf("stages.%d.downsample.bn", s), c.Dims[s+1])
		}
	}
	lin("head.proj", c.Dims[3], 1024)
	bn("head.bn", 1024)
	lin("head.fc", 1024, c.NumClasses)
	return out
}

// MODEL.md section 9: names, shapes and dtypes, for each variant and gate.
func TestParamNamesAndShapesOfSpec(t *testing.T) {
	type tc struct{ variant, preset, gate string }
	cases := []tc{{"swat", "nano", "elementwise"}, {"retention", "nano", "elementwise"}, {"retention", "nano", "headwise"},
		{"retention", "nano", "none"}, {"rmt", "nano", "elementwise"}}
	if !testing.Short() {
		cases = append(cases, tc{"swat", "paper", "elementwise"}, tc{"retention", "paper", "headwise"})
	}
	for _, c := range cases {
		cfg := preset(t, c.variant, c.preset, 10)
		cfg.Gate = c.gate
		m := build(t, cfg)
		want := specNames(cfg)
		seen := map[string]bool{}
		for _, p := range m.Params() {
			shape := p.Tensor.MustSize()
			ws, ok := want[p.Name]
			switch {
			case !ok:
				t.Errorf("%v: unexpected entry %s", c, p.Name)
			case !slices.Equal(shape, ws):
				t.Errorf("%v: %s has shape %v, want %v", c, p.Name, shape, ws)
			}
			wantDType := gotch.Float
			if p.Counter {
				wantDType = gotch.Int64
			}
			if p.Tensor.DType() != wantDType {
				t.Errorf("%v: %s is %v, want %v", c, p.Name, p.Tensor.DType(), wantDType)
			}
			if seen[p.Name] {
				t.Errorf("%v: %s listed twice", c, p.Name)
			}
			seen[p.Name] = true
		}
		for n := range want {
			if !seen[n] {
				t.Errorf("%v: missing entry %s", c, n)
			}
		}
		m.Close()
	}
}

func TestInvalidConfigsNameTheField(t *testing.T) {
	base := func() Config {
		c, _ := PresetConfig("swat", "nano", 10)
		return c
	}
	cases := []struct {
		mutate func(*Config)
		field  string
	}{
		{func(c *Config) { c.Heads[1] = 3 }, "heads[1]"},
		{func(c *Config) { c.Depths[2] = 0 }, "depths[2]"},
		{func(c *Config) { c.WindowSize = 0 }, "window_size"},
		{func(c *Config) { c.Variant = "vit" }, "variant"},
		{func(c *Config) { c.Gate = "both" }, "gate"},
		{func(c *Config) { c.SwatNorm = "col" }, "swat_norm"},
		{func(c *Config) { c.NumClasses = 0 }, "num_classes"},
		{func(c *Config) { c.DropPath = 1 }, "drop_path"},
	}
	for _, c := range cases {
		cfg := base()
		c.mutate(&cfg)
		_, err := New(cfg, gotch.CPU)
		if err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("config with bad %s: error %v, want one naming %s", c.field, err, c.field)
		}
	}
	if _, err := PresetConfig("swat", "huge", 10); err == nil || !strings.Contains(err.Error(), "preset") {
		t.Errorf("unknown preset: %v", err)
	}
}

func randn(t *testing.T, dims ...int64) *ts.Tensor {
	t.Helper()
	return ts.MustRandn(dims, gotch.Float, gotch.CPU)
}

func equalTensors(a, b *ts.Tensor) bool {
	return a.MustEqual(b, false)
}

// Window partition/reverse, padding/cropping and the cyclic shift are exact inverses.
func TestWindowPartitionInverses(t *testing.T) {
	sc := newScope()
	defer sc.close()
	x := sc.t(randn(t, 2, 14, 21, 3, 4))
	p := windowPartition(sc, x, 7)
	if got := p.MustSize(); !slices.Equal(got, []int64{2, 6, 3, 7, 7, 4}) {
		t.Fatalf("partition shape %v", got)
	}
	// Window 4 (row 1, col 1, row-major over 2 x 3 windows), position (2, 5), head 1
	// is map position (7+2, 7+5) of batch 1.
	a := p.MustSelect(0, 1, false).MustSelect(0, 4, true).MustSelect(0, 1, true).MustSelect(0, 2, true).MustSelect(0, 5, true)
	b := x.MustSelect(0, 1, false).MustSelect(0, 9, true).MustSelect(0, 12, true).MustSelect(0, 1, true)
	if !equalTensors(a, b) {
		t.Error("window 4 position (2, 5) is not map position (9, 12)")
	}
	a.MustDrop()
	b.MustDrop()
	if r := windowReverse(sc, p, 14, 21); !equalTensors(r, x) {
		t.Error("windowReverse(windowPartition(x)) != x")
	}
	if r := shiftMap(sc, shiftMap(sc, x, -3), 3); !equalTensors(r, x) {
		t.Error("shift by -3 then +3 is not the identity")
	}
	y := sc.t(randn(t, 1, 12, 9, 2, 4))
	padded := padMap(sc, y, 14, 14)
	if got := padded.MustSize(); !slices.Equal(got, []int64{1, 14, 14, 2, 4}) {
		t.Fatalf("padded shape %v", got)
	}
	if r := cropMap(sc, padded, 12, 9); !equalTensors(r, y) {
		t.Error("crop(pad(x)) != x")
	}
	tail := sc.t(padded.MustNarrow(1, 12, 2, false))
	if s := sc.t(tail.MustAbs(false).MustSum(gotch.Float, true)); s.Float64Values()[0] != 0 {
		t.Error("padding is not zero")
	}
}

// locality checks which outputs of one block's attention change when one
// token of its input changes (MODEL.md section 10, LCE zeroed).
func locality(t *testing.T, index, row, col int) [][]bool {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := torch.ManualSeed(3); err != nil {
		t.Fatal(err)
	}
	cfg := preset(t, "swat", "nano", 10)
	cfg.Depths[0] = 2
	m := build(t, cfg)
	st := m.stages[0]
	a := st.blocks[index].attn
	tables := st.tablesFor(14, 14).forBlock(st.blocks[index].plan)
	noGrad(func() { a.lce.w.MustZero_() })
	sc := newScope()
	defer sc.close()
	var y0, y1 *ts.Tensor
	x := sc.t(randn(t, 1, 14, 14, 32))
	noGrad(func() { y0 = sc.t(a.forward(sc, x, tables)) })
	x2 := sc.t(x.MustDetachCopy(false))
	noGrad(func() {
		tok := x2.MustSelect(1, int64(row), false).MustSelect(1, int64(col), true)
		tok.MustAddScalar_(ts.FloatScalar(1))
		tok.MustDrop()
		y1 = sc.t(a.forward(sc, x2, tables))
	})
	diff := sc.t(sc.t(y1.MustSub(y0, false)).MustAbs(false).MustSumDimIntlist([]int64{-1}, false, gotch.Float, true))
	v := diff.Vals().([]float32)
	out := make([][]bool, 14)
	for r := range out {
		out[r] = make([]bool, 14)
		for c := range out[r] {
			out[r][c] = v[r*14+c] > 0
		}
	}
	return out
}

func TestLocalityInsideWindows(t *testing.T) {
	// Unshifted block: token (2, 3) lies in window rows 0-6, cols 0-6.
	changed := locality(t, 0, 2, 3)
	check := func(name string, changed [][]bool, inside func(r, c int) bool) {
		any := false
		for r := range changed {
			for c := range changed[r] {
				if changed[r][c] && !inside(r, c) {
					t.Errorf("%s: output (%d, %d) changed outside the window", name, r, c)
				}
				any = any || changed[r][c]
			}
		}
		if !any {
			t.Errorf("%s: no output changed", name)
		}
	}
	check("unshifted", changed, func(r, c int) bool { return r < 7 && c < 7 })
	// Shifted block (s = 3): token (2, 3) moves to (13, 0) of the rolled map:
	// window rows 7-13 cols 0-6, region rows 11-13 (band 2), cols 0-6 (band 0),
	// which are rows 0-2 and cols 3-9 of the original map.
	changed = locality(t, 1, 2, 3)
	check("shifted", changed, func(r, c int) bool { return r <= 2 && c >= 3 && c <= 9 })
}

// A map with h, w < 2M gives the same output whether windows are requested or not.
func TestCollapseEquivalence(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for _, v := range Variants {
		cfg := preset(t, v, "nano", 10)
		var logits [2]*ts.Tensor
		for i, windows := range []bool{true, false} {
			cfg.Windows = windows
			if err := torch.ManualSeed(11); err != nil {
				t.Fatal(err)
			}
			m := build(t, cfg)
			if err := torch.ManualSeed(12); err != nil {
				t.Fatal(err)
			}
			x := randn(t, 2, 3, 48, 48) // maps 12, 6, 3, 1: all below 2M = 14
			noGrad(func() {
				var err error
				if logits[i], err = m.Forward(x, false); err != nil {
					t.Fatal(err)
				}
			})
			x.MustDrop()
		}
		if !equalTensors(logits[0], logits[1]) {
			t.Errorf("%s: windows on and off give different logits on a 48 px input", v)
		}
		logits[0].MustDrop()
		logits[1].MustDrop()
	}
}

// Every parameter receives a finite, non-zero gradient from a cross-entropy loss.
func TestEveryParameterGetsGradient(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for _, v := range Variants {
		if err := torch.ManualSeed(5); err != nil {
			t.Fatal(err)
		}
		cfg := preset(t, v, "nano", 10)
		m := build(t, cfg)
		x := randn(t, 2, 3, 112, 112)
		labels := ts.MustOfSlice([]int64{3, 7})
		logits, err := m.Forward(x, true)
		if err != nil {
			t.Fatal(err)
		}
		loss := logits.MustLogSoftmax(-1, gotch.Float, true).MustNllLoss(labels, ts.None, 1, -100, true)
		loss.MustBackward()
		for _, p := range m.Trainable() {
			g := p.Tensor.MustGrad(false)
			vals := g.Vals().([]float32)
			g.MustDrop()
			nonZero, finite := false, true
			for _, x := range vals {
				nonZero = nonZero || x != 0
				finite = finite && !math.IsNaN(float64(x)) && !math.IsInf(float64(x), 0)
			}
			if !nonZero || !finite {
				t.Errorf("%s: %s gradient non-zero %v, finite %v", v, p.Name, nonZero, finite)
			}
		}
		loss.MustDrop()
		x.MustDrop()
		labels.MustDrop()
	}
}

func TestForwardAnySideAndBatchOne(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for _, v := range Variants {
		m := build(t, preset(t, v, "nano", 10))
		for _, side := range []int64{32, 40, 100, 224} {
			x := randn(t, 1, 3, side, side)
			var y *ts.Tensor
			var err error
			noGrad(func() { y, err = m.Forward(x, false) })
			if err != nil {
				t.Fatalf("%s at %d px: %v", v, side, err)
			}
			if got := y.MustSize(); !slices.Equal(got, []int64{1, 10}) {
				t.Errorf("%s at %d px: logits shape %v", v, side, got)
			}
			y.MustDrop()
			x.MustDrop()
		}
		bad := randn(t, 1, 1, 32, 32)
		if _, err := m.Forward(bad, false); err == nil || !strings.Contains(err.Error(), "input shape") {
			t.Errorf("one-channel input: %v", err)
		}
		bad.MustDrop()
	}
}

func TestDescribePlan(t *testing.T) {
	// 224 px: maps 56, 28, 14, 7; stages 0-2 windowed (M = 7), stage 3 global.
	in := Describe(preset(t, "swat", "tiny", 100), 224)
	wantMaps := [][2]int{{56, 56}, {28, 28}, {14, 14}, {7, 7}}
	wantGlobal := []bool{false, false, false, true}
	wantWindows := []int{64, 16, 4, 1}
	for s, st := range in.Stages {
		if st.Map != wantMaps[s] || st.Global != wantGlobal[s] || st.Windows != wantWindows[s] {
			t.Errorf("stage %d: map %v global %v windows %d", s, st.Map, st.Global, st.Windows)
		}
	}
	if in.Stages[2].ShiftedBlocks != 4 || in.Stages[2].Shift != 3 {
		t.Errorf("stage 2 of tiny: %d shifted blocks, shift %d; want 4 and 3", in.Stages[2].ShiftedBlocks, in.Stages[2].Shift)
	}
	// 32 px (CIFAR-10): maps 8, 4, 2, 1, all global.
	for s, st := range Describe(preset(t, "retention", "nano", 10), 32).Stages {
		if !st.Global || st.Map[0] != 8>>s {
			t.Errorf("32 px stage %d: map %v global %v", s, st.Map, st.Global)
		}
	}
	// 100 px: maps 25, 13, 7, 4; stage 0 padded to 28.
	st := Describe(preset(t, "swat", "nano", 10), 100).Stages[0]
	if st.Map != [2]int{25, 25} || st.Padded != [2]int{28, 28} || st.Windows != 16 {
		t.Errorf("100 px stage 0: %+v", st)
	}
	// The rmt baseline attends globally everywhere, with a full 2-D pass in stage 3.
	rmt := Describe(preset(t, "rmt", "tiny", 100), 224)
	if !rmt.Stages[0].Global || !rmt.Stages[3].Full2D || rmt.Stages[2].Full2D {
		t.Errorf("rmt plan: %+v", rmt.Stages)
	}
	// Hand count for nano's stem at 32 px: conv1 16x16x16x3x9 + conv2 16x16x16x16x9
	// + conv3 8x8x32x16x9 + conv4 8x8x32x32x9 multiply-accumulates.
	nano := Describe(preset(t, "swat", "nano", 10), 32)
	stem := int64(16*16*16*3*9 + 16*16*16*16*9 + 8*8*32*16*9 + 8*8*32*32*9)
	var stages int64
	for _, s := range nano.Stages {
		stages += s.MACs
	}
	head := int64(1*256*1024 + 1024*10)
	if nano.MACs != stem+stages+head {
		t.Errorf("MACs %d, want stem %d + stages %d + head %d", nano.MACs, stem, stages, head)
	}
}

// An evaluation forward under NoGrad returns logits without a graph (nothing
// for autograd to keep alive); with grad mode on the same call records one.
func TestEvalHoldsNoGraph(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c, err := PresetConfig("retention", "nano", 10)
	if err != nil {
		t.Fatal(err)
	}
	m, err := New(c, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	x := ts.MustRandn([]int64{2, 3, 32, 32}, gotch.Float, gotch.CPU)
	defer x.MustDrop()
	var y *ts.Tensor
	torch.NoGrad(func() { y, err = m.Forward(x, false) })
	if err != nil {
		t.Fatal(err)
	}
	if y.MustRequiresGrad() {
		t.Error("logits of an evaluation forward under NoGrad require grad: the forward recorded a graph")
	}
	y.MustDrop()
	y, err = m.Forward(x, false)
	if err != nil {
		t.Fatal(err)
	}
	if !y.MustRequiresGrad() {
		t.Error("logits with grad mode on do not require grad")
	}
	y.MustDrop()
}

// BenchmarkForward times an evaluation forward (224 px, batch 2: windowed,
// shifted, padded and global stages) and a training step (forward and
// backward, 64 px, batch 4) of nano for each variant.
func BenchmarkForward(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for _, v := range Variants {
		cfg, err := PresetConfig(v, "nano", 10)
		if err != nil {
			b.Fatal(err)
		}
		cfg.Depths = [4]int{2, 2, 2, 2}
		m, err := New(cfg, gotch.CPU)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(v+"/eval224", func(b *testing.B) {
			x := ts.MustRandn([]int64{2, 3, 224, 224}, gotch.Float, gotch.CPU)
			defer x.MustDrop()
			for i := 0; i < b.N; i++ {
				torch.NoGrad(func() {
					y, err := m.Forward(x, false)
					if err != nil {
						b.Fatal(err)
					}
					y.MustDrop()
				})
			}
		})
		b.Run(v+"/train64", func(b *testing.B) {
			x := ts.MustRandn([]int64{4, 3, 64, 64}, gotch.Float, gotch.CPU)
			defer x.MustDrop()
			for i := 0; i < b.N; i++ {
				y, err := m.Forward(x, true)
				if err != nil {
					b.Fatal(err)
				}
				loss := y.MustMean(gotch.Float, true)
				loss.MustBackward()
				loss.MustDrop()
				for _, p := range m.Trainable() {
					p.Tensor.ZeroGrad()
				}
			}
		})
		m.Close()
	}
}

// The decay, mask and RoPE tables belong to the stage (MODEL.md sections 4,
// 5, 7): one set per map size, an unshifted and a shifted pass set only
// where the stage is windowed and has a shifted block, shared by the blocks.
func TestTablesPerStage(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cfg := preset(t, "retention", "nano", 10)
	cfg.Depths = [4]int{2, 1, 2, 2}
	m := build(t, cfg)
	for _, side := range []int64{224, 224, 100} {
		x := randn(t, 1, 3, side, side)
		noGrad(func() {
			y, err := m.Forward(x, false)
			if err != nil {
				t.Fatal(err)
			}
			y.MustDrop()
		})
		x.MustDrop()
	}
	// 224 px: maps 56, 28, 14, 7; 100 px: 25, 13, 7, 4 (stage 0 windowed, the others global).
	for s, st := range m.stages {
		if len(st.tables) != 2 {
			t.Fatalf("stage %d: tables for %d map sizes, want 2 (224 and 100 px)", s, len(st.tables))
		}
		for size, tb := range st.tables {
			shifted := tb.passes[1] != nil
			if want := !tb.layout.Global && len(st.blocks) > 1; shifted != want {
				t.Errorf("stage %d on %v: shifted pass tables %v, want %v", s, size, shifted, want)
			}
			if tb.passes[0] == nil || tb.cos == nil {
				t.Errorf("stage %d on %v: no unshifted pass tables or RoPE table", s, size)
			}
			for i, b := range st.blocks {
				bt := tb.forBlock(b.plan)
				if wantShift := i % 2 * 3; !tb.layout.Global && bt.shift != wantShift || tb.layout.Global && bt.shift != 0 {
					t.Errorf("stage %d block %d on %v: shift %d", s, i, size, bt.shift)
				}
				if bt.pass != tb.passes[min(bt.shift, 1)] {
					t.Errorf("stage %d block %d on %v: not the stage's pass tables for its shift", s, i, size)
				}
			}
		}
	}
	m.Close()
	for s, st := range m.stages {
		if len(st.tables) != 0 {
			t.Errorf("stage %d keeps %d table sets after Close", s, len(st.tables))
		}
	}
}
