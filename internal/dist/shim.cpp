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
#include <torch/cuda.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <exception>
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

struct Group {
  c10::intrusive_ptr<c10d::Store> store;  // the rendezvous store (attempt-prefixed under torchrun's agent)
  c10::intrusive_ptr<c10d::Store> own;    // gsrmt's keys: gsrmt_dist/
  c10::intrusive_ptr<PG> pg;
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
  });
}

void gsrmt_dist_free(void *gp) {
  Group *g = static_cast<Group *>(gp);
  if (g == nullptr) return;
  try {
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

}  // extern "C"
