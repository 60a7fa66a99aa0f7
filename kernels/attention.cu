// LaunchAttention: causal (bottom-right aligned) attention of packed query rows against
// per-sequence K/V with GQA and an optional sliding window (contract: kernels/attention.h; CPU
// reference: kernels/ref/attention_ref.cc). No L x L matrix is ever formed.
//
// Four variants (AttentionVariant); LaunchAttention picks one from the arguments and a cached
// per-device capability query (no device reads per launch; AttentionChooseVariant says which):
//   1s. Prefill on Hopper (AttentionPrefillSm90Kernel, kernels/attention_sm90.cu): warp-
//      specialized wgmma flash attention (one producer thread streams Q, K and V tiles through
//      an mbarrier ring with the copy engine (TMA; the per-sequence K/V tensor maps are written
//      on the device); two consumer warpgroups of 64 query rows run S = Q K^T and O += P V on
//      wgmma with P in registers). Chosen for prefill-shaped arguments (variant 2 not chosen)
//      when they also satisfy AttentionSm90ArgsOk (bf16, head_dim 128, scale > 0) on a
//      compute-capability 9.0 device with sm_90a code in the binary and a driver that encodes
//      tensor maps; otherwise variant 1 runs.
//   1. Prefill, tensor cores (AttentionPrefillKernel<kHeadDim>): bf16, head_dim 64 or 128,
//      16-byte aligned q / strides. One block of 4 warps per (128 query rows, query head,
//      sequence); each warp owns two tiles of 16 rows, so every K/V fragment read from shared
//      memory feeds two MMAs. K/V tiles of 64 keys stream through a two-stage cp.async pipeline
//      into padded shared memory (row stride head_dim + 8 elements, so ldmatrix rows hit
//      distinct banks); Q is staged there once and its fragments re-read per key tile.
//      S = Q K^T and O += P V run on mma.sync m16n8k16 (bf16 in, fp32 accumulate; ldmatrix for
//      Q and K, ldmatrix.trans for V); the online softmax is fp32 in registers (exp2 with the
//      scale folded into log2 e), P is rounded to bf16 only as the mma operand. Key tiles
//      entirely above the diagonal (or left of the window) are never visited; only tiles that
//      cross a boundary are masked. Blocks run from the last query tile to the first so the
//      long causal tiles start first.
//   2. Decode, split-K (AttentionDecodeKernel<kHeadDim, kRows> + AttentionMergeKernel): same
//      eligibility, chosen when group * max_q_len <= 32 (decode has one row per sequence). One
//      block of 4 warps per (KV split, KV head, sequence) handles every query head of the KV
//      group and every row of the sequence (up to 32 query vectors: instantiated for 8, 16 and
//      32) against its share of the keys. Each warp streams its own 16-key steps through its
//      own three-step cp.async ring in shared memory (no block barrier in the key loop), reads
//      K and V as mma.sync fragments (the dims of the contraction and of the output are
//      permuted so that every fragment is 16 contiguous bytes), and runs S = Q K^T and
//      O += P V on m16n8k16 tensor cores (bf16 in, fp32 accumulate, the query vectors padded to
//      16-row tiles) with an fp32 online softmax. The warps' partials are combined in shared
//      memory into one (max, sum, unnormalized output) record per query vector and split in
//      the workspace; the merge kernel, launched as a programmatic dependent of the decode
//      kernel, combines the splits in a fixed order. The split count (about one wave of
//      blocks) is a pure function of the arguments, so AttentionWorkspaceBytes and the launch
//      agree.
//   3. Generic (AttentionGenericKernel<kType>): any dtype, any head_dim <= 256, any alignment
//      (the 16-dim test model, fp32 / fp16 inputs). One warp per (query row, head): lanes take
//      32 keys at a time for the scores, then own head dims for P V. Slow, simple, exact fp32.
// In variants 1 and 2, a sequence whose K/V base pointer is not 16-byte aligned is staged
// through shared memory with plain loads instead of cp.async (checked per block on the device).
//
// Tested by tests/unit/kernels/attention_test.cc; timed by tests/bench/attention_bench.cc
// (target sieve-attention-bench).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "kernels/attention.h"
#include "kernels/attention_sm90.h"
#include "kernels/cuda_util.cuh"

namespace sieve::kernels {
namespace {

constexpr float kLog2e = 1.4426950408889634f;

constexpr int kTileRows = 64;  // query rows per prefill block, keys per K/V tile (both variants)
constexpr int kTcThreads = 128;
constexpr int kDecodeMaxQv = 32;  // query vectors (group heads x rows) per decode block
// Decode blocks to aim for: one wave of 2 resident blocks per SM (the rings' shared memory) on
// 132 SMs (an H100 or H200). The split count is the most that keeps the blocks within it.
constexpr int kDecodeTargetBlocks = 264;
constexpr int kDecodeMaxSplits = 256;
// Keys per decode block at least: with fewer, the block's combine and the merge dominate.
constexpr int kDecodeMinSplitKeys = 256;
constexpr int kGenericWarps = 4;
constexpr int kGenericMaxHeadDim = 256;

// Keys visible to row i (0-based within its sequence of nq rows): [lo, hi).
__device__ __forceinline__ void VisibleRange(int i, int nq, int kv_len, int window, int& lo,
                                             int& hi) {
  hi = kv_len - (nq - 1 - i);
  lo = window > 0 ? max(0, hi - window) : 0;
}

// ---------------------------------------------------------------------------------------------
// PTX wrappers (sm_80+).

__device__ __forceinline__ uint32_t SmemAddress(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16 bytes global -> shared, asynchronously; zero-fills when !valid (reads nothing then).
__device__ __forceinline__ void CpAsync16(void* smem, const void* gmem, bool valid) {
  const int src_bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(SmemAddress(smem)),
               "l"(gmem), "r"(src_bytes)
               : "memory");
}

__device__ __forceinline__ void CpAsyncCommit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}

template <int kPending>
__device__ __forceinline__ void CpAsyncWait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

// Four 8x8 b16 matrices; lanes 8j..8j+7 give the row addresses of matrix j. Register j of lane
// l holds row l / 4, columns 2 (l % 4) and 2 (l % 4) + 1 of matrix j (transposed with .trans).
__device__ __forceinline__ void LdMatrixX4(uint32_t (&r)[4], const void* smem) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(SmemAddress(smem)));
}

__device__ __forceinline__ void LdMatrixX4Trans(uint32_t (&r)[4], const void* smem) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(SmemAddress(smem)));
}

// d += a (16x16, row-major fragment) * b (16x8, column-major fragment), bf16 in, fp32 out.
__device__ __forceinline__ void MmaBf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                        uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats as a bf16 pair: lo in the low 16 bits (the lower column / address).
__device__ __forceinline__ uint32_t PackBf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// ---------------------------------------------------------------------------------------------
// Shared-memory tiles of 64 rows x kHeadDim bf16, row stride kHeadDim + 8 elements.

template <int kHeadDim>
struct Tile {
  static constexpr int kStride = kHeadDim + 8;
  static constexpr int kElems = kTileRows * kStride;
  static constexpr int kChunksPerRow = kHeadDim / 8;  // 16-byte chunks
};

// Rows [row0, row0 + 64) of a [rows, kHeadDim] bf16 matrix with row stride `stride` (elements)
// into `smem`; rows at or beyond row_end are zero-filled (masked keys then multiply zeros, and
// shared memory never holds stale NaNs). `use_async` requires 16-byte aligned rows.
template <int kHeadDim>
__device__ __forceinline__ void LoadTile(uint16_t* smem, const uint16_t* gmem, int64_t stride,
                                         int row0, int row_end, bool use_async) {
  using T = Tile<kHeadDim>;
  for (int c = threadIdx.x; c < kTileRows * T::kChunksPerRow; c += blockDim.x) {
    const int r = c / T::kChunksPerRow;
    const int ch = c - r * T::kChunksPerRow;
    const int row = row0 + r;
    const bool valid = row < row_end;
    uint16_t* dst = smem + r * T::kStride + ch * 8;
    const uint16_t* src = gmem + (valid ? static_cast<int64_t>(row) * stride : 0) + ch * 8;
    if (use_async) {
      CpAsync16(dst, src, valid);
    } else {
#pragma unroll
      for (int e = 0; e < 8; ++e) dst[e] = valid ? src[e] : uint16_t{0};
    }
  }
}

__device__ __forceinline__ bool Aligned16(const void* p) {
  return (reinterpret_cast<uintptr_t>(p) & 15u) == 0;
}

// ---------------------------------------------------------------------------------------------
// Variant 1: prefill on tensor cores.

// Each warp owns kPrefillRowTiles tiles of 16 query rows, so every K / V fragment read from
// shared memory feeds kPrefillRowTiles MMAs: shared-memory bandwidth, not the tensor cores,
// bounds this kernel at one row tile per warp. Q fragments are re-read from shared memory at
// every key tile to stay within 255 registers (2 blocks of 4 warps per SM).
// Measured on an H100 (16 x 8192 causal, d 128): 1 row tile with Q in registers 214 TFLOP/s,
// 1 with Q re-read 179, 2 with Q re-read 237.
constexpr int kPrefillRowTiles = 2;
constexpr int kPrefillRows = kTileRows * kPrefillRowTiles;  // query rows per block

template <int kHeadDim>
constexpr int PrefillSmemBytes() {
  return (kPrefillRowTiles + 4) * Tile<kHeadDim>::kElems * 2;  // Q + two stages of (K, V)
}

template <int kHeadDim>
__global__ void __launch_bounds__(kTcThreads, 2) AttentionPrefillKernel(const AttentionArgs a) {
  using T = Tile<kHeadDim>;
  constexpr int kStride = T::kStride;
  constexpr int kDimSteps = kHeadDim / 16;  // k16 steps of Q K^T, n16 pairs of P V
  constexpr int kRt = kPrefillRowTiles;
  extern __shared__ __align__(16) uint16_t smem[];
  uint16_t* q_s = smem;  // row tile rt of every warp at q_s + rt * kElems (64 rows)
  // Stage st: K at smem + (kRt + 2 st) * kElems, V right after it.
  auto k_stage = [&](int st) { return smem + (kRt + 2 * st) * T::kElems; };
  auto v_stage = [&](int st) { return smem + (kRt + 1 + 2 * st) * T::kElems; };

  const int b = blockIdx.z;
  const int h = blockIdx.y;
  const int q0 = (gridDim.x - 1 - blockIdx.x) * kPrefillRows;  // heavy (late) tiles first
  const int q_begin = a.q_starts[b];
  const int nq = a.q_starts[b + 1] - q_begin;
  if (q0 >= nq) return;
  const int kv_len = a.kv_lens[b];
  const int group = a.num_q_heads / a.num_kv_heads;
  const int g = h / group;
  const int last_row = min(q0 + kPrefillRows, nq) - 1;
  int lo_first, hi_first, lo_last, hi_last;
  VisibleRange(q0, nq, kv_len, a.window, lo_first, hi_first);
  VisibleRange(last_row, nq, kv_len, a.window, lo_last, hi_last);
  // Keys any row of the block sees: [key_begin, key_end) (lo and hi grow with the row).
  const int key_begin = lo_first;
  const int key_end = max(0, hi_last);
  const int n_begin = (key_begin / kTileRows) * kTileRows;
  const int num_tiles = key_end > n_begin ? (key_end - n_begin + kTileRows - 1) / kTileRows : 0;

  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int quad_row = lane / 4;  // the mma "groupID"
  const int quad_col = lane % 4;  // the mma "threadID_in_group"
  uint16_t* out_base =
      static_cast<uint16_t*>(a.out) + int64_t{q_begin} * a.out_stride + int64_t{h} * kHeadDim;
  if (num_tiles == 0) {
    // No row of the block sees a key: the reference writes zeros.
    for (int idx = threadIdx.x; idx < (last_row - q0 + 1) * kHeadDim; idx += blockDim.x) {
      const int r = idx / kHeadDim;
      out_base[int64_t{q0 + r} * a.out_stride + (idx - r * kHeadDim)] = 0;
    }
    return;
  }

  const uint16_t* q_ptr =
      static_cast<const uint16_t*>(a.q) + int64_t{q_begin} * a.q_stride + int64_t{h} * kHeadDim;
  const uint16_t* k_ptr = static_cast<const uint16_t*>(a.k_seqs[b]) + int64_t{g} * a.kv_head_stride;
  const uint16_t* v_ptr = static_cast<const uint16_t*>(a.v_seqs[b]) + int64_t{g} * a.kv_head_stride;
  const bool kv_async = Aligned16(k_ptr) && Aligned16(v_ptr);

#pragma unroll
  for (int rt = 0; rt < kRt; ++rt) {
    LoadTile<kHeadDim>(q_s + rt * T::kElems, q_ptr, a.q_stride, q0 + rt * kTileRows, nq, true);
  }
  LoadTile<kHeadDim>(k_stage(0), k_ptr, a.kv_token_stride, n_begin, key_end, kv_async);
  LoadTile<kHeadDim>(v_stage(0), v_ptr, a.kv_token_stride, n_begin, key_end, kv_async);
  CpAsyncCommit();

  // This thread's rows: row_base + rt * 64 + 8 r (r = 0: fragment rows 0-7, r = 1: 8-15). Row i
  // sees keys below i + hi_offset (VisibleRange, recomputed where needed to save registers).
  const int row_base = q0 + warp * 16 + quad_row;
  const int hi_offset = kv_len - nq + 1;

  float o[kRt][2 * kDimSteps][4];
#pragma unroll
  for (int rt = 0; rt < kRt; ++rt) {
#pragma unroll
    for (int dt = 0; dt < 2 * kDimSteps; ++dt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) o[rt][dt][e] = 0.f;
    }
  }
  float m_run[kRt][2], l_run[kRt][2];
#pragma unroll
  for (int rt = 0; rt < kRt; ++rt) {
    m_run[rt][0] = m_run[rt][1] = -INFINITY;
    l_run[rt][0] = l_run[rt][1] = 0.f;
  }
  const float scale_log2 = a.scale * kLog2e;
  // A fragments of Q: matrices (rows 0-7 | 8-15) x (dims 0-7 | 8-15) of the warp's 16 rows.
  const uint16_t* q_frag_base =
      q_s + (warp * 16 + (lane % 8) + ((lane / 8) % 2) * 8) * kStride + (lane / 16) * 8;
  // B fragments of K for two n8 key tiles: matrices (keys 0-7 | 8-15) x (dims 0-7 | 8-15).
  const int k_frag_off = ((lane % 8) + (lane / 16) * 8) * kStride + ((lane / 8) % 2) * 8;
  // B fragments of V (transposed) for two n8 dim tiles: (keys 0-7 | 8-15) x (dims 0-7 | 8-15).
  const int v_frag_off = ((lane % 8) + ((lane / 8) % 2) * 8) * kStride + (lane / 16) * 8;

  for (int j = 0; j < num_tiles; ++j) {
    const int stage = j & 1;
    if (j + 1 < num_tiles) {
      const int next = n_begin + (j + 1) * kTileRows;
      LoadTile<kHeadDim>(k_stage(stage ^ 1), k_ptr, a.kv_token_stride, next, key_end, kv_async);
      LoadTile<kHeadDim>(v_stage(stage ^ 1), v_ptr, a.kv_token_stride, next, key_end, kv_async);
      CpAsyncCommit();
      CpAsyncWait<1>();
    } else {
      CpAsyncWait<0>();
    }
    __syncthreads();

    // S = Q K^T for kRt x 16 rows x 64 keys: s[rt][nt] is the n8 tile of keys nt*8 .. nt*8+7.
    float s[kRt][8][4];
#pragma unroll
    for (int rt = 0; rt < kRt; ++rt) {
#pragma unroll
      for (int nt = 0; nt < 8; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) s[rt][nt][e] = 0.f;
      }
    }
    {
      const uint16_t* kbase = k_stage(stage) + k_frag_off;
#pragma unroll
      for (int kk = 0; kk < kDimSteps; ++kk) {
        uint32_t qf[kRt][4];
#pragma unroll
        for (int rt = 0; rt < kRt; ++rt) {
          LdMatrixX4(qf[rt], q_frag_base + rt * T::kElems + kk * 16);
        }
#pragma unroll
        for (int np = 0; np < 4; ++np) {
          uint32_t kb[4];
          LdMatrixX4(kb, kbase + np * 16 * kStride + kk * 16);
#pragma unroll
          for (int rt = 0; rt < kRt; ++rt) {
            MmaBf16(s[rt][2 * np], qf[rt], kb[0], kb[1]);
            MmaBf16(s[rt][2 * np + 1], qf[rt], kb[2], kb[3]);
          }
        }
      }
    }

    // Online softmax in the log2 domain. Element e of s[rt][nt] is row
    // row_base + rt * 64 + 8 * (e / 2), key n0 + nt * 8 + 2 * quad_col + e % 2.
    const int n0 = n_begin + j * kTileRows;
    const bool need_mask =
        n0 + kTileRows > hi_first || (a.window > 0 && n0 < lo_last);  // uniform per block
#pragma unroll
    for (int rt = 0; rt < kRt; ++rt) {
      float row_max[2] = {-INFINITY, -INFINITY};
#pragma unroll
      for (int nt = 0; nt < 8; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int r = e / 2;
          float x = s[rt][nt][e] * scale_log2;
          if (need_mask) {
            const int key = n0 + nt * 8 + 2 * quad_col + (e % 2);
            const int hi = row_base + rt * kTileRows + 8 * r + hi_offset;
            const int lo = a.window > 0 ? max(0, hi - a.window) : 0;
            if (key < lo || key >= hi) x = -INFINITY;
          }
          s[rt][nt][e] = x;
          row_max[r] = fmaxf(row_max[r], x);
        }
      }
      float m_use[2];
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        row_max[r] = fmaxf(row_max[r], __shfl_xor_sync(cuda::kFullMask, row_max[r], 1));
        row_max[r] = fmaxf(row_max[r], __shfl_xor_sync(cuda::kFullMask, row_max[r], 2));
        const float m_new = fmaxf(m_run[rt][r], row_max[r]);
        // A row with no visible key so far keeps max -inf; shift by 0 so exp2 gives 0, not NaN.
        m_use[r] = m_new == -INFINITY ? 0.f : m_new;
        const float alpha = exp2f(m_run[rt][r] - m_use[r]);
        m_run[rt][r] = m_new;
        l_run[rt][r] *= alpha;
#pragma unroll
        for (int dt = 0; dt < 2 * kDimSteps; ++dt) {
          o[rt][dt][2 * r] *= alpha;
          o[rt][dt][2 * r + 1] *= alpha;
        }
      }
#pragma unroll
      for (int nt = 0; nt < 8; ++nt) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const float p = exp2f(s[rt][nt][e] - m_use[e / 2]);
          s[rt][nt][e] = p;
          l_run[rt][e / 2] += p;
        }
      }
    }

    // O += P V. The S accumulator layout of two n8 key tiles is the A fragment of one k16 step.
    {
      const uint16_t* vbase = v_stage(stage) + v_frag_off;
#pragma unroll
      for (int kc = 0; kc < 4; ++kc) {
        uint32_t pa[kRt][4];
#pragma unroll
        for (int rt = 0; rt < kRt; ++rt) {
          pa[rt][0] = PackBf16(s[rt][2 * kc][0], s[rt][2 * kc][1]);
          pa[rt][1] = PackBf16(s[rt][2 * kc][2], s[rt][2 * kc][3]);
          pa[rt][2] = PackBf16(s[rt][2 * kc + 1][0], s[rt][2 * kc + 1][1]);
          pa[rt][3] = PackBf16(s[rt][2 * kc + 1][2], s[rt][2 * kc + 1][3]);
        }
#pragma unroll
        for (int dp = 0; dp < kDimSteps; ++dp) {
          uint32_t vb[4];
          LdMatrixX4Trans(vb, vbase + kc * 16 * kStride + dp * 16);
#pragma unroll
          for (int rt = 0; rt < kRt; ++rt) {
            MmaBf16(o[rt][2 * dp], pa[rt], vb[0], vb[1]);
            MmaBf16(o[rt][2 * dp + 1], pa[rt], vb[2], vb[3]);
          }
        }
      }
    }
    __syncthreads();  // the next iteration's prefetch overwrites this stage
  }

  // Normalize and store (rows beyond the sequence are not written).
#pragma unroll
  for (int rt = 0; rt < kRt; ++rt) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      float l = l_run[rt][r];
      l += __shfl_xor_sync(cuda::kFullMask, l, 1);
      l += __shfl_xor_sync(cuda::kFullMask, l, 2);
      const float inv = l > 0.f ? 1.f / l : 0.f;
      const int i = row_base + rt * kTileRows + 8 * r;
      if (i < nq) {
        uint16_t* row = out_base + int64_t{i} * a.out_stride + 2 * quad_col;
#pragma unroll
        for (int dt = 0; dt < 2 * kDimSteps; ++dt) {
          *reinterpret_cast<uint32_t*>(row + dt * 8) =
              PackBf16(o[rt][dt][2 * r] * inv, o[rt][dt][2 * r + 1] * inv);
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Variant 2: split-K decode on tensor cores.
//
// A block of kDecodeWarps warps owns (KV split, KV head, sequence). Its keys are walked in tiles
// of 64: warp w takes keys [16 w, 16 w + 16) of each tile ("a step"), so every warp streams its
// own keys through its own ring of kDecodeStages steps in shared memory (cp.async, no block
// barrier in the loop: a warp waits only for its own copies), with two steps in flight while it
// computes a third. Per step:
//   S  = Q K^T on mma.sync m16n8k16: A = the block's query vectors (rows; kRows <= 32, zero
//        padded to 16-row tiles), B = 8 keys of K. The dot product does not depend on the order
//        of its dims, so lane (c = lane / 4, q = lane % 4) reads 16 contiguous bytes of its key
//        c — dims [32 i + 8 q, 32 i + 8 q + 8) — and uses them as the B fragments of k-steps
//        2i and 2i + 1; the Q fragments are loaded with the same dim assignment.
//   softmax: fp32 online softmax per row, the scale folded into exp2's argument.
//   O += P V on mma.sync: A = P (the S accumulators re-packed to bf16: FlashAttention-2's
//        register identity), B = V for 16 keys x 8 output dims. Lane (c, q) reads dims
//        [64 hh + 8 c, +8) of keys 2q, 2q + 1, 8 + 2q, 9 + 2q and pairs their halves with
//        byte permutes: output tile t = 8 hh + u then holds dim 64 hh + 8 n + u in column n.
// The rings store 16-byte chunks XOR-swizzled by row (DecodeSwizzle) so that both read patterns
// are free of bank conflicts. The warps' (max, sum, output) are combined through shared memory
// into one partial record per query vector, which AttentionMergeKernel merges across splits.
constexpr int kDecodeWarps = 4;
constexpr int kDecodeStepKeys = 16;  // keys per warp step; kDecodeWarps steps make a 64-key tile
constexpr int kDecodeStages = 3;     // steps per warp's ring: two in flight, one being computed
static_assert(kDecodeWarps * kDecodeStepKeys == kTileRows, "a decode tile is one key tile");

template <int kHeadDim, int kRows>
struct DecodeShapeOf {
  static constexpr int kMTiles = (kRows + 15) / 16;  // 16-row MMA tiles of query vectors
  static constexpr bool kUpperRows = kRows > 8;      // rows 8..15 of a tile hold vectors
  static constexpr int kKChunks = kHeadDim / 32;     // 16-byte K loads per key row per lane
  static constexpr int kVHalves = kHeadDim / 64;     // 16-byte V loads per key per lane
  static constexpr int kOTiles = kHeadDim / 8;       // 8-dim output tiles
  // A warp's ring: kDecodeStages steps of (K, V), kDecodeStepKeys rows each, bf16.
  static constexpr int kStepElems = 2 * kDecodeStepKeys * kHeadDim;
  static constexpr int kRingBytes = kDecodeWarps * kDecodeStages * kStepElems * 2;
  // The block's combine, after the loop, in the same memory: per warp, max and sum then the
  // output per row.
  static constexpr int kRowFloats = kHeadDim + 2;
  static constexpr int kCombineBytes = kDecodeWarps * kMTiles * 16 * kRowFloats * 4;
  static constexpr int kSmemBytes = kRingBytes > kCombineBytes ? kRingBytes : kCombineBytes;
};

// The split plan: a pure function of the arguments (LaunchAttention and the workspace query
// must agree).
struct DecodePlan {
  int num_splits = 1;
  int split_len = kTileRows;
  int qv_max = 1;  // group * max_q_len
  size_t out_floats = 0;
  size_t stat_floats = 0;
  size_t bytes = 0;
};

DecodePlan MakeDecodePlan(const AttentionArgs& a) {
  DecodePlan p;
  const int group = a.num_q_heads / a.num_kv_heads;
  p.qv_max = std::max(1, group * a.max_q_len);
  const int max_kv = std::max(1, a.max_kv_len);
  const int64_t blocks_per_split = int64_t{std::max(1, a.num_seqs)} * a.num_kv_heads;
  const int64_t want = kDecodeTargetBlocks / blocks_per_split;
  const int max_by_len = cuda::CeilDiv(max_kv, kTileRows);
  const int splits =
      static_cast<int>(std::clamp<int64_t>(want, 1, std::min(max_by_len, kDecodeMaxSplits)));
  const int fewest_keys = cuda::CeilDiv(max_kv, kDecodeMaxSplits);  // the merge's split limit
  const int keys = a.decode_split_keys > 0
                       ? a.decode_split_keys
                       : std::max(cuda::CeilDiv(max_kv, splits), kDecodeMinSplitKeys);
  p.split_len = cuda::CeilDiv(std::max(keys, fewest_keys), kTileRows) * kTileRows;
  p.num_splits = cuda::CeilDiv(max_kv, p.split_len);
  const size_t records =
      static_cast<size_t>(std::max(1, a.num_seqs)) * a.num_kv_heads * p.num_splits * p.qv_max;
  p.out_floats = records * a.head_dim;
  p.stat_floats = records * 2;
  p.bytes = (p.out_floats + p.stat_floats) * sizeof(float);
  return p;
}

// Where chunk `chunk` (16 bytes) of ring row `row` is stored: XOR-swizzled so that the K reads
// (lanes c and c + 1 read chunks 4i + q of rows c, c + 1) and the V reads (chunks 8 hh + c of
// rows 2q + {0, 1}, 8 + 2q + {0, 1}) of each 8-lane phase hit distinct banks.
__device__ __forceinline__ int DecodeSwizzle(int row, int chunk) {
  return chunk ^ (((row & 1) << 2) ^ (((row >> 1) & 3) << 1));
}

// Copies one step (keys [k0, k0 + 16) of K, then of V) into a ring slot; keys at or beyond
// k_end are zero-filled (masked keys then multiply zeros). `aligned`: the K / V base pointers
// are 16-byte aligned (cp.async), else plain loads and stores.
template <int kHeadDim>
__device__ __forceinline__ void IssueDecodeStep(uint16_t* slot, const uint16_t* k_ptr,
                                                const uint16_t* v_ptr, int64_t stride, int k0,
                                                int k_end, bool aligned, int lane) {
  constexpr int kChunks = kHeadDim / 8;
  constexpr int kPerMatrix = kDecodeStepKeys * kChunks;
#pragma unroll
  for (int idx = lane; idx < 2 * kPerMatrix; idx += 32) {
    const int matrix = idx / kPerMatrix;  // 0: K, 1: V
    const int row = (idx / kChunks) % kDecodeStepKeys;
    const int chunk = idx % kChunks;
    const int key = k0 + row;
    const bool valid = key < k_end;
    const uint16_t* src = (matrix == 0 ? k_ptr : v_ptr) + (valid ? key * stride : 0) + chunk * 8;
    uint16_t* dst =
        slot + (matrix * kDecodeStepKeys + row) * kHeadDim + DecodeSwizzle(row, chunk) * 8;
    if (aligned) {
      CpAsync16(dst, src, valid);
    } else {
#pragma unroll
      for (int e = 0; e < 8; ++e) dst[e] = valid ? src[e] : uint16_t{0};
    }
  }
}

// Chunk `chunk` of ring row `row` (K rows first, then V rows) as 8 bf16.
template <int kHeadDim>
__device__ __forceinline__ uint4 RingChunk(const uint16_t* slot, int row, int chunk) {
  return *reinterpret_cast<const uint4*>(slot + row * kHeadDim + DecodeSwizzle(row, chunk) * 8);
}

__device__ __forceinline__ uint32_t Word(const uint4& v, int i) {
  return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w;
}

// Element u (0..7) of two 8-element bf16 vectors as one bf16 pair: lo from `a`, hi from `b`.
__device__ __forceinline__ uint32_t PairOf(const uint4& a, const uint4& b, int u) {
  return __byte_perm(Word(a, u / 2), Word(b, u / 2), (u & 1) ? 0x7632 : 0x5410);
}

template <int kHeadDim, int kRows>
__global__ void __launch_bounds__(kDecodeWarps * 32, 2)
    AttentionDecodeKernel(const AttentionArgs a, int split_len, int num_splits, int qv_max,
                          float* part_out, float* part_stat) {
  using S = DecodeShapeOf<kHeadDim, kRows>;
  extern __shared__ __align__(16) unsigned char decode_smem[];
#if __CUDA_ARCH__ >= 900
  // The merge kernel may be launched now: it waits for this grid's completion before reading.
  cudaTriggerProgrammaticLaunchCompletion();
#endif

  const int split = blockIdx.x;
  const int g = blockIdx.y;
  const int b = blockIdx.z;
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int c = lane / 4;  // MMA row (query vector) / key / output column group
  const int q = lane % 4;
  const int q_begin = a.q_starts[b];
  const int nq = a.q_starts[b + 1] - q_begin;
  if (nq <= 0) return;
  const int kv_len = a.kv_lens[b];
  const int group = a.num_q_heads / a.num_kv_heads;
  const int nqv = group * nq;               // vector v = head (v / nq), row (v % nq)
  if (nqv > qv_max || nqv > kRows) return;  // max_q_len understated: nothing sane to compute
  int lo_first, hi_first, lo_last, hi_last;
  VisibleRange(0, nq, kv_len, a.window, lo_first, hi_first);
  VisibleRange(nq - 1, nq, kv_len, a.window, lo_last, hi_last);
  const int k_begin = max(split * split_len, lo_first);
  const int k_end = min((split + 1) * split_len, hi_last);
  const int64_t rec0 = ((int64_t{b} * a.num_kv_heads + g) * num_splits + split) * qv_max;
  if (k_begin >= k_end) {
    for (int v = threadIdx.x; v < nqv; v += blockDim.x) {
      part_stat[(rec0 + v) * 2] = -INFINITY;
      part_stat[(rec0 + v) * 2 + 1] = 0.f;
    }
    return;
  }
  const uint16_t* k_ptr = static_cast<const uint16_t*>(a.k_seqs[b]) + int64_t{g} * a.kv_head_stride;
  const uint16_t* v_ptr = static_cast<const uint16_t*>(a.v_seqs[b]) + int64_t{g} * a.kv_head_stride;
  const bool aligned = Aligned16(k_ptr) && Aligned16(v_ptr);
  const int64_t stride = a.kv_token_stride;

  // The first steps' copies go out before anything else, so that their latency overlaps the
  // query loads below.
  uint16_t* ring = reinterpret_cast<uint16_t*>(decode_smem) + warp * kDecodeStages * S::kStepElems;
  const int first = k_begin + warp * kDecodeStepKeys;
  const int num_steps = first < k_end ? (k_end - first + kTileRows - 1) / kTileRows : 0;
#pragma unroll
  for (int st = 0; st < kDecodeStages - 1; ++st) {
    if (st < num_steps) {
      IssueDecodeStep<kHeadDim>(ring + st * S::kStepElems, k_ptr, v_ptr, stride,
                                first + st * kTileRows, k_end, aligned, lane);
    }
    CpAsyncCommit();
  }

  // Q fragments (bf16, unscaled): rows c and c + 8 of each 16-row tile, this lane's dims.
  uint4 q_lo[S::kMTiles][S::kKChunks], q_hi[S::kMTiles][S::kKChunks];
  // Per row this lane holds (c and c + 8 of each tile): the running max (log2 units), its part
  // of the running sum, and the allowed key range.
  float m_run[S::kMTiles][2], l_run[S::kMTiles][2];
  int lo_row[S::kMTiles][2], hi_row[S::kMTiles][2];
#pragma unroll
  for (int mt = 0; mt < S::kMTiles; ++mt) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int v = mt * 16 + half * 8 + c;
      const bool row_ok = v < nqv && (half == 0 || S::kUpperRows);
      const uint16_t* q_row =
          static_cast<const uint16_t*>(a.q) +
          (row_ok ? int64_t{q_begin + v % nq} * a.q_stride + int64_t{g * group + v / nq} * kHeadDim
                  : 0);
#pragma unroll
      for (int i = 0; i < S::kKChunks; ++i) {
        const uint4 x = row_ok ? *reinterpret_cast<const uint4*>(q_row + 32 * i + 8 * q)
                               : make_uint4(0u, 0u, 0u, 0u);
        (half == 0 ? q_lo : q_hi)[mt][i] = x;
      }
      m_run[mt][half] = -INFINITY;
      l_run[mt][half] = 0.f;
      // A row that holds no vector sees no key.
      lo_row[mt][half] = 0;
      hi_row[mt][half] = 0;
      if (row_ok) VisibleRange(v % nq, nq, kv_len, a.window, lo_row[mt][half], hi_row[mt][half]);
    }
  }
  float o[S::kMTiles][S::kOTiles][4];
#pragma unroll
  for (int mt = 0; mt < S::kMTiles; ++mt) {
#pragma unroll
    for (int t = 0; t < S::kOTiles; ++t)
      o[mt][t][0] = o[mt][t][1] = o[mt][t][2] = o[mt][t][3] = 0.f;
  }
  const float scale_log2 = a.scale * kLog2e;

  for (int step = 0; step < num_steps; ++step) {
    const int k0 = first + step * kTileRows;
    // The slot refilled here was read at step - 1: every lane must be done with it.
    __syncwarp();
    const int ahead = step + kDecodeStages - 1;
    if (ahead < num_steps) {
      IssueDecodeStep<kHeadDim>(ring + (ahead % kDecodeStages) * S::kStepElems, k_ptr, v_ptr,
                                stride, first + ahead * kTileRows, k_end, aligned, lane);
    }
    CpAsyncCommit();
    CpAsyncWait<kDecodeStages - 1>();  // this lane's copies of `step` have landed
    __syncwarp();                      // and so have every other lane's
    const uint16_t* slot = ring + (step % kDecodeStages) * S::kStepElems;
    uint4 k_frag[2][S::kKChunks];  // [8-key tile][dim chunk]: key k0 + 8 nt + c
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
      for (int i = 0; i < S::kKChunks; ++i) {
        k_frag[nt][i] = RingChunk<kHeadDim>(slot, 8 * nt + c, 4 * i + q);
      }
    }
    uint4 v_frag[4][S::kVHalves];  // keys 2q, 2q + 1, 8 + 2q, 9 + 2q; dims 64 hh + 8 c
#pragma unroll
    for (int j = 0; j < 4; ++j) {
#pragma unroll
      for (int hh = 0; hh < S::kVHalves; ++hh) {
        v_frag[j][hh] =
            RingChunk<kHeadDim>(slot, kDecodeStepKeys + 2 * q + (j & 1) + 8 * (j >> 1), 8 * hh + c);
      }
    }

#pragma unroll
    for (int mt = 0; mt < S::kMTiles; ++mt) {
      // S = Q K^T for 16 rows x 16 keys: s[nt] holds rows (c, c + 8) x keys 8 nt + 2q + {0, 1}.
      float s[2][4];
#pragma unroll
      for (int nt = 0; nt < 2; ++nt) {
        s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
#pragma unroll
        for (int i = 0; i < S::kKChunks; ++i) {
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const uint32_t qa[4] = {
                Word(q_lo[mt][i], 2 * h), S::kUpperRows ? Word(q_hi[mt][i], 2 * h) : 0u,
                Word(q_lo[mt][i], 2 * h + 1), S::kUpperRows ? Word(q_hi[mt][i], 2 * h + 1) : 0u};
            MmaBf16(s[nt], qa, Word(k_frag[nt][i], 2 * h), Word(k_frag[nt][i], 2 * h + 1));
          }
        }
      }
      // Online softmax, rows c (half 0: elements 0, 1) and c + 8 (half 1: elements 2, 3).
      uint32_t p_frag[4];  // A fragment of P: (row c, keys 2q..), (c + 8, ..), (c, 8 + 2q..), ..
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        if (half == 1 && !S::kUpperRows) {
          p_frag[1] = p_frag[3] = 0u;
          continue;
        }
        float x[4];
        float tile_max = -INFINITY;
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int key = k0 + 8 * (e / 2) + 2 * q + (e % 2);
          const bool ok = key < k_end && key >= lo_row[mt][half] && key < hi_row[mt][half];
          x[e] = ok ? s[e / 2][2 * half + e % 2] * scale_log2 : -INFINITY;
          tile_max = fmaxf(tile_max, x[e]);
        }
        tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
        tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 2));
        const float m_new = fmaxf(m_run[mt][half], tile_max);
        const float m_use = m_new == -INFINITY ? 0.f : m_new;
        const float alpha = exp2f(m_run[mt][half] - m_use);
        float p[4], sum = 0.f;
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          p[e] = exp2f(x[e] - m_use);
          sum += p[e];
        }
        m_run[mt][half] = m_new;
        l_run[mt][half] = l_run[mt][half] * alpha + sum;
#pragma unroll
        for (int t = 0; t < S::kOTiles; ++t) {
          o[mt][t][2 * half] *= alpha;
          o[mt][t][2 * half + 1] *= alpha;
        }
        p_frag[half] = PackBf16(p[0], p[1]);
        p_frag[half + 2] = PackBf16(p[2], p[3]);
      }
      // O += P V: output tile t = 8 hh + u, column n = dim 64 hh + 8 n + u.
#pragma unroll
      for (int hh = 0; hh < S::kVHalves; ++hh) {
#pragma unroll
        for (int u = 0; u < 8; ++u) {
          MmaBf16(o[mt][8 * hh + u], p_frag, PairOf(v_frag[0][hh], v_frag[1][hh], u),
                  PairOf(v_frag[2][hh], v_frag[3][hh], u));
        }
      }
    }
  }

  // Combine the warps: each writes its rows' (max, sum, output), then the block merges them.
  // The rings' memory is reused: every warp must be done with its ring.
  CpAsyncWait<0>();
  __syncthreads();
  float* combine_s = reinterpret_cast<float*>(decode_smem);  // [warp][row][max, sum, out[d]]
  constexpr int kRowsPad = S::kMTiles * 16;
#pragma unroll
  for (int mt = 0; mt < S::kMTiles; ++mt) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float l = l_run[mt][half];
      l += __shfl_xor_sync(0xffffffffu, l, 1);
      l += __shfl_xor_sync(0xffffffffu, l, 2);
      float* rec = combine_s + (warp * kRowsPad + mt * 16 + half * 8 + c) * S::kRowFloats;
      if (q == 0) {
        rec[0] = m_run[mt][half];
        rec[1] = l;
      }
#pragma unroll
      for (int t = 0; t < S::kOTiles; ++t) {
        const int dim0 = 64 * (t / 8) + t % 8;
        rec[2 + dim0 + 8 * (2 * q)] = o[mt][t][2 * half];
        rec[2 + dim0 + 8 * (2 * q + 1)] = o[mt][t][2 * half + 1];
      }
    }
  }
  __syncthreads();
  for (int idx = threadIdx.x; idx < nqv * kHeadDim; idx += blockDim.x) {
    const int v = idx / kHeadDim;
    const int e = idx - v * kHeadDim;
    float m = -INFINITY;
#pragma unroll
    for (int w = 0; w < kDecodeWarps; ++w)
      m = fmaxf(m, combine_s[(w * kRowsPad + v) * S::kRowFloats]);
    float l = 0.f, out = 0.f;
#pragma unroll
    for (int w = 0; w < kDecodeWarps; ++w) {
      const float* rec = combine_s + (w * kRowsPad + v) * S::kRowFloats;
      if (rec[1] > 0.f) {  // a warp that saw no key of this row adds nothing
        const float scale = exp2f(rec[0] - m);
        l += rec[1] * scale;
        out += rec[2 + e] * scale;
      }
    }
    part_out[(rec0 + v) * kHeadDim + e] = out;
    if (e == 0) {
      part_stat[(rec0 + v) * 2] = m;
      part_stat[(rec0 + v) * 2 + 1] = l;
    }
  }
}

constexpr int kMergeThreads = 256;
static_assert(kDecodeMaxSplits <= kMergeThreads, "one merge thread per split");

// One block per (query head, sequence, row): combines the row's splits. Split statistics are read
// in parallel and reduced in a fixed order; then thread (slice, quad) sums four dims over the
// splits slice, slice + slices, ... with 16-byte loads that do not depend on one another (empty
// splits are masked by a zero weight, not a branch, so the loads overlap), and the slices are
// added in order. Deterministic.
__global__ void __launch_bounds__(kMergeThreads)
    AttentionMergeKernel(const AttentionArgs a, int num_splits, int qv_max, const float* part_out,
                         const float* part_stat) {
  __shared__ float weight[kDecodeMaxSplits];
  __shared__ float4 partial[kMergeThreads];
  __shared__ float scratch[32];
#if __CUDA_ARCH__ >= 900
  // Launched early (programmatic dependent launch): wait until the decode kernel has finished
  // and its partials are visible. A no-op when launched the ordinary way.
  cudaGridDependencySynchronize();
#endif
  const int h = blockIdx.x;
  const int b = blockIdx.y;
  const int i = blockIdx.z;
  const int q_begin = a.q_starts[b];
  const int nq = a.q_starts[b + 1] - q_begin;
  if (i >= nq) return;
  const int group = a.num_q_heads / a.num_kv_heads;
  if (group * nq > qv_max) return;  // see AttentionDecodeKernel
  const int g = h / group;
  const int d = a.head_dim;  // 64 or 128
  const int v = (h - g * group) * nq + i;
  const int64_t rec_base = (int64_t{b} * a.num_kv_heads + g) * num_splits;
  // Per split: max m_s and sum l_s (l_s == 0: the split saw no key of this row).
  float m_s = -INFINITY, l_s = 0.f;
  if (threadIdx.x < num_splits) {
    const int64_t rec = (rec_base + threadIdx.x) * qv_max + v;
    l_s = part_stat[rec * 2 + 1];
    if (l_s > 0.f) m_s = part_stat[rec * 2];
  }
  const float m = cuda::BlockMax(m_s, scratch);
  const float w_s = l_s > 0.f ? exp2f(m_s - m) : 0.f;
  if (threadIdx.x < num_splits) weight[threadIdx.x] = w_s;
  const float l = cuda::BlockSum(l_s * w_s, scratch);  // its barriers also publish weight[]
  const int quads = d / 4;
  const int slices = kMergeThreads / quads;
  const int slice = threadIdx.x / quads;
  const int quad = threadIdx.x - slice * quads;
  float4 o = make_float4(0.f, 0.f, 0.f, 0.f);
#pragma unroll 4
  for (int s = slice; s < num_splits; s += slices) {
    const float w = weight[s];
    const float4 x =
        reinterpret_cast<const float4*>(part_out + ((rec_base + s) * qv_max + v) * d)[quad];
    // Unwritten partials of empty splits may hold anything: select, do not multiply.
    o.x += w != 0.f ? w * x.x : 0.f;
    o.y += w != 0.f ? w * x.y : 0.f;
    o.z += w != 0.f ? w * x.z : 0.f;
    o.w += w != 0.f ? w * x.w : 0.f;
  }
  partial[threadIdx.x] = o;
  __syncthreads();
  if (threadIdx.x < quads) {
    float4 sum = make_float4(0.f, 0.f, 0.f, 0.f);
    for (int sl = 0; sl < slices; ++sl) {
      const float4 p = partial[sl * quads + threadIdx.x];
      sum.x += p.x;
      sum.y += p.y;
      sum.z += p.z;
      sum.w += p.w;
    }
    const float inv = l > 0.f ? 1.f / l : 0.f;
    uint16_t* dst = static_cast<uint16_t*>(a.out) + int64_t{q_begin + i} * a.out_stride +
                    int64_t{h} * d + 4 * threadIdx.x;
    dst[0] = FloatToBF16(sum.x * inv);
    dst[1] = FloatToBF16(sum.y * inv);
    dst[2] = FloatToBF16(sum.z * inv);
    dst[3] = FloatToBF16(sum.w * inv);
  }
}

// ---------------------------------------------------------------------------------------------
// Variant 3: generic, a warp per (row, head).

template <DType kType>
__global__ void __launch_bounds__(kGenericWarps * 32)
    AttentionGenericKernel(const AttentionArgs a) {
  __shared__ float q_s[kGenericWarps][kGenericMaxHeadDim];
  constexpr int kPerLane = kGenericMaxHeadDim / 32;
  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  const int b = blockIdx.z;
  const int h = blockIdx.y;
  const int i = blockIdx.x * kGenericWarps + warp;
  const int q_begin = a.q_starts[b];
  const int nq = a.q_starts[b + 1] - q_begin;
  if (i >= nq) return;  // warps are independent: no block-level barrier below
  const int kv_len = a.kv_lens[b];
  const int g = h / (a.num_q_heads / a.num_kv_heads);
  const int d = a.head_dim;
  const int64_t q_off = int64_t{q_begin + i} * a.q_stride + int64_t{h} * d;
  for (int e = lane; e < d; e += 32) q_s[warp][e] = cuda::LoadElem<kType>(a.q, q_off + e);
  __syncwarp();
  int lo, hi;
  VisibleRange(i, nq, kv_len, a.window, lo, hi);
  const void* k_seq = a.k_seqs[b];
  const void* v_seq = a.v_seqs[b];
  const int64_t head_off = int64_t{g} * a.kv_head_stride;
  float m = -INFINITY, l = 0.f;
  float acc[kPerLane];
#pragma unroll
  for (int c = 0; c < kPerLane; ++c) acc[c] = 0.f;
  for (int t0 = lo; t0 < hi; t0 += 32) {
    const int t = t0 + lane;
    float s = -INFINITY;
    if (t < hi) {
      const int64_t k_off = t * a.kv_token_stride + head_off;
      float dot = 0.f;
      for (int e = 0; e < d; ++e) dot += q_s[warp][e] * cuda::LoadElem<kType>(k_seq, k_off + e);
      s = dot * a.scale;
    }
    const float m_new = fmaxf(m, cuda::WarpMax(s));  // finite: lane 0's key is visible
    const float alpha = expf(m - m_new);
    const float p = t < hi ? expf(s - m_new) : 0.f;
    l = l * alpha + cuda::WarpSum(p);
#pragma unroll
    for (int c = 0; c < kPerLane; ++c) acc[c] *= alpha;
    const int n_valid = min(32, hi - t0);
    for (int jj = 0; jj < n_valid; ++jj) {
      const float pj = __shfl_sync(cuda::kFullMask, p, jj);
      const int64_t v_off = (t0 + jj) * a.kv_token_stride + head_off;
#pragma unroll
      for (int c = 0; c < kPerLane; ++c) {
        const int e = lane + 32 * c;
        if (e < d) acc[c] += pj * cuda::LoadElem<kType>(v_seq, v_off + e);
      }
    }
    m = m_new;
  }
  const float inv = l > 0.f ? 1.f / l : 0.f;
  const int64_t o_off = int64_t{q_begin + i} * a.out_stride + int64_t{h} * d;
#pragma unroll
  for (int c = 0; c < kPerLane; ++c) {
    const int e = lane + 32 * c;
    if (e < d) cuda::StoreElem<kType>(a.out, o_off + e, acc[c] * inv);
  }
}

// ---------------------------------------------------------------------------------------------
// Variant choice.

bool Aligned(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

// Variants 1 and 2 (and the sm_90a prefill, which adds its own conditions).
bool TensorCoreShape(const AttentionArgs& a) {
  return a.dtype == DType::kBF16 && (a.head_dim == 64 || a.head_dim == 128) && Aligned(a.q, 16) &&
         a.q_stride % 8 == 0 && a.kv_token_stride % 8 == 0 && a.kv_head_stride % 8 == 0 &&
         Aligned(a.out, 4) && a.out_stride % 2 == 0;
}

// Decode-shaped: few query vectors per KV head (one row per sequence in Llama-3 decode).
bool DecodeShape(const AttentionArgs& a) {
  const int group = a.num_q_heads / a.num_kv_heads;
  return int64_t{group} * a.max_q_len <= kDecodeMaxQv;
}

// Whether `v` can run `a` on the current device (host-only checks).
bool VariantRuns(const AttentionArgs& a, AttentionVariant v) {
  switch (v) {
    case AttentionVariant::kGeneric:
      return true;
    case AttentionVariant::kPrefill:
      return TensorCoreShape(a);
    case AttentionVariant::kDecode:
      return TensorCoreShape(a) && DecodeShape(a);
    case AttentionVariant::kPrefillSm90:
      return TensorCoreShape(a) && AttentionSm90ArgsOk(a) && AttentionSm90DeviceOk();
  }
  return false;
}

// Lets `kernel` use `bytes` of dynamic shared memory and asks for the largest shared-memory
// carveout, so that as many blocks as the shared memory allows can be resident (the default
// carveout may leave room for fewer).
template <typename Kernel>
cudaError_t AllowSharedMemory(Kernel* kernel, int bytes) {
  const cudaError_t err =
      cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
  if (err != cudaSuccess) return err;
  return cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                              cudaSharedmemCarveoutMaxShared);
}

template <int kHeadDim, int kRows>
cudaError_t LaunchDecode(const AttentionArgs& a, const DecodePlan& plan, float* part_out,
                         float* part_stat, cudaStream_t stream) {
  constexpr int kBytes = DecodeShapeOf<kHeadDim, kRows>::kSmemBytes;
  auto* kernel = AttentionDecodeKernel<kHeadDim, kRows>;
  cudaError_t err = AllowSharedMemory(kernel, kBytes);
  if (err != cudaSuccess) return err;
  const dim3 grid(plan.num_splits, a.num_kv_heads, a.num_seqs);
  kernel<<<grid, kDecodeWarps * 32, kBytes, stream>>>(a, plan.split_len, plan.num_splits,
                                                      plan.qv_max, part_out, part_stat);
  err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  // Programmatic dependent launch: the merge's launch overlaps the decode kernel's tail.
  cudaLaunchAttribute attr{};
  attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t merge{};
  merge.gridDim = dim3(a.num_q_heads, a.num_seqs, a.max_q_len);
  merge.blockDim = dim3(kMergeThreads);
  merge.stream = stream;
  merge.attrs = &attr;
  merge.numAttrs = 1;
  return cudaLaunchKernelEx(&merge, AttentionMergeKernel, a, plan.num_splits, plan.qv_max,
                            static_cast<const float*>(part_out),
                            static_cast<const float*>(part_stat));
}

}  // namespace

bool AttentionCanImplement(const AttentionArgs& a) {
  return a.num_seqs >= 0 && a.num_seqs <= 65535 && a.num_q_heads > 0 && a.num_q_heads <= 65535 &&
         a.num_kv_heads > 0 && a.num_q_heads % a.num_kv_heads == 0 && a.head_dim > 0 &&
         a.head_dim <= kGenericMaxHeadDim && a.max_q_len >= 0 && a.max_kv_len >= 0 &&
         a.total_q >= 0;
}

const char* AttentionVariantName(AttentionVariant v) {
  switch (v) {
    case AttentionVariant::kGeneric:
      return "generic";
    case AttentionVariant::kPrefill:
      return "prefill-mma-sm80";
    case AttentionVariant::kPrefillSm90:
      return "prefill-wgmma-sm90a";
    case AttentionVariant::kDecode:
      return "decode-splitk";
  }
  return "?";
}

AttentionVariant AttentionChooseVariant(const AttentionArgs& a) {
  if (!TensorCoreShape(a)) return AttentionVariant::kGeneric;
  if (DecodeShape(a)) return AttentionVariant::kDecode;
  if (VariantRuns(a, AttentionVariant::kPrefillSm90)) return AttentionVariant::kPrefillSm90;
  return AttentionVariant::kPrefill;
}

size_t AttentionWorkspaceBytes(const AttentionArgs& a) {
  if (!AttentionCanImplement(a) || !TensorCoreShape(a) || !DecodeShape(a)) return 0;
  return MakeDecodePlan(a).bytes;
}

cudaError_t LaunchAttention(const AttentionArgs& a, void* workspace, size_t workspace_bytes,
                            cudaStream_t stream) {
  if (!AttentionCanImplement(a)) return cudaErrorNotSupported;
  return LaunchAttentionVariant(a, AttentionChooseVariant(a), workspace, workspace_bytes, stream);
}

cudaError_t LaunchAttentionVariant(const AttentionArgs& a, AttentionVariant variant,
                                   void* workspace, size_t workspace_bytes, cudaStream_t stream) {
  if (!AttentionCanImplement(a) || !VariantRuns(a, variant)) return cudaErrorNotSupported;
  if (a.num_seqs == 0 || a.total_q == 0 || a.max_q_len == 0) return cudaSuccess;
  if (!a.q || !a.out || !a.k_seqs || !a.v_seqs || !a.q_starts || !a.kv_lens) {
    return cudaErrorInvalidValue;
  }
  switch (variant) {
    case AttentionVariant::kPrefillSm90:
      return LaunchAttentionSm90(a, stream);
    case AttentionVariant::kPrefill: {
      const dim3 grid(cuda::CeilDiv(a.max_q_len, kPrefillRows), a.num_q_heads, a.num_seqs);
      SIEVE_DISPATCH_HEAD_DIM(a.head_dim, kHeadDim, {
        constexpr int kBytes = PrefillSmemBytes<kHeadDim>();
        const cudaError_t err = AllowSharedMemory(AttentionPrefillKernel<kHeadDim>, kBytes);
        if (err != cudaSuccess) return err;
        AttentionPrefillKernel<kHeadDim><<<grid, kTcThreads, kBytes, stream>>>(a);
        return cudaGetLastError();
      })
    }
    case AttentionVariant::kDecode: {
      const DecodePlan plan = MakeDecodePlan(a);
      if (workspace == nullptr || workspace_bytes < plan.bytes) return cudaErrorInvalidValue;
      float* part_out = static_cast<float*>(workspace);
      float* part_stat = part_out + plan.out_floats;
      SIEVE_DISPATCH_HEAD_DIM(a.head_dim, kHeadDim, {
        // The smallest instantiation that holds group * max_q_len query vectors (Llama-3
        // decode: 4): 8 rows skip the upper half of the MMA tile, 32 take two tiles.
        if (plan.qv_max <= 8) {
          return LaunchDecode<kHeadDim, 8>(a, plan, part_out, part_stat, stream);
        }
        if (plan.qv_max <= 16) {
          return LaunchDecode<kHeadDim, 16>(a, plan, part_out, part_stat, stream);
        }
        return LaunchDecode<kHeadDim, kDecodeMaxQv>(a, plan, part_out, part_stat, stream);
      })
    }
    case AttentionVariant::kGeneric: {
      const dim3 grid(cuda::CeilDiv(a.max_q_len, kGenericWarps), a.num_q_heads, a.num_seqs);
      SIEVE_DISPATCH_DTYPE(a.dtype, kType, {
        AttentionGenericKernel<kType><<<grid, kGenericWarps * 32, 0, stream>>>(a);
        return cudaGetLastError();
      })
    }
  }
  return cudaErrorNotSupported;
}

}  // namespace sieve::kernels
