// Package torch exposes the parts of libtorch that gotch's Go API lacks:
// the global seed, intra- and inter-op thread counts, the libtorch version,
// CUDA devices and CUDA autocast, plus the build facts that
// setup-libtorch.sh recorded when it prepared gotch.
//
// libtorch keeps grad mode, autocast state and gotch's last error per OS
// thread: call the autocast functions from the goroutine that runs the model,
// with runtime.LockOSThread in effect.
package torch

// #include <stdlib.h>
// #include "shim.h"
import "C"

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"unsafe"

	lib "github.com/sugarme/gotch/libtch"
	"github.com/sugarme/gotch/ts"
)

// This constant lives in zz_cgo_flags.go, which ./setup-libtorch.sh writes
// with the include and link flags of the libtorch it chose. If the build
// stops here, run ./setup-libtorch.sh in the repository root.
const _ = preparedBySetupLibtorch

// cerr turns a malloc'd error message from shim.cpp into a Go error.
func cerr(msg *C.char) error {
	if msg == nil {
		return nil
	}
	defer C.free(unsafe.Pointer(msg))
	return errors.New(C.GoString(msg))
}

// ManualSeed seeds libtorch's default generators (CPU and every CUDA device),
// as torch.manual_seed does.
func ManualSeed(seed uint64) error {
	if err := cerr(C.gsrmt_manual_seed(C.uint64_t(seed))); err != nil {
		return fmt.Errorf("torch: manual seed %d: %w", seed, err)
	}
	return nil
}

// SetNumThreads sets the number of threads libtorch uses inside one op.
func SetNumThreads(n int) error {
	if n < 1 {
		return fmt.Errorf("torch: set threads to %d: want a positive count", n)
	}
	if err := cerr(C.gsrmt_set_num_threads(C.int(n))); err != nil {
		return fmt.Errorf("torch: set threads to %d: %w", n, err)
	}
	return nil
}

// NumThreads reports the number of threads libtorch uses inside one op.
func NumThreads() int { return int(C.gsrmt_get_num_threads()) }

// SetNumInteropThreads sets the size of libtorch's inter-op thread pool. It
// can be set once, before any parallel work starts; later calls fail.
func SetNumInteropThreads(n int) error {
	if n < 1 {
		return fmt.Errorf("torch: set inter-op threads to %d: want a positive count", n)
	}
	if err := cerr(C.gsrmt_set_num_interop_threads(C.int(n))); err != nil {
		return fmt.Errorf("torch: set inter-op threads to %d: %w", n, err)
	}
	return nil
}

// NumInteropThreads reports the size of libtorch's inter-op thread pool.
func NumInteropThreads() int { return int(C.gsrmt_get_num_interop_threads()) }

// Version is the version of the libtorch headers gsrmt was compiled against,
// for example "1.13.0".
func Version() string { return C.GoString(C.gsrmt_torch_version()) }

// CUDADeviceCount is the number of CUDA devices libtorch can use (0 on a CPU
// build of libtorch or a machine without a GPU).
func CUDADeviceCount() int { return int(C.gsrmt_cuda_device_count()) }

// CUDAAvailable reports whether libtorch was built with CUDA and sees a device.
func CUDAAvailable() bool { return C.gsrmt_cuda_is_available() != 0 }

// AutocastDType is the lower precision that CUDA autocast computes in.
type AutocastDType int

// Autocast precisions, with libtorch's ScalarType codes.
const (
	Float16  AutocastDType = 5
	BFloat16 AutocastDType = 15
)

func (d AutocastDType) String() string {
	switch d {
	case Float16:
		return "float16"
	case BFloat16:
		return "bfloat16"
	}
	return fmt.Sprintf("AutocastDType(%d)", int(d))
}

// SetAutocast turns CUDA autocast on or off for the calling OS thread and
// sets its precision, as torch.autocast("cuda", dtype) does. It returns the
// previous on/off state. Turning it on needs a CUDA build of libtorch with a
// device; on a CPU-only libtorch it returns an error that says so.
func SetAutocast(enabled bool, dtype AutocastDType) (previous bool, err error) {
	if dtype != Float16 && dtype != BFloat16 {
		return false, fmt.Errorf("torch: autocast dtype %v: want float16 or bfloat16", dtype)
	}
	if enabled && !CUDAAvailable() {
		return false, fmt.Errorf("torch: CUDA autocast asked for, but libtorch %s sees no CUDA device (CPU build or no GPU)", Version())
	}
	previous = AutocastEnabled()
	e := C.int(0)
	if enabled {
		e = 1
	}
	if err := cerr(C.gsrmt_autocast_set(e, C.int(dtype))); err != nil {
		return previous, fmt.Errorf("torch: set autocast %v (%v): %w", enabled, dtype, err)
	}
	if !enabled {
		C.gsrmt_autocast_clear_cache()
	}
	return previous, nil
}

// AutocastEnabled reports whether CUDA autocast is on for the calling OS thread.
func AutocastEnabled() bool { return C.gsrmt_autocast_enabled() != 0 }

// BuildInfo describes the libtorch and the gotch copy this binary was built
// with, as setup-libtorch.sh prepared them.
type BuildInfo struct {
	GotchVersion    string   // gotch module version, e.g. "v0.9.1"
	LibtorchVersion string   // version read from the libtorch headers
	LibtorchRoot    string   // libtorch folder (Debian: /usr)
	LibtorchLib     string   // folder holding libtorch.so
	LibtorchSource  string   // how setup-libtorch.sh found it
	CUDA            bool     // whether the CUDA libraries are linked
	CXX11ABI        int      // _GLIBCXX_USE_CXX11_ABI used to compile gotch
	StubbedOps      []string // gotch wrappers compiled as stubs (ops this libtorch lacks)
}

// Build returns the facts recorded by setup-libtorch.sh.
func Build() BuildInfo {
	return BuildInfo{
		GotchVersion:    lib.GsrmtGotchVersion,
		LibtorchVersion: lib.GsrmtLibtorchVersion,
		LibtorchRoot:    lib.GsrmtLibtorchRoot,
		LibtorchLib:     lib.GsrmtLibtorchLib,
		LibtorchSource:  lib.GsrmtLibtorchSource,
		CUDA:            lib.GsrmtCUDA,
		CXX11ABI:        lib.GsrmtCXX11ABI,
		StubbedOps:      append([]string(nil), lib.GsrmtStubbedOps...),
	}
}

// SetGradEnabled turns autograd's grad mode on or off for the calling OS
// thread and returns the previous mode. (gotch's GradSetEnabled reads its
// C int result as a Go int and so reports the previous mode unreliably.)
func SetGradEnabled(enabled bool) (previous bool) {
	e := C.int(0)
	if enabled {
		e = 1
	}
	return C.gsrmt_grad_set_enabled(e) != 0
}

// GradEnabled reports autograd's grad mode on the calling OS thread.
func GradEnabled() bool { return C.gsrmt_grad_is_enabled() != 0 }

// NoGrad runs fn with grad mode off, on one OS thread, and restores the
// previous mode afterwards, also when fn panics.
func NoGrad(fn func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	prev := SetGradEnabled(false)
	defer SetGradEnabled(prev)
	fn()
}

// TrimHeap returns memory that C code (libtorch) has freed to the operating
// system, so that resident-memory measurements count live memory only.
func TrimHeap() { C.gsrmt_trim_heap() }

// CPURNGState returns the state of libtorch's default CPU generator (the
// bytes of torch.get_rng_state()), for an exact resume.
func CPURNGState() ([]byte, error) {
	buf := make([]byte, 8192)
	for {
		var msg *C.char
		n := int64(C.gsrmt_cpu_rng_state((*C.uint8_t)(unsafe.Pointer(&buf[0])), C.int64_t(len(buf)), &msg))
		if n < 0 {
			return nil, fmt.Errorf("torch: read the CPU generator state: %w", cerr(msg))
		}
		if n <= int64(len(buf)) {
			return buf[:n], nil
		}
		buf = make([]byte, n)
	}
}

// SetCPURNGState restores a state returned by CPURNGState.
func SetCPURNGState(state []byte) error {
	if len(state) == 0 {
		return fmt.Errorf("torch: restore the CPU generator: empty state")
	}
	if err := cerr(C.gsrmt_set_cpu_rng_state((*C.uint8_t)(unsafe.Pointer(&state[0])), C.int64_t(len(state)))); err != nil {
		return fmt.Errorf("torch: restore the CPU generator (%d bytes): %w", len(state), err)
	}
	return nil
}

// Synchronize waits until the work queued on CUDA device dev is done (for
// timing). On a build or machine without CUDA it does nothing.
func Synchronize(dev int) error {
	if !CUDAAvailable() {
		return nil
	}
	if err := cerr(C.gsrmt_cuda_synchronize(C.int64_t(dev))); err != nil {
		return fmt.Errorf("torch: synchronize cuda:%d: %w", dev, err)
	}
	return nil
}

// CUDAMemory returns the bytes in use on CUDA device dev (its total minus its
// free memory, for all processes, as nvidia-smi reports it: the CUDA context
// and what the caching allocator holds) and the device's total. It asks the
// driver (libcuda.so.1) directly, so it works with any libtorch build; on a
// machine without the NVIDIA driver it returns an error.
func CUDAMemory(dev int) (used, total uint64, err error) {
	var u, t C.uint64_t
	if err := cerr(C.gsrmt_cuda_mem_info(C.int(dev), &u, &t)); err != nil {
		return 0, 0, fmt.Errorf("torch: memory of cuda:%d: %w", dev, err)
	}
	return uint64(u), uint64(t), nil
}

// StartProfile records every libtorch op that the calling OS thread runs
// (lock it with runtime.LockOSThread) until StopProfile, which writes them to
// path as a Chrome trace (open it in chrome://tracing or ui.perfetto.dev).
func StartProfile(path string) error {
	cs := C.CString(path)
	defer C.free(unsafe.Pointer(cs))
	if err := cerr(C.gsrmt_profile_start(cs)); err != nil {
		return fmt.Errorf("torch: profile to %s: %w", path, err)
	}
	return nil
}

// StopProfile ends the recording StartProfile began and writes the trace.
func StopProfile() error {
	if err := cerr(C.gsrmt_profile_stop()); err != nil {
		return fmt.Errorf("torch: write the profile: %w", err)
	}
	return nil
}

// handles returns the C handles (torch::Tensor*) of tensors.
func handles(tensors []*ts.Tensor) []unsafe.Pointer {
	h := make([]unsafe.Pointer, len(tensors))
	for i, t := range tensors {
		h[i] = t.Ctensor()
	}
	return h
}

// ZeroGrad zeroes, in place, the gradient of each tensor that has one.
func ZeroGrad(params []*ts.Tensor) error {
	if len(params) == 0 {
		return nil
	}
	h := handles(params)
	if err := cerr(C.gsrmt_zero_grad(&h[0], C.int(len(h)))); err != nil {
		return fmt.Errorf("torch: zero gradients: %w", err)
	}
	runtime.KeepAlive(params)
	return nil
}

// AdamWStep holds one AdamW update's settings (torch.optim.AdamW's).
type AdamWStep struct {
	LR, Beta1, Beta2, Eps, WeightDecay float64
	// Step is the update's number, 1 for the first (bias correction).
	Step int64
	// Foreach uses the multi-tensor form (one op over all tensors), as
	// PyTorch does on CUDA; otherwise the single-tensor form, op by op.
	Foreach bool
}

// AdamW applies torch.optim.AdamW's update in place to params and their
// first and second moments m and v (same lengths), in libtorch without a
// Go round trip per op. Weight decay applies where decay[i] is true;
// parameters without a gradient are left alone. It runs without autograd.
func AdamW(params, m, v []*ts.Tensor, decay []bool, s AdamWStep) error {
	n := len(params)
	if len(m) != n || len(v) != n || len(decay) != n {
		return fmt.Errorf("torch: adamw: %d parameters, %d/%d moments, %d decay flags: want equal lengths", n, len(m), len(v), len(decay))
	}
	if n == 0 {
		return nil
	}
	hp, hm, hv := handles(params), handles(m), handles(v)
	dec := make([]C.int, n)
	for i, d := range decay {
		if d {
			dec[i] = 1
		}
	}
	foreach := C.int(0)
	if s.Foreach {
		foreach = 1
	}
	err := cerr(C.gsrmt_adamw_step(&hp[0], &hm[0], &hv[0], &dec[0], C.int(n), C.double(s.LR), C.double(s.Beta1),
		C.double(s.Beta2), C.double(s.Eps), C.double(s.WeightDecay), C.int64_t(s.Step), foreach))
	runtime.KeepAlive(params)
	runtime.KeepAlive(m)
	runtime.KeepAlive(v)
	if err != nil {
		return fmt.Errorf("torch: adamw step %d: %w", s.Step, err)
	}
	return nil
}

// BLASLibrary returns the path of the BLAS library this process has loaded
// (the one libtorch's matrix products call), or "" when none is loaded as a
// separate library (official libtorch builds link MKL in). On Debian it is
// whatever the libblas.so.3 alternative points to: Netlib's reference BLAS
// (/usr/lib/x86_64-linux-gnu/blas/libblas.so.3), several times slower than
// OpenBLAS, unless an OpenBLAS package is installed.
func BLASLibrary() string {
	data, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		path := f[len(f)-1]
		base := filepath.Base(path)
		if strings.HasPrefix(base, "libblas.so") || strings.HasPrefix(base, "libopenblas") ||
			strings.HasPrefix(base, "libmkl_rt") || strings.HasPrefix(base, "libflexiblas") || strings.HasPrefix(base, "libblis") {
			return path
		}
	}
	return ""
}

// ReferenceBLAS reports whether path (from BLASLibrary) is Netlib's
// reference BLAS, Debian's fallback when no optimized BLAS is installed.
func ReferenceBLAS(path string) bool {
	return strings.HasPrefix(filepath.Base(path), "libblas.so") && filepath.Base(filepath.Dir(path)) == "blas"
}

// SetFlushDenormal turns flushing of denormal floats to zero on or off for
// the calling OS thread (torch.set_flush_denormal); it reports false where
// the CPU does not support it.
func SetFlushDenormal(on bool) bool {
	v := C.int(0)
	if on {
		v = 1
	}
	return C.gsrmt_set_flush_denormal(v) != 0
}

// KeepFreedMemory makes glibc's malloc keep the memory libtorch frees for
// reuse instead of handing it back to the system: no mmap for large blocks
// and no trimming of the heap after frees (mallopt M_MMAP_MAX 0,
// M_TRIM_THRESHOLD INT_MAX, M_TOP_PAD 64 MB). By default glibc maps each
// large tensor afresh and unmaps it when freed, so every step faults its
// memory in again page by page: on this project's 2-core VMs that made an
// evaluation forward up to 3x slower than with the memory kept. The
// resident size then stays at the run's peak, which TrimHeap releases.
//
// It changes malloc for the whole process, so the library never calls it:
// gsrmt-cli does at start-up unless GSRMT_MALLOC=system is set or
// GLIBC_TUNABLES already sets malloc tunables. It reports false where
// mallopt refused a setting (another C library than glibc).
func KeepFreedMemory() bool { return C.gsrmt_keep_freed_memory() != 0 }

// HeapInUse returns the bytes of C heap in use (glibc's mallinfo2: the
// chunks allocated in every arena plus mmapped blocks): libtorch's tensors
// and everything else C allocates, without the free memory malloc keeps.
// It returns -1 where the C library is not glibc.
func HeapInUse() int64 { return int64(C.gsrmt_heap_in_use()) }

// AMPUnscale is GradScaler.unscale_'s kernel
// (_amp_foreach_non_finite_check_and_unscale_): it multiplies each gradient
// by invScale (float32, one element) in place and sets foundInf (float32,
// one element) to 1 when any gradient holds an infinite or NaN value. On
// CUDA it calls libtorch's kernel; on the CPU, which has none in libtorch
// 1.13, the same arithmetic.
func AMPUnscale(grads []*ts.Tensor, foundInf, invScale *ts.Tensor) error {
	if len(grads) == 0 {
		return nil
	}
	h := handles(grads)
	if err := cerr(C.gsrmt_amp_unscale(&h[0], C.int(len(h)), foundInf.Ctensor(), invScale.Ctensor())); err != nil {
		return fmt.Errorf("torch: unscale gradients: %w", err)
	}
	runtime.KeepAlive(grads)
	runtime.KeepAlive(foundInf)
	runtime.KeepAlive(invScale)
	return nil
}

// AMPUpdateScale is GradScaler.update's kernel (_amp_update_scale_) on
// scale (float32) and growthTracker (int32), one element each: after a step
// with foundInf set the scale is multiplied by backoff and the tracker
// reset; otherwise the tracker counts the good step, and at interval good
// steps the scale grows by growth (when the result is finite) and the
// tracker restarts.
func AMPUpdateScale(scale, growthTracker, foundInf *ts.Tensor, growth, backoff float64, interval int64) error {
	err := cerr(C.gsrmt_amp_update_scale(scale.Ctensor(), growthTracker.Ctensor(), foundInf.Ctensor(), C.double(growth), C.double(backoff),
		C.int64_t(interval)))
	runtime.KeepAlive(scale)
	runtime.KeepAlive(growthTracker)
	runtime.KeepAlive(foundInf)
	if err != nil {
		return fmt.Errorf("torch: update the loss scale: %w", err)
	}
	return nil
}

// BackwardWithGrad is output.backward(grad): it accumulates into the
// gradients of the leaves output depends on, with grad (output's shape and
// dtype) as the gradient of output.
func BackwardWithGrad(output, grad *ts.Tensor) error {
	err := cerr(C.gsrmt_backward_with_grad(output.Ctensor(), grad.Ctensor()))
	runtime.KeepAlive(output)
	runtime.KeepAlive(grad)
	if err != nil {
		return fmt.Errorf("torch: backward: %w", err)
	}
	return nil
}
