// context.cpp: libtorch's global switches for CUDA float32 math, as timm's
// train.py sets them through torch.backends. They are plain fields of
// at::globalContext(): setting them works on a CPU build too, where no
// kernel reads them.
#include "context.h"

#include <ATen/Context.h>
#include <torch/version.h>

#include <cstring>
#include <exception>

// setAllowTF32CuBLAS(true) is setFloat32MatmulPrecision("high") in every
// libtorch from 1.12 on (HIGH, or HIGHEST when false); from 2.4 on it also
// sets the newer per-backend precision ("tf32" or "default" for cuda
// matmul), so the legacy setters and readers used here stay consistent with
// each other across versions. Readers of 2.4+ refuse a state mixed by the
// newer API (TORCH_CHECK): that error is returned, not thrown.
#if TORCH_VERSION_MAJOR < 1 || (TORCH_VERSION_MAJOR == 1 && TORCH_VERSION_MINOR < 12)
#error "gsrmt needs libtorch 1.12 or later (at::Context::setAllowTF32CuBLAS)"
#endif

namespace {
char *context_error(const std::exception &e) { return strdup(e.what()); }
}  // namespace

extern "C" {

char *gsrmt_set_tf32(int on) {
  try {
    at::globalContext().setAllowTF32CuBLAS(on != 0);
    at::globalContext().setAllowTF32CuDNN(on != 0);
  } catch (const std::exception &e) {
    return context_error(e);
  }
  return nullptr;
}

char *gsrmt_tf32(int *matmul, int *cudnn) {
  try {
    *matmul = at::globalContext().allowTF32CuBLAS() ? 1 : 0;
    *cudnn = at::globalContext().allowTF32CuDNN() ? 1 : 0;
  } catch (const std::exception &e) {
    return context_error(e);
  }
  return nullptr;
}

char *gsrmt_set_cudnn_benchmark(int on) {
  try {
    at::globalContext().setBenchmarkCuDNN(on != 0);
  } catch (const std::exception &e) {
    return context_error(e);
  }
  return nullptr;
}

char *gsrmt_cudnn_benchmark(int *on) {
  try {
    *on = at::globalContext().benchmarkCuDNN() ? 1 : 0;
  } catch (const std::exception &e) {
    return context_error(e);
  }
  return nullptr;
}

}  // extern "C"
