// CPU references for kernels/gemm_swiglu.h: the fused gate-up GEMM + SwiGLU on the interleaved
// weight, and the weight interleave.
//
// GemmSwigluRef threads over blocks of output columns: each thread converts the gate and up rows
// of one intermediate column to fp32 once and dots them with every row of x (converted once up
// front), so the dtype conversions of w are not repeated per row of x. Dot products are fp32 in
// blocks of 256 terms (as GemmRef's loop), g and u are not rounded, and out is rounded once.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/check.h"
#include "kernels/gemm_swiglu.h"
#include "kernels/silu_mul.h"

namespace sieve::kernels {
namespace {

float Dot(const float* a, const float* b, int64_t k) {
  constexpr int64_t kBlockK = 256;
  float acc = 0.f;
  for (int64_t p0 = 0; p0 < k; p0 += kBlockK) {
    float part = 0.f;
    const int64_t p1 = std::min(k, p0 + kBlockK);
    for (int64_t p = p0; p < p1; ++p) part += a[p] * b[p];
    acc += part;
  }
  return acc;
}

// Row of the interleaved weight that holds gate (up = false) or up (up = true) column i.
int64_t InterleavedRow(int64_t i, bool up) {
  return SwigluGateIndex(i, kSwigluBlock) + (up ? kSwigluBlock : 0);
}

}  // namespace

void GemmSwigluRef(const GemmSwigluArgs& a) {
  if (a.m == 0 || a.inter == 0) return;
  SIEVE_CHECK(a.inter % kSwigluBlock == 0, "inter=%lld not a multiple of %d",
              static_cast<long long>(a.inter), kSwigluBlock);
  SIEVE_CHECK(a.ldx >= a.k && a.ldo >= a.inter, "ldx=%lld < k=%lld or ldo=%lld < inter=%lld",
              static_cast<long long>(a.ldx), static_cast<long long>(a.k),
              static_cast<long long>(a.ldo), static_cast<long long>(a.inter));
  std::vector<float> x(a.m * a.k);
#pragma omp parallel for if (a.m * a.k > 65536)
  for (int64_t r = 0; r < a.m; ++r) {
    for (int64_t p = 0; p < a.k; ++p) x[r * a.k + p] = LoadAsFloat(a.x, a.dtype, r * a.ldx + p);
  }
#pragma omp parallel for schedule(dynamic, 16) if (a.inter * a.m > 4096)
  for (int64_t i = 0; i < a.inter; ++i) {
    std::vector<float> wg(a.k), wu(a.k);
    const int64_t gate_row = InterleavedRow(i, false), up_row = InterleavedRow(i, true);
    for (int64_t p = 0; p < a.k; ++p) {
      wg[p] = LoadAsFloat(a.w, a.dtype, gate_row * a.k + p);
      wu[p] = LoadAsFloat(a.w, a.dtype, up_row * a.k + p);
    }
    for (int64_t r = 0; r < a.m; ++r) {
      const float g = Dot(&x[r * a.k], wg.data(), a.k);
      const float u = Dot(&x[r * a.k], wu.data(), a.k);
      const float silu = g / (1.f + std::exp(-g));
      StoreFromFloat(a.out, a.dtype, r * a.ldo + i, silu * u);
    }
  }
}

void SwigluInterleaveRef(const SwigluInterleaveArgs& a) {
  if (a.inter == 0 || a.k == 0) return;
  SIEVE_CHECK(a.inter % kSwigluBlock == 0, "inter=%lld not a multiple of %d",
              static_cast<long long>(a.inter), kSwigluBlock);
  const size_t row_bytes = static_cast<size_t>(a.k) * DTypeSize(a.dtype);
  const auto* src = static_cast<const uint8_t*>(a.src);
  auto* dst = static_cast<uint8_t*>(a.dst);
#pragma omp parallel for if (a.inter * a.k > 65536)
  for (int64_t i = 0; i < a.inter; ++i) {
    std::memcpy(dst + InterleavedRow(i, false) * row_bytes, src + i * row_bytes, row_bytes);
    std::memcpy(dst + InterleavedRow(i, true) * row_bytes, src + (a.inter + i) * row_bytes,
                row_bytes);
  }
}

}  // namespace sieve::kernels
