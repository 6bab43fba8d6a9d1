package main

import (
	"fmt"
	"strings"

	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/urfave/cli/v2"
)

// modelFlags are the flags that choose and configure a model (CLI.md).
func modelFlags(classesDefault int) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "variant", Value: "swat", Usage: "model variant: swat, retention or rmt"},
		&cli.StringFlag{Name: "preset", Value: "nano", Usage: "architecture preset: nano, tiny, small or paper"},
		&cli.StringFlag{Name: "model-config", Usage: "JSON file with a full custom config (overrides --preset)"},
		&cli.IntFlag{Name: "classes", Value: classesDefault, Usage: "number of classes"},
		&cli.IntFlag{Name: "img-size", Value: 224, Usage: "input side in pixels"},
		&cli.IntFlag{Name: "window", Value: 7, Usage: "window size M"},
		&cli.BoolFlag{Name: "no-windows", Usage: "attend globally in every stage (ablation of the shifted windows)"},
		&cli.BoolFlag{Name: "rope", Value: true, Usage: "RoPE on q and k (--rope=false or --no-rope to turn off)"},
		&cli.BoolFlag{Name: "no-rope", Usage: "turn RoPE off"},
		&cli.StringFlag{Name: "gate", Value: "elementwise", Usage: "retention's G1 gate: elementwise, headwise or none"},
		&cli.StringFlag{Name: "swat-norm", Value: "row", Usage: "SWAT's output normalization: row or none"},
		&cli.Float64Flag{Name: "drop-path", Value: -1, Usage: "stochastic depth of the last block (default: the preset's)"},
	}
}

// configFromFlags builds and validates the model config the flags describe;
// every error names the flag.
func configFromFlags(c *cli.Context) (gsrmt.Config, error) {
	var cfg gsrmt.Config
	var err error
	if path := c.String("model-config"); path != "" {
		if cfg, err = gsrmt.LoadConfig(path); err != nil {
			return cfg, usagef("--model-config %s: %v", path, err)
		}
	} else {
		variant, preset := c.String("variant"), c.String("preset")
		if err := oneOfFlag("variant", variant, gsrmt.Variants); err != nil {
			return cfg, err
		}
		if err := oneOfFlag("preset", preset, gsrmt.Presets); err != nil {
			return cfg, err
		}
		if cfg, err = gsrmt.PresetConfig(variant, preset, 1); err != nil {
			return cfg, usagef("%v", err)
		}
	}
	if c.IsSet("classes") || c.String("model-config") == "" {
		if n := c.Int("classes"); n < 1 {
			return cfg, usagef("--classes %d: want at least 1 class", n)
		}
		cfg.NumClasses = c.Int("classes")
	}
	if err := checkImgSize(c); err != nil {
		return cfg, err
	}
	cfg.ImageSize = c.Int("img-size")
	if c.IsSet("window") || c.String("model-config") == "" {
		if n := c.Int("window"); n < 1 {
			return cfg, usagef("--window %d: want a window of at least 1", n)
		}
		cfg.WindowSize = c.Int("window")
	}
	if c.Bool("no-windows") {
		cfg.Windows = false
	}
	if c.Bool("no-rope") || (c.IsSet("rope") && !c.Bool("rope")) {
		cfg.RoPE = false
	}
	if c.IsSet("gate") || c.String("model-config") == "" {
		if err := oneOfFlag("gate", c.String("gate"), gsrmt.Gates); err != nil {
			return cfg, err
		}
		cfg.Gate = c.String("gate")
	}
	if c.IsSet("swat-norm") || c.String("model-config") == "" {
		if err := oneOfFlag("swat-norm", c.String("swat-norm"), gsrmt.SwatNorms); err != nil {
			return cfg, err
		}
		cfg.SwatNorm = c.String("swat-norm")
	}
	if c.IsSet("drop-path") {
		if d := c.Float64("drop-path"); d < 0 || d >= 1 {
			return cfg, usagef("--drop-path %v: want a rate in [0, 1)", d)
		}
		cfg.DropPath = c.Float64("drop-path")
	}
	if err := cfg.Validate(); err != nil {
		return cfg, usagef("model config: %v", err)
	}
	return cfg, nil
}

// checkImgSize refuses an --img-size outside the sides a model accepts.
func checkImgSize(c *cli.Context) error {
	if n := c.Int("img-size"); n < 1 || n > gsrmt.MaxImageSize {
		return usagef("--img-size %d: want a side of 1 to %d pixels", n, gsrmt.MaxImageSize)
	}
	return nil
}

func oneOfFlag(flag, v string, allowed []string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return usagef("--%s %q: accepted values are %s", flag, v, strings.Join(allowed, ", "))
}

func humanCount(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f G", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2f M", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f K", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}
