// shim.cpp: C wrappers over libtorch's c10d for package dist: the store and
// process group that torch.distributed.init_process_group builds (TCPStore,
// PrefixStore, ProcessGroupGloo or ProcessGroupNCCL), and bucketed
// collectives on gotch's tensors.
//
// It compiles against libtorch 1.13 (ProcessGroupGloo derives from
// ProcessGroup) and 2.x (it derives from Backend; ProcessGroup became a
// dispatching wrapper that this shim does not need). The backends are
// compiled when setup-libtorch.sh defines USE_C10D_GLOO / USE_C10D_NCCL,
// as libtorch's own headers expect.
//
// It also holds SyncBatchNorm: torch.nn.SyncBatchNorm's training forward and
// backward as a custom autograd function (torch::autograd::Function) whose
// per-channel sums are all-reduced over the group.
//
// No C++ exception leaves this file: each entry point catches everything and
// returns a malloc'd message.
#include "shim.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>
#include <torch/version.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#if TORCH_VERSION_MAJOR >= 2
#include <torch/csrc/distributed/c10d/Backend.hpp>
#else
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#endif
#ifdef USE_C10D_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef USE_C10D_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#include <torch/csrc/autograd/custom_function.h>
#include <torch/cuda.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

#if TORCH_VERSION_MAJOR >= 2
using PG = c10d::Backend;
#else
using PG = c10d::ProcessGroup;
#endif

// CollectiveFailure is a failed collective inside SyncBatchNorm: the group
// is unusable afterwards (unlike an argument error, which leaves it usable).
struct CollectiveFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// SyncState is what SyncBatchNorm's autograd nodes need of the group: they
// hold it (as a capsule in their saved data), so that the process group
// lives as long as a graph that may still run backward. It records the first
// collective failure, which the Go side reads (a failure in backward happens
// inside libtorch's autograd, outside any Go call on the group).
struct SyncState : torch::CustomClassHolder {
  c10::intrusive_ptr<PG> pg;
  std::mutex mu;
  std::string failure;     // empty while the collectives succeed
  int64_t failure_ms = 0;  // how long the failed collective ran

  // allreduce_sum sums the contiguous tensor t over the group in place. A
  // failure (or an earlier one) throws CollectiveFailure naming what.
  void allreduce_sum(at::Tensor &t, const std::string &what) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (!failure.empty()) throw CollectiveFailure(what + ": the group failed earlier: " + failure);
    }
    auto start = std::chrono::steady_clock::now();
    std::string cause;
    try {
      std::vector<at::Tensor> io = {t};
      c10d::AllreduceOptions o;
      o.reduceOp = c10d::ReduceOp::SUM;
      pg->allreduce(io, o)->wait();
      return;
    } catch (const c10::Error &e) {
      cause = e.what_without_backtrace();
    } catch (const std::exception &e) {
      cause = e.what();
    } catch (...) {
      cause = "unknown C++ exception";
    }
    std::string msg = what + ": " + cause;
    {
      std::lock_guard<std::mutex> lock(mu);
      if (failure.empty()) {
        failure = msg;
        failure_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
      }
    }
    throw CollectiveFailure(msg);
  }
};

struct Group {
  c10::intrusive_ptr<c10d::Store> store;  // the rendezvous store (attempt-prefixed under torchrun's agent)
  c10::intrusive_ptr<c10d::Store> own;    // gsrmt's keys: gsrmt_dist/
  c10::intrusive_ptr<PG> pg;
  c10::intrusive_ptr<SyncState> sync;     // SyncBatchNorm's view of pg
  int rank = 0;
  int size = 1;
  bool nccl = false;
  c10::Device device{c10::kCPU};
  std::chrono::milliseconds timeout{0};
};

char *copy(const std::string &s) { return strdup(s.c_str()); }

// guard runs f and turns any exception into a malloc'd message.
template <class F>
char *guard(F &&f) {
  try {
    f();
    return nullptr;
  } catch (const c10::Error &e) {
    return copy(e.what_without_backtrace());
  } catch (const std::exception &e) {
    return copy(e.what());
  } catch (...) {
    return copy("unknown C++ exception");
  }
}

// size_text spells a byte count as "800 B", "4.5 KiB" or "25 MiB".
std::string size_text(int64_t bytes) {
  std::ostringstream s;
  s.precision(3);
  if (bytes < 1024) {
    s << bytes << " B";
  } else if (bytes < (1 << 20)) {
    s << static_cast<double>(bytes) / 1024 << " KiB";
  } else {
    s << static_cast<double>(bytes) / (1 << 20) << " MiB";
  }
  return s.str();
}

// A bucket: tensors of one dtype on one device sent as one flat tensor.
struct Bucket {
  std::vector<at::Tensor> tensors;
  int64_t bytes = 0;
  bool direct = false;  // a single contiguous tensor sent in place, without a copy
  std::vector<at::Tensor> io;  // {flat}: the collective's argument
  c10::intrusive_ptr<c10d::Work> work;
};

std::vector<Bucket> make_buckets(void **handles, int n, int64_t first_cap, int64_t cap) {
  std::vector<Bucket> buckets;
  for (int i = 0; i < n; i++) {
    if (handles[i] == nullptr) throw std::runtime_error("tensor " + std::to_string(i) + " is nil");
    const at::Tensor &t = *static_cast<at::Tensor *>(handles[i]);
    if (!t.defined()) throw std::runtime_error("tensor " + std::to_string(i) + " is undefined");
    if (t.numel() == 0) continue;  // nothing to send
    int64_t b = t.numel() * static_cast<int64_t>(t.element_size());
    bool fresh = buckets.empty();
    if (!fresh) {
      Bucket &last = buckets.back();
      const at::Tensor &head = last.tensors.front();
      int64_t limit = buckets.size() == 1 ? first_cap : cap;
      fresh = head.scalar_type() != t.scalar_type() || head.device() != t.device() || last.bytes + b > limit;
    }
    if (fresh) buckets.emplace_back();
    buckets.back().tensors.push_back(t);
    buckets.back().bytes += b;
  }
  return buckets;
}

// flatten fills b.io with the bucket's flat tensor.
void flatten(Bucket &b) {
  if (b.tensors.size() == 1 && b.tensors[0].is_contiguous()) {
    b.direct = true;
    b.io = {b.tensors[0]};
    return;
  }
  std::vector<at::Tensor> views;
  views.reserve(b.tensors.size());
  for (const at::Tensor &t : b.tensors) views.push_back(t.reshape({-1}));
  b.io = {at::cat(views, 0)};
}

// unflatten copies the flat tensor back into the bucket's tensors.
void unflatten(Bucket &b) {
  if (b.direct) return;
  const at::Tensor &flat = b.io[0];
  int64_t off = 0;
  for (at::Tensor &t : b.tensors) {
    int64_t k = t.numel();
    t.copy_(flat.narrow(0, off, k).view(t.sizes()));
    off += k;
  }
}

std::string where(size_t i, const std::vector<Bucket> &bs) {
  size_t n = bs[i].tensors.size();
  return "bucket " + std::to_string(i + 1) + " of " + std::to_string(bs.size()) + " (" + std::to_string(n) +
         (n == 1 ? " tensor, " : " tensors, ") + size_text(bs[i].bytes) + ")";
}

// run launches op on every bucket, flattening the next one while the
// previous ones travel, then waits for each in order and finishes it.
template <class Launch, class Finish>
void run_buckets(std::vector<Bucket> &bs, Launch launch, Finish finish) {
  at::NoGradGuard no_grad;
  for (size_t i = 0; i < bs.size(); i++) {
    try {
      flatten(bs[i]);
      bs[i].work = launch(bs[i].io);
    } catch (const c10::Error &e) {
      throw std::runtime_error(where(i, bs) + ": " + e.what_without_backtrace());
    } catch (const std::exception &e) {
      throw std::runtime_error(where(i, bs) + ": " + e.what());
    }
  }
  for (size_t i = 0; i < bs.size(); i++) {
    try {
      bs[i].work->wait();
      finish(bs[i]);
    } catch (const c10::Error &e) {
      throw std::runtime_error(where(i, bs) + ": " + e.what_without_backtrace());
    } catch (const std::exception &e) {
      throw std::runtime_error(where(i, bs) + ": " + e.what());
    }
  }
}

Group *group(void *g) {
  Group *gr = static_cast<Group *>(g);
  if (gr == nullptr) throw std::runtime_error("the group is closed");
  return gr;
}

PG &pg_of(Group *g) {
  if (!g->pg) throw std::runtime_error("the process group was not created");
  return *g->pg;
}

// ---- SyncBatchNorm ----------------------------------------------------------
//
// torch.nn.SyncBatchNorm in training (torch/nn/modules/_functions.py), on
// generic ATen ops (1.13's batch_norm_stats and friends are CUDA-only):
//
// forward: per channel c, over (N, H, W) of this rank's x, the count n, the
// sum S = n m and the sum of squares Q = M2 + n m^2 (m the local mean, M2 the
// sum of squared deviations from it: no cancellation in float), all-reduced
// (SUM, in float64) over the group; the global mean S/N and biased variance
// Q/N - mean^2 normalize x; the running statistics move by momentum towards
// the global mean and unbiased variance (var N / (N - 1)), identically on
// every rank; weight and bias scale and shift.
//
// backward: the local sums sum(dy) and sum(dy (x - mean)), all-reduced, give
//   grad_input = weight invstd (dy - sum(dy)/N - (x - mean) invstd^2 sum(dy (x - mean))/N)
// with N the global count, and the LOCAL grad_weight = sum(dy xhat) and
// grad_bias = sum(dy), as PyTorch returns them: the trainer's average of
// every gradient over the ranks then gives, when each rank's loss is the
// mean over its own samples and the ranks hold equal shares, the gradient of
// one process on the global batch.

// bn_layout returns the reduced dimensions (all but 1) and the broadcast shape
// (1, C, 1, ...) of a (N, C, ...) input.
void bn_layout(const at::Tensor &x, std::vector<int64_t> &dims, std::vector<int64_t> &shape) {
  dims.clear();
  shape.assign(static_cast<size_t>(x.dim()), 1);
  shape[1] = x.size(1);
  for (int64_t d = 0; d < x.dim(); d++) {
    if (d != 1) dims.push_back(d);
  }
}

// compute_type is the dtype the arithmetic runs in: float for half, bfloat16
// and float inputs, double for double.
at::ScalarType compute_type(const at::Tensor &x) {
  return x.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
}

std::string shape_text(const at::Tensor &x) {
  std::ostringstream s;
  s << x.sizes();
  return s.str();
}

struct SyncBatchNormFn : public torch::autograd::Function<SyncBatchNormFn> {
  // The optional tensors are absent rather than undefined (apply cannot
  // take undefined tensors); the gradient edges are those of the present
  // tensors, in order: x, then weight and bias when given.
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext *ctx, at::Tensor x,
                                                c10::optional<at::Tensor> weight_opt,
                                                c10::optional<at::Tensor> bias_opt,
                                                c10::optional<at::Tensor> running_mean_opt,
                                                c10::optional<at::Tensor> running_var_opt, double momentum,
                                                double eps, c10::intrusive_ptr<SyncState> st) {
    at::Tensor weight = weight_opt.value_or(at::Tensor()), bias = bias_opt.value_or(at::Tensor());
    at::Tensor running_mean = running_mean_opt.value_or(at::Tensor());
    at::Tensor running_var = running_var_opt.value_or(at::Tensor());
    std::vector<int64_t> dims, shape;
    bn_layout(x, dims, shape);
    const int64_t c = x.size(1);
    const at::ScalarType ct = compute_type(x);
    const auto f64 = x.options().dtype(at::kDouble);
    const int64_t n = c == 0 ? 0 : x.numel() / c;
    at::Tensor xc = x.to(ct);

    // [S (C), Q (C), n]: this rank's sums, then the group's.
    at::Tensor stats = at::zeros({2 * c + 1}, f64);
    if (n > 0) {
      at::Tensor m = xc.mean(dims);                              // (C)
      at::Tensor m2 = (xc - m.view(shape)).pow(2).sum(dims);     // (C)
      at::Tensor md = m.to(at::kDouble);
      stats.narrow(0, 0, c).copy_(md * static_cast<double>(n));
      stats.narrow(0, c, c).copy_(m2.to(at::kDouble) + md * md * static_cast<double>(n));
      stats.narrow(0, 2 * c, 1).fill_(static_cast<double>(n));
    }
    st->allreduce_sum(stats, "sync batch norm forward: allreduce of " + std::to_string(2 * c + 1) + " statistics");
    const double total = stats.narrow(0, 2 * c, 1).item<double>();
    if (total <= 1) {
      throw std::runtime_error("BatchNorm in training needs more than 1 value per channel over the group, got " +
                               std::to_string(static_cast<int64_t>(total)) + " (this rank's input " + shape_text(x) + ")");
    }
    at::Tensor mean = stats.narrow(0, 0, c) / total;                                      // float64 (C)
    at::Tensor var = (stats.narrow(0, c, c) / total - mean * mean).clamp_min(0);         // biased
    at::Tensor invstd = (var + eps).rsqrt();
    if (running_mean.defined()) {
      running_mean.copy_(running_mean.to(at::kDouble) * (1 - momentum) + mean * momentum);
    }
    if (running_var.defined()) {
      running_var.copy_(running_var.to(at::kDouble) * (1 - momentum) + var * (momentum * total / (total - 1)));
    }
    // y = x scale + shift with scale = invstd weight, shift = bias - mean scale
    // (as libtorch's CPU batch_norm applies it).
    at::Tensor scale = weight.defined() ? invstd * weight.to(at::kDouble) : invstd;
    at::Tensor shift = -mean * scale;
    if (bias.defined()) shift = shift + bias.to(at::kDouble);
    at::Tensor out = at::addcmul(shift.to(ct).view(shape), xc, scale.to(ct).view(shape)).to(x.scalar_type());

    ctx->save_for_backward({x, weight.defined() ? weight : at::ones({c}, x.options().dtype(ct)), mean.to(ct), invstd.to(ct)});
    ctx->saved_data["count"] = total;
    ctx->saved_data["has_weight"] = weight.defined();
    ctx->saved_data["has_bias"] = bias.defined();
    ctx->saved_data["state"] = c10::IValue::make_capsule(c10::intrusive_ptr<torch::CustomClassHolder>(st));
    return {out};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext *ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    at::Tensor x = saved[0], weight = saved[1], mean = saved[2], invstd = saved[3];
    const double total = ctx->saved_data["count"].toDouble();
    const bool has_weight = ctx->saved_data["has_weight"].toBool();
    const bool has_bias = ctx->saved_data["has_bias"].toBool();
    auto cap = ctx->saved_data["state"].toCapsule();
    auto st = c10::intrusive_ptr<SyncState>::reclaim_copy(static_cast<SyncState *>(cap.get()));

    // One gradient per argument of forward.
    torch::autograd::variable_list out(8);
    at::Tensor dy = grads[0];
    if (!dy.defined()) dy = at::zeros_like(x);
    std::vector<int64_t> dims, shape;
    bn_layout(x, dims, shape);
    const int64_t c = x.size(1);
    const at::ScalarType ct = compute_type(x);
    at::Tensor dyc = dy.to(ct);
    at::Tensor xmu = x.to(ct) - mean.view(shape);
    at::Tensor sum_dy = dyc.sum(dims);                // (C), this rank's
    at::Tensor sum_dy_xmu = (dyc * xmu).sum(dims);    // (C), this rank's
    const size_t bias_edge = has_weight ? 2 : 1;
    if (has_weight && ctx->needs_input_grad(1)) out[1] = (sum_dy_xmu * invstd).to(weight.scalar_type());
    if (has_bias && ctx->needs_input_grad(bias_edge)) out[2] = sum_dy.to(weight.scalar_type());
    if (ctx->needs_input_grad(0)) {
      at::Tensor sums = at::cat({sum_dy, sum_dy_xmu}, 0).to(at::kDouble);
      st->allreduce_sum(sums, "sync batch norm backward: allreduce of " + std::to_string(2 * c) + " gradient sums");
      at::Tensor inv = invstd.to(at::kDouble);
      at::Tensor a = inv * weight.to(at::kDouble);                            // weight invstd
      at::Tensor b = -(inv * inv * sums.narrow(0, c, c) / total) * a;        // on x - mean
      at::Tensor k = -(sums.narrow(0, 0, c) / total) * a;                     // constant
      at::Tensor gi = at::addcmul(k.to(ct).view(shape), dyc, a.to(ct).view(shape));
      gi.addcmul_(xmu, b.to(ct).view(shape));
      out[0] = gi.to(x.scalar_type());
    }
    return out;
  }
};

// tensor_arg reads an optional tensor handle (NULL: undefined).
at::Tensor tensor_arg(void *h) { return h == nullptr ? at::Tensor() : *static_cast<at::Tensor *>(h); }

// check_channel_arg checks a per-channel argument of a batch norm.
void check_channel_arg(const at::Tensor &t, const char *name, int64_t c) {
  if (!t.defined()) return;
  if (t.dim() != 1 || t.size(0) != c) {
    throw std::runtime_error(std::string(name) + " has shape " + shape_text(t) + ", want (" + std::to_string(c) + ")");
  }
  if (!at::isFloatingType(t.scalar_type())) {
    throw std::runtime_error(std::string(name) + " is " + c10::toString(t.scalar_type()) + ", want floating point");
  }
}

}  // namespace

extern "C" {

int gsrmt_dist_has_gloo(void) {
#ifdef USE_C10D_GLOO
  return 1;
#else
  return 0;
#endif
}

int gsrmt_dist_has_nccl(void) {
#ifdef USE_C10D_NCCL
  return 1;
#else
  return 0;
#endif
}

int gsrmt_dist_cuda_devices(void) {
  try {
    return static_cast<int>(torch::cuda::device_count());
  } catch (...) {
    return 0;
  }
}

const char *gsrmt_dist_torch_version(void) { return TORCH_VERSION; }

char *gsrmt_dist_open(const char *addr, int port, int rank, int size, int agent_store, int restart,
                      int64_t timeout_ms, void **out) {
  *out = nullptr;
  return guard([&] {
    auto g = std::make_unique<Group>();
    g->rank = rank;
    g->size = size;
    g->timeout = std::chrono::milliseconds(timeout_ms);
    c10d::TCPStoreOptions o;
    o.port = static_cast<std::uint16_t>(port);
    o.numWorkers = static_cast<std::size_t>(size);  // on every rank (else rank 0 waits out the timeout)
    o.timeout = g->timeout;
    if (agent_store) {
      // torch.distributed's _create_c10d_store under torchrun's agent.
      o.isServer = false;
      auto tcp = c10::make_intrusive<c10d::TCPStore>(std::string(addr), o);
      g->store = c10::make_intrusive<c10d::PrefixStore>("/worker/attempt_" + std::to_string(restart), tcp);
    } else {
      o.isServer = rank == 0;
      o.multiTenant = true;
      // The clients still count themselves in (numWorkers); the host does
      // not wait for them here: creating the group waits, with an error
      // that names the missing ranks, instead of a silent timeout first.
      o.waitWorkers = !o.isServer;
      g->store = c10::make_intrusive<c10d::TCPStore>(std::string(addr), o);
    }
    g->own = c10::make_intrusive<c10d::PrefixStore>("gsrmt_dist", g->store);
    *out = g.release();
  });
}

char *gsrmt_dist_create(void *gp, const char *backend, int local_rank) {
  return guard([&] {
    Group *g = group(gp);
    std::string name(backend);
    // init_process_group: PrefixStore("default_pg") over the rendezvous
    // store, and the group's own PrefixStore(group name "0") over that.
    auto default_pg = c10::make_intrusive<c10d::PrefixStore>("default_pg", g->store);
    auto pg_store = c10::make_intrusive<c10d::PrefixStore>("0", default_pg);
    if (name == "gloo") {
#ifdef USE_C10D_GLOO
      // As torch/csrc/distributed/c10d/init.cpp builds ProcessGroupGloo for Python.
      auto opts = c10d::ProcessGroupGloo::Options::create();
      opts->timeout = g->timeout;
      const char *ifnames = std::getenv("GLOO_SOCKET_IFNAME");
      if (ifnames != nullptr && std::strlen(ifnames) > 1) {
        std::stringstream ss(ifnames);
        std::string iface;
        while (std::getline(ss, iface, ',')) {
          if (!iface.empty()) opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(iface));
        }
      } else {
        opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      opts->threads = static_cast<int>(opts->devices.size()) * 2;
      g->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(pg_store, g->rank, g->size, opts);
#else
      throw std::runtime_error("this build has no gloo (libgloo-dev was missing when setup-libtorch.sh ran)");
#endif
    } else if (name == "nccl") {
#ifdef USE_C10D_NCCL
      int n = static_cast<int>(torch::cuda::device_count());
      if (local_rank >= n) {
        throw std::runtime_error("nccl: local rank " + std::to_string(local_rank) + " needs cuda:" +
                                 std::to_string(local_rank) + " but libtorch sees " + std::to_string(n) +
                                 " CUDA devices");
      }
#if TORCH_VERSION_MAJOR < 2
      // Without one of these, a dead peer hangs NCCL for good in 1.13; with
      // async error handling its watchdog ends the process at the timeout
      // (2.x does so by default).
      if (std::getenv("NCCL_ASYNC_ERROR_HANDLING") == nullptr && std::getenv("NCCL_BLOCKING_WAIT") == nullptr) {
        setenv("NCCL_ASYNC_ERROR_HANDLING", "1", 0);
      }
#endif
      c10::cuda::set_device(static_cast<c10::DeviceIndex>(local_rank));
      g->device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(local_rank));
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = g->timeout;
      g->pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(pg_store, g->rank, g->size, opts);
      g->nccl = true;
#else
      (void)local_rank;
      throw std::runtime_error("this build has no nccl (it needs a CUDA libtorch, nccl.h and the CUDA headers when setup-libtorch.sh runs)");
#endif
    } else {
      throw std::runtime_error("unknown backend \"" + name + "\" (want gloo or nccl)");
    }
#if TORCH_VERSION_MAJOR < 2
    // torch 1.13's _store_based_barrier(rank, store, timeout) on the
    // default_pg store, key "store_based_barrier_key:<group count>".
    const std::string key = "store_based_barrier_key:1";
    default_pg->add(key, 1);
    auto start = std::chrono::steady_clock::now();
    int64_t count = default_pg->add(key, 0);
    while (count != g->size) {
      if (std::chrono::steady_clock::now() - start > g->timeout) {
        throw std::runtime_error("timed out in the store-based barrier after creating the group: " +
                                 std::to_string(count) + " of " + std::to_string(g->size) + " ranks arrived");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      count = default_pg->add(key, 0);
    }
#endif
    g->pg->setSequenceNumberForGroup();
    g->sync = c10::make_intrusive<SyncState>();
    g->sync->pg = g->pg;
  });
}

void gsrmt_dist_free(void *gp) {
  Group *g = static_cast<Group *>(gp);
  if (g == nullptr) return;
  try {
    g->sync.reset();
    g->pg.reset();
    g->own.reset();
    g->store.reset();
    delete g;
  } catch (...) {
  }
}

char *gsrmt_dist_store_set(void *gp, const char *key, const uint8_t *val, int64_t len) {
  return guard([&] { group(gp)->own->set(key, std::vector<uint8_t>(val, val + len)); });
}

int gsrmt_dist_store_check(void *gp, const char *key, char **err) {
  int found = -1;
  *err = guard([&] { found = group(gp)->own->check({std::string(key)}) ? 1 : 0; });
  return *err == nullptr ? found : -1;
}

char *gsrmt_dist_store_get(void *gp, const char *key, uint8_t **val, int64_t *len) {
  *val = nullptr;
  *len = 0;
  return guard([&] {
    std::vector<uint8_t> v = group(gp)->own->get(key);
    *val = static_cast<uint8_t *>(std::malloc(v.empty() ? 1 : v.size()));
    if (*val == nullptr) throw std::bad_alloc();
    if (!v.empty()) std::memcpy(*val, v.data(), v.size());
    *len = static_cast<int64_t>(v.size());
  });
}

char *gsrmt_dist_allreduce(void *gp, void **tensors, int n, int64_t first_cap, int64_t cap, int mean) {
  return guard([&] {
    Group *g = group(gp);
    PG &pg = pg_of(g);
    std::vector<Bucket> bs = make_buckets(tensors, n, first_cap, cap);
    if (mean) {
      for (size_t i = 0; i < bs.size(); i++) {
        if (!at::isFloatingType(bs[i].tensors[0].scalar_type())) {
          throw std::runtime_error(where(i, bs) + ": the mean of " +
                                   std::string(c10::toString(bs[i].tensors[0].scalar_type())) +
                                   " tensors is not defined (use the sum)");
        }
      }
    }
    const int size = g->size;
    run_buckets(
        bs,
        [&](std::vector<at::Tensor> &io) {
          c10d::AllreduceOptions o;
          o.reduceOp = c10d::ReduceOp::SUM;
          return pg.allreduce(io, o);
        },
        [&](Bucket &b) {
          if (mean) b.io[0].div_(size);
          unflatten(b);
        });
  });
}

char *gsrmt_dist_broadcast(void *gp, void **tensors, int n, int root, int64_t first_cap, int64_t cap) {
  return guard([&] {
    Group *g = group(gp);
    PG &pg = pg_of(g);
    std::vector<Bucket> bs = make_buckets(tensors, n, first_cap, cap);
    const bool is_root = g->rank == root;
    run_buckets(
        bs,
        [&](std::vector<at::Tensor> &io) {
          c10d::BroadcastOptions o;
          o.rootRank = root;
          o.rootTensor = 0;
          return pg.broadcast(io, o);
        },
        [&](Bucket &b) {
          if (!is_root) unflatten(b);
        });
  });
}

char *gsrmt_dist_allreduce_f64(void *gp, double *vals, int n) {
  return guard([&] {
    Group *g = group(gp);
    PG &pg = pg_of(g);
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> io = {at::from_blob(vals, {n}, at::kDouble).to(g->device, /*non_blocking=*/false, /*copy=*/true)};
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp::SUM;
    pg.allreduce(io, o)->wait();
    at::Tensor host = io[0].to(at::kCPU).contiguous();
    std::memcpy(vals, host.data_ptr<double>(), sizeof(double) * static_cast<size_t>(n));
  });
}

char *gsrmt_dist_broadcast_bytes(void *gp, uint8_t *buf, int64_t len, int root) {
  return guard([&] {
    Group *g = group(gp);
    PG &pg = pg_of(g);
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> io = {at::from_blob(buf, {len}, at::kByte).to(g->device, false, true)};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    pg.broadcast(io, o)->wait();
    at::Tensor host = io[0].to(at::kCPU).contiguous();
    std::memcpy(buf, host.data_ptr<uint8_t>(), static_cast<size_t>(len));
  });
}

char *gsrmt_dist_barrier(void *gp) {
  return guard([&] {
    Group *g = group(gp);
    PG &pg = pg_of(g);
    if (g->nccl) {
      // NCCL's barrier guesses a device; an allreduce on ours, read back on
      // the host, blocks this thread until every rank arrived.
      at::NoGradGuard no_grad;
      std::vector<at::Tensor> io = {at::zeros({1}, at::TensorOptions().dtype(at::kFloat).device(g->device))};
      pg.allreduce(io)->wait();
      (void)io[0].to(at::kCPU);
      return;
    }
    pg.barrier()->wait();
  });
}

char *gsrmt_dist_sync_batch_norm(void *gp, void *x, void *weight, void *bias, void *running_mean, void *running_var,
                                 double momentum, double eps, void **out, int *collective_failed) {
  *out = nullptr;
  *collective_failed = 0;
  return guard([&] {
    Group *g = group(gp);
    if (!g->sync) throw std::runtime_error("the process group was not created");
    at::Tensor xt = tensor_arg(x);
    if (!xt.defined()) throw std::runtime_error("the input is undefined");
    if (xt.dim() < 2) throw std::runtime_error("input of shape " + shape_text(xt) + ": want (N, C, ...)");
    if (!at::isFloatingType(xt.scalar_type())) {
      throw std::runtime_error(std::string("input is ") + c10::toString(xt.scalar_type()) + ", want floating point");
    }
    const int64_t c = xt.size(1);
    at::Tensor w = tensor_arg(weight), b = tensor_arg(bias), rm = tensor_arg(running_mean), rv = tensor_arg(running_var);
    check_channel_arg(w, "weight", c);
    check_channel_arg(b, "bias", c);
    check_channel_arg(rm, "running_mean", c);
    check_channel_arg(rv, "running_var", c);
    if (!(momentum >= 0 && momentum <= 1)) throw std::runtime_error("momentum " + std::to_string(momentum) + ": want [0, 1]");
    if (!(eps > 0)) throw std::runtime_error("eps " + std::to_string(eps) + ": want a positive value");
    try {
      auto opt = [](const at::Tensor &t) { return t.defined() ? c10::optional<at::Tensor>(t) : c10::nullopt; };
      torch::autograd::variable_list r =
          SyncBatchNormFn::apply(xt, opt(w), opt(b), opt(rm), opt(rv), momentum, eps, g->sync);
      *out = new at::Tensor(r[0]);
    } catch (const CollectiveFailure &) {
      *collective_failed = 1;
      throw;
    }
  });
}

char *gsrmt_dist_async_error(void *gp, int64_t *elapsed_ms) {
  *elapsed_ms = 0;
  Group *g = static_cast<Group *>(gp);
  if (g == nullptr || !g->sync) return nullptr;
  try {
    std::lock_guard<std::mutex> lock(g->sync->mu);
    if (g->sync->failure.empty()) return nullptr;
    *elapsed_ms = g->sync->failure_ms;
    return copy(g->sync->failure);
  } catch (...) {
    return copy("unknown C++ exception");
  }
}

}  // extern "C"
