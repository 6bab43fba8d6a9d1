package tests

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/gsrmt/gsrmt/checkpoints"
)

// csvFloat reads a metrics.csv cell; empty (not measured) is ok = false.
func csvFloat(t *testing.T, rows [][]string, r int, col string) (float64, bool) {
	t.Helper()
	c := slices.Index(rows[0], col)
	if c < 0 {
		t.Fatalf("metrics.csv has no column %s: %v", col, rows[0])
	}
	if rows[r][c] == "" {
		return 0, false
	}
	v, err := strconv.ParseFloat(rows[r][c], 64)
	if err != nil {
		t.Fatalf("metrics.csv row %d %s: %v", r, col, err)
	}
	return v, true
}

// sameWeights reports whether two state_dicts hold the same bytes.
func sameWeights(t *testing.T, a, b *checkpoints.Dict) bool {
	t.Helper()
	ea, eb := a.Entries(), b.Entries()
	if len(ea) != len(eb) {
		return false
	}
	for i := range ea {
		ta, _ := ea[i].Value.(*checkpoints.Tensor)
		tb, _ := eb[i].Value.(*checkpoints.Tensor)
		if ta == nil || tb == nil || ea[i].Key != eb[i].Key {
			return false
		}
		ba, err1 := ta.Bytes()
		bb, err2 := tb.Bytes()
		if err1 != nil || err2 != nil || !bytes.Equal(ba, bb) {
			return false
		}
	}
	return true
}

// train --val-split 0.25 --ema: the epochs report the validation split of
// the model and its EMA, best.pt and the --keep-checkpoints history follow
// the better of the two there, the test split is measured at the end, and
// config.json, --json and best.pt say which split and weights chose it. A
// resumed run draws the same split.
func TestCLIValSplitSelection(t *testing.T) {
	data := makeImageFolder(t, 8, 4) // 3 classes: 8 training images each, 2 of them held out
	out := filepath.Join(t.TempDir(), "run")
	sel := []string{"--val-split", "0.25", "--ema", "0.5"}
	js, errOut, code := runCLI(t, trainArgs(data, out, append(sel, "--epochs", "2", "--keep-checkpoints", "1", "--json")...)...)
	if code != 0 {
		t.Fatalf("train exited %d:\n%s", code, errOut)
	}
	rows := readCSV(t, filepath.Join(out, "metrics.csv"))
	if len(rows) != 3 {
		t.Fatalf("metrics.csv has %d rows, want a header and 2 epochs", len(rows))
	}
	// The best by the rule, worked out from metrics.csv: the better of the
	// model's and the EMA's val top-1 (the model's on a tie), strictly above
	// the best so far.
	bestEpoch, bestSource, best := 0, "", -1.0
	for r := 1; r <= 2; r++ {
		val, ok1 := csvFloat(t, rows, r, "val_top1")
		ema, ok2 := csvFloat(t, rows, r, "ema_val_top1")
		if _, ok := csvFloat(t, rows, r, "ema_val_loss"); !ok1 || !ok2 || !ok {
			t.Fatalf("epoch %d: the validation columns of the model and the EMA are not all filled: %v", r, rows[r])
		}
		top1, source := val, "model"
		if ema > val {
			top1, source = ema, "ema"
		}
		if top1 > best+1e-6 { // metrics.csv holds 8 digits
			bestEpoch, bestSource, best = r, source, top1
		}
	}
	if _, ok := csvFloat(t, rows, 1, "test_top1"); ok {
		t.Errorf("epoch 1 evaluated the test split: %v", rows[1])
	}
	for _, col := range []string{"test_top1", "test_loss", "ema_test_top1", "ema_test_top5"} {
		if _, ok := csvFloat(t, rows, 2, col); !ok {
			t.Errorf("the last epoch has no %s (the test split is measured at the end): %v", col, rows[2])
		}
	}
	cfg := readJSON(t, filepath.Join(out, "config.json"))
	b, _ := cfg["best"].(map[string]any)
	if cfg["select_on"] != "val" || b == nil || b["split"] != "val" || b["epoch"] != float64(bestEpoch) || b["source"] != bestSource || math.Abs(b["top1"].(float64)-best) > 1e-5 {
		t.Errorf("config.json select_on %v, best %v; want val, epoch %d from the %s at %v", cfg["select_on"], b, bestEpoch, bestSource, best)
	}
	if cfg["train_images"] != 18.0 || cfg["val_images"] != 6.0 || cfg["test_images"] != 12.0 || cfg["best_test"] == nil {
		t.Errorf("config.json: %v train, %v val, %v test images, best_test %v; want 18, 6, 12 and a result", cfg["train_images"], cfg["val_images"], cfg["test_images"], cfg["best_test"])
	}
	var rep struct {
		Best     map[string]any `json:"best"`
		BestTest map[string]any `json:"best_test"`
	}
	if err := json.Unmarshal([]byte(js), &rep); err != nil || rep.Best["source"] != bestSource || rep.Best["split"] != "val" || rep.BestTest["top1"] == nil {
		t.Errorf("--json %q (%v): want best from the %s on val and best_test", js, err, bestSource)
	}
	st, err := checkpoints.LoadTraining(filepath.Join(out, "best.pt"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Run == nil || st.Run.Weights != bestSource || st.Metrics["best_source"] != bestSource || st.Metrics["select_on"] != "val" {
		t.Errorf("best.pt says weights %v, best_source %v, select_on %v; want %s, %s, val", st.Run, st.Metrics["best_source"], st.Metrics["select_on"], bestSource, bestSource)
	}
	if same := sameWeights(t, st.Model, st.EMA); same != (bestSource == "ema") {
		t.Errorf("best.pt chosen from the %s: its model entry equals its EMA entry: %v", bestSource, same)
	}
	hist, _ := filepath.Glob(filepath.Join(out, "checkpoint-*.pt"))
	if want := filepath.Join(out, "checkpoint-"+strconv.Itoa(bestEpoch)+".pt"); len(hist) != 1 || hist[0] != want {
		t.Errorf("--keep-checkpoints 1 kept %v, want %s (best.pt's epoch)", hist, want)
	}
	if bestSource == "ema" {
		_, errOut, code := runCLI(t, "train", "--resume", filepath.Join(out, "best.pt"), "--out", filepath.Join(t.TempDir(), "r"), "--epochs", "3")
		if code != 1 || !strings.Contains(errOut, "resume from the run's last.pt") {
			t.Errorf("resuming from a best.pt that holds the EMA's weights: exit %d:\n%s", code, errOut)
		}
	}

	// The same run dies in epoch 2 (after step 3 of 2 per epoch) and
	// resumes from epoch 1's last.pt: the same split, so the same numbers.
	out2 := filepath.Join(t.TempDir(), "run")
	cmd := exec.Command(gsrmtCLI(t), trainArgs(data, out2, append(sel, "--epochs", "2")...)...)
	cmd.Env = append(os.Environ(), "GSRMT_FAULT_EXIT_AFTER_STEP=3")
	if b, err := cmd.CombinedOutput(); cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 3 {
		t.Fatalf("the run meant to die after step 3: %v\n%s", err, b)
	}
	if _, errOut, code := runCLI(t, "train", "--resume", filepath.Join(out2, "last.pt"), "--threads", "1", "--workers", "1"); code != 0 {
		t.Fatalf("resume exited %d:\n%s", code, errOut)
	}
	rows2 := readCSV(t, filepath.Join(out2, "metrics.csv"))
	for _, col := range []string{"val_loss", "val_top1", "ema_val_loss", "test_loss"} {
		a, _ := csvFloat(t, rows, 2, col)
		b, _ := csvFloat(t, rows2, 2, col)
		if a != b {
			t.Errorf("epoch 2's %s: %v uninterrupted, %v resumed", col, a, b)
		}
	}
	if cfg2 := readJSON(t, filepath.Join(out2, "config.json")); cfg2["val_split_rule"] != cfg["val_split_rule"] || cfg2["val_images"] != 6.0 {
		t.Errorf("resumed config.json: %v, %v val images", cfg2["val_split_rule"], cfg2["val_images"])
	}
}

// --select-on val needs a validation split (usage error); a data set
// without a val/ folder has no split of its own (runtime error).
func TestCLISelectOnFlags(t *testing.T) {
	data := makeImageFolder(t, 4, 2)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--select-on", "val"}, 2, "--val-split"},
		{[]string{"--val-split", "1.5"}, 2, "--val-split"},
		{[]string{"--val-split", "dataset"}, 1, "no val split of its own"},
	} {
		_, errOut, code := runCLI(t, trainArgs(data, filepath.Join(t.TempDir(), "run"), c.args...)...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, want %d with %q:\n%s", c.args, code, c.code, c.want, errOut)
		}
	}
}

// --val-split dataset uses the data set's own val/ folder, whole.
func TestCLIValSplitDataset(t *testing.T) {
	data := makeImageFolder(t, 4, 2)
	if err := os.CopyFS(filepath.Join(data, "val"), os.DirFS(filepath.Join(data, "test"))); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "run")
	if _, errOut, code := runCLI(t, trainArgs(data, out, "--val-split", "dataset")...); code != 0 {
		t.Fatalf("train exited %d:\n%s", code, errOut)
	}
	cfg := readJSON(t, filepath.Join(out, "config.json"))
	if cfg["train_images"] != 12.0 || cfg["val_images"] != 6.0 || cfg["val_split_rule"] != "the data set's own val split" || cfg["select_on"] != "val" {
		t.Errorf("config.json: %v train, %v val images, rule %v, select_on %v; want 12, 6, the data set's own, val",
			cfg["train_images"], cfg["val_images"], cfg["val_split_rule"], cfg["select_on"])
	}
}

// Two ranks evaluate the validation split in shards each epoch and best.pt
// on the test split at the end (every rank reads it): best.pt's test
// result equals one process's evaluation of the same file.
func TestDistributedValSplit(t *testing.T) {
	data := makeImageFolder(t, 8, 7) // 21 test images: not a multiple of 2
	out := filepath.Join(t.TempDir(), "run")
	if _, errOut, code := runCLI(t, distArgs(data, out, "--nproc", "2", "--val-split", "0.25", "--ema", "0.5")...); code != 0 {
		t.Fatalf("train --nproc 2 exited %d:\n%s", code, errOut)
	}
	cfg := readJSON(t, filepath.Join(out, "config.json"))
	bt, _ := cfg["best_test"].(map[string]any)
	if cfg["world_size"] != 2.0 || cfg["val_images"] != 6.0 || bt == nil || bt["images"] != 21.0 {
		t.Fatalf("config.json: world_size %v, val_images %v, best_test %v", cfg["world_size"], cfg["val_images"], bt)
	}
	js, errOut, code := runCLI(t, "eval", "--checkpoint", filepath.Join(out, "best.pt"), "--json", "--batch-size", "5")
	if code != 0 {
		t.Fatalf("eval exited %d: %s", code, errOut)
	}
	var ev struct{ Top1, Loss float64 }
	if err := json.Unmarshal([]byte(js), &ev); err != nil {
		t.Fatalf("eval --json: %v %s", err, js)
	}
	if abs(bt["top1"].(float64)-ev.Top1) > 1e-9 || abs(bt["loss"].(float64)-ev.Loss) > 1e-5*(1+ev.Loss) {
		t.Errorf("best.pt on the test split: 2 ranks top-1 %v, loss %v; one process top-1 %v, loss %v", bt["top1"], bt["loss"], ev.Top1, ev.Loss)
	}
}
