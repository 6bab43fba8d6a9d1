package torch

import (
	"runtime"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

func randnValues(t *testing.T) []float32 {
	t.Helper()
	x, err := ts.Randn([]int64{16}, gotch.Float, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer x.MustDrop()
	return x.Vals().([]float32)
}

func TestManualSeedMakesRandnReproducible(t *testing.T) {
	if err := ManualSeed(1234); err != nil {
		t.Fatal(err)
	}
	a := randnValues(t)
	if err := ManualSeed(1234); err != nil {
		t.Fatal(err)
	}
	b := randnValues(t)
	c := randnValues(t)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("after the same seed, randn differs at %d: %v vs %v", i, a[i], b[i])
		}
	}
	same := true
	for i := range b {
		same = same && b[i] == c[i]
	}
	if same {
		t.Fatal("two draws without reseeding gave identical values")
	}
	if err := ManualSeed(4321); err != nil {
		t.Fatal(err)
	}
	d := randnValues(t)
	if d[0] == a[0] && d[1] == a[1] {
		t.Fatal("a different seed gave the same values")
	}
}

func TestSetNumThreadsTakesEffect(t *testing.T) {
	old := NumThreads()
	defer SetNumThreads(old)
	for _, n := range []int{1, 2, 3} {
		if err := SetNumThreads(n); err != nil {
			t.Fatal(err)
		}
		if got := NumThreads(); got != n {
			t.Fatalf("SetNumThreads(%d): NumThreads() = %d", n, got)
		}
	}
	if err := SetNumThreads(0); err == nil {
		t.Fatal("SetNumThreads(0) should fail")
	}
}

func TestVersionMatchesBuild(t *testing.T) {
	v := Version()
	if !strings.HasPrefix(v, "1.") && !strings.HasPrefix(v, "2.") {
		t.Fatalf("Version() = %q, want 1.x or 2.x", v)
	}
	b := Build()
	if b.LibtorchVersion != v {
		t.Fatalf("setup-libtorch.sh recorded libtorch %q, headers say %q", b.LibtorchVersion, v)
	}
	if b.GotchVersion != "v0.9.1" {
		t.Fatalf("gotch version %q", b.GotchVersion)
	}
}

func TestCUDAAndAutocast(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	n := CUDADeviceCount()
	if n < 0 {
		t.Fatalf("CUDADeviceCount() = %d", n)
	}
	if CUDAAvailable() != (n > 0) {
		t.Fatalf("CUDAAvailable() = %v with %d devices", CUDAAvailable(), n)
	}
	if _, err := SetAutocast(true, AutocastDType(7)); err == nil {
		t.Fatal("autocast with float64 should be refused")
	}
	if !CUDAAvailable() {
		if _, err := SetAutocast(true, BFloat16); err == nil || !strings.Contains(err.Error(), "no CUDA device") {
			t.Fatalf("autocast without CUDA: got %v, want an error that says there is no CUDA device", err)
		}
		if AutocastEnabled() {
			t.Fatal("autocast reported on after a refused request")
		}
		return
	}
	prev, err := SetAutocast(true, BFloat16)
	if err != nil {
		t.Fatal(err)
	}
	if prev || !AutocastEnabled() {
		t.Fatalf("autocast on: previous %v, enabled %v", prev, AutocastEnabled())
	}
	a := ts.MustOnes([]int64{4, 4}, gotch.Float, gotch.CudaIfAvailable())
	defer a.MustDrop()
	p := a.MustMm(a, false)
	defer p.MustDrop()
	if p.DType() != gotch.BFloat16 {
		t.Fatalf("matmul under bf16 autocast gave %v", p.DType())
	}
	if _, err := SetAutocast(false, BFloat16); err != nil {
		t.Fatal(err)
	}
	q := a.MustMm(a, false)
	defer q.MustDrop()
	if q.DType() != gotch.Float {
		t.Fatalf("matmul after autocast off gave %v", q.DType())
	}
}

func TestGradMode(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if !GradEnabled() {
		t.Fatal("grad mode is off on a fresh thread")
	}
	if prev := SetGradEnabled(true); !prev {
		t.Fatal("SetGradEnabled(true) reported grad mode off before")
	}
	if prev := SetGradEnabled(false); !prev || GradEnabled() {
		t.Fatalf("SetGradEnabled(false): previous %v, now %v", prev, GradEnabled())
	}
	if prev := SetGradEnabled(true); prev || !GradEnabled() {
		t.Fatalf("SetGradEnabled(true): previous %v, now %v", prev, GradEnabled())
	}
	var inside bool
	NoGrad(func() {
		inside = GradEnabled()
		NoGrad(func() {}) // nested: restores "off", not "on"
		inside = inside || GradEnabled()
	})
	if inside || !GradEnabled() {
		t.Fatalf("NoGrad: enabled inside %v, after %v", inside, GradEnabled())
	}
	func() {
		defer func() { recover() }()
		NoGrad(func() { panic("boom") })
	}()
	if !GradEnabled() {
		t.Fatal("grad mode not restored after a panic inside NoGrad")
	}
	x := ts.MustOnes([]int64{2}, gotch.Float, gotch.CPU).MustSetRequiresGrad(true, true)
	defer x.MustDrop()
	var y *ts.Tensor
	NoGrad(func() { y = x.MustMul(x, false) })
	defer y.MustDrop()
	if y.MustRequiresGrad() {
		t.Fatal("a result computed under NoGrad requires grad")
	}
}

func TestCPURNGStateRoundTrip(t *testing.T) {
	if err := ManualSeed(99); err != nil {
		t.Fatal(err)
	}
	randnValues(t)
	state, err := CPURNGState()
	if err != nil {
		t.Fatal(err)
	}
	a := randnValues(t)
	if err := ManualSeed(1); err != nil {
		t.Fatal(err)
	}
	if err := SetCPURNGState(state); err != nil {
		t.Fatal(err)
	}
	b := randnValues(t)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("after restoring the generator, draw %d is %v, was %v", i, b[i], a[i])
		}
	}
	if err := SetCPURNGState([]byte{1, 2, 3}); err == nil {
		t.Fatal("a 3-byte state was accepted")
	}
}

func TestCUDAMemory(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	used, total, err := CUDAMemory(0)
	if !CUDAAvailable() {
		// Without a GPU the driver is usually absent: the error must say so.
		// A machine with the driver but a CPU libtorch reports real numbers.
		if err != nil {
			if !strings.Contains(err.Error(), "cuda:0") || !strings.Contains(err.Error(), "libcuda") && !strings.Contains(err.Error(), "driver") {
				t.Fatalf("CUDAMemory without CUDA: %v; want an error naming the device and the driver", err)
			}
			return
		}
	} else if err != nil {
		t.Fatal(err)
	}
	if total == 0 || used > total {
		t.Fatalf("CUDAMemory(0) = used %d, total %d", used, total)
	}
	if !CUDAAvailable() {
		return
	}
	// Allocating 256 MiB through libtorch raises the device's use by at least that.
	x := ts.MustZeros([]int64{64 << 20}, gotch.Float, gotch.CudaIfAvailable())
	if err := Synchronize(0); err != nil {
		t.Fatal(err)
	}
	after, _, err := CUDAMemory(0)
	x.MustDrop()
	if err != nil {
		t.Fatal(err)
	}
	if after < used+(256<<20) {
		t.Fatalf("device memory in use went from %d to %d bytes after a 256 MiB allocation", used, after)
	}
}
