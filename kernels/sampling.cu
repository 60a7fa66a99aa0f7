// LaunchSample: next-token choice, greedy or temperature / top-k / top-p with inverse-CDF
// sampling (contract: kernels/sampling.h; CPU reference: kernels/ref/sampling_ref.cc).
//
// One variant: a block of 1024 threads per row (the decoder calls it with one row per sequence
// and a 128K vocabulary). It never sorts. The reference's candidate order (probability
// descending, ties: lower id) is the order of the logits descending with ties to the lower id,
// and every question the reference asks of the sorted list is a threshold in that order, found
// by a radix select over the logit keys (kernels/radix_select.cuh, three passes each):
//   1. block argmax (ties: lower id) -> greedy answer, or the max m for the softmax shift;
//   2. each token's mass w_v = round(expf((x_v - m) / T) * 2^40), an unsigned 64-bit integer,
//      and Z = sum w_v. Integer masses make every sum exact and order independent, so the result
//      does not depend on thread scheduling (deterministic);
//   3. top_k: keep K = min(top_k, vocab) (all when top_k <= 0);
//   4. top_p < 1: the shortest prefix whose mass reaches ceil(top_p * Z) = a select by mass,
//      then the ties at the crossing key are counted in id order; keep = min(K, max(1, n));
//   5. W = mass of the kept prefix (a select by count at rank keep - 1 when keep < vocab);
//   6. target = floor(u * W); the pick is the first element whose cumulative mass exceeds the
//      target (a select by mass); among equal logits, the j-th by id, found by a block scan.
// Differences from the reference (which uses double probabilities): masses below 2^-41 of the
// top token's round to 0 and are never picked, and a uniform within ~1e-7 of a CDF boundary may
// pick the neighbour. Cost: about ten passes over the row from L2, tens of microseconds.
//
// Tested by tests/unit/kernels/sampling_test.cc.
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>

#include "kernels/cuda_util.cuh"
#include "kernels/radix_select.cuh"
#include "kernels/sampling.h"

namespace sieve::kernels {
namespace {

constexpr int kSampleThreads = 1024;
constexpr float kMassScale = 1099511627776.f;  // 2^40
constexpr size_t kSampleSmemBytes =
    cuda::kRadixFirstBins * (sizeof(unsigned) + sizeof(unsigned long long));

struct SampleRow {
  const float* x;
  int n;
  float max_logit;
  float temperature;
  __device__ int size() const { return n; }
  __device__ uint32_t Key(int i) const { return cuda::FloatKey(x[i]); }
  __device__ unsigned long long MassOfValue(float v) const {
    return __float2ull_rn(expf((v - max_logit) / temperature) * kMassScale);
  }
  __device__ unsigned long long Mass(int i) const { return MassOfValue(x[i]); }
  __device__ unsigned long long MassOfKey(uint32_t key) const {
    return MassOfValue(cuda::KeyToFloat(key));
  }
};

struct ArgMax {
  float value;
  int index;
};

__device__ __forceinline__ ArgMax Better(ArgMax a, ArgMax b) {
  // Larger value wins; equal values: the lower index. An index of n marks "no element yet".
  if (b.value > a.value || (b.value == a.value && b.index < a.index)) return b;
  return a;
}

__device__ ArgMax BlockArgMax(ArgMax v, ArgMax* scratch) {
  const int lane = threadIdx.x % cuda::kWarpSize;
  const int warp = threadIdx.x / cuda::kWarpSize;
  const int num_warps = blockDim.x / cuda::kWarpSize;
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    const ArgMax o{__shfl_xor_sync(cuda::kFullMask, v.value, offset),
                   __shfl_xor_sync(cuda::kFullMask, v.index, offset)};
    v = Better(v, o);
  }
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  ArgMax r = lane < num_warps ? scratch[lane] : ArgMax{-INFINITY, INT_MAX};
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    const ArgMax o{__shfl_xor_sync(cuda::kFullMask, r.value, offset),
                   __shfl_xor_sync(cuda::kFullMask, r.index, offset)};
    r = Better(r, o);
  }
  return r;
}

__device__ unsigned long long BlockSumU64(unsigned long long v, unsigned long long* scratch) {
  const int lane = threadIdx.x % cuda::kWarpSize;
  const int warp = threadIdx.x / cuda::kWarpSize;
  const int num_warps = blockDim.x / cuda::kWarpSize;
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(cuda::kFullMask, v, offset);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  unsigned long long r = lane < num_warps ? scratch[lane] : 0ull;
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) r += __shfl_xor_sync(cuda::kFullMask, r, offset);
  return r;
}

__global__ void __launch_bounds__(kSampleThreads) SampleKernel(const SampleArgs a) {
  extern __shared__ unsigned long long smem_u64[];
  unsigned long long* hist_mass = smem_u64;                                              // [4096]
  unsigned* hist_count = reinterpret_cast<unsigned*>(smem_u64 + cuda::kRadixFirstBins);  // [4096]
  __shared__ cuda::RadixShared sh;
  __shared__ ArgMax arg_scratch[32];
  __shared__ unsigned long long sum_scratch[32];
  __shared__ int count_scratch[32];
  __shared__ int picked;
  const int n = static_cast<int>(a.vocab);
  for (int64_t r = blockIdx.x; r < a.rows; r += gridDim.x) {
    const float* x = a.logits + r * a.stride;
    // 1. Argmax, ties to the lower id (each thread visits ids in increasing order).
    ArgMax best{-INFINITY, n};
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
      const float v = x[i];
      if (v > best.value || best.index == n) best = ArgMax{v, i};
    }
    best = BlockArgMax(best, arg_scratch);
    if (a.temperature <= 0.f) {
      if (threadIdx.x == 0) a.out_ids[r] = best.index;
      continue;  // uniform
    }
    const SampleRow row{x, n, best.value, a.temperature};
    // 2. Total mass.
    unsigned long long local = 0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) local += row.Mass(i);
    const unsigned long long z = BlockSumU64(local, sum_scratch);
    // 3-4. How many candidates are kept.
    int64_t keep = a.top_k > 0 ? std::min<int64_t>(a.top_k, n) : n;
    if (a.top_p < 1.f) {
      const double need = static_cast<double>(z) * static_cast<double>(a.top_p);
      const unsigned long long t = need <= 0.0 ? 0ull : static_cast<unsigned long long>(ceil(need));
      int64_t n_p = 1;
      if (t > 0) {
        // First element whose cumulative mass reaches t, i.e. exceeds t - 1.
        const cuda::RadixResult s =
            cuda::RadixSelectDesc<true, true>(row, t - 1, hist_count, hist_mass, sh);
        if (s.found) {
          const unsigned long long w = row.MassOfKey(s.key);  // > 0: its bin held mass
          n_p = s.count_gt + static_cast<int64_t>((t - 1 - s.mass_gt) / w) + 1;
        } else {
          n_p = n;  // rounding left the total short of t: keep everything
        }
      }
      keep = std::min<int64_t>(keep, std::max<int64_t>(1, n_p));
    }
    // 5. Mass of the kept prefix (the top token, mass 2^40, is always in it).
    unsigned long long kept_mass = z;
    if (keep < n) {
      const cuda::RadixResult s =
          cuda::RadixSelectDesc<true, false>(row, keep - 1, hist_count, hist_mass, sh);
      kept_mass =
          s.mass_gt + static_cast<unsigned long long>(keep - s.count_gt) * row.MassOfKey(s.key);
    }
    // 6. Inverse CDF.
    unsigned long long target = static_cast<unsigned long long>(static_cast<double>(a.uniforms[r]) *
                                                                static_cast<double>(kept_mass));
    if (target >= kept_mass) target = kept_mass - 1;
    uint32_t pick_key = 0;
    int64_t tie = 0;  // the pick is the tie-th element (by id) among those with key pick_key
    const cuda::RadixResult s =
        cuda::RadixSelectDesc<true, true>(row, target, hist_count, hist_mass, sh);
    if (s.found) {
      pick_key = s.key;
      tie = static_cast<int64_t>((target - s.mass_gt) / row.MassOfKey(s.key));
    }
    if (!s.found || s.count_gt + tie >= keep) {
      // Unreachable with exact integer masses (target < kept_mass); falls back to the last kept.
      const cuda::RadixResult t =
          cuda::RadixSelectDesc<true, false>(row, keep - 1, hist_count, hist_mass, sh);
      pick_key = t.key;
      tie = keep - 1 - t.count_gt;
    }
    if (threadIdx.x == 0) picked = best.index;
    int seen = 0;
    for (int base = 0; base < n && seen <= tie; base += blockDim.x) {
      const int i = base + threadIdx.x;
      const bool eq = i < n && row.Key(i) == pick_key;
      int total = 0;
      const int rank = seen + cuda::BlockExclusiveCount(eq, count_scratch, &total);
      if (eq && rank == tie) picked = i;
      seen += total;
    }
    __syncthreads();
    if (threadIdx.x == 0) a.out_ids[r] = picked;
    __syncthreads();  // `picked` is reset for the next row
  }
}

}  // namespace

size_t SampleWorkspaceBytes(const SampleArgs& args) { return 0; }

cudaError_t LaunchSample(const SampleArgs& a, void* workspace, size_t workspace_bytes,
                         cudaStream_t stream) {
  if (a.rows < 0 || a.vocab < 0 || a.vocab > INT32_MAX) return cudaErrorInvalidValue;
  if (a.rows == 0) return cudaSuccess;
  if (!a.logits || !a.out_ids || a.vocab == 0) return cudaErrorInvalidValue;
  if (a.temperature > 0.f && !a.uniforms) return cudaErrorInvalidValue;
  cudaError_t err = cudaFuncSetAttribute(SampleKernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         static_cast<int>(kSampleSmemBytes));
  if (err != cudaSuccess) return err;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(a.rows, 1 << 20));
  SampleKernel<<<blocks, kSampleThreads, kSampleSmemBytes, stream>>>(a);
  return cudaGetLastError();
}

}  // namespace sieve::kernels
