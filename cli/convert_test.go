package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gsrmt/gsrmt/checkpoints"
	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/sugarme/gotch"
)

// runConvertApp runs `gsrmt-cli convert args...` in-process and returns
// its error and standard output.
func runConvertApp(t *testing.T, args ...string) (error, string) {
	t.Helper()
	app := newApp()
	var out, errOut bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errOut
	err := app.Run(append([]string{"gsrmt-cli", "convert"}, args...))
	return err, out.String()
}

// convertTinyState is a small state_dict: convert --to state-dict needs no
// model config.
func convertTinyState(t *testing.T) *checkpoints.Dict {
	t.Helper()
	w, err := checkpoints.FromFloat32(checkpoints.Float32, []int64{2, 3}, []float32{1, 2, 3, 4, 5, 6})
	if err != nil {
		t.Fatal(err)
	}
	d := checkpoints.NewOrderedDict()
	d.Set("stem.conv1.weight", w)
	return d
}

// convert refuses to write over its input (a training checkpoint, which a
// bare state_dict would replace), by the same path or through a link, as a
// usage error naming both flags; the input is left as it was.
func TestConvertRefusesItsInput(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "last.pt")
	cfg, err := gsrmt.PresetConfig("swat", "nano", 10)
	if err != nil {
		t.Fatal(err)
	}
	m, err := gsrmt.New(cfg, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	err = checkpoints.SaveTraining(in, m, &checkpoints.TrainingState{Epoch: 2, Step: 40})
	m.Close()
	if err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	symlink, hardlink := filepath.Join(dir, "sym.pt"), filepath.Join(dir, "hard.pt")
	if err := os.Symlink("last.pt", symlink); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(in, hardlink); err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{
		"same path":    in,
		"another form": dir + "/./last.pt",
		"symlink":      symlink,
		"hard link":    hardlink,
	} {
		err, _ := runConvertApp(t, "--in", in, "--out", out, "--to", "state-dict")
		if now, err := os.ReadFile(in); err != nil || !bytes.Equal(now, orig) {
			t.Fatalf("%s: the input changed (%v)", name, err)
		}
		if !errors.As(err, new(usageError)) {
			t.Errorf("%s: error %v, want a usage error (exit 2)", name, err)
		} else if msg := err.Error(); !strings.Contains(msg, "--in "+in) || !strings.Contains(msg, "--out "+out) {
			t.Errorf("%s: error %q does not name --in and --out", name, msg)
		}
	}
	// Another file converts.
	other := filepath.Join(dir, "copy.pt")
	if err, out := runConvertApp(t, "--in", in, "--out", other, "--to", "state-dict"); err != nil || !strings.Contains(out, "wrote "+other) {
		t.Fatalf("convert to another file: %v\n%s", err, out)
	}
}

// A checkpoint whose config is beyond gsrmt's limits is refused before a
// model is built, with the file, the field, its value and the limit.
func TestConvertRefusesConfigBeyondLimits(t *testing.T) {
	cfg, err := gsrmt.PresetConfig("swat", "nano", 10)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Depths[2] = 300
	in := filepath.Join(t.TempDir(), "deep.pt")
	if err := checkpoints.SaveTraining(in, nil, &checkpoints.TrainingState{ModelConfig: cfg, Model: convertTinyState(t)}); err != nil {
		t.Fatal(err)
	}
	err, _ = runConvertApp(t, "--in", in, "--out", in+".safetensors")
	if err == nil || !strings.Contains(err.Error(), in) || !strings.Contains(err.Error(), "depths[2] = 300 is beyond the limit of 256") {
		t.Fatalf("error %v, want the file and depths[2] = 300 beyond 256", err)
	}
	if _, statErr := os.Stat(in + ".safetensors"); !os.IsNotExist(statErr) {
		t.Errorf("an output was written (%v)", statErr)
	}
}

// eval and predict (loadForInference) refuse a small file whose config
// describes a large model before building it: one line with the file and
// the element counts of both sides.
func TestInferenceRefusesConfigOfAnotherSize(t *testing.T) {
	cfg, err := gsrmt.PresetConfig("swat", "nano", 10)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Dims[3] = 4096 // about 160 M parameters, within the limits
	ckpt := filepath.Join(t.TempDir(), "wide.pt")
	if err := checkpoints.SaveTraining(ckpt, nil, &checkpoints.TrainingState{ModelConfig: cfg, Model: convertTinyState(t)}); err != nil {
		t.Fatal(err)
	}
	// predict checks that its inputs exist before it reads the checkpoint;
	// the image is never decoded.
	if err := os.WriteFile(ckpt+".png", nil, 0o644); err != nil {
		t.Fatal(err)
	}
	app := newApp()
	app.Writer, app.ErrWriter = new(bytes.Buffer), new(bytes.Buffer)
	err = app.Run([]string{"gsrmt-cli", "predict", "--checkpoint", ckpt, "--image", ckpt + ".png", "--device", "cpu"})
	var sme *checkpoints.StateMismatchError
	if !errors.As(err, &sme) || sme.StateElems != 6 || sme.ModelElems <= gsrmt.Describe(cfg, 224).Params {
		t.Fatalf("error %v, want a *checkpoints.StateMismatchError counting 6 elements in the file and more than %d in the model",
			err, gsrmt.Describe(cfg, 224).Params)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "--checkpoint "+ckpt+": ") || strings.Contains(msg, "\n") {
		t.Errorf("error %q: want one line that starts with --checkpoint and the file", msg)
	}
}
