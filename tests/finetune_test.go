package tests

import (
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/gsrmt/gsrmt/checkpoints"
)

// makeClassFolder writes an ImageFolder of 32x32 PNGs with the given
// number of classes (class k: a flat colour of hue k), per split.
func makeClassFolder(t *testing.T, classes, perTrain, perTest int) string {
	t.Helper()
	dir := t.TempDir()
	for c := 0; c < classes; c++ {
		for split, n := range map[string]int{"train": perTrain, "test": perTest} {
			d := filepath.Join(dir, split, fmt.Sprintf("class%d", c))
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < n; i++ {
				img := image.NewRGBA(image.Rect(0, 0, 32, 32))
				for p := 0; p < 32*32; p++ {
					img.Set(p%32, p/32, color.RGBA{uint8(50 * c), uint8(255 - 50*c), uint8(20*i + p%7), 255})
				}
				writeImage(t, filepath.Join(d, fmt.Sprintf("%d.png", i)), img)
			}
		}
	}
	return dir
}

// finetuneArgs are the arguments of a short fine-tuning run: 5 classes of
// 4 training images, one epoch, a learning rate so small that the loaded
// weights stay what the file holds (to 1e-6).
func finetuneArgs(data, out, file string, extra ...string) []string {
	return append([]string{"train", "--finetune", file, "--dataset", "imagefolder", "--data-dir", data, "--img-size", "32",
		"--epochs", "1", "--batch-size", "10", "--lr", "1e-9", "--min-lr", "0", "--warmup-epochs", "0", "--mixup", "0", "--cutmix", "0",
		"--threads", "2", "--workers", "2", "--out", out}, extra...)
}

// readFinetuneReport reads config.json's "finetune_report" section.
func readFinetuneReport(t *testing.T, out string) checkpoints.FinetuneReport {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(out, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Finetune *checkpoints.FinetuneReport `json:"finetune_report"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil || cfg.Finetune == nil {
		t.Fatalf("config.json has no finetune report (%v):\n%s", err, raw)
	}
	return *cfg.Finetune
}

// stateOf reads the model weights of a .pt.
func stateOf(t *testing.T, path string) *checkpoints.Dict {
	t.Helper()
	ck, err := checkpoints.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return ck.State
}

// maxDiff is the largest difference between a tensor of two state_dicts.
func maxDiff(t *testing.T, a, b *checkpoints.Dict, name string) float64 {
	t.Helper()
	x, y := ckFloats(t, a, name), ckFloats(t, b, name)
	if len(x) != len(y) {
		t.Fatalf("%s: %d and %d values", name, len(x), len(y))
	}
	var d float64
	for i := range x {
		d = math.Max(d, math.Abs(float64(x[i]-y[i])))
	}
	return d
}

// A 10-class gsrmt checkpoint fine-tuned on a 5-class ImageFolder: the model
// is the one the file records, every tensor but the classifier starts from
// the file, the classifier is re-initialized, and config.json says so. A
// resumed run continues without loading the file again.
func TestFinetuneTenToFiveClasses(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	dir := t.TempDir()
	src := filepath.Join(dir, "ten.pt")
	if err := checkpoints.SaveTraining(src, ckModel(t, "swat", 10, 5), &checkpoints.TrainingState{}); err != nil {
		t.Fatal(err)
	}
	data := makeClassFolder(t, 5, 2, 1)
	out := filepath.Join(dir, "run")
	_, errOut, code := runCLI(t, finetuneArgs(data, out, src)...)
	if code != 0 {
		t.Fatalf("train --finetune exited %d:\n%s", code, errOut)
	}
	for _, want := range []string{"the model is the one " + src + " records (swat nano)",
		"re-initialized head.fc.bias, head.fc.weight: the file has 10 classes, the data 5"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("log lacks %q:\n%s", want, errOut)
		}
	}
	rep := readFinetuneReport(t, out)
	if rep.Source != src || rep.Kind != "gsrmt" || rep.Key != "model" || rep.FileClasses != 10 || rep.Classes != 5 ||
		strings.Join(rep.Reinitialized, ",") != "head.fc.bias,head.fc.weight" || len(rep.Skipped) != 2 {
		t.Errorf("report %+v", rep)
	}
	before, after := stateOf(t, src), stateOf(t, filepath.Join(out, "last.pt"))
	if len(rep.Loaded) != before.Len()-2 {
		t.Errorf("loaded %d of %d tensors", len(rep.Loaded), before.Len())
	}
	for _, name := range []string{"stem.conv1.weight", "stages.3.blocks.0.attn.q.weight", "head.proj.weight"} {
		if d := maxDiff(t, before, after, name); d > 1e-6 {
			t.Errorf("%s moved %g from the file's with lr 1e-9: not loaded", name, d)
		}
	}
	if w := ckFloats(t, after, "head.fc.weight"); len(w) != 5*1024 {
		t.Errorf("classifier of %d values, want 5 x 1024", len(w))
	}

	_, errOut, code = runCLI(t, "train", "--resume", filepath.Join(out, "last.pt"), "--finetune", src)
	if code != 2 || !strings.Contains(errOut, "resuming restores a run") {
		t.Errorf("--finetune with --resume: exit %d:\n%s", code, errOut)
	}
	_, errOut, code = runCLI(t, "train", "--resume", filepath.Join(out, "last.pt"), "--epochs", "2", "--threads", "2", "--workers", "2")
	if code != 0 || strings.Contains(errOut, "fine-tuning from") {
		t.Fatalf("resume exited %d (the file must not be loaded again):\n%s", code, errOut)
	}
	if rep2 := readFinetuneReport(t, out); rep2.Source != src || len(rep2.Reinitialized) != 2 {
		t.Errorf("the resumed run's config.json lost the report: %+v", rep2)
	}
	// --config of the fine-tuned run's config.json fine-tunes from the same
	// file again (the report itself is not a flag).
	again := filepath.Join(dir, "again")
	_, errOut, code = runCLI(t, "train", "--config", filepath.Join(out, "config.json"), "--out", again, "--epochs", "1")
	if code != 0 || !strings.Contains(errOut, "fine-tuning from "+src) {
		t.Fatalf("train --config of a fine-tuned run exited %d:\n%s", code, errOut)
	}
	if rep3 := readFinetuneReport(t, again); rep3.Source != src || rep3.Key != "model" {
		t.Errorf("--config run's report %+v", rep3)
	}
	// --overwrite would remove the file before it is read.
	_, errOut, code = runCLI(t, finetuneArgs(data, out, filepath.Join(out, "last.pt"), "--overwrite")...)
	if code != 2 || !strings.Contains(errOut, "--overwrite removes before the file is read") {
		t.Errorf("--finetune from --out with --overwrite: exit %d:\n%s", code, errOut)
	}
}

// A bare state_dict whose classifier has another class count, under the
// model flags, and with --key picking it out of a dict.
func TestFinetuneStateDictOtherHead(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	dir := t.TempDir()
	src := filepath.Join(dir, "state.pt")
	state := saveStateDict(t, src, ckModel(t, "retention", 7, 6))
	data := makeClassFolder(t, 5, 2, 1)
	out := filepath.Join(dir, "run")
	_, errOut, code := runCLI(t, finetuneArgs(data, out, src, "--variant", "retention", "--preset", "nano")...)
	if code != 0 {
		t.Fatalf("train --finetune exited %d:\n%s", code, errOut)
	}
	rep := readFinetuneReport(t, out)
	if rep.Kind != "state_dict" || rep.FileClasses != 7 || len(rep.Reinitialized) != 2 || len(rep.Loaded) != state.Len()-2 {
		t.Errorf("report %+v", rep)
	}
	if d := maxDiff(t, state, stateOf(t, filepath.Join(out, "last.pt")), "stages.0.blocks.0.attn.q.weight"); d > 1e-6 {
		t.Errorf("a block moved %g from the file's: not loaded", d)
	}

	// The same weights as the EMA of a dict, picked with --key.
	wrapped := filepath.Join(dir, "wrapped.pt")
	top := checkpoints.NewDict()
	top.Set("model", checkpoints.NewOrderedDict())
	top.Set("model_ema", state)
	top.Set("epoch", int64(3))
	if err := checkpoints.Save(wrapped, top); err != nil {
		t.Fatal(err)
	}
	out2 := filepath.Join(dir, "run2")
	_, errOut, code = runCLI(t, finetuneArgs(data, out2, wrapped, "--variant", "retention", "--key", "model_ema")...)
	if rep := readFinetuneReport(t, out2); code != 0 || rep.Key != "model_ema" || rep.Kind != "dict" || strings.Join(rep.Ignored, ",") != "model (dict of 0),epoch" {
		t.Errorf("--key model_ema: exit %d, report %+v:\n%s", code, rep, errOut)
	}
	_, errOut, code = runCLI(t, finetuneArgs(data, filepath.Join(dir, "run3"), wrapped, "--variant", "retention", "--key", "ema")...)
	if code != 2 || !strings.Contains(errOut, `no such entry "ema": the file's entries are model (dict of 0), model_ema (dict of`) {
		t.Errorf("--key of a missing entry: exit %d:\n%s", code, errOut)
	}
}

// A checkpoint whose block does not fit is refused, naming the tensor and
// both shapes, before anything is trained or written.
func TestFinetuneRefusesBlockMismatch(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	dir := t.TempDir()
	state, err := checkpoints.ModelStateDict(ckModel(t, "swat", 10, 7))
	if err != nil {
		t.Fatal(err)
	}
	const block = "stages.1.blocks.0.ffn.fc1.weight"
	wrong, err := checkpoints.FromFloat32(checkpoints.Float32, []int64{64, 64}, make([]float32, 64*64))
	if err != nil {
		t.Fatal(err)
	}
	state.Set(block, wrong)
	src := filepath.Join(dir, "state.pt")
	if err := checkpoints.Save(src, state); err != nil {
		t.Fatal(err)
	}
	data := makeClassFolder(t, 5, 2, 1)
	out := filepath.Join(dir, "run")
	_, errOut, code := runCLI(t, finetuneArgs(data, out, src, "--variant", "swat")...)
	if code != 1 || !strings.Contains(errOut, block+" (checkpoint [64 64], model [128 64])") {
		t.Fatalf("exit %d, want 1 and the tensor with both shapes:\n%s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(out, "last.pt")); err == nil {
		t.Error("a refused fine-tuning wrote last.pt")
	}
}
