package gsrmt

// Info describes a model for an input size without building it: parameter
// count, per-stage map sizes, the window plan and a compute estimate.
type Info struct {
	Variant    string      `json:"variant"`
	Preset     string      `json:"preset,omitempty"`
	Classes    int         `json:"classes"`
	ImageSize  int         `json:"img_size"`
	Params     int64       `json:"params"`
	MACs       int64       `json:"macs"`  // multiply-accumulates of one image's forward (convs, linears, attention products)
	FLOPs      int64       `json:"flops"` // 2 * MACs
	StemOutput [2]int      `json:"stem_map"`
	Stages     []StageInfo `json:"stages"`
}

// StageInfo is one stage's plan.
type StageInfo struct {
	Map           [2]int `json:"map"`    // h, w of the stage's feature map
	Dim           int    `json:"dim"`    // channels
	Heads         int    `json:"heads"`  // attention heads
	Blocks        int    `json:"blocks"` // depth
	Window        int    `json:"window"` // M, or 0 when the stage attends globally
	Global        bool   `json:"global"` // adaptive collapse (h or w < 2M), windows off, or RMT
	Full2D        bool   `json:"full_2d"`
	Padded        [2]int `json:"padded"`         // map padded to multiples of M (windowed stages)
	Windows       int    `json:"windows"`        // windows per image
	ShiftedBlocks int    `json:"shifted_blocks"` // blocks with a cyclic shift of M/2
	Shift         int    `json:"shift"`          // M/2 on odd blocks
	MACs          int64  `json:"macs"`
}

// counter sums the parameters and multiply-accumulates of the layers it
// is shown.
type counter struct{ params, macs int64 }

// conv is a k x k convolution with bias producing an h x w map.
func (c *counter) conv(cin, cout, k, groups, h, w int) {
	c.params += int64(cout*(cin/groups)*k*k + cout)
	c.macs += int64(h*w) * int64(cout*(cin/groups)*k*k)
}

// linear is a Linear with bias applied to tokens positions.
func (c *counter) linear(cin, cout, tokens int) {
	c.params += int64(cin*cout + cout)
	c.macs += int64(tokens) * int64(cin*cout)
}

// vectors counts n parameter vectors of ch channels (norm weight and bias,
// LayerScale ls1 and ls2).
func (c *counter) vectors(n, ch int) { c.params += int64(n * ch) }

// Describe plans cfg on square images of the given side (NewPlan, with each
// stage's Layout on its map).
func Describe(cfg Config, imgSize int) Info {
	p := NewPlan(cfg)
	in := Info{Variant: cfg.Variant, Preset: cfg.Preset, Classes: cfg.NumClasses, ImageSize: imgSize}
	stemMaps, maps := p.Maps(imgSize)
	var c counter
	for i, conv := range p.Stem {
		c.conv(conv.In, conv.Out, 3, 1, stemMaps[i][0], stemMaps[i][1])
		c.vectors(2, conv.Out) // BatchNorm weight, bias
	}
	in.StemOutput = stemMaps[3]
	for s, sp := range p.Stages {
		before := c.macs
		st := describeStage(&c, sp, maps[s])
		if sp.DownDim > 0 {
			next := maps[s+1]
			c.conv(sp.Dim, sp.DownDim, 3, 1, next[0], next[1])
			c.vectors(2, sp.DownDim)
		}
		st.MACs = c.macs - before
		in.Stages = append(in.Stages, st)
	}
	last := maps[3]
	c.linear(p.Stages[3].Dim, p.HeadHidden, last[0]*last[1])
	c.vectors(2, p.HeadHidden)
	c.linear(p.HeadHidden, p.NumClasses, 1)
	in.Params, in.MACs, in.FLOPs = c.params, c.macs, 2*c.macs
	return in
}

// describeStage counts the blocks of a stage on its h x w map and reports
// its layout.
func describeStage(c *counter, sp StagePlan, hw [2]int) StageInfo {
	h, w := hw[0], hw[1]
	l := sp.Layout(h, w)
	st := StageInfo{Map: hw, Dim: sp.Dim, Heads: sp.Heads, Blocks: len(sp.Blocks), Window: l.Window,
		Global: l.Global, Full2D: sp.Full2D, Padded: l.Padded, Windows: l.Windows}
	if !l.Global {
		st.Shift = l.Window / 2
	}
	for _, b := range sp.Blocks {
		if l.Shift(b) > 0 {
			st.ShiftedBlocks++
		}
	}
	C, n := sp.Dim, h*w
	for range sp.Blocks {
		if sp.LayerScale {
			c.vectors(2, C)
		}
		c.conv(C, C, 3, C, h, w) // cpe
		c.vectors(2, C)          // norm1
		for j := 0; j < 4; j++ {
			c.linear(C, C, n) // q, k, v, o
		}
		c.conv(C, C, 5, C, h, w) // lce
		if sp.ValueGate {
			c.linear(C, C, n)
		}
		if sp.GateWidth > 0 {
			c.linear(C, sp.GateWidth, n)
		}
		// Attention products: logits and weighted sums of both passes.
		switch {
		case sp.Full2D:
			c.macs += 2 * int64(n) * int64(n) * int64(C)
		case l.Global:
			c.macs += 2*int64(h)*int64(w)*int64(w)*int64(C) + 2*int64(w)*int64(h)*int64(h)*int64(C)
		default:
			c.macs += int64(l.Windows) * 4 * int64(l.Window*l.Window*l.Window) * int64(C)
		}
		c.vectors(2, C) // norm2
		c.linear(C, sp.Hidden, n)
		c.conv(sp.Hidden, sp.Hidden, 3, sp.Hidden, h, w)
		c.linear(sp.Hidden, C, n)
	}
	return st
}

// MinTrainBatch is the smallest training batch the model accepts on square
// images of the given side: 2 where the last stage's map is 1x1 (the head's
// BatchNorm then sees one value per channel from one image,
// ErrOneValuePerChannel), else 1.
func MinTrainBatch(cfg Config, imgSize int) int {
	if m := Describe(cfg, imgSize).Stages[3].Map; m[0]*m[1] == 1 {
		return 2
	}
	return 1
}
