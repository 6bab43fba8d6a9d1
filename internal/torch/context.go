package torch

// #include <stdlib.h>
// #include "context.h"
import "C"

import "fmt"

// libtorch's global switches for CUDA float32 math, which timm's train.py
// turns on for CUDA runs (torch.backends.cuda.matmul.allow_tf32,
// torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark). They
// are process-wide, not per thread, and only CUDA kernels read them: on the
// CPU, or a CPU build of libtorch, setting them changes nothing (but they
// read back as set).

// SetTF32 allows (on) or forbids TF32 tensor cores in CUDA float32 matmuls
// (cuBLAS; the float32 matmul precision "high" instead of "highest") and in
// cuDNN's convolutions. TF32 keeps float32's range with a 10-bit mantissa:
// Ampere and later GPUs run float32 matmuls several times faster with it.
func SetTF32(on bool) error {
	if err := cerr(C.gsrmt_set_tf32(cBool(on))); err != nil {
		return fmt.Errorf("torch: set TF32 %s: %w", onOff(on), err)
	}
	return nil
}

// TF32 reports whether TF32 is allowed in CUDA float32 matmuls (cuBLAS) and
// in cuDNN. libtorch starts with matmul off and cuDNN on.
func TF32() (matmul, cudnn bool, err error) {
	var m, c C.int
	if err := cerr(C.gsrmt_tf32(&m, &c)); err != nil {
		return false, false, fmt.Errorf("torch: read the TF32 settings: %w", err)
	}
	return m != 0, c != 0, nil
}

// SetCuDNNBenchmark turns cuDNN's autotuner on or off: with it, the first
// convolution of each input shape times cuDNN's algorithms and keeps the
// fastest (a slower first step, faster later ones when shapes repeat).
func SetCuDNNBenchmark(on bool) error {
	if err := cerr(C.gsrmt_set_cudnn_benchmark(cBool(on))); err != nil {
		return fmt.Errorf("torch: set cuDNN benchmark %s: %w", onOff(on), err)
	}
	return nil
}

// CuDNNBenchmark reports whether cuDNN's autotuner is on (libtorch starts
// with it off).
func CuDNNBenchmark() (bool, error) {
	var on C.int
	if err := cerr(C.gsrmt_cudnn_benchmark(&on)); err != nil {
		return false, fmt.Errorf("torch: read the cuDNN benchmark setting: %w", err)
	}
	return on != 0, nil
}

func cBool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
