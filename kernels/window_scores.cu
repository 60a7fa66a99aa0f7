// LaunchWindowScores: attention-mass scores of selected keys summed over the last scoring rows
// and the query heads of each KV group (contract: kernels/window_scores.h; CPU reference:
// kernels/ref/window_scores_ref.cc).
//
// Two passes, CUDA cores, fp32, any head_dim and dtype:
//   pass 1 (WindowLseKernel): one block per (sequence, KV head, tile of 64 (head, row) pairs);
//     the block walks all keys in tiles of 64, forms the 64 x 64 score tile (each thread a 4 x 4
//     micro-tile, q and k staged through shared memory 32 dims at a time) and keeps an online
//     max / sum per pair; it writes lse = max + log(sum) per (sequence, query head, row) into
//     the workspace.
//   pass 2 (WindowScoreKernel): one block per (sequence, KV head, tile of 64 scored keys); it
//     recomputes the scores of all pairs against its keys and sums exp(s - lse) per key. Each
//     thread owns fixed keys and visits pairs in a fixed order, and the 16 per-key partials
//     are added in a fixed order: no atomics, the result is deterministic.
// The scoring rows are few (SnapKV's window, 8 by default, or one decode row), so this costs a
// small fraction of the attention it accompanies.
//
// Tested by tests/unit/kernels/window_scores_test.cc.
#include <cuda_runtime.h>

#include <algorithm>

#include "kernels/cuda_util.cuh"
#include "kernels/window_scores.h"

namespace sieve::kernels {
namespace {

constexpr int kTile = 64;      // pairs per tile and keys per tile
constexpr int kChunk = 32;     // head dims staged per step
constexpr int kThreads = 256;  // 16 x 16 threads, each a 4 x 4 micro-tile

// Shapes of one sequence, computed identically by both passes.
struct SeqShape {
  int q_begin, nq, kv_len, rows, pairs;
};

__device__ __forceinline__ SeqShape ShapeOf(const WindowScoresArgs& a, int b) {
  SeqShape s;
  s.q_begin = a.q_starts[b];
  s.nq = a.q_starts[b + 1] - s.q_begin;
  s.kv_len = a.kv_lens[b];
  s.rows = min(a.num_rows, s.nq);
  s.pairs = (a.num_q_heads / a.num_kv_heads) * s.rows;
  return s;
}

// Pair p of KV head g: query head h, scoring row ri (0-based among the scoring rows).
__device__ __forceinline__ void PairOf(const WindowScoresArgs& a, const SeqShape& s, int g, int p,
                                       int& h, int& ri) {
  const int group = a.num_q_heads / a.num_kv_heads;
  h = g * group + p / s.rows;
  ri = p % s.rows;
}

// Keys visible to scoring row ri: [0, hi).
__device__ __forceinline__ int PairHi(const SeqShape& s, int ri) {
  const int i = s.nq - s.rows + ri;
  return s.kv_len - (s.nq - 1 - i);
}

// acc[r][c] += q(pair p0 + ty + 16 r) . k(key k0 + tx + 16 c) over all head dims.
template <DType kType>
__device__ void ScoreTile(const WindowScoresArgs& a, const SeqShape& s, int b, int g, int p0,
                          int k0, int key_end, float (&q_s)[kTile][kChunk + 1],
                          float (&k_s)[kTile][kChunk + 1], float (&acc)[4][4]) {
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const void* k_seq = a.k_seqs[b];
  for (int r = 0; r < 4; ++r) {
    for (int c = 0; c < 4; ++c) acc[r][c] = 0.f;
  }
  for (int e0 = 0; e0 < a.head_dim; e0 += kChunk) {
    __syncthreads();  // the previous chunk is still being read
    for (int idx = threadIdx.x; idx < kTile * kChunk; idx += kThreads) {
      const int row = idx / kChunk, e = idx % kChunk;
      float qv = 0.f, kv = 0.f;
      const int p = p0 + row;
      if (p < s.pairs && e0 + e < a.head_dim) {
        int h, ri;
        PairOf(a, s, g, p, h, ri);
        const int64_t q_row = s.q_begin + (s.nq - s.rows + ri);
        qv = cuda::LoadElem<kType>(a.q, q_row * a.q_stride + int64_t{h} * a.head_dim + e0 + e);
      }
      const int key = k0 + row;
      if (key < key_end && e0 + e < a.head_dim) {
        kv = cuda::LoadElem<kType>(
            k_seq, key * a.kv_token_stride + int64_t{g} * a.kv_head_stride + e0 + e);
      }
      q_s[row][e] = qv;
      k_s[row][e] = kv;
    }
    __syncthreads();
#pragma unroll 8
    for (int e = 0; e < kChunk; ++e) {
      float qv[4], kv[4];
      for (int r = 0; r < 4; ++r) qv[r] = q_s[ty + 16 * r][e];
      for (int c = 0; c < 4; ++c) kv[c] = k_s[tx + 16 * c][e];
      for (int r = 0; r < 4; ++r) {
        for (int c = 0; c < 4; ++c) acc[r][c] += qv[r] * kv[c];
      }
    }
  }
}

// Sum over the 16 threads of a half-warp that share ty (they hold the 64 keys of a row).
__device__ __forceinline__ float HalfWarpSum(float v) {
  for (int offset = 8; offset > 0; offset >>= 1) v += __shfl_xor_sync(cuda::kFullMask, v, offset);
  return v;
}
__device__ __forceinline__ float HalfWarpMax(float v) {
  for (int offset = 8; offset > 0; offset >>= 1) {
    v = fmaxf(v, __shfl_xor_sync(cuda::kFullMask, v, offset));
  }
  return v;
}

template <DType kType>
__global__ void __launch_bounds__(kThreads)
    WindowLseKernel(const WindowScoresArgs a, float* lse, int rows_max) {
  __shared__ float q_s[kTile][kChunk + 1];
  __shared__ float k_s[kTile][kChunk + 1];
  const int b = blockIdx.z, g = blockIdx.y, p0 = blockIdx.x * kTile;
  const SeqShape s = ShapeOf(a, b);
  if (p0 >= s.pairs) return;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  int hi[4];
  float m[4], l[4];
  for (int r = 0; r < 4; ++r) {
    const int p = p0 + ty + 16 * r;
    int h, ri;
    PairOf(a, s, g, min(p, s.pairs - 1), h, ri);
    hi[r] = p < s.pairs ? PairHi(s, ri) : 0;
    m[r] = -INFINITY;
    l[r] = 0.f;
  }
  float acc[4][4];
  for (int k0 = 0; k0 < s.kv_len; k0 += kTile) {
    ScoreTile<kType>(a, s, b, g, p0, k0, s.kv_len, q_s, k_s, acc);
    for (int r = 0; r < 4; ++r) {
      float x[4];
      float tile_max = -INFINITY;
      for (int c = 0; c < 4; ++c) {
        const int key = k0 + tx + 16 * c;
        x[c] = key < hi[r] ? acc[r][c] * a.scale : -INFINITY;
        tile_max = fmaxf(tile_max, x[c]);
      }
      tile_max = HalfWarpMax(tile_max);
      const float m_new = fmaxf(m[r], tile_max);
      const float m_use = m_new == -INFINITY ? 0.f : m_new;
      float part = 0.f;
      for (int c = 0; c < 4; ++c) part += expf(x[c] - m_use);
      l[r] = l[r] * expf(m[r] - m_use) + HalfWarpSum(part);
      m[r] = m_new;
    }
  }
  if (tx == 0) {
    for (int r = 0; r < 4; ++r) {
      const int p = p0 + ty + 16 * r;
      if (p >= s.pairs) continue;
      int h, ri;
      PairOf(a, s, g, p, h, ri);
      // A row with no visible key gets +inf, so pass 2 adds exp(s - inf) = 0 for it.
      lse[(int64_t{b} * a.num_q_heads + h) * rows_max + ri] =
          l[r] > 0.f ? m[r] + logf(l[r]) : INFINITY;
    }
  }
}

template <DType kType>
__global__ void __launch_bounds__(kThreads)
    WindowScoreKernel(const WindowScoresArgs a, const float* lse, int rows_max) {
  __shared__ float q_s[kTile][kChunk + 1];
  __shared__ float k_s[kTile][kChunk + 1];
  __shared__ float partial[16][kTile];
  const int b = blockIdx.z, g = blockIdx.y, j0 = blockIdx.x * kTile;
  const int key_begin = a.key_begin[b];
  const int key_count = a.key_count[b];
  if (j0 >= key_count) return;
  const SeqShape s = ShapeOf(a, b);
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  // Keys of this tile that exist: [key_begin + j0, min(key_begin + key_count, kv_len)).
  const int key_end = min(key_begin + key_count, s.kv_len);
  float col[4] = {0.f, 0.f, 0.f, 0.f};
  float acc[4][4];
  for (int pt = 0; pt < s.pairs; pt += kTile) {
    ScoreTile<kType>(a, s, b, g, pt, key_begin + j0, key_end, q_s, k_s, acc);
    for (int r = 0; r < 4; ++r) {
      const int p = pt + ty + 16 * r;
      if (p >= s.pairs) continue;
      int h, ri;
      PairOf(a, s, g, p, h, ri);
      const int hi = PairHi(s, ri);
      const float row_lse = lse[(int64_t{b} * a.num_q_heads + h) * rows_max + ri];
      for (int c = 0; c < 4; ++c) {
        const int key = key_begin + j0 + tx + 16 * c;
        if (key < hi && key < key_end) col[c] += expf(acc[r][c] * a.scale - row_lse);
      }
    }
  }
  for (int c = 0; c < 4; ++c) partial[ty][tx + 16 * c] = col[c];
  __syncthreads();
  if (threadIdx.x < kTile) {
    const int j = j0 + threadIdx.x;
    if (j < key_count) {
      float sum = 0.f;
      for (int y = 0; y < 16; ++y) sum += partial[y][threadIdx.x];
      a.scores[(int64_t{b} * a.num_kv_heads + g) * a.scores_stride + j] = sum * a.head_scale;
    }
  }
}

int RowsMax(const WindowScoresArgs& a) { return std::max(0, std::min(a.num_rows, a.max_q_len)); }

}  // namespace

size_t WindowScoresWorkspaceBytes(const WindowScoresArgs& a) {
  return sizeof(float) * static_cast<size_t>(std::max(0, a.num_seqs)) *
         static_cast<size_t>(std::max(0, a.num_q_heads)) * static_cast<size_t>(RowsMax(a));
}

cudaError_t LaunchWindowScores(const WindowScoresArgs& a, void* workspace, size_t workspace_bytes,
                               cudaStream_t stream) {
  if (a.num_seqs < 0 || a.num_q_heads <= 0 || a.num_kv_heads <= 0 ||
      a.num_q_heads % a.num_kv_heads != 0 || a.head_dim <= 0 || a.num_seqs > 65535 ||
      a.num_kv_heads > 65535) {
    return cudaErrorInvalidValue;
  }
  const int rows_max = RowsMax(a);
  if (a.num_seqs == 0 || a.max_key_count <= 0) return cudaSuccess;
  if (!a.q || !a.k_seqs || !a.q_starts || !a.kv_lens || !a.key_begin || !a.key_count || !a.scores) {
    return cudaErrorInvalidValue;
  }
  const size_t need = WindowScoresWorkspaceBytes(a);
  if (need > 0 && (workspace == nullptr || workspace_bytes < need)) return cudaErrorInvalidValue;
  float* lse = static_cast<float*>(workspace);
  const int group = a.num_q_heads / a.num_kv_heads;
  const dim3 lse_grid(static_cast<unsigned>(std::max(1, cuda::CeilDiv(group * rows_max, kTile))),
                      a.num_kv_heads, a.num_seqs);
  const dim3 score_grid(static_cast<unsigned>(cuda::CeilDiv(a.max_key_count, kTile)),
                        a.num_kv_heads, a.num_seqs);
  SIEVE_DISPATCH_DTYPE(a.dtype, kType, {
    if (rows_max > 0) {
      WindowLseKernel<kType><<<lse_grid, kThreads, 0, stream>>>(a, lse, rows_max);
      const cudaError_t err = cudaGetLastError();
      if (err != cudaSuccess) return err;
    }
    WindowScoreKernel<kType><<<score_grid, kThreads, 0, stream>>>(a, lse, rows_max);
    return cudaGetLastError();
  })
}

}  // namespace sieve::kernels
