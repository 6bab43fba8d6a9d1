// C interface of shim.cpp: libtorch functions that gotch's Go API lacks.
#ifndef GSRMT_TORCH_SHIM_H
#define GSRMT_TORCH_SHIM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Each function returns NULL on success or a malloc'd error message the
// caller frees.
char *gsrmt_manual_seed(uint64_t seed);
char *gsrmt_set_num_threads(int n);
char *gsrmt_set_num_interop_threads(int n);
int gsrmt_get_num_threads(void);
// Flushes denormal floats to zero on the calling thread (SSE3 FTZ/DAZ);
// returns 0 where the CPU cannot.
int gsrmt_set_flush_denormal(int on);
int gsrmt_get_num_interop_threads(void);
const char *gsrmt_torch_version(void);
int gsrmt_cuda_device_count(void);
int gsrmt_cuda_is_available(void);
// Autocast on CUDA: enabled flag and the lower-precision dtype (5 float16, 15 bfloat16).
char *gsrmt_autocast_set(int enabled, int dtype);
int gsrmt_autocast_enabled(void);
void gsrmt_autocast_clear_cache(void);
// Autograd's grad mode on the calling thread; set returns the previous mode.
int gsrmt_grad_set_enabled(int enabled);
int gsrmt_grad_is_enabled(void);
// Returns freed heap memory to the system (glibc malloc_trim), for memory measurements.
void gsrmt_trim_heap(void);
// Tells glibc malloc to keep freed memory for reuse instead of returning it
// to the system (mallopt M_MMAP_MAX 0, M_TRIM_THRESHOLD INT_MAX, M_TOP_PAD
// 64 MB); returns 0 if mallopt refused a setting.
int gsrmt_keep_freed_memory(void);
// Bytes of C heap in use (glibc mallinfo2: allocated chunks in every arena
// plus mmapped blocks), -1 without glibc.
int64_t gsrmt_heap_in_use(void);
// The default CPU generator's state (what torch.get_rng_state returns):
// get writes up to cap bytes into buf and returns the state's length (or -1
// on error, with *err set); set restores it.
int64_t gsrmt_cpu_rng_state(uint8_t *buf, int64_t cap, char **err);
char *gsrmt_set_cpu_rng_state(const uint8_t *buf, int64_t len);
// Waits for the work queued on a CUDA device.
char *gsrmt_cuda_synchronize(int64_t device);
// Optimizer steps over arrays of n tensor handles (gotch's torch::Tensor*):
// zero_grad zeroes each defined gradient in place; adamw_step is
// torch.optim.AdamW's update (single-tensor, or foreach when foreach != 0)
// at step number step (1 for the first), weight decay where decay[i] != 0.
char *gsrmt_zero_grad(void **params, int n);
char *gsrmt_adamw_step(void **params, void **exp_avg, void **exp_avg_sq, const int *decay, int n, double lr, double beta1,
                       double beta2, double eps, double weight_decay, int64_t step, int foreach);
// Records every libtorch op run on the calling thread between start and stop
// into a Chrome trace (chrome://tracing, Perfetto) written at stop.
char *gsrmt_profile_start(const char *path);
char *gsrmt_profile_stop(void);
// Memory in use on a CUDA device (total minus free, all processes, as
// nvidia-smi reports it) and its total, from the driver (libcuda.so.1,
// loaded on first use).
char *gsrmt_cuda_mem_info(int device, uint64_t *used, uint64_t *total);
// torch.cuda.amp.GradScaler's two kernels over tensor handles: unscale
// multiplies each gradient by inv_scale (a float32 1-element tensor) and sets
// found_inf (float32, 1 element) to 1 if any value is not finite;
// update_scale is _amp_update_scale_ on scale (float32) and growth_tracker
// (int32). libtorch's kernels on CUDA, the same arithmetic on the CPU.
char *gsrmt_amp_unscale(void **grads, int n, void *found_inf, void *inv_scale);
char *gsrmt_amp_update_scale(void *scale, void *growth_tracker, void *found_inf, double growth_factor, double backoff_factor,
                             int64_t growth_interval);
// output.backward(grad): accumulates into the leaves' gradients with grad as
// the gradient of output (gotch's Backward takes none).
char *gsrmt_backward_with_grad(void *output, void *grad);
// torch.matmul(a, b) for (..., M, K) and (..., K, N) with equal batch dims,
// bit for bit, with float32 CPU batches multiplied over the intra-op threads
// (matmul.cpp); *out is a new torch::Tensor*.
char *gsrmt_batch_matmul(void *a, void *b, void **out);
// Which path gsrmt_batch_matmul takes for float32 on the CPU: 0 the threaded
// BLAS calls, 1 torch.matmul (libtorch has MKL), 2 torch.matmul (no BLAS
// sgemm found in the process).
int gsrmt_batch_matmul_path(void);

#ifdef __cplusplus
}
#endif

#endif
