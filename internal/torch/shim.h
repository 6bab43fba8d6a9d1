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
// The default CPU generator's state (what torch.get_rng_state returns):
// get writes up to cap bytes into buf and returns the state's length (or -1
// on error, with *err set); set restores it.
int64_t gsrmt_cpu_rng_state(uint8_t *buf, int64_t cap, char **err);
char *gsrmt_set_cpu_rng_state(const uint8_t *buf, int64_t len);
// Waits for the work queued on a CUDA device.
char *gsrmt_cuda_synchronize(int64_t device);

#ifdef __cplusplus
}
#endif

#endif
