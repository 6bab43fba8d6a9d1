package gsrmt

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// smallConfigs are cheap configs that cover every state entry StateShapes
// plans: each variant and gate, LayerScale, and uneven stages.
func smallConfigs(t *testing.T) []Config {
	t.Helper()
	var out []Config
	for _, c := range []struct{ variant, gate string }{{"swat", "elementwise"}, {"retention", "elementwise"},
		{"retention", "headwise"}, {"retention", "none"}, {"rmt", "elementwise"}} {
		cfg := preset(t, c.variant, "nano", 7)
		cfg.Gate = c.gate
		cfg.Dims, cfg.Depths, cfg.Heads = [4]int{8, 16, 16, 24}, [4]int{1, 2, 1, 1}, [4]int{2, 2, 4, 6}
		cfg.MLPRatios = [4]float64{2, 1.5, 3, 1}
		cfg.LayerScale = [4]bool{false, true, false, true}
		cfg.HeadHidden, cfg.InChans = 12, 2
		out = append(out, cfg)
	}
	return out
}

// StateShapes plans exactly the state a built model has: names, order and
// shapes of Params, and Describe's parameter count.
func TestStateShapesMatchModel(t *testing.T) {
	for _, cfg := range smallConfigs(t) {
		m := build(t, cfg)
		plan := StateShapes(cfg)
		params := m.Params()
		if len(plan) != len(params) {
			t.Errorf("%s/%s: StateShapes plans %d entries, the model has %d", cfg.Variant, cfg.Gate, len(plan), len(params))
		}
		var trainable int64
		for i, p := range params {
			if i < len(plan) {
				e := plan[i]
				if e.Name != p.Name || !slices.Equal(e.Shape, p.Tensor.MustSize()) || e.Trainable != p.Trainable {
					t.Errorf("%s/%s: entry %d planned as %s %v (trainable %v), model has %s %v (trainable %v)",
						cfg.Variant, cfg.Gate, i, e.Name, e.Shape, e.Trainable, p.Name, p.Tensor.MustSize(), p.Trainable)
				}
				if e.Trainable {
					n := int64(1)
					for _, d := range e.Shape {
						n *= d
					}
					trainable += n
				}
			}
			if strings.HasSuffix(p.Name, ".num_batches_tracked") {
				p.Tensor.MustDrop()
			}
		}
		if want := m.NumParams(); trainable != want || Describe(cfg, 32).Params != want {
			t.Errorf("%s/%s: planned %d trainable elements, Describe %d, model %d", cfg.Variant, cfg.Gate,
				trainable, Describe(cfg, 32).Params, want)
		}
		m.Close()
	}
}

func TestCheckLimits(t *testing.T) {
	for _, p := range Presets {
		for _, v := range Variants {
			if err := CheckLimits(preset(t, v, p, 1000)); err != nil {
				t.Errorf("%s %s: %v", v, p, err)
			}
		}
	}
	cases := []struct {
		name   string
		tweak  func(*Config)
		want   string // the field and value
		limits string // the limit
	}{
		{"depth", func(c *Config) { c.Depths[2] = 3000 }, "depths[2] = 3000", "256 blocks per stage"},
		{"dim", func(c *Config) { c.Dims[3] = 1 << 20; c.Heads[3] = 1 << 12 }, "dims[3] = 1048576", "8192 channels"},
		{"heads", func(c *Config) { c.Dims[1] = 4096; c.Heads[1] = 2048; c.RoPE = false }, "heads[1] = 2048", "1024 heads"},
		{"mlp ratio", func(c *Config) { c.MLPRatios[0] = 1e6 }, "mlp_ratios[0] = 1e+06", "64"},
		{"window", func(c *Config) { c.WindowSize = 5000 }, "window_size = 5000", "1024 pixels"},
		{"classes", func(c *Config) { c.NumClasses = 2_000_000 }, "num_classes = 2000000", "1000000 classes"},
		{"in_chans", func(c *Config) { c.InChans = 4096 }, "in_chans = 4096", "1024 channels"},
		{"head_hidden", func(c *Config) { c.HeadHidden = 1 << 16 }, "head_hidden = 65536", "8192 channels"},
		{"decay_a", func(c *Config) { c.DecayA[1] = math.Inf(1) }, "decay_a[1] = +Inf", "a finite number"},
		{"decay_r", func(c *Config) { c.DecayR[3] = math.NaN() }, "decay_r[3] = NaN", "a finite number"},
		// Every field within its ceiling, the whole beyond MaxParams: 4
		// stages of 8192 channels, 4 blocks each, hold about 14e9 parameters.
		{"parameters", func(c *Config) {
			c.Dims, c.Heads, c.Depths = [4]int{8192, 8192, 8192, 8192}, [4]int{64, 64, 64, 64}, [4]int{4, 4, 4, 4}
		}, "parameters = ", "1000000000 (3.7 GiB)"},
	}
	for _, c := range cases {
		cfg := preset(t, "swat", "nano", 10)
		c.tweak(&cfg)
		err := CheckLimits(cfg)
		var le *LimitError
		if !errors.As(err, &le) || !errors.Is(err, ErrLimit) {
			t.Errorf("%s: error %v, want a *LimitError", c.name, err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, c.want) || !strings.Contains(msg, c.limits) || strings.Contains(msg, "\n") {
			t.Errorf("%s: error %q, want %q and the limit %q on one line", c.name, msg, c.want, c.limits)
		}
	}
	// The parameter count in the message is Describe's.
	cfg := preset(t, "swat", "nano", 10)
	cfg.Dims, cfg.Heads, cfg.Depths = [4]int{8192, 8192, 8192, 8192}, [4]int{64, 64, 64, 64}, [4]int{4, 4, 4, 4}
	n := Describe(cfg, 224).Params
	if n <= MaxParams || !strings.Contains(CheckLimits(cfg).Error(), "parameters = "+strconv.FormatInt(n, 10)+" (") {
		t.Errorf("%d parameters: %v", n, CheckLimits(cfg))
	}
	// Validate's errors come first.
	cfg = preset(t, "swat", "nano", 10)
	cfg.Depths[0] = 0
	if err := CheckLimits(cfg); err == nil || errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), "depths[0] = 0") {
		t.Errorf("depths[0] = 0: %v", err)
	}
}
