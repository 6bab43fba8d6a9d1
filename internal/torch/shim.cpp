// shim.cpp: small C wrappers over libtorch's C++ API for what gotch lacks:
// seeding, thread counts, the version, CUDA devices and autocast.
#include "shim.h"

#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <ATen/core/grad_mode.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Functions.h>
#include <mutex>
#include <c10/core/DeviceType.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <cstdlib>
#include <malloc.h>
#include <cstring>
#include <exception>

namespace {
char *error_copy(const std::exception &e) { return strdup(e.what()); }
}  // namespace

extern "C" {

char *gsrmt_manual_seed(uint64_t seed) {
  try {
    at::manual_seed(seed);
  } catch (const std::exception &e) {
    return error_copy(e);
  }
  return nullptr;
}

char *gsrmt_set_num_threads(int n) {
  try {
    at::set_num_threads(n);
  } catch (const std::exception &e) {
    return error_copy(e);
  }
  return nullptr;
}

char *gsrmt_set_num_interop_threads(int n) {
  try {
    at::set_num_interop_threads(n);
  } catch (const std::exception &e) {
    return error_copy(e);
  }
  return nullptr;
}

int gsrmt_get_num_threads(void) { return at::get_num_threads(); }

int gsrmt_get_num_interop_threads(void) { return at::get_num_interop_threads(); }

const char *gsrmt_torch_version(void) { return TORCH_VERSION; }

int gsrmt_cuda_device_count(void) {
  try {
    return static_cast<int>(at::getNumGPUs());
  } catch (const std::exception &) {
    return 0;
  }
}

int gsrmt_cuda_is_available(void) { return at::hasCUDA() && gsrmt_cuda_device_count() > 0; }

// autocast's API moved to per-device-type functions in libtorch 2.4.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define GSRMT_AUTOCAST_PER_DEVICE 1
#endif

char *gsrmt_autocast_set(int enabled, int dtype) {
  try {
    auto st = static_cast<at::ScalarType>(dtype);
#ifdef GSRMT_AUTOCAST_PER_DEVICE
    at::autocast::set_autocast_dtype(at::kCUDA, st);
    at::autocast::set_autocast_enabled(at::kCUDA, enabled != 0);
#else
    at::autocast::set_autocast_gpu_dtype(st);
    at::autocast::set_enabled(enabled != 0);
#endif
  } catch (const std::exception &e) {
    return error_copy(e);
  }
  return nullptr;
}

int gsrmt_autocast_enabled(void) {
#ifdef GSRMT_AUTOCAST_PER_DEVICE
  return at::autocast::is_autocast_enabled(at::kCUDA);
#else
  return at::autocast::is_enabled();
#endif
}

void gsrmt_autocast_clear_cache(void) { at::autocast::clear_cache(); }

int gsrmt_grad_set_enabled(int enabled) {
  bool prev = at::GradMode::is_enabled();
  at::GradMode::set_enabled(enabled != 0);
  return prev ? 1 : 0;
}

int gsrmt_grad_is_enabled(void) { return at::GradMode::is_enabled() ? 1 : 0; }

void gsrmt_trim_heap(void) { malloc_trim(0); }

int64_t gsrmt_cpu_rng_state(uint8_t *buf, int64_t cap, char **err) {
  try {
    auto gen = at::detail::getDefaultCPUGenerator();
    at::Tensor state;
    {
      std::lock_guard<std::mutex> lock(gen.mutex());
      state = gen.get_state();
    }
    int64_t n = state.numel();
    if (n <= cap) {
      std::memcpy(buf, state.data_ptr<uint8_t>(), n);
    }
    return n;
  } catch (const std::exception &e) {
    *err = error_copy(e);
    return -1;
  }
}

char *gsrmt_set_cpu_rng_state(const uint8_t *buf, int64_t len) {
  try {
    auto state = at::empty({len}, at::kByte);
    std::memcpy(state.data_ptr<uint8_t>(), buf, len);
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(state);
  } catch (const std::exception &e) {
    return error_copy(e);
  }
  return nullptr;
}

char *gsrmt_cuda_synchronize(int64_t device) {
  try {
    torch::cuda::synchronize(device);
  } catch (const std::exception &e) {
    return error_copy(e);
  }
  return nullptr;
}

}  // extern "C"
