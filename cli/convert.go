package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gsrmt/gsrmt/checkpoints"
	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/urfave/cli/v2"
)

// Output formats of `convert --to`.
var convertFormats = []string{"pt", "state-dict", "safetensors"}

// modelFlagNames are the flags of modelFlags: they describe the model of a
// bare state_dict.
var modelFlagNames = []string{"variant", "preset", "model-config", "classes", "img-size", "window",
	"no-windows", "rope", "no-rope", "gate", "swat-norm", "drop-path"}

func convertCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "in", Usage: "input: a .pt (gsrmt checkpoint, bare state_dict, or a dict holding one, as timm's, DeiT's and Swin's scripts write) or a .safetensors file"},
		&cli.StringFlag{Name: "out", Usage: "output file (written atomically)"},
		&cli.StringFlag{Name: "to", Usage: "output format: pt, state-dict or safetensors (default: safetensors for a .safetensors --out; otherwise pt when a model config is known, else state-dict)"},
		&cli.BoolFlag{Name: "ema", Usage: "convert the EMA weights of a gsrmt training checkpoint instead of the model's"},
		&cli.BoolFlag{Name: "json", Usage: `print one JSON object: {"in", "in_kind", "key", "ignored", "out", "format", "tensors", "elements", "ema", "prefix_removed", "model"}`},
		keyFlag(),
	}
	return &cli.Command{
		Name:      "convert",
		Usage:     "convert weights between gsrmt checkpoints, bare PyTorch state_dicts and safetensors",
		UsageText: "gsrmt-cli convert --in FILE --out FILE [--to pt|state-dict|safetensors] [--ema] [model flags for a bare state_dict]",
		Description: `Output formats (--to):
   pt           gsrmt checkpoint (format gsrmt-checkpoint-v1): "model" (the state_dict) and "config", plus
                epoch, step, metrics and the config's normalization/data set entries when the input has them;
                no optimizer, scheduler, EMA or RNG state. Needs a model config: the input's, or the model
                flags (--variant, --preset, --classes, --img-size, ... or --model-config) for a bare state_dict.
   state-dict   bare state_dict, as torch.save(model.state_dict(), path) writes; PyTorch reads it with
                torch.load(path, weights_only=True) and load_state_dict(strict=True).
   safetensors  the state_dict in the safetensors format, with the model config JSON in the metadata
                ("config") when one is known.
When a model config is known, the weights are checked against it (every name and shape, as a strict
load, and gsrmt's size limits) before anything is written. --out must not be the --in file (same path
or a link to it). A "module." (DataParallel) or "_orig_mod." (torch.compile) prefix on every key is
removed. Tensors keep their dtype. --classes defaults to the rows of head.fc.weight.

Examples:
   gsrmt-cli convert --in runs/cifar/best.pt --out best.safetensors
   gsrmt-cli convert --in runs/cifar/last.pt --out ema.pt --to state-dict --ema
   gsrmt-cli convert --in torch_state_dict.pt --out gsrmt.pt --variant swat --preset nano --classes 10 --img-size 32
   gsrmt-cli convert --in model.safetensors --out model.pt --to state-dict
   gsrmt-cli convert --in timm_checkpoint.pth.tar --key state_dict_ema --out ema.safetensors \
       --variant swat --preset tiny --img-size 224`,
		Flags:  append(flags, modelFlags(100)...),
		Action: runConvert,
	}
}

func runConvert(c *cli.Context) error {
	job, err := parseConvert(c)
	if err != nil {
		return err
	}
	res, err := job.run(c)
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return json.NewEncoder(c.App.Writer).Encode(job.reportJSON(res))
	}
	job.report(c.App.Writer, res)
	return nil
}

// convertJob is a parsed `convert` command.
type convertJob struct {
	in, out   string
	to        string // --to; "" when not given (run chooses)
	ema       bool   // convert the EMA weights
	modelFlag string // the first model flag given, if any
}

// convertResult is what a conversion read and wrote.
type convertResult struct {
	ck     *checkpoints.Checkpoint
	state  *checkpoints.Dict // the weights written
	prefix string            // removed from every key
	cfg    *gsrmt.Config     // the model config, when known
	to     string            // the format written
}

// parseConvert checks the flags of `convert`.
func parseConvert(c *cli.Context) (*convertJob, error) {
	if c.NArg() > 0 {
		return nil, usagef("convert takes no arguments, got %q (use --in and --out)", c.Args().Slice())
	}
	j := &convertJob{in: c.String("in"), out: c.String("out"), ema: c.Bool("ema")}
	if j.in == "" {
		return nil, usagef("convert: --in is required: the checkpoint to convert")
	}
	if j.out == "" {
		return nil, usagef("convert: --out is required: the file to write")
	}
	if err := distinctFiles(j.in, j.out); err != nil {
		return nil, err
	}
	if j.ema && c.IsSet("key") {
		return nil, usagef("convert: --ema and --key %q: give one (--ema is --key ema of a gsrmt checkpoint)", c.String("key"))
	}
	if c.IsSet("to") {
		j.to = c.String("to")
		if err := oneOfFlag("to", j.to, convertFormats); err != nil {
			return nil, err
		}
	}
	for _, name := range modelFlagNames {
		if c.IsSet(name) {
			j.modelFlag = name
			break
		}
	}
	return j, nil
}

// run reads --in, checks the weights against the model config when one is
// known, and writes --out.
func (j *convertJob) run(c *cli.Context) (*convertResult, error) {
	ck, err := openWeights(c, j.in)
	if err != nil {
		return nil, err
	}
	res := &convertResult{ck: ck, state: ck.State, to: j.to}
	if j.ema {
		if ck.Training == nil || ck.Training.EMA == nil {
			return nil, fmt.Errorf("convert: --ema: %s holds no EMA weights (%s file)", j.in, ck.Kind)
		}
		res.state = ck.Training.EMA
	}
	res.state, res.prefix = checkpoints.StripPrefix(res.state)
	if res.cfg, err = j.modelConfig(c, ck, res.state); err != nil {
		return nil, err
	}
	if res.to == "" {
		switch {
		case strings.EqualFold(filepath.Ext(j.out), ".safetensors"):
			res.to = "safetensors"
		case res.cfg != nil:
			res.to = "pt"
		default:
			res.to = "state-dict"
		}
	}
	if res.to == "pt" && res.cfg == nil {
		return nil, usagef("convert --to pt: %s is a %s without a model config: give the model flags (--variant, --preset, --classes, --img-size, or --model-config), or --to state-dict", j.in, ck.Kind)
	}
	if res.cfg != nil {
		if err := checkpoints.CheckModelState(*res.cfg, res.state); err != nil {
			return nil, fmt.Errorf("convert: %s: %w", j.in, err)
		}
	}
	return res, j.write(res)
}

// modelConfig is the input's model config, or for a bare state_dict the
// one the model flags describe (nil without either); --classes defaults to
// the rows of head.fc.weight.
func (j *convertJob) modelConfig(c *cli.Context, ck *checkpoints.Checkpoint, state *checkpoints.Dict) (*gsrmt.Config, error) {
	switch {
	case ck.Config != nil && j.modelFlag != "":
		return nil, usagef("convert: --%s: %s already records a model config; the model flags apply only to a bare state_dict", j.modelFlag, j.in)
	case ck.Config != nil || j.modelFlag == "":
		return ck.Config, nil
	}
	fc, err := configFromFlags(c)
	if err != nil {
		return nil, err
	}
	if !c.IsSet("classes") && !c.IsSet("model-config") {
		if v, ok := state.Get(gsrmt.Classifier + ".weight"); ok {
			if t, ok := v.(*checkpoints.Tensor); ok && len(t.Shape) == 2 {
				fc.NumClasses = int(t.Shape[0])
			}
		}
	}
	return &fc, nil
}

// write writes the weights in the chosen format: a "pt" keeps the input's
// run description, config entries, epoch, step, metrics and position.
func (j *convertJob) write(res *convertResult) error {
	ck := res.ck
	switch res.to {
	case "pt":
		st := &checkpoints.TrainingState{ModelConfig: *res.cfg, Run: ck.Run, ConfigExtra: ck.ConfigExtra, Model: res.state}
		if tr := ck.Training; tr != nil {
			st.Epoch, st.Step, st.Metrics, st.Position, st.Epochs = tr.Epoch, tr.Step, tr.Metrics, tr.Position, tr.Epochs
		}
		return checkpoints.SaveTraining(j.out, nil, st)
	case "state-dict":
		return checkpoints.Save(j.out, res.state)
	}
	return checkpoints.SaveStateSafetensors(j.out, res.state, res.cfg, ck.Run, ck.ConfigExtra)
}

// report says what was read, checked and written.
func (j *convertJob) report(w io.Writer, res *convertResult) {
	elems := res.elements()
	what := "weights"
	if j.ema {
		what = "EMA weights"
	}
	fmt.Fprintf(w, "read  %s (%s): %s, %d tensors, %s elements\n", j.in, res.ck.Kind, what, res.state.Len(), humanCount(elems))
	if res.prefix != "" {
		fmt.Fprintf(w, "      removed the %q prefix from every key\n", res.prefix)
	}
	if cfg := res.cfg; cfg != nil {
		name := cfg.Preset
		if name == "" {
			name = "custom"
		}
		fmt.Fprintf(w, "model %s %s, %d classes, %d px: every name and shape checked\n", cfg.Variant, name, cfg.NumClasses, cfg.ImageSize)
	}
	how := ""
	if j.to == "" {
		how = " (chosen from --out; set --to to change)"
	}
	fmt.Fprintf(w, "wrote %s (%s)%s\n", j.out, res.to, how)
}

// elements counts the elements of the tensors written.
func (res *convertResult) elements() int64 {
	var n int64
	for _, e := range res.state.Entries() {
		if t, ok := e.Value.(*checkpoints.Tensor); ok {
			n += t.Numel()
		}
	}
	return n
}

// reportJSON is convert --json's object; "model" is the config when known.
func (j *convertJob) reportJSON(res *convertResult) map[string]any {
	out := map[string]any{"in": j.in, "in_kind": res.ck.Kind, "key": res.ck.Key, "ignored": res.ck.Ignored, "out": j.out, "format": res.to,
		"tensors": res.state.Len(), "elements": res.elements(), "ema": j.ema, "prefix_removed": res.prefix}
	if res.cfg != nil {
		out["model"] = res.cfg
	}
	return out
}

// distinctFiles refuses an --out that is the --in file (the same path, or
// the same file through a symbolic or hard link): convert drops the
// optimizer, scheduler, EMA and RNG state, so writing over the input would
// lose them.
func distinctFiles(in, out string) error {
	refuse := func() error {
		return usagef("convert: --out %s is the same file as --in %s: write the converted checkpoint to another path (convert drops the optimizer and EMA state, so it never rewrites its input)", out, in)
	}
	if filepath.Clean(in) == filepath.Clean(out) {
		return refuse()
	}
	fo, err := os.Stat(out)
	if err != nil {
		return nil // no such file yet (or unreadable: the write reports it)
	}
	fi, err := os.Stat(in)
	if err != nil {
		return nil // reading --in reports it
	}
	if os.SameFile(fi, fo) {
		return refuse()
	}
	return nil
}
