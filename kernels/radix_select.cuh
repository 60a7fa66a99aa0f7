// Block-wide radix selection over order-preserving float keys (kernels/cuda_util.cuh FloatKey),
// shared by TopkSelect (kernels/topk.cu) and Sample (kernels/sampling.cu). Included only by .cu
// files.
//
// RadixSelectDesc walks the elements of one row in descending key order and finds the key at
// which a running total crosses a target:
//   by count: the key of the element of rank `target` (0-based, descending);
//   by mass:  the key of the first element whose cumulative mass exceeds `target`.
// Masses are unsigned 64-bit fixed-point integers, so every histogram and scan is exact and
// independent of the order in which threads add (deterministic results with shared atomics).
// It returns the key and the count and mass of all elements strictly above it; elements with an
// equal key are resolved by the caller (ties go to the lower index in both callers).
//
// Digits, most significant first: 12 + 10 + 10 bits (three passes over the row). The first digit
// is wide because float keys cluster in their exponent bits: 4096 bins spread a row of logits or
// scores over many bins and keep shared-memory atomic conflicts low.
//
// Exercised by tests/unit/kernels/topk_test.cc and tests/unit/kernels/sampling_test.cc.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda_util.cuh"

namespace sieve::kernels::cuda {

constexpr int kRadixFirstBins = 4096;  // shared histogram size needed (entries)

struct RadixShared {
  int digit;
  int found;
  unsigned long long count_gt;
  unsigned long long mass_gt;
  unsigned long long scan_count[32];
  unsigned long long scan_mass[32];
};

struct RadixResult {
  uint32_t key = 0;
  int64_t count_gt = 0;            // elements with a larger key
  unsigned long long mass_gt = 0;  // their total mass
  bool found = false;              // false only when target >= the row's total
};

// Exclusive scan in thread order of (c, m). blockDim.x must be a multiple of 32.
__device__ __forceinline__ void BlockExclusiveScan2(unsigned long long c, unsigned long long m,
                                                    unsigned long long* c_before,
                                                    unsigned long long* m_before, RadixShared& sh) {
  const int lane = threadIdx.x % kWarpSize;
  const int warp = threadIdx.x / kWarpSize;
  unsigned long long ci = c, mi = m;
#pragma unroll
  for (int offset = 1; offset < kWarpSize; offset <<= 1) {
    const unsigned long long tc = __shfl_up_sync(kFullMask, ci, offset);
    const unsigned long long tm = __shfl_up_sync(kFullMask, mi, offset);
    if (lane >= offset) {
      ci += tc;
      mi += tm;
    }
  }
  if (lane == kWarpSize - 1) {
    sh.scan_count[warp] = ci;
    sh.scan_mass[warp] = mi;
  }
  __syncthreads();
  unsigned long long wc = 0, wm = 0;
  for (int w = 0; w < warp; ++w) {
    wc += sh.scan_count[w];
    wm += sh.scan_mass[w];
  }
  *c_before = wc + ci - c;
  *m_before = wm + mi - m;
}

// Row must provide: int size() const; uint32_t Key(int i) const; and, when kWithMass,
// unsigned long long Mass(int i) const. hist_count holds kRadixFirstBins entries of shared
// memory, hist_mass too when kWithMass (else may be null). blockDim.x must divide 1024.
// Every thread of the block must call it; every thread gets the same result.
template <bool kWithMass, bool kByMass, typename Row>
__device__ RadixResult RadixSelectDesc(const Row& row, unsigned long long target,
                                       unsigned* hist_count, unsigned long long* hist_mass,
                                       RadixShared& sh) {
  static_assert(kWithMass || !kByMass, "selecting by mass needs masses");
  const int n = row.size();
  uint32_t prefix = 0, mask = 0;
  unsigned long long remaining = target;
  RadixResult result;
  for (int pass = 0; pass < 3; ++pass) {
    const int shift = pass == 0 ? 20 : (pass == 1 ? 10 : 0);
    const int bins = pass == 0 ? kRadixFirstBins : 1024;
    if (threadIdx.x == 0) sh.found = 0;
    for (int i = threadIdx.x; i < bins; i += blockDim.x) {
      hist_count[i] = 0;
      if constexpr (kWithMass) hist_mass[i] = 0;
    }
    __syncthreads();
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
      const uint32_t key = row.Key(i);
      if ((key & mask) == prefix) {
        const uint32_t d = (key >> shift) & static_cast<uint32_t>(bins - 1);
        atomicAdd(&hist_count[d], 1u);
        if constexpr (kWithMass) atomicAdd(&hist_mass[d], row.Mass(i));
      }
    }
    __syncthreads();
    // Thread t owns the `per` bins just below bins - t * per, walked from the top.
    const int per = bins / static_cast<int>(blockDim.x);
    const int top = bins - static_cast<int>(threadIdx.x) * per;
    unsigned long long c_sum = 0, m_sum = 0;
    for (int q = 1; q <= per; ++q) {
      c_sum += hist_count[top - q];
      if constexpr (kWithMass) m_sum += hist_mass[top - q];
    }
    unsigned long long c_before, m_before;
    BlockExclusiveScan2(c_sum, m_sum, &c_before, &m_before, sh);
    const unsigned long long v_before = kByMass ? m_before : c_before;
    const unsigned long long v_sum = kByMass ? m_sum : c_sum;
    // The intervals [v_before, v_before + v_sum) partition [0, total): at most one thread
    // holds the crossing.
    if (v_before <= remaining && remaining < v_before + v_sum) {
      unsigned long long cb = c_before, mb = m_before;
      for (int q = 1; q <= per; ++q) {
        const int d = top - q;
        const unsigned long long c = hist_count[d];
        unsigned long long mm = 0;
        if constexpr (kWithMass) mm = hist_mass[d];
        if (remaining < (kByMass ? mb + mm : cb + c)) {
          sh.digit = d;
          sh.count_gt = cb;
          sh.mass_gt = mb;
          sh.found = 1;
          break;
        }
        cb += c;
        mb += mm;
      }
    }
    __syncthreads();
    if (!sh.found) {    // uniform: remaining >= the total of the row
      __syncthreads();  // every thread has read sh before a later call rewrites it
      return result;
    }
    remaining -= kByMass ? sh.mass_gt : sh.count_gt;
    result.count_gt += static_cast<int64_t>(sh.count_gt);
    result.mass_gt += sh.mass_gt;
    prefix |= static_cast<uint32_t>(sh.digit) << shift;
    mask |= static_cast<uint32_t>(bins - 1) << shift;
    __syncthreads();  // sh and the histograms are rewritten by the next pass
  }
  result.key = prefix;
  result.found = true;
  return result;
}

}  // namespace sieve::kernels::cuda
