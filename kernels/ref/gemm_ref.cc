// CPU reference for kernels/gemm.h: OpenBLAS sgemm for fp32 operands when available, otherwise
// (and for other dtypes) a blocked loop with fp32 accumulation.
//
// Threading: every CPU reference threads with OpenMP, so OpenBLAS runs single-threaded and the
// GEMM is split across the OpenMP team here (by rows of x, or by rows of w when x has few rows,
// as in decode). Two thread pools on the same cores (OpenMP's spinning workers and OpenBLAS's)
// made the CPU prefill ~2x slower.
#include <omp.h>

#include <algorithm>
#include <vector>

#include "kernels/gemm.h"

#if SIEVE_WITH_CBLAS
#include <cblas.h>
#endif

namespace sieve::kernels {
namespace {

void GemmLoop(const GemmArgs& a) {
  constexpr int64_t kBlockK = 256;
#pragma omp parallel for if (a.m * a.n > 4096)
  for (int64_t i = 0; i < a.m; ++i) {
    std::vector<float> xrow(a.k);
    for (int64_t p = 0; p < a.k; ++p) xrow[p] = LoadAsFloat(a.x, a.x_dtype, i * a.ldx + p);
    for (int64_t j = 0; j < a.n; ++j) {
      float acc = 0.f;
      for (int64_t p0 = 0; p0 < a.k; p0 += kBlockK) {
        float part = 0.f;
        const int64_t p1 = std::min(a.k, p0 + kBlockK);
        for (int64_t p = p0; p < p1; ++p)
          part += xrow[p] * LoadAsFloat(a.w, a.w_dtype, j * a.k + p);
        acc += part;
      }
      float out = a.alpha * acc;
      if (a.beta != 0.f) out += a.beta * LoadAsFloat(a.y, a.y_dtype, i * a.ldy + j);
      StoreFromFloat(a.y, a.y_dtype, i * a.ldy + j, out);
    }
  }
}

}  // namespace

const char* GemmRefImplementation() {
#if SIEVE_WITH_CBLAS
  return "OpenBLAS";
#else
  return "built-in loop";
#endif
}

void GemmRef(const GemmArgs& a) {
  if (a.m == 0 || a.n == 0) return;
#if SIEVE_WITH_CBLAS
  if (a.x_dtype == DType::kF32 && a.w_dtype == DType::kF32 && a.y_dtype == DType::kF32) {
    static const bool single_threaded_blas = [] {
      openblas_set_num_threads(1);
      return true;
    }();
    (void)single_threaded_blas;
    const float* x = static_cast<const float*>(a.x);
    const float* w = static_cast<const float*>(a.w);
    float* y = static_cast<float*>(a.y);
    const int threads = omp_get_max_threads();
    const bool split_rows = a.m >= 4 * threads;
    const int64_t extent = split_rows ? a.m : a.n;
    const int64_t parts = std::min<int64_t>(threads, std::max<int64_t>(1, extent / 16));
#pragma omp parallel for num_threads(parts) if (parts > 1)
    for (int64_t p = 0; p < parts; ++p) {
      const int64_t lo = extent * p / parts, hi = extent * (p + 1) / parts;
      if (hi == lo) continue;
      if (split_rows) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(hi - lo),
                    static_cast<int>(a.n), static_cast<int>(a.k), a.alpha, x + lo * a.ldx,
                    static_cast<int>(a.ldx), w, static_cast<int>(a.k), a.beta, y + lo * a.ldy,
                    static_cast<int>(a.ldy));
      } else {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(a.m),
                    static_cast<int>(hi - lo), static_cast<int>(a.k), a.alpha, x,
                    static_cast<int>(a.ldx), w + lo * a.k, static_cast<int>(a.k), a.beta, y + lo,
                    static_cast<int>(a.ldy));
      }
    }
    return;
  }
#endif
  GemmLoop(a);
}

}  // namespace sieve::kernels
