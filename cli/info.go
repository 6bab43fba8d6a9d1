package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/urfave/cli/v2"
)

func infoCommand() *cli.Command {
	return &cli.Command{
		Name:  "info",
		Usage: "show a model's parameter count, per-stage maps, window plan and compute for an image size",
		Description: `Plans the model without building it: parameters, each stage's map size, whether it
attends in (shifted) windows or globally, and an estimate of the multiply-accumulates (MACs) of one
image's forward pass (convolutions, linear layers and the attention products; FLOPs = 2 x MACs).

Examples:
   gsrmt-cli info --variant swat --preset nano --classes 10 --img-size 32
   gsrmt-cli info --variant retention --preset paper --classes 100 --img-size 224 --json
   gsrmt-cli info --model-config my-model.json --img-size 240`,
		Flags: append(modelFlags(100), &cli.BoolFlag{Name: "json", Usage: "print one JSON object"}),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("info takes no arguments, got %q", c.Args().Slice())
			}
			cfg, err := configFromFlags(c)
			if err != nil {
				return err
			}
			in := gsrmt.Describe(cfg, cfg.ImageSize)
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(in)
			}
			writeInfo(c.App.Writer, cfg, in)
			return nil
		},
	}
}

func writeInfo(w io.Writer, cfg gsrmt.Config, in gsrmt.Info) {
	name := cfg.Preset
	if name == "" {
		name = "custom"
	}
	fmt.Fprintf(w, "model:       %s %s, %d classes, %d x %d input\n", cfg.Variant, name, cfg.NumClasses, in.ImageSize, in.ImageSize)
	fmt.Fprintf(w, "parameters:  %d (%s)\n", in.Params, humanCount(in.Params))
	fmt.Fprintf(w, "compute:     %s MACs, %s FLOPs per image\n", humanCount(in.MACs), humanCount(in.FLOPs))
	fmt.Fprintf(w, "stem:        %d x %d map\n", in.StemOutput[0], in.StemOutput[1])
	fmt.Fprintf(w, "%-6s %-9s %-5s %-6s %-7s %-34s %s\n", "stage", "map", "dim", "heads", "blocks", "attention", "MACs")
	for s, st := range in.Stages {
		plan := "global (map < 2M)"
		switch {
		case st.Full2D:
			plan = "global, full 2-D Manhattan pass"
		case cfg.Variant == "rmt":
			plan = "global, decomposed passes"
		case !cfg.Windows:
			plan = "global (windows off)"
		case !st.Global:
			plan = fmt.Sprintf("%d windows of %dx%d", st.Windows, st.Window, st.Window)
			if st.Padded != st.Map {
				plan += fmt.Sprintf(", padded to %dx%d", st.Padded[0], st.Padded[1])
			}
			if st.ShiftedBlocks > 0 {
				plan += fmt.Sprintf(", %d shifted by %d", st.ShiftedBlocks, st.Shift)
			}
		}
		fmt.Fprintf(w, "%-6d %-9s %-5d %-6d %-7d %-34s %s\n", s, fmt.Sprintf("%dx%d", st.Map[0], st.Map[1]),
			st.Dim, st.Heads, st.Blocks, plan, humanCount(st.MACs))
	}
}
