package tests

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gsrmt/gsrmt/checkpoints"
	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/gsrmt/gsrmt/train"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// trainArgs are the flags of a quick nano run on an ImageFolder at 32 px.
func trainArgs(data, out string, extra ...string) []string {
	args := []string{"train", "--dataset", "imagefolder", "--data-dir", data, "--img-size", "32", "--preset", "nano",
		"--epochs", "1", "--batch-size", "8", "--lr", "2e-3", "--warmup-epochs", "0", "--mixup", "0", "--cutmix", "0",
		"--threads", "1", "--workers", "1", "--out", out}
	return append(args, extra...)
}

func readJSON(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A new run refuses a folder that holds a run, leaving it untouched;
// --overwrite replaces it; --resume into it continues it.
func TestCLIRunFolderNotOverwritten(t *testing.T) {
	data := makeImageFolder(t, 8, 4)
	out := filepath.Join(t.TempDir(), "run")
	if _, errOut, code := runCLI(t, trainArgs(data, out)...); code != 0 {
		t.Fatalf("first run exited %d:\n%s", code, errOut)
	}
	before := map[string][]byte{}
	for _, f := range train.RunFiles {
		before[f] = mustRead(t, filepath.Join(out, f))
	}
	_, errOut, code := runCLI(t, trainArgs(data, out, "--seed", "3")...)
	if code != 2 || !strings.Contains(errOut, "already holds a run") || !strings.Contains(errOut, "--overwrite") ||
		!strings.Contains(errOut, "--resume "+filepath.Join(out, "last.pt")) {
		t.Fatalf("second run into the folder: exit %d, stderr:\n%s", code, errOut)
	}
	for f, b := range before {
		if !bytes.Equal(b, mustRead(t, filepath.Join(out, f))) {
			t.Errorf("the refused run changed %s", f)
		}
	}
	if _, errOut, code := runCLI(t, trainArgs(data, out, "--seed", "3", "--overwrite")...); code != 0 {
		t.Fatalf("--overwrite exited %d:\n%s", code, errOut)
	}
	if cfg := readJSON(t, filepath.Join(out, "config.json")); cfg["seed"] != 3.0 {
		t.Errorf("after --overwrite config.json has seed %v, want 3", cfg["seed"])
	}
}

// A second process on a locked run folder stops at once naming the holder;
// a lock file left by a dead process does not block.
func TestCLIRunFolderLock(t *testing.T) {
	data := makeImageFolder(t, 8, 4)
	out := t.TempDir()
	lock := filepath.Join(out, train.LockFile)
	// A stale lock file (no process holds its flock) is no obstacle.
	if err := os.WriteFile(lock, []byte("999999\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(lock, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(0); err != nil { // as the trainer writes it
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := runCLI(t, trainArgs(data, out)...)
	if code == 0 || !strings.Contains(errOut, "in use by another process") || !strings.Contains(errOut, "process "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("train on a locked folder: exit %d, stderr:\n%s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(out, "config.json")); err == nil {
		t.Error("the refused run wrote config.json")
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	if err := os.WriteFile(lock, []byte("999999\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := runCLI(t, trainArgs(data, out)...); code != 0 {
		t.Fatalf("train beside a stale lock file exited %d:\n%s", code, errOut)
	}
}

// Two concurrent runs into one folder: exactly one trains, the other is
// refused, and the folder holds one run's files.
func TestCLITwoRunsOneFolder(t *testing.T) {
	data := makeImageFolder(t, 16, 4)
	out := t.TempDir()
	var cmds [2]*exec.Cmd
	var errs [2]bytes.Buffer
	for i := range cmds {
		cmds[i] = exec.Command(gsrmtCLI(t), trainArgs(data, out, "--seed", strconv.Itoa(i+1), "--epochs", "2")...)
		cmds[i].Stderr = &errs[i]
		if err := cmds[i].Start(); err != nil {
			t.Fatal(err)
		}
	}
	ok := 0
	for i, c := range cmds {
		if c.Wait() == nil {
			ok++
		} else if !strings.Contains(errs[i].String(), "in use by another process") && !strings.Contains(errs[i].String(), "already holds a run") {
			t.Errorf("run %d failed for another reason:\n%s", i+1, errs[i].String())
		}
	}
	if ok != 1 {
		t.Fatalf("%d of 2 concurrent runs succeeded, want exactly 1:\n%s\n---\n%s", ok, errs[0].String(), errs[1].String())
	}
	seed := readJSON(t, filepath.Join(out, "config.json"))["seed"]
	saved, err := train.ReadOptions(filepath.Join(out, "best.pt"))
	if err != nil || saved == nil || float64(saved.Seed) != seed {
		t.Fatalf("best.pt's seed %v, config.json's %v (%v)", saved, seed, err)
	}
}

// --resume alone restores every option; a contradicting flag is refused
// naming both values; --epochs extends the run and is recorded.
func TestCLIResumeRestoresOptions(t *testing.T) {
	data := makeImageFolder(t, 8, 4)
	out := filepath.Join(t.TempDir(), "run")
	if _, errOut, code := runCLI(t, trainArgs(data, out, "--lr", "1e-3", "--weight-decay", "0.02")...); code != 0 {
		t.Fatalf("first run exited %d:\n%s", code, errOut)
	}
	last := filepath.Join(out, "last.pt")
	for _, bad := range [][]string{{"--lr", "5e-3", "--lr 0.005 differs from the checkpoint's 0.001"},
		{"--batch-size", "4", "--batch-size 4 differs from the checkpoint's 8"},
		{"--dataset", "cifar10", `--dataset "cifar10" differs from the checkpoint's "imagefolder"`},
		{"--preset", "tiny", "--model"}} {
		_, errOut, code := runCLI(t, "train", "--resume", last, "--epochs", "2", bad[0], bad[1], "--threads", "1")
		if code != 2 || !strings.Contains(errOut, bad[2]) {
			t.Errorf("resume with %s %s: exit %d, stderr:\n%s\nwant exit 2 naming %q", bad[0], bad[1], code, errOut, bad[2])
		}
	}
	_, errOut, code := runCLI(t, "train", "--resume", last, "--epochs", "2", "--threads", "1")
	if code != 0 {
		t.Fatalf("resume exited %d:\n%s", code, errOut)
	}
	cfg := readJSON(t, filepath.Join(out, "config.json"))
	if cfg["lr"] != 1e-3 || cfg["weight_decay"] != 0.02 || cfg["batch_size"] != 8.0 || cfg["epochs"] != 2.0 {
		t.Errorf("resumed config.json: lr %v, weight_decay %v, batch %v, epochs %v", cfg["lr"], cfg["weight_decay"], cfg["batch_size"], cfg["epochs"])
	}
	if ch, _ := cfg["resume_changed"].([]any); len(ch) != 1 || ch[0] != "epochs 1 -> 2" {
		t.Errorf("resume_changed %v, want [epochs 1 -> 2]", cfg["resume_changed"])
	}
	if rows := readCSV(t, filepath.Join(out, "metrics.csv")); len(rows) != 3 {
		t.Errorf("metrics.csv has %d rows after resuming to 2 epochs, want header + 2", len(rows))
	}
}

// A file without optimizer state resumes only with --reset-optimizer;
// convert refuses to write over its input.
func TestCLIResumeWithoutOptimizerState(t *testing.T) {
	data := makeImageFolder(t, 8, 4)
	out := filepath.Join(t.TempDir(), "run")
	if _, errOut, code := runCLI(t, trainArgs(data, out)...); code != 0 {
		t.Fatalf("train exited %d:\n%s", code, errOut)
	}
	last := filepath.Join(out, "last.pt")
	model := filepath.Join(out, "model.pt")
	if _, errOut, code := runCLI(t, "convert", "--in", last, "--out", model); code != 0 {
		t.Fatalf("convert exited %d:\n%s", code, errOut)
	}
	args := []string{"train", "--resume", model, "--out", out, "--epochs", "2", "--dataset", "imagefolder", "--data-dir", data,
		"--img-size", "32", "--batch-size", "8", "--lr", "2e-3", "--warmup-epochs", "0", "--mixup", "0", "--cutmix", "0", "--threads", "1"}
	_, errOut, code := runCLI(t, args...)
	if code == 0 || !strings.Contains(errOut, "no optimizer state") || !strings.Contains(errOut, "--reset-optimizer") {
		t.Fatalf("resume from a converted file: exit %d, stderr:\n%s", code, errOut)
	}
	if _, errOut, code := runCLI(t, append(args, "--reset-optimizer")...); code != 0 {
		t.Fatalf("resume with --reset-optimizer exited %d:\n%s", code, errOut)
	}
}

// A last batch of one image (BatchNorm would write NaN into its running
// variance, silently) is skipped with a message, and the model stays finite.
func TestCLIBatchOfOneSkipped(t *testing.T) {
	data := makeImageFolder(t, 3, 4) // 9 training images: batches of 8 and 1
	out := filepath.Join(t.TempDir(), "run")
	_, errOut, code := runCLI(t, trainArgs(data, out, "--drop-last=false")...)
	if code != 0 || !strings.Contains(errOut, "skipped a batch of 1 image") {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
	js, errOut, code := runCLI(t, "eval", "--checkpoint", filepath.Join(out, "best.pt"), "--json")
	if code != 0 {
		t.Fatalf("eval exited %d: %s", code, errOut)
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(js), &ev); err != nil || ev["non_finite_logits"] != 0.0 || ev["loss"] == nil {
		t.Fatalf("eval --json: %v %s", err, js)
	}
}

// poisonCheckpoint writes a copy of a training checkpoint whose entry name
// holds NaN.
func poisonCheckpoint(t *testing.T, src, dst, name string) {
	t.Helper()
	st, err := checkpoints.LoadTraining(src)
	if err != nil {
		t.Fatal(err)
	}
	m, err := gsrmt.New(st.ModelConfig, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := checkpoints.LoadModelState(m, st.Model, true); err != nil {
		t.Fatal(err)
	}
	var shape []int64
	for _, p := range m.Params() {
		if p.Name == name {
			shape = p.Tensor.MustSize()
		}
	}
	nan := ts.MustFull(shape, ts.FloatScalar(math.NaN()), gotch.Float, gotch.CPU)
	defer nan.MustDrop()
	if err := m.SetTensor(name, nan); err != nil {
		t.Fatal(err)
	}
	if err := checkpoints.SaveTraining(dst, m, st); err != nil {
		t.Fatal(err)
	}
}

// A model with NaN BatchNorm statistics evaluates as broken (exit 1, NaN
// logits counted wrong, valid JSON), and a run that reaches such a state
// stops without writing it as best.pt or last.pt.
func TestNaNNeverReportedAsResult(t *testing.T) {
	data := makeImageFolder(t, 8, 4)
	out := filepath.Join(t.TempDir(), "run")
	if _, errOut, code := runCLI(t, trainArgs(data, out)...); code != 0 {
		t.Fatalf("train exited %d:\n%s", code, errOut)
	}
	bad := filepath.Join(t.TempDir(), "nan.pt")
	poisonCheckpoint(t, filepath.Join(out, "last.pt"), bad, "head.bn.running_var")
	js, errOut, code := runCLI(t, "eval", "--checkpoint", bad, "--json")
	var ev map[string]any
	if err := json.Unmarshal([]byte(js), &ev); err != nil {
		t.Fatalf("eval --json on a NaN model printed invalid JSON (%v): %q\n%s", err, js, errOut)
	}
	if code != 1 || ev["top1"] != 0.0 || ev["top5"] != 0.0 || ev["loss"] != nil || ev["non_finite_logits"] != 12.0 ||
		!strings.Contains(errOut, "head.bn.running_var") {
		t.Fatalf("eval of a NaN model: exit %d, %v, stderr:\n%s", code, ev, errOut)
	}

	// Resume a run from the poisoned state: training uses batch statistics,
	// so the loss stays finite, but the epoch's check stops the run.
	poisonCheckpoint(t, filepath.Join(out, "last.pt"), filepath.Join(out, "last.pt"), "head.bn.running_var")
	best, last := mustRead(t, filepath.Join(out, "best.pt")), mustRead(t, filepath.Join(out, "last.pt"))
	_, errOut, code = runCLI(t, "train", "--resume", filepath.Join(out, "last.pt"), "--epochs", "2", "--threads", "1")
	if code != 1 || !strings.Contains(errOut, "non-finite") || !strings.Contains(errOut, "head.bn.running_var") ||
		!strings.Contains(errOut, "best.pt holds epoch 1") {
		t.Fatalf("resumed NaN run: exit %d, stderr:\n%s", code, errOut)
	}
	if !bytes.Equal(best, mustRead(t, filepath.Join(out, "best.pt"))) || !bytes.Equal(last, mustRead(t, filepath.Join(out, "last.pt"))) {
		t.Error("a NaN model was written over best.pt or last.pt")
	}
}

// Usage errors of issue 12: each exits 2 and names the flag.
func TestCLIRobustFlags(t *testing.T) {
	data := makeImageFolder(t, 4, 2)
	for _, c := range []struct {
		args []string
		want string
	}{
		{trainArgs(data, t.TempDir(), "--img-size", "100000"), "--img-size 100000"},
		{trainArgs(data, t.TempDir(), "--batch-size", "100000"), "batch-size 100000"},
		{trainArgs(data, t.TempDir(), "--classes", "5"), "--classes"},
		{[]string{"eval", "--variant", "swat"}, "checkpoint"},
		{[]string{"eval", "--checkpoint", "x.pt", "--img-size", "100000"}, "--img-size 100000"},
	} {
		_, errOut, code := runCLI(t, c.args...)
		if code != 2 || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 naming %q", c.args[1:], code, strings.TrimSpace(errOut), c.want)
		}
	}
}

// --threads beyond the CPUs is capped with a message; skipped images are
// counted in the log, metrics.csv and config.json; a stale temporary of a
// killed checkpoint write is removed.
func TestCLIThreadsSkippedImagesTemporaries(t *testing.T) {
	data := makeImageFolder(t, 8, 4)
	if err := os.WriteFile(filepath.Join(data, "train", "red", "broken.png"), []byte("not a png"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	stale := filepath.Join(out, ".last.pt.tmp-12345")
	if err := os.WriteFile(stale, []byte("half a checkpoint"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := runCLI(t, trainArgs(data, out, "--skip-bad-images", "--threads", "1000")...)
	if code != 0 {
		t.Fatalf("train exited %d:\n%s", code, errOut)
	}
	if !strings.Contains(errOut, "--threads 1000: this machine offers") {
		t.Errorf("no message about capping --threads:\n%s", errOut)
	}
	if !strings.Contains(errOut, "skipped 1 training images") {
		t.Errorf("the skipped image is not reported:\n%s", errOut)
	}
	rows := readCSV(t, filepath.Join(out, "metrics.csv"))
	if col := slices.Index(rows[0], "skipped_images"); col < 0 || rows[1][col] != "1" {
		t.Errorf("metrics.csv: %v", rows)
	}
	if cfg := readJSON(t, filepath.Join(out, "config.json")); cfg["skipped_images"] != 1.0 {
		t.Errorf("config.json skipped_images %v, want 1", cfg["skipped_images"])
	}
	if _, err := os.Stat(stale); err == nil {
		t.Error("the stale temporary .last.pt.tmp-12345 is still there")
	}
}

// The "--download" hint follows a CIFAR-10 folder that lacks the data, not
// one whose files are corrupt, where downloading again cannot be the fix.
func TestCLICIFARDownloadHintOnlyWhenMissing(t *testing.T) {
	empty := t.TempDir()
	_, errOut, code := runCLI(t, "train", "--dataset", "cifar10", "--data-dir", empty, "--out", t.TempDir(), "--epochs", "1")
	if code != 1 || !strings.Contains(errOut, "add --download") {
		t.Errorf("missing CIFAR-10: exit %d, stderr:\n%s", code, errOut)
	}
	corrupt := t.TempDir()
	bin := filepath.Join(corrupt, "cifar-10-batches-bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	names := []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin", "batches.meta.txt"}
	for _, n := range names {
		content := "not a CIFAR batch"
		if n == "batches.meta.txt" {
			content = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n"
		}
		if err := os.WriteFile(filepath.Join(bin, n), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, errOut, code = runCLI(t, "train", "--dataset", "cifar10", "--data-dir", corrupt, "--out", t.TempDir(), "--epochs", "1")
	if code != 1 || strings.Contains(errOut, "--download") || !strings.Contains(errOut, "data_batch_1.bin") {
		t.Errorf("corrupt CIFAR-10: exit %d, stderr:\n%s", code, errOut)
	}
}

// A second Ctrl-C ends the run at once, without waiting for the step or
// writing last.pt, as the first Ctrl-C's message promises.
func TestCLISecondInterruptQuits(t *testing.T) {
	data := makeImageFolder(t, 40, 4)
	out := filepath.Join(t.TempDir(), "run")
	cmd := exec.Command(gsrmtCLI(t), trainArgs(data, out, "--epochs", "50", "--batch-size", "4")...)
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(stderr.String(), "training ") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(stderr.String(), "press Ctrl-C again") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if err == nil || strings.Contains(stdout.String(), "stopped after") {
		t.Fatalf("after a second SIGINT: %v, stdout %q, stderr:\n%s", err, stdout.String(), stderr.String())
	}
}

// syncBuffer is a bytes.Buffer safe for a writer goroutine and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// --keep-checkpoints K keeps checkpoint-EPOCH.pt for the K evaluated epochs
// with the best test top-1 (from metrics.csv), and --overwrite removes them.
func TestCLIKeepCheckpoints(t *testing.T) {
	data := makeImageFolder(t, 8, 4)
	out := filepath.Join(t.TempDir(), "run")
	if _, errOut, code := runCLI(t, trainArgs(data, out, "--epochs", "4", "--keep-checkpoints", "2")...); code != 0 {
		t.Fatalf("train exited %d:\n%s", code, errOut)
	}
	rows := readCSV(t, filepath.Join(out, "metrics.csv"))[1:]
	sort.SliceStable(rows, func(i, j int) bool {
		a, _ := strconv.ParseFloat(rows[i][5], 64)
		b, _ := strconv.ParseFloat(rows[j][5], 64)
		return a > b
	})
	want := []string{"checkpoint-" + rows[0][0] + ".pt", "checkpoint-" + rows[1][0] + ".pt"}
	sort.Strings(want)
	got, _ := filepath.Glob(filepath.Join(out, "checkpoint-*.pt"))
	for i := range got {
		got[i] = filepath.Base(got[i])
	}
	sort.Strings(got)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("history %v, want %v (metrics %v)", got, want, rows)
	}
	if _, errOut, code := runCLI(t, trainArgs(data, out, "--overwrite")...); code != 0 {
		t.Fatalf("--overwrite exited %d:\n%s", code, errOut)
	}
	if left, _ := filepath.Glob(filepath.Join(out, "checkpoint-*.pt")); len(left) != 0 {
		t.Errorf("--overwrite left %v", left)
	}
}

// train --json prints one object with the run's result; --help groups the
// flags by topic.
func TestCLITrainJSONAndHelp(t *testing.T) {
	data := makeImageFolder(t, 8, 4)
	out := filepath.Join(t.TempDir(), "run")
	js, errOut, code := runCLI(t, trainArgs(data, out, "--epochs", "2", "--json")...)
	if code != 0 {
		t.Fatalf("train --json exited %d:\n%s", code, errOut)
	}
	var r struct {
		RunDir      string   `json:"run_dir"`
		Steps       int      `json:"steps"`
		Epochs      int      `json:"epochs"`
		Interrupted bool     `json:"interrupted"`
		BestTop1    *float64 `json:"best_top1"`
		Last        struct {
			Epoch    int      `json:"epoch"`
			TestTop1 *float64 `json:"test_top1"`
		} `json:"last"`
	}
	if err := json.Unmarshal([]byte(js), &r); err != nil {
		t.Fatalf("train --json printed %q: %v", js, err)
	}
	rows := readCSV(t, filepath.Join(out, "metrics.csv"))
	top1, _ := strconv.ParseFloat(rows[2][5], 64)
	if r.RunDir != out || r.Epochs != 2 || r.Steps != 6 || r.Interrupted || r.Last.Epoch != 2 || r.Last.TestTop1 == nil ||
		math.Abs(*r.Last.TestTop1-top1) > 1e-5 || r.BestTop1 == nil {
		t.Errorf("train --json: %+v (metrics.csv last top-1 %v)", r, top1)
	}
	help, _, _ := runCLI(t, "train", "--help")
	for _, heading := range []string{"Data", "Optimization", "Augmentation", "Model", "Run folder", "Runtime", "Distributed"} {
		if !strings.Contains(help, "\n   "+heading+"\n") {
			t.Errorf("train --help lacks the %q group", heading)
		}
	}
}

// convert --json prints one object describing what it read and wrote.
func TestCLIConvertJSON(t *testing.T) {
	data := makeImageFolder(t, 8, 4)
	out := filepath.Join(t.TempDir(), "run")
	if _, errOut, code := runCLI(t, trainArgs(data, out)...); code != 0 {
		t.Fatalf("train exited %d:\n%s", code, errOut)
	}
	st := filepath.Join(t.TempDir(), "model.safetensors")
	js, errOut, code := runCLI(t, "convert", "--in", filepath.Join(out, "last.pt"), "--out", st, "--json")
	if code != 0 {
		t.Fatalf("convert --json exited %d:\n%s", code, errOut)
	}
	var r struct {
		In, InKind, Out, Format string
		Tensors                 int
		Elements                int64
		Model                   *struct{ Variant string }
	}
	if err := json.Unmarshal([]byte(strings.NewReplacer(`"in_kind"`, `"InKind"`).Replace(js)), &r); err != nil {
		t.Fatalf("convert --json printed %q: %v", js, err)
	}
	cfg, _, err := checkpoints.ReadConfig(st)
	if err != nil {
		t.Fatal(err)
	}
	if r.Out != st || r.Format != "safetensors" || r.InKind != "gsrmt" || r.Tensors == 0 || r.Elements == 0 ||
		r.Model == nil || r.Model.Variant != cfg.Variant {
		t.Errorf("convert --json: %+v", r)
	}
}
