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

#if __has_include(<torch/csrc/autograd/profiler_legacy.h>)
#include <torch/csrc/autograd/profiler_legacy.h>
#define GSRMT_HAVE_RECORD_PROFILE 1
#endif

#include <cmath>
#include <cstdio>
#include <vector>
#include <memory>
#include <string>
#include <cstdlib>
#include <dlfcn.h>
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

int gsrmt_set_flush_denormal(int on) { return at::globalContext().setFlushDenormal(on != 0) ? 1 : 0; }

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

int64_t gsrmt_heap_in_use(void) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  struct mallinfo2 mi = mallinfo2();
  return static_cast<int64_t>(mi.uordblks + mi.hblkhd);
#elif defined(__GLIBC__)
  struct mallinfo mi = mallinfo();  // int fields: wrong past 2 GB
  return static_cast<int64_t>(static_cast<unsigned>(mi.uordblks)) + static_cast<unsigned>(mi.hblkhd);
#else
  return -1;
#endif
}

int gsrmt_keep_freed_memory(void) {
  // No mmap for large blocks (each would be faulted in again, page by page,
  // on every use), and no trimming of the heap's top after frees.
  int ok = mallopt(M_MMAP_MAX, 0);
  ok &= mallopt(M_TRIM_THRESHOLD, 0x7fffffff);
  ok &= mallopt(M_TOP_PAD, 64 << 20);
  return ok;
}

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

// The CUDA driver API, loaded at run time so that a CPU build needs neither
// CUDA headers nor libcuda. Result codes are CUresult (0 = CUDA_SUCCESS).
namespace {
struct DriverAPI {
  int (*init)(unsigned int);
  int (*device_get)(int *, int);
  int (*primary_ctx_retain)(void **, int);
  int (*primary_ctx_release)(int);
  int (*ctx_push)(void *);
  int (*ctx_pop)(void **);
  int (*mem_get_info)(size_t *, size_t *);
  const char *error;
};

const DriverAPI &driver_api() {
  static DriverAPI api = [] {
    DriverAPI a{};
    void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
    if (h == nullptr) {
      a.error = "libcuda.so.1 (the NVIDIA driver) cannot be loaded";
      return a;
    }
    a.init = reinterpret_cast<int (*)(unsigned int)>(dlsym(h, "cuInit"));
    a.device_get = reinterpret_cast<int (*)(int *, int)>(dlsym(h, "cuDeviceGet"));
    a.primary_ctx_retain = reinterpret_cast<int (*)(void **, int)>(dlsym(h, "cuDevicePrimaryCtxRetain"));
    a.primary_ctx_release = reinterpret_cast<int (*)(int)>(dlsym(h, "cuDevicePrimaryCtxRelease_v2"));
    a.ctx_push = reinterpret_cast<int (*)(void *)>(dlsym(h, "cuCtxPushCurrent_v2"));
    a.ctx_pop = reinterpret_cast<int (*)(void **)>(dlsym(h, "cuCtxPopCurrent_v2"));
    a.mem_get_info = reinterpret_cast<int (*)(size_t *, size_t *)>(dlsym(h, "cuMemGetInfo_v2"));
    if (!a.init || !a.device_get || !a.primary_ctx_retain || !a.primary_ctx_release || !a.ctx_push || !a.ctx_pop ||
        !a.mem_get_info) {
      a.error = "libcuda.so.1 lacks the driver functions cuMemGetInfo_v2 and friends (driver older than CUDA 11?)";
    }
    return a;
  }();
  return api;
}
}  // namespace

namespace {
inline at::Tensor &T(void *h) { return *static_cast<at::Tensor *>(h); }
}  // namespace

char *gsrmt_zero_grad(void **params, int n) {
  try {
    for (int i = 0; i < n; i++) {
      // mutable_grad: a reference to the gradient, not a new handle.
      at::Tensor &g = T(params[i]).mutable_grad();
      if (g.defined()) {
        g.zero_();
      }
    }
  } catch (const std::exception &e) {
    return error_copy(e);
  }
  return nullptr;
}

char *gsrmt_adamw_step(void **params, void **exp_avg, void **exp_avg_sq, const int *decay, int n, double lr, double beta1,
                       double beta2, double eps, double weight_decay, int64_t step, int foreach) {
  try {
    at::NoGradGuard no_grad;
    const double bc1 = 1 - std::pow(beta1, static_cast<double>(step));
    const double bc2 = 1 - std::pow(beta2, static_cast<double>(step));
    const double step_size = lr / bc1;
    const double bc2_sqrt = std::sqrt(bc2);
    if (!foreach) {
      // torch.optim.AdamW(foreach=False): _single_tensor_adamw of the libtorch's own PyTorch version.
      for (int i = 0; i < n; i++) {
        at::Tensor &p = T(params[i]);
        const at::Tensor &g = p.grad();
        if (!g.defined()) {
          continue;
        }
        if (decay[i] && weight_decay != 0) {
          p.mul_(1 - lr * weight_decay);
        }
#if TORCH_VERSION_MAJOR >= 2
        T(exp_avg[i]).lerp_(g, 1 - beta1);  // PyTorch 2.x's form
#else
        T(exp_avg[i]).mul_(beta1).add_(g, 1 - beta1);  // PyTorch 1.13's form
#endif
        T(exp_avg_sq[i]).mul_(beta2).addcmul_(g, g, 1 - beta2);
        at::Tensor denom = (T(exp_avg_sq[i]).sqrt() / bc2_sqrt).add_(eps);
        p.addcdiv_(T(exp_avg[i]), denom, -step_size);
      }
      return nullptr;
    }
    // torch.optim.AdamW(foreach=True): _multi_tensor_adamw, one kernel launch per op
    // for all tensors (what PyTorch uses on CUDA by default).
    std::vector<at::Tensor> ps, gs, ms, vs, decayed;
    for (int i = 0; i < n; i++) {
      at::Tensor &p = T(params[i]);
      if (!p.grad().defined()) {
        continue;
      }
      ps.push_back(p);
      gs.push_back(p.grad());
      ms.push_back(T(exp_avg[i]));
      vs.push_back(T(exp_avg_sq[i]));
      if (decay[i]) {
        decayed.push_back(p);
      }
    }
    if (ps.empty()) {
      return nullptr;
    }
    if (weight_decay != 0 && !decayed.empty()) {
      at::_foreach_mul_(decayed, 1 - lr * weight_decay);
    }
#if TORCH_VERSION_MAJOR >= 2
    at::_foreach_lerp_(ms, gs, 1 - beta1);
#else
    at::_foreach_mul_(ms, beta1);
    at::_foreach_add_(ms, gs, 1 - beta1);
#endif
    at::_foreach_mul_(vs, beta2);
    at::_foreach_addcmul_(vs, gs, gs, 1 - beta2);
    std::vector<at::Tensor> denom = at::_foreach_sqrt(vs);
    at::_foreach_div_(denom, bc2_sqrt);
    at::_foreach_add_(denom, eps);
    at::_foreach_addcdiv_(ps, ms, denom, -step_size);
  } catch (const std::exception &e) {
    return error_copy(e);
  }
  return nullptr;
}

#ifdef GSRMT_HAVE_RECORD_PROFILE
namespace {
std::unique_ptr<torch::autograd::profiler::RecordProfile> profile;
}
#endif

char *gsrmt_profile_start(const char *path) {
#ifdef GSRMT_HAVE_RECORD_PROFILE
  try {
    if (profile) {
      return strdup("a profile is already being recorded");
    }
    profile = std::make_unique<torch::autograd::profiler::RecordProfile>(std::string(path));
  } catch (const std::exception &e) {
    return error_copy(e);
  }
  return nullptr;
#else
  (void)path;
  return strdup("this libtorch has no legacy profiler (torch/csrc/autograd/profiler_legacy.h)");
#endif
}

char *gsrmt_profile_stop(void) {
#ifdef GSRMT_HAVE_RECORD_PROFILE
  try {
    profile.reset();  // writes the trace
  } catch (const std::exception &e) {
    return error_copy(e);
  }
#endif
  return nullptr;
}

char *gsrmt_cuda_mem_info(int device, uint64_t *used, uint64_t *total) {
  const DriverAPI &api = driver_api();
  if (api.error != nullptr) {
    return strdup(api.error);
  }
  char buf[160];
  int dev = 0, rc = 0;
  void *ctx = nullptr;
  if ((rc = api.init(0)) != 0 || (rc = api.device_get(&dev, device)) != 0 ||
      (rc = api.primary_ctx_retain(&ctx, dev)) != 0) {
    snprintf(buf, sizeof buf, "CUDA driver error %d while opening device %d", rc, device);
    return strdup(buf);
  }
  size_t free_b = 0, total_b = 0;
  if ((rc = api.ctx_push(ctx)) == 0) {
    rc = api.mem_get_info(&free_b, &total_b);
    void *popped = nullptr;
    api.ctx_pop(&popped);
  }
  api.primary_ctx_release(dev);
  if (rc != 0) {
    snprintf(buf, sizeof buf, "CUDA driver error %d in cuMemGetInfo on device %d", rc, device);
    return strdup(buf);
  }
  *used = total_b - free_b;
  *total = total_b;
  return nullptr;
}

}  // extern "C"

// Loss scaling for fp16 (torch.cuda.amp.GradScaler's kernels): on CUDA
// libtorch's own ops; on the CPU, where libtorch 1.13 has none, the same
// arithmetic op by op (float32 scale and found_inf, int32 growth tracker).
char *gsrmt_amp_unscale(void **grads, int n, void *found_inf, void *inv_scale) {
  try {
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> gs;
    for (int i = 0; i < n; i++) {
      gs.push_back(T(grads[i]));
    }
    at::Tensor &found = T(found_inf);
    const at::Tensor &inv = T(inv_scale);
    if (found.is_cuda()) {
      at::_amp_foreach_non_finite_check_and_unscale_(gs, found, inv);
      return nullptr;
    }
    for (auto &g : gs) {
      // The kernel's rule: found_inf = 1 when any value is not finite; every
      // gradient is multiplied by inv_scale either way.
      if (!at::isfinite(g).all().item<bool>()) {
        found.fill_(1.0);
      }
      g.mul_(inv);
    }
  } catch (const std::exception &e) {
    return error_copy(e);
  }
  return nullptr;
}

char *gsrmt_amp_update_scale(void *scale, void *growth_tracker, void *found_inf, double growth_factor, double backoff_factor,
                             int64_t growth_interval) {
  try {
    at::NoGradGuard no_grad;
    at::Tensor &s = T(scale);
    at::Tensor &tracker = T(growth_tracker);
    const at::Tensor &found = T(found_inf);
    if (s.is_cuda()) {
      at::_amp_update_scale_(s, tracker, found, growth_factor, backoff_factor, growth_interval);
      return nullptr;
    }
    // amp_update_scale_cuda_kernel, in float32 as it computes.
    float current = s.item<float>();
    if (found.item<float>() != 0.0f) {
      s.fill_(static_cast<double>(current * static_cast<float>(backoff_factor)));
      tracker.fill_(0);
      return nullptr;
    }
    int64_t successful = tracker.item<int64_t>() + 1;
    if (successful == growth_interval) {
      float grown = current * static_cast<float>(growth_factor);
      if (std::isfinite(grown)) {
        s.fill_(static_cast<double>(grown));
      }
      tracker.fill_(0);
    } else {
      tracker.fill_(successful);
    }
  } catch (const std::exception &e) {
    return error_copy(e);
  }
  return nullptr;
}

char *gsrmt_backward_with_grad(void *output, void *grad) {
  try {
    T(output).backward(T(grad));
  } catch (const std::exception &e) {
    return error_copy(e);
  }
  return nullptr;
}
