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

// convOut is the output side of a 3x3 conv with padding 1 and the stride.
func convOut(n, stride int) int { return (n+2-3)/stride + 1 }

// Describe plans cfg on square images of the given side.
func Describe(cfg Config, imgSize int) Info {
	in := Info{Variant: cfg.Variant, Preset: cfg.Preset, Classes: cfg.NumClasses, ImageSize: imgSize}
	c0 := cfg.Dims[0]
	var params, macs int64
	conv := func(cin, cout, k, groups, h, w int) {
		params += int64(cout*(cin/groups)*k*k + cout)
		macs += int64(h*w) * int64(cout*(cin/groups)*k*k)
	}
	bn := func(c int) { params += int64(2 * c) }
	lin := func(cin, cout, tokens int) {
		params += int64(cin*cout + cout)
		macs += int64(tokens) * int64(cin*cout)
	}

	h, w := imgSize, imgSize
	chans := [4]int{c0 / 2, c0 / 2, c0, c0}
	strides := [4]int{2, 1, 2, 1}
	cin := cfg.InChans
	for i := 0; i < 4; i++ {
		h, w = convOut(h, strides[i]), convOut(w, strides[i])
		conv(cin, chans[i], 3, 1, h, w)
		bn(chans[i])
		cin = chans[i]
	}
	in.StemOutput = [2]int{h, w}

	for s := 0; s < 4; s++ {
		C, H := cfg.Dims[s], cfg.Heads[s]
		before := macs
		st := StageInfo{Map: [2]int{h, w}, Dim: C, Heads: H, Blocks: cfg.Depths[s]}
		st.Full2D = cfg.Variant == "rmt" && s == 3
		M := cfg.WindowSize
		st.Global = cfg.Variant == "rmt" || !cfg.Windows || h < 2*M || w < 2*M
		if !st.Global {
			st.Window = M
			st.Padded = [2]int{ceilDiv(h, M) * M, ceilDiv(w, M) * M}
			st.Windows = (st.Padded[0] / M) * (st.Padded[1] / M)
			st.ShiftedBlocks = cfg.Depths[s] / 2
			st.Shift = M / 2
		} else {
			st.Padded = [2]int{h, w}
			st.Windows = 1
		}
		hw := h * w
		hidden := int(cfg.MLPRatios[s] * float64(C))
		for i := 0; i < cfg.Depths[s]; i++ {
			if cfg.LayerScale[s] {
				params += int64(2 * C)
			}
			conv(C, C, 3, C, h, w) // cpe
			params += int64(2 * C) // norm1
			for j := 0; j < 4; j++ {
				lin(C, C, hw) // q, k, v, o
			}
			conv(C, C, 5, C, h, w) // lce
			switch {
			case cfg.Variant == "swat":
				lin(C, C, hw) // vgate
			case cfg.Variant == "retention" && cfg.Gate == "elementwise":
				lin(C, C, hw)
			case cfg.Variant == "retention" && cfg.Gate == "headwise":
				lin(C, H, hw)
			}
			// Attention products: logits and weighted sums of both passes.
			switch {
			case st.Full2D:
				macs += 2 * int64(hw) * int64(hw) * int64(C)
			case st.Global:
				macs += 2*int64(h)*int64(w)*int64(w)*int64(C) + 2*int64(w)*int64(h)*int64(h)*int64(C)
			default:
				macs += int64(st.Windows) * 4 * int64(M*M*M) * int64(C)
			}
			params += int64(2 * C) // norm2
			lin(C, hidden, hw)
			conv(hidden, hidden, 3, hidden, h, w)
			lin(hidden, C, hw)
		}
		if s < 3 {
			h, w = convOut(h, 2), convOut(w, 2)
			conv(C, cfg.Dims[s+1], 3, 1, h, w)
			bn(cfg.Dims[s+1])
		}
		st.MACs = macs - before
		in.Stages = append(in.Stages, st)
	}
	lin(cfg.Dims[3], cfg.HeadHidden, h*w)
	bn(cfg.HeadHidden)
	lin(cfg.HeadHidden, cfg.NumClasses, 1)
	in.Params, in.MACs, in.FLOPs = params, macs, 2*macs
	return in
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
