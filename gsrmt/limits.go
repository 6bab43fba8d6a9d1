package gsrmt

import (
	"errors"
	"fmt"
	"math"
)

// Ceilings of a config, checked by CheckLimits before anything is
// allocated (Validate bounds image_size by MaxImageSize). Each is far above
// the largest preset ("paper": dims up to 640, depths up to 18, 20 heads,
// 77 M parameters), so that only a corrupt or hostile config reaches one.
const (
	MaxDim        = 8192          // channels of a stage (dims[s]) and head_hidden
	MaxDepth      = 256           // blocks of a stage (depths[s])
	MaxHeads      = 1024          // attention heads of a stage (heads[s])
	MaxMLPRatio   = 64            // mlp_ratios[s]
	MaxWindowSize = 1024          // window_size
	MaxClasses    = 1_000_000     // num_classes
	MaxInChans    = 1024          // in_chans
	MaxParams     = 1_000_000_000 // trainable parameters: 3.7 GiB as float32
)

// ErrLimit is matched (errors.Is) by every *LimitError.
var ErrLimit = errors.New("model config beyond gsrmt's limits")

// LimitError is a config field whose value is beyond a ceiling (or not a
// finite number): CheckLimits refuses it before any tensor exists.
type LimitError struct {
	Field string // the JSON name, with the stage index: "depths[2]", or "parameters"
	Value string // the value as given
	Limit string // the ceiling and its unit
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%s = %s is beyond the limit of %s", e.Field, e.Value, e.Limit)
}

// Is makes errors.Is(err, ErrLimit) true.
func (e *LimitError) Is(target error) bool { return target == ErrLimit }

// CheckLimits validates cfg (Validate), then checks each size against the
// ceilings above and the parameter count (Describe, which allocates
// nothing) against MaxParams, so that a corrupt config is refused in
// microseconds instead of when libtorch runs out of memory. The error names
// the first field beyond its limit (a *LimitError) or the field Validate
// refuses.
func CheckLimits(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	type ceiling struct {
		field  string
		v, max int
		unit   string
	}
	ints := []ceiling{
		{"window_size", cfg.WindowSize, MaxWindowSize, "pixels"},
		{"num_classes", cfg.NumClasses, MaxClasses, "classes"},
		{"in_chans", cfg.InChans, MaxInChans, "channels"},
		{"head_hidden", cfg.HeadHidden, MaxDim, "channels"},
	}
	type number struct {
		field string
		v     float64
	}
	finite := []number{{"drop_path", cfg.DropPath}}
	for s := 0; s < 4; s++ {
		ints = append(ints,
			ceiling{fmt.Sprintf("dims[%d]", s), cfg.Dims[s], MaxDim, "channels"},
			ceiling{fmt.Sprintf("depths[%d]", s), cfg.Depths[s], MaxDepth, "blocks per stage"},
			ceiling{fmt.Sprintf("heads[%d]", s), cfg.Heads[s], MaxHeads, "heads"})
		if r := cfg.MLPRatios[s]; r > MaxMLPRatio {
			return &LimitError{Field: fmt.Sprintf("mlp_ratios[%d]", s), Value: fmt.Sprint(r), Limit: fmt.Sprint(MaxMLPRatio)}
		}
		finite = append(finite, number{fmt.Sprintf("decay_a[%d]", s), cfg.DecayA[s]},
			number{fmt.Sprintf("decay_r[%d]", s), cfg.DecayR[s]})
	}
	for _, c := range ints {
		if c.v > c.max {
			return &LimitError{Field: c.field, Value: fmt.Sprint(c.v), Limit: fmt.Sprintf("%d %s", c.max, c.unit)}
		}
	}
	for _, f := range finite {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return &LimitError{Field: f.field, Value: fmt.Sprint(f.v), Limit: "a finite number"}
		}
	}
	// With every size bounded, Describe's counts cannot overflow.
	if n := Describe(cfg, cfg.ImageSize).Params; n > MaxParams {
		return &LimitError{Field: "parameters", Value: fmt.Sprintf("%d (%s as float32)", n, limitBytes(4*n)),
			Limit: fmt.Sprintf("%d (%s)", int64(MaxParams), limitBytes(4*MaxParams))}
	}
	return nil
}

// limitBytes formats a byte count with a binary unit: "512 B", "3.7 GiB".
func limitBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, i := float64(n), -1
	for v >= unit && i < 5 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTPE"[i])
}

// StateEntry is one entry of a model's state_dict as StateShapes plans it.
type StateEntry struct {
	Name      string
	Shape     []int64 // empty for the 0-dim num_batches_tracked counters
	Trainable bool    // a parameter (not a BatchNorm buffer or counter)
	Counter   bool    // a num_batches_tracked counter (Param.Counter)
}

// StateShapes lists the state_dict a model of cfg has (New, then Params),
// names and shapes in the same order, from the plan New builds (NewPlan)
// and without allocating any tensor; the caller checks cfg first
// (CheckLimits), since the list grows with the depths.
func StateShapes(cfg Config) []StateEntry {
	var out []StateEntry
	add := func(name string, trainable bool, shape ...int64) {
		out = append(out, StateEntry{Name: name, Shape: append([]int64{}, shape...), Trainable: trainable})
	}
	conv := func(name string, in, o, k, groups int) {
		add(name+".weight", true, int64(o), int64(in/groups), int64(k), int64(k))
		add(name+".bias", true, int64(o))
	}
	bn := func(name string, c int) {
		add(name+".weight", true, int64(c))
		add(name+".bias", true, int64(c))
		add(name+".running_mean", false, int64(c))
		add(name+".running_var", false, int64(c))
		out = append(out, StateEntry{Name: name + ".num_batches_tracked", Shape: []int64{}, Counter: true})
	}
	lin := func(name string, in, o int) {
		add(name+".weight", true, int64(o), int64(in))
		add(name+".bias", true, int64(o))
	}
	norm := func(name string, c int) {
		add(name+".weight", true, int64(c))
		add(name+".bias", true, int64(c))
	}

	p := NewPlan(cfg)
	for i, c := range p.Stem {
		conv(fmt.Sprintf("stem.conv%d", i+1), c.In, c.Out, 3, 1)
		bn(fmt.Sprintf("stem.bn%d", i+1), c.Out)
	}
	for _, sp := range p.Stages {
		dim := sp.Dim
		for _, b := range sp.Blocks {
			if sp.LayerScale {
				add(b.Name+".ls1", true, int64(dim))
				add(b.Name+".ls2", true, int64(dim))
			}
			conv(b.Name+".cpe", dim, dim, 3, dim)
			norm(b.Name+".norm1", dim)
			for _, x := range []string{"q", "k", "v", "o"} {
				lin(b.Name+".attn."+x, dim, dim)
			}
			conv(b.Name+".attn.lce", dim, dim, 5, dim)
			if sp.ValueGate {
				lin(b.Name+".attn.vgate", dim, dim)
			}
			if sp.GateWidth > 0 {
				lin(b.Name+".attn.gate", dim, sp.GateWidth)
			}
			norm(b.Name+".norm2", dim)
			lin(b.Name+".ffn.fc1", dim, sp.Hidden)
			conv(b.Name+".ffn.dwconv", sp.Hidden, sp.Hidden, 3, sp.Hidden)
			lin(b.Name+".ffn.fc2", sp.Hidden, dim)
		}
		if sp.DownDim > 0 {
			conv(fmt.Sprintf("stages.%d.downsample.conv", sp.Index), dim, sp.DownDim, 3, 1)
			bn(fmt.Sprintf("stages.%d.downsample.bn", sp.Index), sp.DownDim)
		}
	}
	lin("head.proj", p.Stages[3].Dim, p.HeadHidden)
	bn("head.bn", p.HeadHidden)
	lin(Classifier, p.HeadHidden, p.NumClasses)
	return out
}
