// Package gsrmt implements the Gated-SwinRMT vision transformers of
// ../shared/spec/MODEL.md on libtorch through gotch: Gated-SwinRMT-SWAT,
// Gated-SwinRMT-Retention and the RMT baseline, with shifted windows and
// decomposed width/height retention. Parameter names follow the spec's
// section 9, so a state_dict maps one to one onto a PyTorch model built from
// the same spec (tests/reference/gsrmt_ref.py).
package gsrmt

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// Variants, gate modes and SWAT normalizations accepted by Config.
var (
	Variants  = []string{"swat", "retention", "rmt"}
	Gates     = []string{"elementwise", "headwise", "none"}
	SwatNorms = []string{"row", "none"}
	Presets   = []string{"nano", "tiny", "small", "paper"}
)

// MinImageSize and MaxImageSize bound the input side: below 8 pixels the
// stem's two stride-2 convolutions leave too small a map for the stages
// (training refuses it); above 1024 (4.6x the paper's 224) the attention
// maps of even the nano preset outgrow any batch's memory.
const (
	MinImageSize = 8
	MaxImageSize = 1024
)

// Config describes one model. Preset fills the architecture; every field can
// be overridden, and a full custom config loads from JSON (LoadConfig).
type Config struct {
	Variant    string     `json:"variant"`               // swat | retention | rmt
	Preset     string     `json:"preset,omitempty"`      // informational: the preset it started from
	Dims       [4]int     `json:"dims"`                  // channels per stage
	Depths     [4]int     `json:"depths"`                // blocks per stage
	Heads      [4]int     `json:"heads"`                 // attention heads per stage
	MLPRatios  [4]float64 `json:"mlp_ratios"`            // FFN hidden = ratio * C
	DropPath   float64    `json:"drop_path"`             // rate of the last block (linear from 0)
	LayerScale [4]bool    `json:"layerscale"`            // LayerScale vectors per stage
	WindowSize int        `json:"window_size"`           // M (default 7)
	Windows    bool       `json:"windows"`               // switch: shifted windows on (default) or always global
	RoPE       bool       `json:"rope"`                  // switch: RMT's theta_shift on q, k
	Gate       string     `json:"gate"`                  // retention's G1 gate: elementwise | headwise | none
	SwatNorm   string     `json:"swat_norm"`             // SWAT's normalization: row | none
	NumClasses int        `json:"num_classes"`           // classifier outputs
	InChans    int        `json:"in_chans"`              // input channels (3)
	ImageSize  int        `json:"image_size"`            // training/eval side (informational for the model)
	DecayA     [4]float64 `json:"decay_a"`               // a per stage (gamma_j = 1 - 2^(-a - r j / H))
	DecayR     [4]float64 `json:"decay_r"`               // r per stage
	HeadHidden int        `json:"head_hidden,omitempty"` // head projection width (1024)
}

// DefaultConfig returns the settings every preset shares (MODEL.md sections
// 3-8): window 7 with shifted windows, RoPE, the elementwise G1 gate, SWAT's
// row normalization, 3 input channels at 224 px, decay a = 2 and r = 4, 4, 6,
// 6 per stage, a 1024-wide head, and the swat variant. Its stage sizes and
// class count are zero: a preset (PresetConfig) or a full config supplies the
// sizes, the data set the classes.
func DefaultConfig() Config {
	return Config{
		Variant: "swat", WindowSize: 7, Windows: true, RoPE: true, Gate: "elementwise", SwatNorm: "row",
		InChans: 3, ImageSize: 224,
		DecayA: [4]float64{2, 2, 2, 2}, DecayR: [4]float64{4, 4, 6, 6}, HeadHidden: 1024,
	}
}

// PresetConfig returns the configuration of MODEL.md section 3 for a preset
// and variant, with the default switches.
func PresetConfig(variant, preset string, numClasses int) (Config, error) {
	c := DefaultConfig()
	c.Variant, c.Preset, c.NumClasses = variant, preset, numClasses
	switch preset {
	case "nano":
		c.Dims, c.Depths, c.Heads = [4]int{32, 64, 128, 256}, [4]int{1, 1, 1, 1}, [4]int{2, 2, 4, 8}
		c.MLPRatios, c.DropPath = [4]float64{2, 2, 2, 2}, 0
	case "tiny":
		c.Dims, c.Depths, c.Heads = [4]int{64, 128, 256, 512}, [4]int{2, 2, 8, 2}, [4]int{4, 4, 8, 16}
		c.MLPRatios, c.DropPath = [4]float64{3, 3, 3, 3}, 0.1
	case "small":
		c.Dims, c.Depths, c.Heads = [4]int{64, 128, 256, 512}, [4]int{3, 4, 18, 4}, [4]int{4, 4, 8, 16}
		c.MLPRatios, c.DropPath = [4]float64{4, 4, 3, 3}, 0.15
	case "paper":
		c.Dims, c.Depths, c.Heads = [4]int{112, 224, 448, 640}, [4]int{4, 4, 18, 4}, [4]int{7, 7, 14, 20}
		c.MLPRatios, c.DropPath = [4]float64{4, 4, 4, 4}, 0.3
		c.LayerScale = [4]bool{false, false, true, true}
	default:
		return Config{}, fmt.Errorf("preset %q: want one of %s", preset, strings.Join(Presets, ", "))
	}
	return c, c.Validate()
}

// DecodeConfig decodes a JSON model config and validates it. Fields it lacks
// take DefaultConfig's values, or, when it names a known "preset", that
// preset's (of its "variant"); an unknown preset name is kept as a label. In
// strict mode a field that Config does not have is an error.
func DecodeConfig(data []byte, strict bool) (Config, error) {
	var probe struct {
		Preset     string `json:"preset"`
		Variant    string `json:"variant"`
		NumClasses int    `json:"num_classes"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return Config{}, err
	}
	c := DefaultConfig()
	if probe.Preset != "" {
		if pc, err := PresetConfig(orDefault(probe.Variant, c.Variant), probe.Preset, max(probe.NumClasses, 1)); err == nil {
			c = pc
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(&c); err != nil {
		return Config{}, err
	}
	return c, c.Validate()
}

// LoadConfig reads a JSON model config file (DecodeConfig, strict).
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read model config: %w", err)
	}
	c, err := DecodeConfig(data, true)
	if err != nil {
		return Config{}, fmt.Errorf("model config %s: %w", path, err)
	}
	return c, nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func oneOf(field, v string, allowed []string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fmt.Errorf("%s %q: want one of %s", field, v, strings.Join(allowed, ", "))
}

// Validate checks every field and names the first one that is wrong.
func (c Config) Validate() error {
	if err := oneOf("variant", c.Variant, Variants); err != nil {
		return err
	}
	if err := oneOf("gate", c.Gate, Gates); err != nil {
		return err
	}
	if err := oneOf("swat_norm", c.SwatNorm, SwatNorms); err != nil {
		return err
	}
	for s := 0; s < 4; s++ {
		if c.Dims[s] < 1 {
			return fmt.Errorf("dims[%d] = %d: want a positive channel count", s, c.Dims[s])
		}
		if c.Depths[s] < 1 {
			return fmt.Errorf("depths[%d] = %d: every stage needs at least one block", s, c.Depths[s])
		}
		if c.Heads[s] < 1 {
			return fmt.Errorf("heads[%d] = %d: want at least one head", s, c.Heads[s])
		}
		if c.Dims[s]%c.Heads[s] != 0 {
			return fmt.Errorf("dims[%d] = %d is not divisible by heads[%d] = %d", s, c.Dims[s], s, c.Heads[s])
		}
		if (c.Dims[s]/c.Heads[s])%2 != 0 && c.RoPE {
			return fmt.Errorf("dims[%d]/heads[%d] = %d: RoPE needs an even head dimension (or rope off)", s, s, c.Dims[s]/c.Heads[s])
		}
		if c.MLPRatios[s] <= 0 || int(c.MLPRatios[s]*float64(c.Dims[s])) < 1 {
			return fmt.Errorf("mlp_ratios[%d] = %v: want a positive ratio", s, c.MLPRatios[s])
		}
		if c.DecayR[s] < 0 {
			return fmt.Errorf("decay_r[%d] = %v: want a non-negative value", s, c.DecayR[s])
		}
		if c.DecayA[s] <= 0 {
			return fmt.Errorf("decay_a[%d] = %v: want a positive value (gamma < 1)", s, c.DecayA[s])
		}
	}
	if c.DropPath < 0 || c.DropPath >= 1 {
		return fmt.Errorf("drop_path %v: want a rate in [0, 1)", c.DropPath)
	}
	if c.WindowSize < 1 {
		return fmt.Errorf("window_size %d: want a window of at least 1", c.WindowSize)
	}
	if c.NumClasses < 1 {
		return fmt.Errorf("num_classes %d: want at least 1 class", c.NumClasses)
	}
	if c.InChans < 1 {
		return fmt.Errorf("in_chans %d: want at least 1 input channel", c.InChans)
	}
	if c.HeadHidden < 1 {
		return fmt.Errorf("head_hidden %d: want a positive width", c.HeadHidden)
	}
	if c.ImageSize < 0 || c.ImageSize > MaxImageSize {
		return fmt.Errorf("image_size %d: want a side of 1 to %d pixels", c.ImageSize, MaxImageSize)
	}
	return nil
}
