package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gsrmt/gsrmt/checkpoints"
	"github.com/gsrmt/gsrmt/internal/dist"
	"github.com/gsrmt/gsrmt/internal/testutil"
)

// distArgs are the flags of a quick distributed-ready nano run: no Mixup,
// no CutMix and no drop path, so that runs are deterministic on the CPU.
func distArgs(data, out string, extra ...string) []string {
	args := []string{"train", "--dataset", "imagefolder", "--data-dir", data, "--img-size", "32", "--preset", "nano",
		"--epochs", "2", "--batch-size", "8", "--lr", "2e-3", "--warmup-epochs", "0", "--mixup", "0", "--cutmix", "0",
		"--workers", "1", "--dist-timeout", "60s", "--out", out}
	return append(args, extra...)
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	p, err := dist.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// metricsWithoutTiming returns metrics.csv's rows without images_per_s and
// seconds, which differ between runs.
func metricsWithoutTiming(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, r := range readCSV(t, filepath.Join(dir, "metrics.csv")) {
		out = append(out, strings.Join(append(append([]string{}, r[:7]...), r[9:]...), ","))
	}
	return out
}

// Two ranks with per-rank BatchNorm statistics hold identical weights after
// every step (--check-replicas compares a hash of them across the ranks and
// fails the run otherwise), rank 0 alone writes the run folder, and the
// test split (21 images: not a multiple of 2) evaluated in shards gives the
// numbers a single process gives for the same checkpoint.
func TestDistributedTwoRanks(t *testing.T) {
	data := makeImageFolder(t, 8, 7)
	out := filepath.Join(t.TempDir(), "run")
	_, errOut, code := runCLI(t, distArgs(data, out, "--nproc", "2", "--check-replicas")...)
	if code != 0 {
		t.Fatalf("train --nproc 2 exited %d:\n%s", code, errOut)
	}
	if !strings.Contains(errOut, "rank 1 of 2 joined") || !strings.Contains(errOut, "gloo backend") {
		t.Errorf("the ranks did not say they joined:\n%s", errOut)
	}
	cfg := readJSON(t, filepath.Join(out, "config.json"))
	if cfg["world_size"] != 2.0 || cfg["rank_batch_size"] != 4.0 || cfg["batch_size"] != 8.0 || cfg["dist_backend"] != "gloo" {
		t.Errorf("config.json: world_size %v, rank_batch_size %v, batch_size %v, dist_backend %v",
			cfg["world_size"], cfg["rank_batch_size"], cfg["batch_size"], cfg["dist_backend"])
	}
	rows := readCSV(t, filepath.Join(out, "metrics.csv"))
	last := rows[len(rows)-1]
	js, errOut, code := runCLI(t, "eval", "--checkpoint", filepath.Join(out, "last.pt"), "--json", "--batch-size", "5")
	if code != 0 {
		t.Fatalf("eval exited %d: %s", code, errOut)
	}
	var ev struct {
		Top1, Loss float64
		Images     int
	}
	if err := json.Unmarshal([]byte(js), &ev); err != nil || ev.Images != 21 {
		t.Fatalf("eval --json: %v %s", err, js)
	}
	top1, _ := strconv.ParseFloat(last[5], 64)
	loss, _ := strconv.ParseFloat(last[4], 64)
	// metrics.csv holds 8 significant digits.
	if abs(top1-ev.Top1) > 1e-5 || abs(loss-ev.Loss) > 1e-5*(1+abs(loss)) {
		t.Errorf("2-rank evaluation: top-1 %v, loss %v; one process on the same checkpoint: top-1 %v, loss %v", top1, loss, ev.Top1, ev.Loss)
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// torchrun starts the binary itself (--no_python) and its ranks train as
// with --nproc: the same metrics.
func TestDistributedUnderTorchrun(t *testing.T) {
	py := testutil.PythonTorch(t)
	if err := exec.Command(py, "-c", "import torch.distributed.run").Run(); err != nil {
		testutil.Missing(t, "python3 -m torch.distributed.run is not available (Debian's python3-torch provides it)")
	}
	data := makeImageFolder(t, 8, 4)
	viaNproc := filepath.Join(t.TempDir(), "nproc")
	if _, errOut, code := runCLI(t, distArgs(data, viaNproc, "--nproc", "2")...); code != 0 {
		t.Fatalf("train --nproc 2 exited %d:\n%s", code, errOut)
	}
	viaTorchrun := filepath.Join(t.TempDir(), "torchrun")
	args := append([]string{"-m", "torch.distributed.run", "--nproc_per_node=2", "--no_python", "--redirects", "1", "--tee", "1",
		"--master_port", strconv.Itoa(freeTCPPort(t)), gsrmtCLI(t)}, distArgs(data, viaTorchrun)...)
	cmd := exec.Command(py, args...)
	var outBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outBuf, &outBuf
	if err := cmd.Run(); err != nil {
		t.Fatalf("torchrun: %v\n%s", err, outBuf.String())
	}
	a, b := metricsWithoutTiming(t, viaNproc), metricsWithoutTiming(t, viaTorchrun)
	if strings.Join(a, "\n") != strings.Join(b, "\n") {
		t.Errorf("--nproc 2 and torchrun disagree:\n%s\n---\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
	}
}

// startRank starts one rank of a hand-set group (RANK, WORLD_SIZE, ...).
func startRank(t *testing.T, rank, world, port int, stderr *bytes.Buffer, args []string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(gsrmtCLI(t), args...)
	cmd.Env = append(os.Environ(), "RANK="+strconv.Itoa(rank), "WORLD_SIZE="+strconv.Itoa(world),
		"LOCAL_RANK="+strconv.Itoa(rank), "LOCAL_WORLD_SIZE="+strconv.Itoa(world),
		"MASTER_ADDR=127.0.0.1", "MASTER_PORT="+strconv.Itoa(port))
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// A rank that dies mid-epoch makes the other exit non-zero well within the
// timeout, with an error that names the rank that was lost.
func TestDistributedRankDeathStopsTheOthers(t *testing.T) {
	data := makeImageFolder(t, 40, 4)
	out := filepath.Join(t.TempDir(), "run")
	port := freeTCPPort(t)
	args := distArgs(data, out, "--epochs", "20", "--dist-timeout", "40s")
	var err0, err1 bytes.Buffer
	r0 := startRank(t, 0, 2, port, &err0, args)
	r1 := startRank(t, 1, 2, port, &err1, args, "GSRMT_FAULT_EXIT_AFTER_STEP=3", "GSRMT_FAULT_RANK=1")
	start := time.Now()
	e1 := r1.Wait()
	e0 := r0.Wait()
	took := time.Since(start)
	if e1 == nil || !strings.Contains(err1.String(), "exiting after step 3") {
		t.Fatalf("rank 1 did not crash as injected: %v\n%s", e1, err1.String())
	}
	if e0 == nil {
		t.Fatalf("rank 0 exited 0 after losing rank 1:\n%s", err0.String())
	}
	if !strings.Contains(err0.String(), "rank 1") || took > 40*time.Second {
		t.Errorf("rank 0 took %v and said:\n%s\nwant an error naming rank 1 within the 40 s timeout", took, err0.String())
	}
}

// With torchrun --max_restarts=1 and --resume auto, a job whose rank
// crashed restarts from the mid-epoch last.pt (--save-every-steps) and
// completes with the metrics of an uninterrupted run.
func TestDistributedRestartResumesAuto(t *testing.T) {
	py := testutil.PythonTorch(t)
	if err := exec.Command(py, "-c", "import torch.distributed.run").Run(); err != nil {
		testutil.Missing(t, "python3 -m torch.distributed.run is not available (Debian's python3-torch provides it)")
	}
	data := makeImageFolder(t, 8, 4)
	whole := filepath.Join(t.TempDir(), "whole")
	if _, errOut, code := runCLI(t, distArgs(data, whole, "--nproc", "2")...); code != 0 {
		t.Fatalf("uninterrupted run exited %d:\n%s", code, errOut)
	}
	restarted := filepath.Join(t.TempDir(), "restarted")
	args := append([]string{"-m", "torch.distributed.run", "--nproc_per_node=2", "--max_restarts=1", "--no_python",
		"--redirects", "1", "--tee", "1", "--master_port", strconv.Itoa(freeTCPPort(t)), gsrmtCLI(t)},
		distArgs(data, restarted, "--resume", "auto", "--save-every-steps", "2")...)
	cmd := exec.Command(py, args...)
	cmd.Env = append(os.Environ(), "GSRMT_FAULT_EXIT_AFTER_STEP=5", "GSRMT_FAULT_RANK=1")
	var outBuf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &outBuf, &outBuf
	if err := cmd.Run(); err != nil {
		t.Fatalf("torchrun with a restart: %v\n%s", err, outBuf.String())
	}
	if !strings.Contains(outBuf.String(), "exiting after step 5") || !strings.Contains(outBuf.String(), "resumed from") {
		t.Errorf("the job did not crash and resume as planned:\n%s", outBuf.String())
	}
	a, b := metricsWithoutTiming(t, whole), metricsWithoutTiming(t, restarted)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("uninterrupted and restarted runs disagree:\n%s\n---\n%s", strings.Join(a, "\n"), strings.Join(b, "\n"))
	}
}

// With --sync-bn, 2 ranks x 16 images track 1 process x 32 images on the
// same data: BatchNorm statistics over the global batch (reduced across the
// ranks in forward and backward), each rank's loss the mean over its own
// images and the gradients averaged over the ranks give the single
// process's gradient, so after 20 steps (5 epochs of 4) the weights,
// running statistics and losses agree to float rounding. No augmentation
// but the horizontal flip, which depends only on the sample (--crop-padding
// 0 at the images' native 32 px; no Mixup, CutMix or drop path).
//
// "Float rounding" is measured, not assumed: AdamW turns the rounding noise
// of parameters whose exact gradient is zero (the biases of the layers
// that feed a BatchNorm) into steps of about lr, so the same single
// process run with 1 thread instead of 2 (another summation order) already
// differs by about 1e-2 there. The 2-rank run must stay within 3 times
// that, and (so that the comparison can fail) 2 ranks with per-rank
// statistics must not.
func TestDistributedSyncBNEquivalence(t *testing.T) {
	data := makeImageFolder(t, 43, 2) // 129 training images: 4 steps of 32 per epoch (--drop-last)
	base := t.TempDir()
	run := func(name string, extra ...string) string {
		out := filepath.Join(base, name)
		args := distArgs(data, out, append([]string{"--epochs", "5", "--batch-size", "32", "--crop-padding", "0",
			"--eval-every", "5", "--dist-timeout", "120s"}, extra...)...)
		start := time.Now()
		if _, errOut, code := runCLI(t, args...); code != 0 {
			t.Fatalf("train %s exited %d:\n%s", strings.Join(extra, " "), code, errOut)
		}
		t.Logf("%s (%s): %v", name, strings.Join(extra, " "), time.Since(start).Round(100*time.Millisecond))
		return out
	}
	gsrmtCLI(t) // built before the runs are timed

	// --sync-bn is a no-op in one process.
	ref := run("one", "--threads", "2", "--sync-bn")
	floorRun := run("one-thread", "--threads", "1")
	synced := run("two-sync-bn", "--nproc", "2", "--sync-bn")
	perRank := run("two-per-rank", "--nproc", "2")

	a := openState(t, filepath.Join(ref, "last.pt"))
	floor := compareStates(t, a, openState(t, filepath.Join(floorRun, "last.pt")))
	s := openState(t, filepath.Join(synced, "last.pt"))
	got := compareStates(t, a, s)
	control := compareStates(t, a, openState(t, filepath.Join(perRank, "last.pt")))
	floorLoss := compareLosses(t, ref, floorRun)
	gotLoss := compareLosses(t, ref, synced)
	controlLoss := compareLosses(t, ref, perRank)
	tol, tolLoss := max(1e-4, 3*floor.rel), max(1e-5, 3*floorLoss)
	t.Logf("after 20 steps, against 1 process x 32 (2 threads), largest differences (absolute, relative to 1+|value|):")
	t.Logf("  1 process, 1 thread (the rounding floor): %.3g, relative %.3g in %s; losses %.3g", floor.abs, floor.rel, floor.name, floorLoss)
	t.Logf("  2 ranks x 16, --sync-bn:                  %.3g, relative %.3g in %s; losses %.3g", got.abs, got.rel, got.name, gotLoss)
	t.Logf("  2 ranks x 16, per-rank statistics:        %.3g, relative %.3g in %s; losses %.3g", control.abs, control.rel, control.name, controlLoss)
	t.Logf("  trainable weights only (no biases, no statistics): 1 thread %.3g, --sync-bn %.3g, per-rank %.3g", floor.weights, got.weights, control.weights)
	if steps := s["head.bn.num_batches_tracked"]; len(steps) != 1 || steps[0] != 20 {
		t.Errorf("--sync-bn: head.bn.num_batches_tracked = %v, want 20", steps)
	}
	if got.rel > tol || gotLoss > tolLoss {
		t.Errorf("2 ranks with --sync-bn differ from 1 process by %.3g (relative, in %s) and %.3g in the losses: want float rounding (%.3g and %.3g)",
			got.rel, got.name, gotLoss, tol, tolLoss)
	}
	if control.rel < 10*tol {
		t.Errorf("2 ranks with per-rank statistics differ from 1 process by only %.3g (relative): the comparison cannot tell them apart", control.rel)
	}
}

// stateDiff is the largest difference between two model states.
type stateDiff struct {
	abs, rel float64 // largest |a-b|, largest |a-b|/(1+|a|)
	name     string  // the entry of the largest relative difference
	weights  float64 // largest relative difference of a trainable weight (not a bias or statistic)
}

// compareStates compares two model states entry by entry.
func compareStates(t *testing.T, a, b map[string][]float64) stateDiff {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%d state entries against %d", len(a), len(b))
	}
	var d stateDiff
	for name, va := range a {
		vb, ok := b[name]
		if !ok || len(vb) != len(va) {
			t.Fatalf("%s: %d values against %d (present %v)", name, len(va), len(vb), ok)
		}
		weight := strings.HasSuffix(name, ".weight") && !strings.Contains(name, "bn") && !strings.Contains(name, "norm")
		for i := range va {
			diff := math.Abs(va[i] - vb[i])
			rel := diff / (1 + math.Abs(va[i]))
			if rel > d.rel {
				d.name, d.rel = name, rel
			}
			if weight {
				d.weights = max(d.weights, rel)
			}
			d.abs = max(d.abs, diff)
		}
	}
	return d
}

// compareLosses returns the largest relative difference between two runs'
// train losses (every epoch) and final test loss in metrics.csv.
func compareLosses(t *testing.T, dirA, dirB string) float64 {
	t.Helper()
	ra, rb := readCSV(t, filepath.Join(dirA, "metrics.csv")), readCSV(t, filepath.Join(dirB, "metrics.csv"))
	if len(ra) != len(rb) || len(ra) < 2 {
		t.Fatalf("metrics.csv: %d rows against %d", len(ra), len(rb))
	}
	worst := 0.0
	for i := 1; i < len(ra); i++ {
		for _, col := range []int{2, 4} { // train_loss, test_loss
			if ra[i][col] == "" && rb[i][col] == "" {
				continue
			}
			x, errA := strconv.ParseFloat(ra[i][col], 64)
			y, errB := strconv.ParseFloat(rb[i][col], 64)
			if errA != nil || errB != nil {
				t.Fatalf("metrics.csv row %d, %s: %q against %q", i, ra[0][col], ra[i][col], rb[i][col])
			}
			worst = max(worst, math.Abs(x-y)/math.Abs(x))
		}
	}
	return worst
}

// openState reads a checkpoint's model state as float64 values by name
// (the num_batches_tracked counters included).
func openState(t *testing.T, path string) map[string][]float64 {
	t.Helper()
	ck, err := checkpoints.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]float64{}
	for _, e := range ck.State.Entries() {
		name, _ := e.Key.(string)
		tensor, ok := e.Value.(*checkpoints.Tensor)
		if !ok {
			t.Fatalf("%s: %s is %T, not a tensor", path, name, e.Value)
		}
		var vals []float64
		if strings.HasSuffix(name, "num_batches_tracked") {
			ints, err := tensor.Int64s()
			if err != nil {
				t.Fatalf("%s: %s: %v", path, name, err)
			}
			for _, v := range ints {
				vals = append(vals, float64(v))
			}
		} else {
			fs, err := tensor.Float32s()
			if err != nil {
				t.Fatalf("%s: %s: %v", path, name, err)
			}
			for _, v := range fs {
				vals = append(vals, float64(v))
			}
		}
		out[name] = vals
	}
	return out
}
