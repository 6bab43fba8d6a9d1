package tests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

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
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
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
