// matmul.cpp: torch.matmul for batches of many small float32 matrices on
// the CPU, with the same results as libtorch's, over all intra-op threads.
//
// libtorch's CPU bmm (LinearAlgebra.cpp, bmm_out_or_baddbmm_) without MKL
// multiplies batches whose matrices hold 400 or more multiply-adds one matrix
// at a time, on one thread: per batch element three tensor views (select),
// then mm_cpu_out -> addmm_impl_cpu_ -> cpublas::gemm -> BLAS sgemm. The
// window attention's products are of that kind (7x16 by 16x7, 7x7 by 7x16,
// tens of thousands of them per forward), and the per-element overhead and
// the one thread are most of their time. This file makes the same sgemm
// calls, with the arguments addmm_impl_cpu_ and cpublas::gemm would pass
// (transposes, leading dimensions, contiguous copies where they make them),
// from all intra-op threads and without tensor views; below 400 it runs
// bmm's own naive kernel. matmul's folding to 3-D (reshape) and bmm's
// gradients (BmmBackward0) are kept, so forward and backward are bit for
// bit torch.matmul's (matmul_test.go checks it). Where libtorch has MKL
// (its bmm then batches by itself) or no BLAS sgemm is found, it calls
// torch.matmul.
#include "shim.h"

#include <ATen/Functions.h>
#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/csrc/autograd/custom_function.h>

#include <dlfcn.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <exception>
#include <vector>

namespace {

inline at::Tensor &T(void *h) { return *static_cast<at::Tensor *>(h); }

using sgemm_fn = void (*)(const char *transa, const char *transb, const int *m, const int *n, const int *k,
                          const float *alpha, const float *a, const int *lda, const float *b, const int *ldb,
                          const float *beta, float *c, const int *ldc);

// blas_sgemm is the sgemm libtorch calls (the process's BLAS), or null.
sgemm_fn blas_sgemm() {
  static const sgemm_fn f = reinterpret_cast<sgemm_fn>(dlsym(RTLD_DEFAULT, "sgemm_"));
  return f;
}

// A matrix of one batch element: rows x cols with strides (rs, cs).
struct Mat {
  int64_t rows, cols, rs, cs;
};

// Gemm is one batch element's sgemm call as addmm_impl_cpu_ (result, a
// contiguous M x N matrix; beta 0, alpha 1) and cpublas::gemm
// (normalize_last_dims, use_blas_gemm) make it. The operands' layouts are
// the same for every element of a batch, so it is worked out once.
struct Gemm {
  bool swap = false;               // transpose_c: C^T = B^T A^T in column-major
  bool copy_a = false, copy_b = false;  // addmm_impl_cpu_'s clone(Contiguous)
  char transa = 'n', transb = 'n';
  int64_t m = 0, n = 0, k = 0, lda = 0, ldb = 0, ldc = 0;
  Mat first, second;  // m1, m2 after the swap (first is BLAS's a)
  bool blas = false;  // use_blas_gemm
};

Gemm plan_gemm(Mat m1, Mat m2) {
  Gemm g;
  const int64_t M = m1.rows, N = m2.cols;
  // Cast result as matrix c: contiguous M x N, strides (N, 1).
  const int64_t r0 = N, r1 = 1;
  if (r0 == 1 && (N == 1 || r1 >= std::max<int64_t>(1, M))) {
    g.swap = false;
  } else {
    g.swap = true;  // r1 == 1 and r0 == N >= max(1, N): always true here
    std::swap(m1, m2);
  }
  const bool tc = g.swap;
  g.m = tc ? N : M;
  g.n = tc ? M : N;
  g.k = tc ? m1.rows : m1.cols;
  auto stride = [](const Mat &x, int i) { return i == 0 ? x.rs : x.cs; };
  bool ta, tb;
  // Cast m1 as matrix a.
  if (stride(m1, tc ? 1 : 0) == 1 && stride(m1, tc ? 0 : 1) >= std::max<int64_t>(1, g.m)) {
    ta = false;
  } else if (stride(m1, tc ? 0 : 1) == 1 && stride(m1, tc ? 1 : 0) >= std::max<int64_t>(1, g.k)) {
    ta = true;
  } else {
    ta = !tc;
    g.copy_a = true;
    m1 = Mat{m1.rows, m1.cols, m1.cols, 1};
  }
  // Cast m2 as matrix b.
  if (stride(m2, tc ? 1 : 0) == 1 && stride(m2, tc ? 0 : 1) >= std::max<int64_t>(1, g.k)) {
    tb = false;
  } else if (stride(m2, tc ? 0 : 1) == 1 && stride(m2, tc ? 1 : 0) >= std::max<int64_t>(1, g.n)) {
    tb = true;
  } else {
    tb = !tc;
    g.copy_b = true;
    m2 = Mat{m2.rows, m2.cols, m2.cols, 1};
  }
  g.lda = stride(m1, (ta == tc) ? 1 : 0);
  g.ldb = stride(m2, (tb == tc) ? 1 : 0);
  g.ldc = tc ? r0 : r1;
  g.first = m1;
  g.second = m2;
  g.transa = ta ? 't' : 'n';
  g.transb = tb ? 't' : 'n';
  // cpublas::internal::normalize_last_dims
  if (g.n == 1) g.ldc = g.m;
  if (ta) {
    if (g.m == 1) g.lda = g.k;
  } else if (g.k == 1) {
    g.lda = g.m;
  }
  if (tb) {
    if (g.k == 1) g.ldb = g.n;
  } else if (g.n == 1) {
    g.ldb = g.k;
  }
  // cpublas::use_blas_gemm
  g.blas = g.m <= INT_MAX && g.n <= INT_MAX && g.k <= INT_MAX && g.lda <= INT_MAX && g.ldb <= INT_MAX &&
           g.ldc <= INT_MAX && g.lda >= std::max<int64_t>(1, ta ? g.k : g.m) &&
           g.ldb >= std::max<int64_t>(1, tb ? g.n : g.k) && g.ldc >= std::max<int64_t>(1, g.m);
  return g;
}

// contiguous copies the rows x cols matrix at p (strides x) into buf, row-major.
const float *contiguous(const float *p, const Mat &x, std::vector<float> &buf) {
  buf.resize(x.rows * x.cols);
  for (int64_t i = 0; i < x.rows; i++) {
    for (int64_t j = 0; j < x.cols; j++) buf[i * x.cols + j] = p[i * x.rs + j * x.cs];
  }
  return buf.data();
}

// naive is bmm's kernel below 400 multiply-adds (baddbmm_cpu_kernel with
// is_bmm): each element summed over k in order, in float.
void naive(const float *a, const Mat &ma, const float *b, const Mat &mb, float *c) {
  for (int64_t i = 0; i < ma.rows; i++) {
    for (int64_t j = 0; j < mb.cols; j++) {
      float r = 0;
      for (int64_t k = 0; k < ma.cols; k++) r += a[i * ma.rs + k * ma.cs] * b[k * mb.rs + j * mb.cs];
      c[i * mb.cols + j] = r;
    }
  }
}

// threaded_bmm is at::bmm(a, b) for float32 CPU tensors (bs, M, K) and (bs, K, N):
// libtorch's arithmetic, element by element, over the intra-op threads.
at::Tensor threaded_bmm(const at::Tensor &a, const at::Tensor &b) {
  const int64_t bs = a.size(0), M = a.size(1), K = a.size(2), N = b.size(2);
  at::Tensor c = at::empty({bs, M, N}, a.options());
  if (c.numel() == 0) {
    return c;
  }
  if (K == 0) {
    return c.zero_();
  }
  const Mat ma{M, K, a.stride(1), a.stride(2)}, mb{K, N, b.stride(1), b.stride(2)};
  const float *pa = a.data_ptr<float>(), *pb = b.data_ptr<float>();
  float *pc = c.data_ptr<float>();
  const int64_t sa = a.stride(0), sb = b.stride(0);
  if (K * M * N < 400) {
    at::parallel_for(0, bs, 1, [&](int64_t begin, int64_t end) {
      for (int64_t e = begin; e < end; e++) naive(pa + e * sa, ma, pb + e * sb, mb, pc + e * M * N);
    });
    return c;
  }
  const Gemm g = plan_gemm(ma, mb);
  const sgemm_fn sgemm = blas_sgemm();  // not null: fast() checked it
  if (!g.blas) {
    return at::bmm(a, b);  // cpublas's own kernel: leave it to libtorch
  }
  const int m = g.m, n = g.n, k = g.k, lda = g.lda, ldb = g.ldb, ldc = g.ldc;
  const float one = 1, zero = 0;
  const int64_t grain = std::max<int64_t>(1, 16384 / (M * N * K));
  at::parallel_for(0, bs, grain, [&](int64_t begin, int64_t end) {
    std::vector<float> buf_a, buf_b;
    for (int64_t e = begin; e < end; e++) {
      const float *x = pa + e * sa, *y = pb + e * sb;
      const float *first = g.swap ? y : x, *second = g.swap ? x : y;
      const Mat &mf = g.swap ? mb : ma, &ms = g.swap ? ma : mb;
      if (g.copy_a) first = contiguous(first, mf, buf_a);
      if (g.copy_b) second = contiguous(second, ms, buf_b);
      sgemm(&g.transa, &g.transb, &m, &n, &k, &one, first, &lda, second, &ldb, &zero, pc + e * M * N, &ldc);
    }
  });
  return c;
}

// Path is how float32 CPU products go, decided once per process: the
// threaded BLAS calls, or torch.matmul where libtorch's bmm batches through
// MKL itself or no BLAS sgemm is loaded.
enum Path { kThreaded = 0, kMKL = 1, kNoSgemm = 2 };

Path path() {
  static const Path p = at::hasMKL() ? kMKL : (blas_sgemm() == nullptr ? kNoSgemm : kThreaded);
  return p;
}

// fast reports whether a @ b takes the threaded BLAS calls.
bool fast(const at::Tensor &a, const at::Tensor &b) {
  return path() == kThreaded && a.device().is_cpu() && b.device().is_cpu() && a.scalar_type() == at::kFloat &&
         b.scalar_type() == at::kFloat;
}

// BatchMatmul is torch.matmul on (..., M, K) and (..., K, N) with equal
// batch dims: folded to 3-D by reshape and multiplied by bmm, its gradients
// BmmBackward0's (dA = dC B^T, dB = A^T dC) on the same 3-D operands.
struct BatchMatmul : public torch::autograd::Function<BatchMatmul> {
  static at::Tensor forward(torch::autograd::AutogradContext *ctx, const at::Tensor &a, const at::Tensor &b) {
    const int64_t nd = a.dim();
    const int64_t bs = c10::multiply_integers(a.sizes().slice(0, nd - 2));
    at::Tensor a3 = a.reshape({bs, a.size(-2), a.size(-1)});
    at::Tensor b3 = b.reshape({bs, b.size(-2), b.size(-1)});
    ctx->save_for_backward({a3, b3});
    ctx->saved_data["a_sizes"] = a.sizes();
    ctx->saved_data["b_sizes"] = b.sizes();
    std::vector<int64_t> out(a.sizes().begin(), a.sizes().end() - 1);
    out.push_back(b.size(-1));
    return threaded_bmm(a3, b3).view(out);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext *ctx,
                                                 torch::autograd::variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor &a3 = saved[0], &b3 = saved[1];
    at::Tensor g3 = grads[0].reshape({a3.size(0), a3.size(1), b3.size(2)});
    at::Tensor da, db;
    if (ctx->needs_input_grad(0)) {
      da = threaded_bmm(g3, b3.transpose(1, 2)).reshape(ctx->saved_data["a_sizes"].toIntVector());
    }
    if (ctx->needs_input_grad(1)) {
      db = threaded_bmm(a3.transpose(1, 2), g3).reshape(ctx->saved_data["b_sizes"].toIntVector());
    }
    return {da, db};
  }
};

}  // namespace

extern "C" {

int gsrmt_batch_matmul_path(void) { return path(); }

char *gsrmt_batch_matmul(void *a, void *b, void **out) {
  try {
    const at::Tensor &x = T(a), &y = T(b);
    const int64_t nd = x.dim();
    TORCH_CHECK(nd >= 3 && y.dim() == nd && x.sizes().slice(0, nd - 2) == y.sizes().slice(0, nd - 2),
                "batch_matmul: want (..., M, K) and (..., K, N) with the same batch dims, got ", x.sizes(), " and ",
                y.sizes());
    TORCH_CHECK(x.size(-1) == y.size(-2), "batch_matmul: shapes ", x.sizes(), " and ", y.sizes(),
                " cannot be multiplied");
    if (!fast(x, y)) {
      *out = new at::Tensor(at::matmul(x, y));
      return nullptr;
    }
    RECORD_FUNCTION("gsrmt::batch_matmul", std::vector<c10::IValue>({x, y}));
    *out = new at::Tensor(BatchMatmul::apply(x, y));
  } catch (const std::exception &e) {
    *out = nullptr;
    return strdup(e.what());
  }
  return nullptr;
}

}  // extern "C"
