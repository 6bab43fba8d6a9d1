// C interface of shim.cpp: libtorch's c10d (TCPStore, PrefixStore,
// ProcessGroupGloo, ProcessGroupNCCL) for package dist.
#ifndef GSRMT_DIST_SHIM_H
#define GSRMT_DIST_SHIM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Every function that returns char * returns NULL on success or a malloc'd
// error message that the caller frees. No C++ exception leaves this file.

// Backends compiled into this build: 1 when present.
int gsrmt_dist_has_gloo(void);
int gsrmt_dist_has_nccl(void);
// CUDA devices libtorch sees (0 on a CPU build).
int gsrmt_dist_cuda_devices(void);
// The libtorch version of the headers, e.g. "1.13.0".
const char *gsrmt_dist_torch_version(void);

// Opens the store as torch.distributed's env:// rendezvous does: with
// agent_store, a client of the store torchrun's agent hosts at addr:port,
// under the prefix /worker/attempt_<restart>; otherwise rank 0 hosts it (and
// every rank passes size as the worker count). *out receives the group.
char *gsrmt_dist_open(const char *addr, int port, int rank, int size, int agent_store, int restart,
                      int64_t timeout_ms, void **out);
// Creates the process group ("gloo" or "nccl") over the opened store under
// the prefix default_pg/0, then runs the store-based barrier and sequence
// number agreement of torch.distributed.init_process_group.
char *gsrmt_dist_create(void *g, const char *backend, int local_rank);
// Destroys the process group and the store (a no-op on NULL).
void gsrmt_dist_free(void *g);

// Store access under gsrmt's own prefix (gsrmt_dist/): set, check (1 when
// the key exists, 0 when not, -1 on error with *err set) and get (waits for
// the key up to the store's timeout; *val is malloc'd).
char *gsrmt_dist_store_set(void *g, const char *key, const uint8_t *val, int64_t len);
int gsrmt_dist_store_check(void *g, const char *key, char **err);
char *gsrmt_dist_store_get(void *g, const char *key, uint8_t **val, int64_t *len);

// Collectives over n tensor handles (gotch's torch::Tensor *), in place,
// flattened in the given order into buckets of at most cap bytes (the first
// at most first_cap) that hold one dtype on one device; each bucket is sent
// while the next is flattened, and copied back under no-grad.
// allreduce sums, and divides by the group size when mean != 0.
char *gsrmt_dist_allreduce(void *g, void **tensors, int n, int64_t first_cap, int64_t cap, int mean);
char *gsrmt_dist_broadcast(void *g, void **tensors, int n, int root, int64_t first_cap, int64_t cap);
// Sums n doubles across ranks in place.
char *gsrmt_dist_allreduce_f64(void *g, double *vals, int n);
// Broadcasts len bytes from root in place.
char *gsrmt_dist_broadcast_bytes(void *g, uint8_t *buf, int64_t len, int root);
char *gsrmt_dist_barrier(void *g);

// torch.nn.SyncBatchNorm's training forward on x (N, C, ...): statistics
// over every rank's x (each rank must call it, in the same order, with the
// same C), running statistics updated in place from them, weight and bias
// applied; weight, bias, running_mean and running_var may be NULL. *out
// receives a new tensor handle that is part of the autograd graph: its
// backward all-reduces the gradient sums over the group (every rank must run
// it). *collective_failed is 1 when the error is a failed collective (the
// group is unusable), 0 for an argument error.
char *gsrmt_dist_sync_batch_norm(void *g, void *x, void *weight, void *bias, void *running_mean, void *running_var,
                                 double momentum, double eps, void **out, int *collective_failed);
// The first failure of a collective that SyncBatchNorm ran (in forward or
// inside autograd's backward), malloc'd, with how long it ran; NULL if none.
char *gsrmt_dist_async_error(void *g, int64_t *elapsed_ms);

#ifdef __cplusplus
}
#endif

#endif
