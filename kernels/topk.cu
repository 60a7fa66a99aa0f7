// LaunchMaxPool1d and LaunchTopkSelect: the selection primitives of the eviction rules
// (contract: kernels/topk.h; CPU references: kernels/ref/topk_ref.cc).
//
// MaxPool1d: one thread per output (row in blockIdx.y, column in x-blocks), a window of
//   `kernel` loads clipped to the row; trivially memory bound.
// TopkSelect: one block of 256 threads per row (grid-stride over rows). A radix select over
//   the fp32 key bits (kernels/radix_select.cuh, three passes of 12/10/10-bit digits with a
//   shared-memory histogram) finds the k-th largest key kappa and the count of larger keys.
//   One more pass in index order writes the selection ascending: every key > kappa, plus the
//   first (k - count_gt) keys == kappa by index (ties: the lower index wins), positions from a
//   block-wide prefix count. Rows with k >= length write 0..length-1 directly. Rows are a chunk's
//   context or a KV head's history (a few thousand to ~128K entries), and there are many rows
//   per launch, so one block per row fills the GPU.
//
// Tested by tests/unit/kernels/topk_test.cc.
#include <cuda_runtime.h>

#include <algorithm>

#include "kernels/cuda_util.cuh"
#include "kernels/radix_select.cuh"
#include "kernels/topk.h"

namespace sieve::kernels {
namespace {

constexpr int kTopkThreads = 256;

__global__ void MaxPool1dKernel(const MaxPool1dArgs a) {
  const int half = a.kernel / 2;
  for (int64_t r = blockIdx.y; r < a.rows; r += gridDim.y) {
    const int len = a.lengths[r];
    const float* in = a.in + r * a.stride;
    float* out = a.out + r * a.stride;
    for (int t = blockIdx.x * blockDim.x + threadIdx.x; t < len; t += gridDim.x * blockDim.x) {
      const int lo = max(0, t - half);
      const int hi = min(len, t + half + 1);
      float m = in[lo];
      for (int u = lo + 1; u < hi; ++u) m = fmaxf(m, in[u]);
      out[t] = m;
    }
  }
}

struct TopkRow {
  const float* in;
  int n;
  __device__ int size() const { return n; }
  __device__ uint32_t Key(int i) const { return cuda::FloatKey(in[i]); }
};

__global__ void __launch_bounds__(kTopkThreads) TopkSelectKernel(const TopkSelectArgs a) {
  extern __shared__ unsigned hist[];  // [kRadixFirstBins]
  __shared__ cuda::RadixShared sh;
  __shared__ int scratch[32];
  for (int64_t r = blockIdx.x; r < a.rows; r += gridDim.x) {
    const int len = a.lengths[r];
    const int k = min(len, a.ks != nullptr ? a.ks[r] : a.k);
    const float* in = a.in + r * a.in_stride;
    int32_t* out = a.out + r * a.out_stride;
    if (k <= 0) continue;  // uniform over the block
    if (k >= len) {
      for (int i = threadIdx.x; i < len; i += blockDim.x) out[i] = i;
      continue;
    }
    const cuda::RadixResult sel =
        cuda::RadixSelectDesc<false, false>(TopkRow{in, len}, k - 1, hist, nullptr, sh);
    const uint32_t kappa = sel.key;
    const int ties_needed = k - static_cast<int>(sel.count_gt);  // >= 1
    int eq_seen = 0, out_seen = 0;
    for (int base = 0; base < len && out_seen < k; base += blockDim.x) {
      const int i = base + threadIdx.x;
      const uint32_t key = i < len ? cuda::FloatKey(in[i]) : 0u;
      const bool gt = i < len && key > kappa;
      const bool eq = i < len && key == kappa;
      int eq_total = 0, out_total = 0;
      const int eq_rank = eq_seen + cuda::BlockExclusiveCount(eq, scratch, &eq_total);
      const bool take = gt || (eq && eq_rank < ties_needed);
      const int pos = out_seen + cuda::BlockExclusiveCount(take, scratch, &out_total);
      if (take) out[pos] = i;
      eq_seen += eq_total;
      out_seen += out_total;
    }
    __syncthreads();  // the next row rewrites hist and sh
  }
}

}  // namespace

cudaError_t LaunchMaxPool1d(const MaxPool1dArgs& a, cudaStream_t stream) {
  if (a.rows < 0 || a.kernel < 1) return cudaErrorInvalidValue;
  if (a.rows == 0) return cudaSuccess;
  if (!a.in || !a.out || !a.lengths) return cudaErrorInvalidValue;
  constexpr int kThreads = 256;
  // Columns are bounded by the stride (lengths are device data).
  const dim3 grid(static_cast<unsigned>(
                      std::clamp<int64_t>(cuda::CeilDiv<int64_t>(a.stride, kThreads), 1, 1024)),
                  static_cast<unsigned>(std::min<int64_t>(a.rows, 65535)));
  MaxPool1dKernel<<<grid, kThreads, 0, stream>>>(a);
  return cudaGetLastError();
}

cudaError_t LaunchTopkSelect(const TopkSelectArgs& a, cudaStream_t stream) {
  if (a.rows < 0) return cudaErrorInvalidValue;
  if (a.rows == 0) return cudaSuccess;
  if (!a.in || !a.out || !a.lengths) return cudaErrorInvalidValue;
  const unsigned blocks = static_cast<unsigned>(std::min<int64_t>(a.rows, 1 << 20));
  const size_t smem = sizeof(unsigned) * cuda::kRadixFirstBins;
  TopkSelectKernel<<<blocks, kTopkThreads, smem, stream>>>(a);
  return cudaGetLastError();
}

}  // namespace sieve::kernels
