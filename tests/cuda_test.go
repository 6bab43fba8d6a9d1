package tests

import (
	"math"
	"os"
	"runtime"
	"testing"

	"github.com/gsrmt/gsrmt/gsrmt"
	"github.com/gsrmt/gsrmt/internal/torch"
	"github.com/gsrmt/gsrmt/train"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// needCUDA skips a CUDA test on a machine without a GPU, except when
// GSRMT_CUDA_TESTS=1 (scripts/device-check.sh), where a missing GPU fails it.
func needCUDA(t *testing.T) {
	t.Helper()
	if torch.CUDAAvailable() {
		return
	}
	if os.Getenv("GSRMT_CUDA_TESTS") == "1" {
		t.Fatalf("GSRMT_CUDA_TESTS=1 but libtorch %s sees no CUDA device (CUDA build: %v)", torch.Version(), torch.Build().CUDA)
	}
	t.Skip("no CUDA device (scripts/device-check.sh runs these tests on a GPU machine)")
}

// The model on CUDA computes what it computes on the CPU with the same
// weights: logits, loss and every gradient, up to float32 reduction order.
func TestCUDAModelMatchesCPU(t *testing.T) {
	needCUDA(t)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for _, variant := range []string{"swat", "retention", "rmt"} {
		cfg, err := gsrmt.PresetConfig(variant, "nano", 10)
		if err != nil {
			t.Fatal(err)
		}
		if err := torch.ManualSeed(3); err != nil {
			t.Fatal(err)
		}
		cpu, err := gsrmt.New(cfg, gotch.CPU)
		if err != nil {
			t.Fatal(err)
		}
		gpu, err := gsrmt.New(cfg, gotch.CudaIfAvailable())
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range cpu.Params() {
			if err := gpu.SetTensor(p.Name, p.Tensor); err != nil {
				t.Fatal(err)
			}
		}
		x := ts.MustRandn([]int64{4, 3, 64, 64}, gotch.Float, gotch.CPU)
		labels := ts.MustOfSlice([]int64{1, 2, 3, 4})
		lossOf := func(m *gsrmt.Model, dev gotch.Device) (float64, []float32) {
			xd, ld := x.MustTo(dev, false), labels.MustTo(dev, false)
			defer xd.MustDrop()
			defer ld.MustDrop()
			logits, err := m.Forward(xd, true)
			if err != nil {
				t.Fatal(err)
			}
			loss, err := train.CrossEntropy(logits, ld)
			if err != nil {
				t.Fatal(err)
			}
			if err := loss.Backward(); err != nil {
				t.Fatal(err)
			}
			l := loss.MustTo(gotch.CPU, true)
			v := l.Float64Values()[0]
			l.MustDrop()
			logits.MustDrop()
			var grads []float32
			for _, p := range m.Trainable() {
				g := p.Tensor.MustGrad(false).MustTo(gotch.CPU, true)
				grads = append(grads, g.MustView([]int64{-1}, true).Vals().([]float32)...)
			}
			return v, grads
		}
		lc, gc := lossOf(cpu, gotch.CPU)
		lg, gg := lossOf(gpu, gotch.CudaIfAvailable())
		if math.Abs(lc-lg) > 1e-4*math.Max(1, math.Abs(lc)) {
			t.Errorf("%s: loss %v on the CPU, %v on CUDA", variant, lc, lg)
		}
		worst := 0.0
		for i := range gc {
			worst = math.Max(worst, math.Abs(float64(gc[i]-gg[i])))
		}
		if worst > 1e-3 {
			t.Errorf("%s: gradients differ by up to %g between the CPU and CUDA", variant, worst)
		}
		cpu.Close()
		gpu.Close()
	}
}

// A benchmark on CUDA trains with and without bf16 autocast, reports the
// device's memory, and the loss path stays finite.
func TestCUDABenchAndAutocast(t *testing.T) {
	needCUDA(t)
	cfg, err := gsrmt.PresetConfig("swat", "nano", 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, amp := range []bool{false, true} {
		res, err := train.Bench(cfg, train.BenchOptions{ImgSize: 64, Batch: 8, Steps: 3, Warmup: 1,
			Device: gotch.CudaIfAvailable(), AMP: amp})
		if err != nil {
			t.Fatalf("amp %v: %v", amp, err)
		}
		if res.PeakDeviceMB <= 0 || res.TrainMsPerStep <= 0 || res.EvalMsPerStep <= 0 {
			t.Errorf("amp %v: %+v", amp, res)
		}
	}
}
