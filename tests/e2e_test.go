package tests

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"image"
	"image/color"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/gsrmt/gsrmt/internal/testutil"
	"github.com/gsrmt/gsrmt/train"
	"github.com/sugarme/gotch"
)

// makeImageFolder writes a small ImageFolder data set of 32x32 PNGs whose
// classes differ in colour: train/<class>/*.png and test/<class>/*.png.
func makeImageFolder(t *testing.T, perTrain, perTest int) string {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	classes := []string{"blue", "green", "red"}
	for ci, name := range classes {
		for _, split := range []struct {
			name string
			n    int
		}{{"train", perTrain}, {"test", perTest}} {
			d := filepath.Join(dir, split.name, name)
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < split.n; i++ {
				img := image.NewRGBA(image.Rect(0, 0, 32, 32))
				for y := 0; y < 32; y++ {
					for x := 0; x < 32; x++ {
						v := [3]uint8{uint8(rng.IntN(80)), uint8(rng.IntN(80)), uint8(rng.IntN(80))}
						v[2-ci] += 150 // blue, green, red dominate in turn
						img.Set(x, y, color.RGBA{v[0], v[1], v[2], 255})
					}
				}
				writeImage(t, filepath.Join(d, name+"_"+string(rune('a'+i%26))+string(rune('a'+i/26))+".png"), img)
			}
		}
	}
	return dir
}

func readCSV(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return rows
}

// Train nano for 2 epochs through the binary, then eval and predict on the result.
func TestCLITrainEvalPredict(t *testing.T) {
	data := makeImageFolder(t, 24, 8)
	out := filepath.Join(t.TempDir(), "run")
	_, errOut, code := runCLI(t, "train", "--dataset", "imagefolder", "--data-dir", data, "--img-size", "32",
		"--variant", "swat", "--preset", "nano", "--epochs", "2", "--batch-size", "16", "--lr", "2e-3",
		"--warmup-epochs", "0.5", "--mixup", "0", "--cutmix", "0", "--threads", "2", "--workers", "2", "--out", out)
	if code != 0 {
		t.Fatalf("train exited %d:\n%s", code, errOut)
	}
	for _, f := range []string{"config.json", "metrics.csv", "last.pt", "best.pt", "curves.png"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("run folder lacks %s: %v", f, err)
		}
	}
	rows := readCSV(t, filepath.Join(out, "metrics.csv"))
	if len(rows) != 3 || strings.Join(rows[0][:9], ",") != "epoch,lr,train_loss,train_top1,test_loss,test_top1,test_top5,images_per_s,seconds" {
		t.Fatalf("metrics.csv: %v", rows)
	}
	var cfg map[string]any
	data2, _ := os.ReadFile(filepath.Join(out, "config.json"))
	if err := json.Unmarshal(data2, &cfg); err != nil || cfg["batch_size"] != 16.0 || cfg["classes"] != 3.0 {
		t.Errorf("config.json: %v %v", err, cfg)
	}

	js, errOut, code := runCLI(t, "eval", "--checkpoint", filepath.Join(out, "best.pt"), "--json")
	if code != 0 {
		t.Fatalf("eval exited %d: %s", code, errOut)
	}
	var ev struct {
		Top1, Top5, Loss float64
		Images           int
	}
	if err := json.Unmarshal([]byte(js), &ev); err != nil || ev.Images != 24 || ev.Top5 != 100 {
		t.Fatalf("eval --json: %v %s", err, js)
	}
	// The best checkpoint's eval agrees with the training run's record of it.
	best := 0.0
	for _, r := range rows[1:] {
		var v float64
		json.Unmarshal([]byte(r[5]), &v)
		best = max(best, v)
	}
	if diff := ev.Top1 - best; diff > 1e-6 || diff < -1e-6 {
		t.Errorf("eval top-1 %.4f, training recorded best %.4f", ev.Top1, best)
	}

	img := filepath.Join(data, "test", "red", "red_aa.png")
	pj, errOut, code := runCLI(t, "predict", "--checkpoint", filepath.Join(out, "best.pt"), "--image", img, "--topk", "2", "--json")
	if code != 0 {
		t.Fatalf("predict exited %d: %s", code, errOut)
	}
	var preds []struct {
		Image  string
		Logits []float64
		Probs  []float64
		TopK   []struct {
			Index int
			Label string
			Prob  float64
		}
	}
	if err := json.Unmarshal([]byte(pj), &preds); err != nil || len(preds) != 1 {
		t.Fatalf("predict --json: %v %s", err, pj)
	}
	p := preds[0]
	sum := 0.0
	for _, v := range p.Probs {
		sum += v
	}
	if p.Image != img || len(p.Logits) != 3 || len(p.TopK) != 2 || sum < 0.999 || sum > 1.001 {
		t.Errorf("prediction %+v", p)
	}
	if p.TopK[0].Label != []string{"blue", "green", "red"}[p.TopK[0].Index] || p.TopK[0].Prob < p.TopK[1].Prob {
		t.Errorf("top-k %+v", p.TopK)
	}
}

// A run interrupted mid-epoch and resumed reproduces the uninterrupted run's
// metrics (all but the timing columns) on the CPU.
func TestResumeReproducesMetrics(t *testing.T) {
	data := makeImageFolder(t, 20, 6)
	cfg, err := gsrmt.PresetConfig("retention", "nano", 3)
	if err != nil {
		t.Fatal(err)
	}
	cfg.DropPath = 0.1 // exercise the libtorch generator
	opts := func(out string) train.Options {
		o := train.Options{Dataset: "imagefolder", DataDir: data, ImgSize: 32, Model: cfg, Recipe: "default",
			Epochs: 3, Batch: 12, LR: 2e-3, MinLR: 1e-5, WeightDecay: 0.05, WarmupEpochs: 1, LabelSmoothing: 0.1, Mixup: 0.8, CutMix: 1.0,
			GradClip: 1, EMA: 0.9, DropLast: true, Device: gotch.CPU, Threads: 1, Workers: 2, Seed: 7,
			Out: out, EvalEvery: 1}
		return o
	}
	whole := filepath.Join(t.TempDir(), "whole")
	if _, err := train.Run(context.Background(), opts(whole)); err != nil {
		t.Fatal(err)
	}
	parts := filepath.Join(t.TempDir(), "parts")
	o := opts(parts)
	res, err := runStoppingAt(o, 7) // epoch 2 of 3, in its second batch
	if err != nil || !res.Interrupted {
		t.Fatalf("interrupted run: %v, interrupted %v", err, res != nil && res.Interrupted)
	}
	o = opts(parts)
	o.Resume = filepath.Join(parts, "last.pt")
	if _, err := train.Run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	a, b := readCSV(t, filepath.Join(whole, "metrics.csv")), readCSV(t, filepath.Join(parts, "metrics.csv"))
	if len(a) != 4 || len(b) != 4 {
		t.Fatalf("metrics rows: %d and %d, want 4", len(a), len(b))
	}
	for i := range a {
		for _, col := range []int{0, 1, 2, 3, 4, 5, 6, 9} { // not images_per_s and seconds
			if a[i][col] != b[i][col] {
				t.Errorf("row %d column %s: uninterrupted %s, resumed %s", i, a[0][col], a[i][col], b[i][col])
			}
		}
	}
}

// Ctrl-C finishes the step, writes a loadable last.pt and exits 0.
func TestCLISigintWritesLastCheckpoint(t *testing.T) {
	data := makeImageFolder(t, 40, 4)
	out := filepath.Join(t.TempDir(), "run")
	cmd := exec.Command(gsrmtCLI(t), "train", "--dataset", "imagefolder", "--data-dir", data, "--img-size", "32",
		"--preset", "nano", "--epochs", "50", "--batch-size", "4", "--threads", "1", "--out", out)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1<<16)
	deadline := time.Now().Add(60 * time.Second)
	var seen strings.Builder
	for !strings.Contains(seen.String(), "step ") && time.Now().Before(deadline) {
		n, err := stderr.Read(buf)
		seen.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			n, err := stderr.Read(buf)
			seen.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("train after SIGINT: %v\n%s", err, seen.String())
	}
	js, errOut, code := runCLI(t, "eval", "--checkpoint", filepath.Join(out, "last.pt"), "--json")
	if code != 0 || !strings.Contains(js, "top1") {
		t.Fatalf("last.pt after SIGINT does not evaluate (exit %d): %s %s", code, js, errOut)
	}
}

// A NaN loss stops the run with a message naming the step and what was
// saved (here nothing: the first checkpoint comes at the end of epoch 1), and exit 1.
func TestCLINonFiniteLossStops(t *testing.T) {
	data := makeImageFolder(t, 16, 4)
	out := filepath.Join(t.TempDir(), "run")
	_, errOut, code := runCLI(t, "train", "--dataset", "imagefolder", "--data-dir", data, "--img-size", "32",
		"--preset", "nano", "--epochs", "3", "--batch-size", "8", "--lr", "1e30", "--warmup-epochs", "0",
		"--mixup", "0", "--cutmix", "0", "--threads", "1", "--out", out)
	if code != 1 || !strings.Contains(errOut, "the loss is") || !strings.Contains(errOut, "step ") ||
		!strings.Contains(errOut, "this run wrote no checkpoint") {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut)
	}
}

// Every bad flag value is a usage error (exit 2) that names the flag.
func TestCLIBadTrainFlags(t *testing.T) {
	base := []string{"train", "--dataset", "imagefolder", "--data-dir", t.TempDir(), "--out", t.TempDir()}
	for _, bad := range [][]string{
		{"--dataset", "imagenet"}, {"--variant", "vit"}, {"--preset", "huge"}, {"--epochs", "0"},
		{"--batch-size", "0"}, {"--lr", "-1"}, {"--min-lr", "-1"}, {"--weight-decay", "-0.1"},
		{"--warmup-epochs", "-1"}, {"--label-smoothing", "1.5"}, {"--mixup", "-1"}, {"--cutmix", "-1"},
		{"--grad-clip", "-1"}, {"--ema", "1.5"}, {"--device", "tpu"}, {"--threads", "-1"}, {"--workers", "-2"},
		{"--gate", "x"}, {"--swat-norm", "x"}, {"--window", "0"}, {"--recipe", "imagenet"}, {"--eval-every", "0"},
		{"--limit-train", "-5"}, {"--img-size", "4"}, {"--drop-path", "1"}, {"--random-erasing", "2"},
		{"--resume", "/nonexistent/last.pt"}, {"--crop-padding", "-1"},
	} {
		_, errOut, code := runCLI(t, append(append([]string{}, base...), bad...)...)
		if code != 2 || !strings.Contains(errOut, bad[0]) {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 naming %s", bad, code, strings.TrimSpace(errOut), bad[0])
		}
	}
}

// longRun runs one epoch of nano SWAT on a real data set; opt-in with
// GSRMT_LONG_TESTS=1 because it takes minutes on 2 cores.
func longRun(t *testing.T, dataset, dir string, side int, lr float64, cropPad int) *train.Result {
	t.Helper()
	if os.Getenv("GSRMT_LONG_TESTS") == "" {
		t.Skip("one real epoch takes minutes on 2 cores: set GSRMT_LONG_TESTS=1 to run it")
	}
	cfg, err := gsrmt.PresetConfig("swat", "nano", 10)
	if err != nil {
		t.Fatal(err)
	}
	o := train.Options{Dataset: dataset, DataDir: dir, ImgSize: side, Model: cfg, Recipe: "default", Epochs: 1,
		Batch: 64, LR: lr, MinLR: 1e-5, CropPadding: cropPad, WeightDecay: 0.05, WarmupEpochs: 0.1, LabelSmoothing: 0.1, DropLast: true, Device: gotch.CPU,
		Threads: 2, Workers: 2, Seed: 0, Out: filepath.Join(t.TempDir(), "run"), EvalEvery: 1, Log: os.Stderr}
	start := time.Now()
	res, err := train.Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	m := res.Metrics[0]
	t.Logf("%s, one epoch of nano SWAT: test top-1 %.2f %%, top-5 %.2f %%, %.0f s of training (%.0f images/s), %.0f s in all",
		dataset, m.TestTop1, m.TestTop5, m.Seconds, m.ImagesPerS, time.Since(start).Seconds())
	return res
}

func TestFashionMNISTOneEpochReaches85(t *testing.T) {
	res := longRun(t, "fashion-mnist", testutil.FashionMNISTDir(t), 28, 3e-3, 0)
	if top1 := res.Metrics[0].TestTop1; top1 < 85 {
		t.Errorf("test top-1 %.2f %% after one epoch, want at least 85 %%", top1)
	}
}

func TestCIFAR10ImagesOneEpoch(t *testing.T) {
	res := longRun(t, "imagefolder", testutil.SharedCIFAR10(t), 32, 2e-3, 4)
	if top1 := res.Metrics[0].TestTop1; top1 < 30 {
		t.Errorf("test top-1 %.2f %% after one epoch of CIFAR-10, want well above chance (30 %%)", top1)
	}
}

// runStoppingAt trains with o as Ctrl-C after step stopAt would (the step
// finishes, last.pt is written); stopAt 0 never stops.
func runStoppingAt(o train.Options, stopAt int64) (*train.Result, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o.OnStep = func(step int64) {
		if step == stopAt {
			cancel()
		}
	}
	return train.Run(ctx, o)
}
