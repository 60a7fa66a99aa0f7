// AttentionPrefillSm90Kernel: causal (bottom-right aligned) prefill attention on Hopper warpgroup
// MMA (wgmma, sm_90a), for bf16 and head_dim 128. Contract: kernels/attention.h (AttentionArgs);
// CPU reference: kernels/ref/attention_ref.cc; chosen by LaunchAttention (kernels/attention.cu)
// on compute capability 9.0 for prefill-shaped arguments, else variant 1 there runs.
//
// Algorithm (one block of 3 warpgroups per (query head, sequence, pair of 128-row query tiles)):
//   - Warpgroup 0 produces; one thread of it issues every copy, through the copy engine (TMA,
//     cp.async.bulk.tensor): the block's two Q tiles (128 rows x 128 dims, a buffer each) once,
//     then every K and V tile of 128 keys its query tiles need, in order, into one two-stage
//     ring in shared memory. Each copy lands directly in the layout the tensor cores read:
//     64-element (128-byte) column blocks, rows 128 bytes apart, the 16-byte chunks of each row
//     permuted by XOR with (row mod 8) ("128-byte swizzle", which the copy engine applies
//     itself: one box of 64 dims x 128 rows per column block), so a wgmma shared-memory
//     descriptor can point at it and reads hit every bank once; rows past the end of the tensor
//     arrive as zeros. A stage's "full" mbarrier completes when
//     its bytes have landed (expect_tx); the consumers free a stage through a second mbarrier.
//     K and V have separate barriers, so K of tile j+1 streams in while V of tile j is in use.
//     Tensor maps: Q's is encoded on the host per launch (cuTensorMapEncodeTiled, fetched with
//     cudaGetDriverEntryPointByVersion, so there is no libcuda link) and passed as a
//     __grid_constant__ parameter. K / V pointers are per sequence and live in device memory
//     (AttentionArgs::k_seqs), so the host gets a template instead (strides, head count, box,
//     swizzle): warp 0 of each block copies it to shared memory, points it at its sequence
//     (tensormap.replace: base k_seqs[b], kv_lens[b] rows), publishes it to its SM's slot in
//     global memory (tensormap.cp_fenceproxy; the copy engine reads maps from global memory
//     only) and acquires it before the first copy. A block owns its SM's slot while it runs:
//     two blocks of this kernel never fit one SM (shared memory). The other producer warps
//     exit; a sequence whose K or V base is not 16-byte aligned (a tensor map's requirement)
//     instead has all 128 producer threads stage its tiles with plain loads and stores.
//     Producers give registers back (setmaxnreg.dec 40, consumers .inc 232); ptxas still
//     allocates every path within the 168 registers of the launch bound (a wider reduction
//     tree spilled), so the consumer code is written to fit 168 (S 64 + O 64 + P 32 + scalars).
//   - Warpgroups 1 and 2 consume, 64 query rows each. Per key tile j:
//       S = Q K_j^T   : 8 wgmma m64n128k16, both operands from shared memory (K-major);
//       O += P_{j-1} V_{j-1} : 8 wgmma m64n128k16, P from registers (bf16, the previous tile's
//                        probabilities), V from shared memory read N-major (the transpose flag),
//     both issued back to back; the warpgroup waits for S only, runs the fp32 online softmax of
//     tile j (mask, row max over the quad, exp2 with the scale folded into one FMA, row sums)
//     while P_{j-1} V_{j-1} still runs on the tensor cores, then waits for it, rescales O by the
//     max correction and rounds the new probabilities to bf16 in place as the next A operand.
//     The S accumulator layout of wgmma (per warp: 16 rows, each thread two rows and pairs of
//     adjacent keys) is exactly the register A layout of the next wgmma, so P never touches
//     shared memory. The two consumer warpgroups take turns issuing (named barriers: kPingPong),
//     so one's softmax overlaps the other's GEMMs; letting them run free measured the same.
//     ptxas lifts an operand-free wgmma wait to the top of its basic block, which put the wait
//     for P V above the exponentials: register fences plus a branch keep it below them.
//   - Masking: key tiles entirely above the diagonal (or left of the window) are never loaded;
//     only tiles that cross a boundary for some row of the warpgroup pay for the mask. Rows with
//     no visible key keep max -inf and shift by 0, so they sum to 0 and write zeros (as the
//     reference). A tile may reach past the block's rows or keys: query rows of the next
//     sequence (computed, never stored), keys of the sequence no row of the block sees (masked;
//     their P is 0), keys past kv_lens[b] and rows past total_q (zeros from the copy engine).
//   - Work per block: block x of a sequence of T query tiles runs tile T - 1 - x, then tile x
//     (the middle tile of an odd T alone), both through the same ring, so every block of a
//     causal prefill has T + 1 key tiles of work, and the second tile's first K / V tiles load
//     while the first tile's last ones are still in use. The consumers run the tiles one after
//     the other (O, running max and sums reset per tile).
// Numerics match variant 1: bf16 operands, fp32 scores / softmax / accumulators, P rounded to
// bf16 only as the MMA operand, output rounded to bf16. q must be 16-byte aligned, and the row
// and head strides multiples of 8 elements (AttentionSm90ArgsOk).
//
// Measured on an H100 SXM (sieve-attention-bench, median TFLOP/s, 16 x 8192 / 4 x 8192 causal,
// each pair from one device call): variant 1 237 / 230; the cp.async producer this kernel had
// before (128 producer threads, 16-byte copies; commit ba8444c) 430 / 433; TMA with one query
// tile per block (longest first) 586 / 596, and with two 586 / 614 (medians of three runs in one
// call: 583-589 against 576 twice for one tile; a small gain, at the edge of the spread). Last
// call (commit 19201c4 against ba8444c, three runs each): 589 / 606 against 437 / 439; the
// 4 x 8192 medians of this kernel spread over 596-654 between runs.
// Timing diagnostics (one tile per block; kLab switches, wrong results): without the K/V copies
// after the first ring fill 633 / 675 (cp.async: 573 / 602), without the softmax 683 / 761, so
// the softmax now costs more than the copies. Tried and not kept: multicast of each K / V tile
// to a cluster of two blocks (query heads 2p and 2p + 1 of one KV head, each block copying one
// column block into both, every stage waiting for both blocks' consumers) measured 423 / 423,
// 473 even without the copies: the paired blocks wait for each other; ring depth 3 measured
// 581 / 630 against 586 / 596 for depth 2 in the same call, within the run-to-run spread (and
// with a Q buffer per tile, depth 3 no longer fits 227 KB).
// Earlier, with cp.async: a persistent grid (static item striding) measured slower (418 / 437):
// it loses the L2 locality of the hardware's in-order block dispatch. Next steps: the softmax
// (an exp2 split between MUFU and FMA polynomials); more query tiles per block (a Q buffer
// reused once its tile's last S is issued) to overlap more of each block's start and end.
//
// Tested by tests/unit/kernels/attention_test.cc (GpuPrefillSm90MatchesRef and the shared
// prefill cases); timed by tests/bench/attention_bench.cc (sieve-attention-bench).
#include <cuda.h>  // CUtensorMap and its enums only: the encoder comes through the runtime
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>

#include "kernels/attention.h"
#include "kernels/attention_sm90.h"
#include "kernels/cuda_util.cuh"
#include "kernels/sm90.cuh"

namespace sieve::kernels {
namespace {

using namespace sm90;  // NOLINT: the shared Hopper primitives

constexpr int kHeadDim = 128;
constexpr int kBlockRows = 128;  // query rows per block (64 per consumer warpgroup)
constexpr int kKeyTile = 128;    // keys per K / V tile
constexpr int kThreads = 384;    // producer warpgroup + 2 consumer warpgroups
constexpr int kProducerRegs = 40;
constexpr int kConsumerRegs = 232;
// One tile: 128 rows x 128 dims bf16 = two 64-dim column blocks of 128 rows x 128 bytes.
constexpr int kColBlockBytes = 128 * 128;
constexpr int kTileBytes = 2 * kColBlockBytes;
// Shared memory for a ring of kStages K and V tiles: a Q tile per work item, K stages, V stages,
// the block's K and V tensor maps while they are being written, then the barriers q_full[i],
// k_full[s], k_empty[s], v_full[s], v_empty[s].
template <int kStages, int kItems>
struct Sm90Layout {
  static constexpr int kQOffset = 0;
  static constexpr int kKOffset = kItems * kTileBytes;
  static constexpr int kVOffset = kKOffset + kStages * kTileBytes;
  static constexpr int kMapOffset = kVOffset + kStages * kTileBytes;
  static constexpr int kBarOffset = kMapOffset + 2 * 128;
  static constexpr int kNumBars = kItems + 4 * kStages;
  // + 1024: the dynamic shared-memory base is rounded up to the swizzle pattern's 1024 bytes.
  static constexpr int kSmemBytes = kBarOffset + 8 * kNumBars + 1024;
  // At most one block of this kernel fits an SM (228 KB of shared memory per SM), which is what
  // lets a block own its SM's tensor-map slot (g_kv_maps) while it runs.
  static_assert(2 * kSmemBytes > 228 * 1024, "two blocks could share an SM's map slot");
};

// Tensor maps of one launch, built on the host (kernel parameter, __grid_constant__). Each
// describes a bf16 tensor {128 dims, rows, heads} (row / head strides from AttentionArgs) read
// in boxes of 64 dims x 128 rows x 1 head with the 128-byte swizzle, i.e. one 64-dim column
// block of a tile exactly as the tensor cores read it; rows past the tensor are zero-filled.
struct Sm90Maps {
  CUtensorMap q;  // the packed query rows: base a.q, total_q rows, num_q_heads heads
  // Templates for one sequence's keys / values (num_kv_heads heads): a block copies them,
  // points the copy at its sequence (base k_seqs[b] / v_seqs[b], kv_lens[b] rows) and uses that.
  CUtensorMap k, v;
};

// Per SM, the K and V tensor maps of the block running there (the copy engine reads tensor maps
// from global memory only, and the launch has no workspace). Indexed by %smid.
constexpr int kMapSlots = 256;
__device__ __align__(128) CUtensorMap g_kv_maps[kMapSlots][2];
constexpr int kConsumerWarps = 8;  // arrivals that free a stage (lane 0 of each consumer warp)
constexpr float kLog2e = 1.4426950408889634f;

#if SIEVE_SM90A

// ---- copies --------------------------------------------------------------------------------

// Copy engine (TMA): the box at coordinates {dim, row, head} of `map` into shared memory at
// `dst` (1024-byte aligned for the swizzle); its bytes count against `bar`'s transactions.
__device__ __forceinline__ void TmaLoad3d(uint32_t dst, const CUtensorMap* map, int dim, int row,
                                          int head, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%2, %3, %4}], [%5];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(dim), "r"(row), "r"(head), "r"(bar)
      : "memory");
}

// One tile (128 rows x 128 dims, two 64-dim column blocks) by the copy engine.
__device__ __forceinline__ void TmaLoadTile(uint32_t tile, const CUtensorMap* map, int row,
                                            int head, uint32_t bar) {
  MbarArriveExpectTx(bar, kTileBytes);
  TmaLoad3d(tile, map, 0, row, head, bar);
  TmaLoad3d(tile + kColBlockBytes, map, 64, row, head, bar);
}

// The tensor map at shared address `map` (a copy of a template) now starts at `base` and has
// `rows` rows (dimension 1).
__device__ __forceinline__ void TensorMapRetarget(uint32_t map, const void* base, int rows) {
  asm volatile(
      "tensormap.replace.tile.global_address.shared::cta.b1024.b64 [%0], %1;\n"
      "tensormap.replace.tile.global_dim.shared::cta.b1024.b32 [%0], 1, %2;\n" ::"r"(map),
      "l"(reinterpret_cast<uint64_t>(base)), "r"(rows)
      : "memory");
}

// Warp-wide: copies the 128-byte tensor map at shared `src` to global `dst` and releases it to
// the copy engine's view (the tensormap proxy).
__device__ __forceinline__ void TensorMapPublish(CUtensorMap* dst, uint32_t src) {
  asm volatile(
      "tensormap.cp_fenceproxy.global.shared::cta.tensormap::generic.release.gpu.sync.aligned"
      " [%0], [%1], 128;\n" ::"l"(reinterpret_cast<uint64_t>(dst)),
      "r"(src)
      : "memory");
}

// Orders the published map before this thread's copies through it.
__device__ __forceinline__ void TensorMapAcquire(const CUtensorMap* map) {
  asm volatile("fence.proxy.tensormap::generic.acquire.gpu [%0], 128;\n" ::"l"(
                   reinterpret_cast<uint64_t>(map))
               : "memory");
}

// ---- wgmma ---------------------------------------------------------------------------------

// Shared-memory matrix descriptor, 128-byte swizzle: start address, leading and stride byte
// offsets (all in 16-byte units).
__device__ __forceinline__ uint64_t Desc(uint32_t addr, uint32_t lead_bytes,
                                         uint32_t stride_bytes) {
  return static_cast<uint64_t>((addr & 0x3FFFF) >> 4) |
         (static_cast<uint64_t>(lead_bytes >> 4) << 16) |
         (static_cast<uint64_t>(stride_bytes >> 4) << 32) | (uint64_t{1} << 62);
}

// wgmma.wait_group 0 that stays below the code before it. ptxas schedules within a basic block
// and lifts an operand-free wait to the top of its block (seen in the SASS: the wait for
// P V landed before the softmax exponentials, which then no longer overlapped the GEMM). A
// branch on a kernel argument ends the block; both sides wait, so either is correct.
__device__ __forceinline__ void WgmmaWaitAllInNewBlock(bool opaque_true) {
  if (opaque_true) {
    asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
  } else {
    asm volatile("nanosleep.u32 0;\n wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
  }
}

#define SIEVE_WG_D8(i)                                                                        \
  "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), "+f"(d[i + 4]), "+f"(d[i + 5]), \
      "+f"(d[i + 6]), "+f"(d[i + 7])
#define SIEVE_WG_D64                                                                 \
  SIEVE_WG_D8(0), SIEVE_WG_D8(8), SIEVE_WG_D8(16), SIEVE_WG_D8(24), SIEVE_WG_D8(32), \
      SIEVE_WG_D8(40), SIEVE_WG_D8(48), SIEVE_WG_D8(56)
#define SIEVE_WG_REGS64                                                              \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "          \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
  "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
  "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"

// d (64 x 128, fp32) {=, +=} A (64 x 16, K-major in shared memory) * B (16 x 128, K-major in
// shared memory, i.e. 128 rows of 16 k-elements).
__device__ __forceinline__ void WgmmaSS(float (&d)[64], uint64_t desc_a, uint64_t desc_b,
                                        int accumulate) {
  asm volatile(
      "{\n .reg .pred p;\n setp.ne.b32 p, %66, 0;\n"
      " wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " SIEVE_WG_REGS64
      ", %64, %65, p, 1, 1, 0, 0;\n}\n"
      : SIEVE_WG_D64
      : "l"(desc_a), "l"(desc_b), "r"(accumulate));
}

// d (64 x 128, fp32) += A (64 x 16 bf16 in registers, the m16n8k16 A-fragment layout per warp)
// * B (16 x 128, N-major in shared memory: the transpose flag is set).
__device__ __forceinline__ void WgmmaRS(float (&d)[64], const uint32_t (&a)[4], uint64_t desc_b) {
  asm volatile(
      "{\n .reg .pred p;\n setp.ne.b32 p, %69, 0;\n"
      " wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " SIEVE_WG_REGS64
      ", {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}\n"
      : SIEVE_WG_D64
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(1));
}

// An empty instruction that claims to read and rewrite all 64 values: the compiler must finish
// computing them before it and may not read them above it. The wgmma accumulators are written
// asynchronously (the compiler sees them change at the issue, not at the wait), and the
// softmax must stay between the two waits: placed after a wait, this keeps reads of the
// accumulators below it; placed before a wait, it keeps the computation of `d` above it.
__device__ __forceinline__ void RegisterFence(float (&d)[64]) {
  asm volatile("" : SIEVE_WG_D64::"memory");
}

#undef SIEVE_WG_D8
#undef SIEVE_WG_D64
#undef SIEVE_WG_REGS64

__device__ __forceinline__ float Exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// ---- producer ------------------------------------------------------------------------------

// The copy engine's fallback, for K / V whose base is not 16-byte aligned: rows [row0, row0 +
// 128) of a [rows, 128] bf16 matrix (row stride `stride` elements) into the swizzled tile at
// `tile` with 2-byte loads and 16-byte shared stores; rows outside [0, row_end) are zero-filled.
// Thread t (0..127) copies 16-byte chunk t % 16 of rows t / 16 + 8 k, k = 0..15: its destination
// offset only moves by 1024 bytes per k, since (row mod 8) is fixed. Then a proxy fence, so the
// tensor cores see the stores, and one arrival on `bar`.
__device__ __forceinline__ void LoadTilePlain(uint32_t tile, const uint16_t* gmem, int64_t stride,
                                              int row0, int row_end, int t, uint32_t bar) {
  const int r8 = t >> 4, c = t & 15;
  const uint32_t dst0 = tile + (c >> 3) * kColBlockBytes + r8 * 128 + (((c & 7) ^ r8) << 4);
  const uint16_t* src0 = gmem + c * 8;
#pragma unroll 4
  for (int k = 0; k < 16; ++k) {
    const int row = row0 + r8 + 8 * k;
    const bool valid = row >= 0 && row < row_end;
    const uint16_t* src = src0 + (valid ? static_cast<int64_t>(row) * stride : 0);
    uint32_t w[4] = {0, 0, 0, 0};
    if (valid) {
#pragma unroll
      for (int e = 0; e < 4; ++e) w[e] = uint32_t{src[2 * e]} | (uint32_t{src[2 * e + 1]} << 16);
    }
    asm volatile("st.shared.v4.b32 [%0], {%1, %2, %3, %4};\n" ::"r"(dst0 + 1024 * k), "r"(w[0]),
                 "r"(w[1]), "r"(w[2]), "r"(w[3])
                 : "memory");
  }
  FenceProxyAsync();
  MbarArrive(bar);
}

#endif  // SIEVE_SM90A

// Named barriers of the consumer ping-pong (0 is __syncthreads): warpgroup c may issue its
// GEMMs once barrier kTurnBarrier + c completes (its own 128 threads plus the other's arrive).
constexpr int kTurnBarrier = 1;

// Lab switches (kLab bits; LaunchAttentionSm90 runs kLab = 0), for timing alternatives:
constexpr int kLabSkipKvLoads = 1;  // diagnostic only, wrong results: after the ring's first
                                    // fill, K/V stages are signalled without being copied
constexpr int kLabChainReduce = 4;  // row max / sum as sequential chains, not trees
constexpr int kLabSkipSoftmax = 8;  // diagnostic only, wrong results: P = S, no softmax

// kStages: depth of the K / V ring. kPingPong: the two consumer warpgroups take turns issuing
// their GEMMs (named barriers), so one's softmax runs while the other's GEMMs occupy the
// tensor cores. kItems: query tiles per block (1: tile gridDim.x - 1 - blockIdx.x; 2: tiles
// T - 1 - blockIdx.x and blockIdx.x of a sequence of T tiles, one after the other through the
// same ring, so every block of a causal prefill has T + 1 key tiles of work and the second
// tile's loads overlap the first's end). kLab: the switches above.
template <int kStages, bool kPingPong, int kItems, int kLab = 0>
__global__ void __launch_bounds__(kThreads, 1)
    AttentionPrefillSm90Kernel(const AttentionArgs a, const __grid_constant__ Sm90Maps maps) {
#if SIEVE_SM90A
  using L = Sm90Layout<kStages, kItems>;
  extern __shared__ __align__(16) uint8_t smem_raw[];
  const uint32_t smem = (SmemAddr(smem_raw) + 1023u) & ~1023u;
  auto q_s = [&](int i) { return smem + L::kQOffset + i * kTileBytes; };
  auto k_s = [&](int st) { return smem + L::kKOffset + st * kTileBytes; };
  auto v_s = [&](int st) { return smem + L::kVOffset + st * kTileBytes; };
  const uint32_t maps_s = smem + L::kMapOffset;  // K map, then V map (128 bytes each)
  const uint32_t bars = smem + L::kBarOffset;
  auto q_full = [&](int i) { return bars + 8 * i; };
  auto k_full = [&](int st) { return bars + 8 * (kItems + st); };
  auto k_empty = [&](int st) { return bars + 8 * (kItems + kStages + st); };
  auto v_full = [&](int st) { return bars + 8 * (kItems + 2 * kStages + st); };
  auto v_empty = [&](int st) { return bars + 8 * (kItems + 3 * kStages + st); };

  const int b = blockIdx.z;
  const int h = blockIdx.y;
  const int q_begin = a.q_starts[b];
  const int nq = a.q_starts[b + 1] - q_begin;
  const int kv_len = a.kv_lens[b];
  const int g = h / (a.num_q_heads / a.num_kv_heads);
  // Row i sees keys [max(0, hi - window) or 0, hi) with hi = i + hi_offset.
  const int hi_offset = kv_len - nq + 1;
  uint16_t* out_base =
      static_cast<uint16_t*>(a.out) + int64_t{q_begin} * a.out_stride + int64_t{h} * kHeadDim;

  // The block's work items: query tiles (rows q0 .. last_row) and the key tiles they need,
  // heavy (late) tiles first. A tile no row of which sees a key is written as zeros here (as
  // the reference) and dropped.
  struct Item {
    int q0, last_row, key_end, n_begin, num_tiles;
  };
  // Register arrays are indexed with constants only (else they go to local memory): item(i)
  // selects.
  Item items[kItems];
  bool has[kItems];
  {
    int tiles[kItems];
    if constexpr (kItems == 1) {
      tiles[0] = gridDim.x - 1 - blockIdx.x;
    } else {
      const int seq_tiles = (nq + kBlockRows - 1) / kBlockRows;
      const int x = blockIdx.x;
      // Block x pairs tiles T - 1 - x and x; -1: none (x > T - 1 - x is another block's pair).
      tiles[0] = x <= seq_tiles - 1 - x ? seq_tiles - 1 - x : -1;
      tiles[1] = x < seq_tiles - 1 - x ? x : -1;
    }
#pragma unroll
    for (int c = 0; c < kItems; ++c) {
      Item& it = items[c];
      it.q0 = tiles[c] * kBlockRows;
      has[c] = tiles[c] >= 0 && it.q0 < nq;
      it.last_row = min(it.q0 + kBlockRows, nq) - 1;
      const int key_begin = a.window > 0 ? max(0, it.q0 + hi_offset - a.window) : 0;
      it.key_end = max(0, it.last_row + hi_offset);
      it.n_begin = (key_begin / kKeyTile) * kKeyTile;
      it.num_tiles =
          it.key_end > it.n_begin ? (it.key_end - it.n_begin + kKeyTile - 1) / kKeyTile : 0;
      if (has[c] && it.num_tiles == 0) {
        for (int idx = threadIdx.x; idx < (it.last_row - it.q0 + 1) * kHeadDim; idx += blockDim.x) {
          const int r = idx / kHeadDim;
          out_base[int64_t{it.q0 + r} * a.out_stride + (idx - r * kHeadDim)] = 0;
        }
      }
      has[c] = has[c] && it.num_tiles > 0;
    }
    if constexpr (kItems == 2) {
      if (!has[0]) {
        items[0] = items[1];
        has[0] = has[1];
        has[1] = false;
      }
    }
  }
  int num_items = 0, total_tiles = 0;
#pragma unroll
  for (int c = 0; c < kItems; ++c) {
    num_items += has[c];
    total_tiles += has[c] ? items[c].num_tiles : 0;
  }
  auto item = [&](int i) { return kItems > 1 && i == 1 ? items[kItems - 1] : items[0]; };
  if (num_items == 0) return;

  // K / V come by the copy engine when both sequence bases are 16-byte aligned (a tensor map's
  // requirement; the strides are checked by AttentionSm90ArgsOk) and this SM has a map slot
  // (always, on parts with at most kMapSlots SMs); else every producer thread stages its share
  // with plain loads. Q always comes by the copy engine (a.q is 16-byte aligned).
  const void* k_seq = a.k_seqs[b];
  const void* v_seq = a.v_seqs[b];
  uint32_t smid;
  asm("mov.u32 %0, %%smid;\n" : "=r"(smid));
  const bool kv_tma =
      ((reinterpret_cast<uintptr_t>(k_seq) | reinterpret_cast<uintptr_t>(v_seq)) & 15u) == 0 &&
      smid < kMapSlots;

  if (threadIdx.x == 0) {
    const uint32_t kv_arrivals = kv_tma ? 1 : 128;
    for (int i = 0; i < kItems; ++i) MbarInit(q_full(i), 1);
    for (int st = 0; st < kStages; ++st) {
      MbarInit(k_full(st), kv_arrivals);
      MbarInit(v_full(st), kv_arrivals);
      MbarInit(k_empty(st), kConsumerWarps);
      MbarInit(v_empty(st), kConsumerWarps);
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();

  const int wg = threadIdx.x / 128;
  const int t = threadIdx.x % 128;

  if (wg == 0) {
    // ---------------------------------------------------------------- producer warpgroup
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kProducerRegs));
    constexpr bool kCopyAll = (kLab & kLabSkipKvLoads) == 0;
    if (t == 0) {
      for (int i = 0; i < num_items; ++i) {
        TmaLoadTile(q_s(i), &maps.q, q_begin + item(i).q0, h, q_full(i));
      }
    }
    // Walks the block's key tiles through the ring: waits for a stage to be free, then
    // load(smem, is_v, n0, key_end, full_barrier) fills it. jg counts key tiles over the block's
    // items: it picks the ring stage and phase.
    auto produce = [&](auto&& load) {
      for (int jg = 0, i = 0, j = 0; jg < total_tiles; ++jg) {
        if (j == item(i).num_tiles) {
          ++i;
          j = 0;
        }
        const int st = jg % kStages;
        const int round = jg / kStages;
        const int n0 = item(i).n_begin + j++ * kKeyTile;
        const int key_end = item(i).key_end;
        const bool copy = kCopyAll || round == 0;
        if (round > 0) MbarWait(k_empty(st), (round - 1) & 1);
        if (copy) {
          load(k_s(st), false, n0, key_end, k_full(st));
        } else {
          MbarArrive(k_full(st));
        }
        if (round > 0) MbarWait(v_empty(st), (round - 1) & 1);
        if (copy) {
          load(v_s(st), true, n0, key_end, v_full(st));
        } else {
          MbarArrive(v_full(st));
        }
      }
    };
    if (kv_tma) {
      // One thread issues every copy; warp 0 first points this SM's map slot at the sequence.
      if (t >= 32) return;
      {
        const uint64_t* src =
            reinterpret_cast<const uint64_t*>(t < 16 ? &maps.k : &maps.v) + (t & 15);
        asm volatile("st.shared.b64 [%0], %1;\n" ::"r"(maps_s + 8 * t), "l"(*src) : "memory");
      }
      __syncwarp();
      if (t == 0) {
        TensorMapRetarget(maps_s, k_seq, kv_len);
        TensorMapRetarget(maps_s + 128, v_seq, kv_len);
      }
      __syncwarp();
      CUtensorMap* k_map = &g_kv_maps[smid][0];
      CUtensorMap* v_map = &g_kv_maps[smid][1];
      TensorMapPublish(k_map, maps_s);
      TensorMapPublish(v_map, maps_s + 128);
      if (t != 0) return;
      TensorMapAcquire(k_map);
      TensorMapAcquire(v_map);
      // The tensor map bounds the rows (key_end is not needed).
      produce([&](auto smem, bool is_v, int n0, int, auto full) {
        TmaLoadTile(smem, is_v ? v_map : k_map, n0, g, full);
      });
    } else {
      const uint16_t* k_ptr = static_cast<const uint16_t*>(k_seq) + int64_t{g} * a.kv_head_stride;
      const uint16_t* v_ptr = static_cast<const uint16_t*>(v_seq) + int64_t{g} * a.kv_head_stride;
      produce([&](auto smem, bool is_v, int n0, int key_end, auto full) {
        LoadTilePlain(smem, is_v ? v_ptr : k_ptr, a.kv_token_stride, n0, key_end, t, full);
      });
    }
  } else {
    // ------------------------------------------------------------------ consumer warpgroups
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kConsumerRegs));
    const int cw = wg - 1;  // rows q0 + 64 cw .. + 63
    const int warp = t / 32;
    const int lane = t % 32;
    const int quad_col = lane % 4;
    const float scale_log2 = a.scale * kLog2e;
    // Per item: this thread's rows (accumulator elements e = 0, 1: row0; e = 2, 3: row0 + 8),
    // their visible key ranges, and warpgroup-uniform bounds: a tile needs no mask when every
    // key in it is visible to the warpgroup's first row (smallest hi) and to its last row
    // (largest lo).
    int row0, hi0, hi1, lo0, lo1, wg_hi_first, wg_lo_last, n_begin;

    // Descriptors. Q / K: K-major, rows 128 bytes apart, 8-row groups 1024 bytes apart; the k16
    // step kk sits in column block kk / 4 at byte 32 (kk % 4) of the (swizzled) row.
    // V: N-major (dims contiguous); per k16 step of keys, two 8-key groups 1024 bytes apart
    // (stride offset) and two 64-dim column blocks kColBlockBytes apart (leading offset).
    uint32_t q_wg;

    float o[64];
    float s[64];
    uint32_t p[8][4];
    float m_run0, m_run1;  // running max of raw scores
    float l_run0, l_run1;  // this thread's partial row sums

    // Tile j's scores were computed into s: mask, running max, exp2 in place, partial sums.
    // Returns the correction factors for O and the sums in alpha / sum.
    auto softmax = [&](int j, float& alpha0, float& alpha1) {
      if constexpr ((kLab & kLabSkipSoftmax) != 0) {
        alpha0 = alpha1 = 1.f;
        return;
      }
      const int n0 = n_begin + j * kKeyTile;
      const bool need_mask = n0 + kKeyTile > wg_hi_first || (a.window > 0 && n0 < wg_lo_last);
      if (need_mask) {
#pragma unroll
        for (int i = 0; i < 16; ++i) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int key = n0 + 8 * i + 2 * quad_col + (e & 1);
            const bool visible = e < 2 ? (key >= lo0 && key < hi0) : (key >= lo1 && key < hi1);
            if (!visible) s[4 * i + e] = -INFINITY;
          }
        }
      }
      float mx0 = m_run0, mx1 = m_run1;
      if constexpr ((kLab & kLabChainReduce) != 0) {
#pragma unroll
        for (int i = 0; i < 16; ++i) {
          mx0 = fmaxf(mx0, fmaxf(s[4 * i], s[4 * i + 1]));
          mx1 = fmaxf(mx1, fmaxf(s[4 * i + 2], s[4 * i + 3]));
        }
      } else {
        // Four interleaved chains per row (depth 8 + 2 instead of 16 + 1) shorten the softmax's
        // critical path for 6 more registers (the consumers sit at the 168-register cap).
        float r0[4], r1[4];
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          r0[c] = fmaxf(s[4 * c], s[4 * c + 1]);
          r1[c] = fmaxf(s[4 * c + 2], s[4 * c + 3]);
        }
#pragma unroll
        for (int i = 4; i < 16; ++i) {
          r0[i % 4] = fmaxf(r0[i % 4], fmaxf(s[4 * i], s[4 * i + 1]));
          r1[i % 4] = fmaxf(r1[i % 4], fmaxf(s[4 * i + 2], s[4 * i + 3]));
        }
        mx0 = fmaxf(mx0, fmaxf(fmaxf(r0[0], r0[1]), fmaxf(r0[2], r0[3])));
        mx1 = fmaxf(mx1, fmaxf(fmaxf(r1[0], r1[1]), fmaxf(r1[2], r1[3])));
      }
      mx0 = fmaxf(mx0, __shfl_xor_sync(cuda::kFullMask, mx0, 1));
      mx0 = fmaxf(mx0, __shfl_xor_sync(cuda::kFullMask, mx0, 2));
      mx1 = fmaxf(mx1, __shfl_xor_sync(cuda::kFullMask, mx1, 1));
      mx1 = fmaxf(mx1, __shfl_xor_sync(cuda::kFullMask, mx1, 2));
      // A row with no visible key so far keeps max -inf; shift by 0 so exp2 gives 0, not NaN.
      const float shift0 = mx0 == -INFINITY ? 0.f : mx0 * scale_log2;
      const float shift1 = mx1 == -INFINITY ? 0.f : mx1 * scale_log2;
      alpha0 = Exp2(m_run0 * scale_log2 - shift0);
      alpha1 = Exp2(m_run1 * scale_log2 - shift1);
      m_run0 = mx0;
      m_run1 = mx1;
      float sum0 = 0.f, sum1 = 0.f;
#pragma unroll
      for (int i = 0; i < 16; ++i) {
        s[4 * i] = Exp2(fmaf(s[4 * i], scale_log2, -shift0));
        s[4 * i + 1] = Exp2(fmaf(s[4 * i + 1], scale_log2, -shift0));
        s[4 * i + 2] = Exp2(fmaf(s[4 * i + 2], scale_log2, -shift1));
        s[4 * i + 3] = Exp2(fmaf(s[4 * i + 3], scale_log2, -shift1));
      }
      if constexpr ((kLab & kLabChainReduce) != 0) {
#pragma unroll
        for (int i = 0; i < 16; ++i) {
          sum0 += s[4 * i] + s[4 * i + 1];
          sum1 += s[4 * i + 2] + s[4 * i + 3];
        }
      } else {
        float r0[4], r1[4];
#pragma unroll
        for (int c = 0; c < 4; ++c) {
          r0[c] = s[4 * c] + s[4 * c + 1];
          r1[c] = s[4 * c + 2] + s[4 * c + 3];
        }
#pragma unroll
        for (int i = 4; i < 16; ++i) {
          r0[i % 4] += s[4 * i] + s[4 * i + 1];
          r1[i % 4] += s[4 * i + 2] + s[4 * i + 3];
        }
        sum0 = (r0[0] + r0[1]) + (r0[2] + r0[3]);
        sum1 = (r1[0] + r1[1]) + (r1[2] + r1[3]);
      }
      l_run0 = l_run0 * alpha0 + sum0;
      l_run1 = l_run1 * alpha1 + sum1;
    };
    auto rescale_and_pack = [&](float alpha0, float alpha1) {
#pragma unroll
      for (int i = 0; i < 16; ++i) {
        o[4 * i] *= alpha0;
        o[4 * i + 1] *= alpha0;
        o[4 * i + 2] *= alpha1;
        o[4 * i + 3] *= alpha1;
      }
      // Keys 16 kc .. 16 kc + 15 are accumulator n8 tiles 2 kc and 2 kc + 1.
#pragma unroll
      for (int kc = 0; kc < 8; ++kc) {
        p[kc][0] = PackBf16(s[8 * kc], s[8 * kc + 1]);
        p[kc][1] = PackBf16(s[8 * kc + 2], s[8 * kc + 3]);
        p[kc][2] = PackBf16(s[8 * kc + 4], s[8 * kc + 5]);
        p[kc][3] = PackBf16(s[8 * kc + 6], s[8 * kc + 7]);
      }
    };
    auto issue_qk = [&](int st) {
#pragma unroll
      for (int kk = 0; kk < 8; ++kk) {
        const uint32_t off = (kk >> 2) * kColBlockBytes + (kk & 3) * 32;
        WgmmaSS(s, Desc(q_wg + off, 16, 1024), Desc(k_s(st) + off, 16, 1024), kk > 0);
      }
    };
    auto issue_pv = [&](int st) {
#pragma unroll
      for (int kc = 0; kc < 8; ++kc) {
        WgmmaRS(o, p[kc], Desc(v_s(st) + kc * 2048, kColBlockBytes, 1024));
      }
    };

    // Ping-pong: every issue step (per item: tile 0's S, then S_j with P_{j-1} V_{j-1}, then
    // the last P V: num_tiles + 1 steps in each warpgroup) waits for this warpgroup's turn and
    // hands the turn over after issuing. Warpgroup 0 starts; the very last hand-over is skipped
    // so no arrival is left pending at exit.
    int turns_left = total_tiles + num_items;
    auto wait_turn = [&] {
      if constexpr (kPingPong) NamedBarrierSync(kTurnBarrier + cw, 256);
    };
    auto pass_turn = [&] {
      if constexpr (kPingPong) {
        --turns_left;
        if (cw == 0 || turns_left > 0) NamedBarrierArrive(kTurnBarrier + (cw ^ 1), 256);
      }
    };
    if constexpr (kPingPong) {
      if (cw == 1) NamedBarrierArrive(kTurnBarrier + 0, 256);
    }

    // jg0: key tiles of the earlier items (the ring's stage and phase continue across items).
    for (int w = 0, jg0 = 0; w < num_items; jg0 += item(w).num_tiles, ++w) {
      const Item it = item(w);
      const int q0 = it.q0;
      const int num_tiles = it.num_tiles;
      n_begin = it.n_begin;
      row0 = q0 + cw * 64 + warp * 16 + lane / 4;
      hi0 = row0 + hi_offset;
      hi1 = hi0 + 8;
      lo0 = a.window > 0 ? max(0, hi0 - a.window) : 0;
      lo1 = a.window > 0 ? max(0, hi1 - a.window) : 0;
      wg_hi_first = q0 + cw * 64 + hi_offset;
      wg_lo_last = a.window > 0 ? max(0, q0 + cw * 64 + 63 + hi_offset - a.window) : 0;
      q_wg = q_s(w) + cw * 64 * 128;
#pragma unroll
      for (int e = 0; e < 64; ++e) o[e] = 0.f;
      m_run0 = m_run1 = -INFINITY;
      l_run0 = l_run1 = 0.f;
      MbarWait(q_full(w), 0);

      // Tile 0: S only.
      {
        const int st = jg0 % kStages;
        MbarWait(k_full(st), (jg0 / kStages) & 1);
        FenceProxyAsync();
        wait_turn();
        WgmmaFence();
        issue_qk(st);
        WgmmaCommit();
        pass_turn();
        WgmmaWait<0>();
        RegisterFence(s);
        __syncwarp();
        if (lane == 0) MbarArrive(k_empty(st));
        float alpha0, alpha1;
        softmax(0, alpha0, alpha1);
        rescale_and_pack(alpha0, alpha1);
      }
      for (int j = 1; j < num_tiles; ++j) {
        const int jg = jg0 + j;
        const int st = jg % kStages;
        const int pst = (jg - 1) % kStages;
        MbarWait(k_full(st), (jg / kStages) & 1);
        MbarWait(v_full(pst), ((jg - 1) / kStages) & 1);
        FenceProxyAsync();
        wait_turn();
        WgmmaFence();
        issue_qk(st);
        WgmmaCommit();
        issue_pv(pst);
        WgmmaCommit();
        pass_turn();
        WgmmaWait<1>();  // S of tile j is ready; P_{j-1} V_{j-1} may still run
        RegisterFence(s);
        __syncwarp();
        if (lane == 0) MbarArrive(k_empty(st));
        float alpha0, alpha1;
        softmax(j, alpha0, alpha1);
        // The exponentials run while P_{j-1} V_{j-1} is on the tensor cores, not after it.
        RegisterFence(s);
        WgmmaWaitAllInNewBlock(a.window != INT_MIN);
        RegisterFence(o);
        __syncwarp();
        if (lane == 0) MbarArrive(v_empty(pst));
        rescale_and_pack(alpha0, alpha1);
      }
      {
        const int jg = jg0 + num_tiles - 1;
        const int pst = jg % kStages;
        MbarWait(v_full(pst), (jg / kStages) & 1);
        FenceProxyAsync();
        wait_turn();
        WgmmaFence();
        issue_pv(pst);
        WgmmaCommit();
        pass_turn();
        WgmmaWait<0>();
        RegisterFence(o);
        __syncwarp();
        if (lane == 0) MbarArrive(v_empty(pst));  // the next item's tiles reuse the stage
      }

      // Normalize and store rows below nq: thread holds dims 8 i + 2 quad_col (+1) of its 2 rows.
      l_run0 += __shfl_xor_sync(cuda::kFullMask, l_run0, 1);
      l_run0 += __shfl_xor_sync(cuda::kFullMask, l_run0, 2);
      l_run1 += __shfl_xor_sync(cuda::kFullMask, l_run1, 1);
      l_run1 += __shfl_xor_sync(cuda::kFullMask, l_run1, 2);
      const float inv0 = l_run0 > 0.f ? 1.f / l_run0 : 0.f;
      const float inv1 = l_run1 > 0.f ? 1.f / l_run1 : 0.f;
      if (row0 < nq) {
        uint16_t* row = out_base + int64_t{row0} * a.out_stride + 2 * quad_col;
#pragma unroll
        for (int i = 0; i < 16; ++i) {
          *reinterpret_cast<uint32_t*>(row + 8 * i) =
              PackBf16(o[4 * i] * inv0, o[4 * i + 1] * inv0);
        }
      }
      if (row0 + 8 < nq) {
        uint16_t* row = out_base + int64_t{row0 + 8} * a.out_stride + 2 * quad_col;
#pragma unroll
        for (int i = 0; i < 16; ++i) {
          *reinterpret_cast<uint32_t*>(row + 8 * i) =
              PackBf16(o[4 * i + 2] * inv1, o[4 * i + 3] * inv1);
        }
      }
    }
  }  // consumer warpgroups
#else
  __trap();  // built without sm_90a code; AttentionSm90DeviceOk keeps this from launching
#endif
}

bool Aligned(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

// A map of the bf16 tensor {kHeadDim dims, rows, heads} at `base` (strides in elements), boxes of
// 64 dims x kBlockRows rows x 1 head, 128-byte swizzle (see Sm90Maps).
cudaError_t EncodeTileMap(CUtensorMap* map, const void* base, int64_t rows, int64_t row_stride,
                          int heads, int64_t head_stride) {
  const TensorMapEncodeTiledFn encode = TensorMapEncoder();
  if (encode == nullptr) return cudaErrorNotSupported;
  const cuuint64_t dims[3] = {kHeadDim, static_cast<cuuint64_t>(std::max<int64_t>(rows, 1)),
                              static_cast<cuuint64_t>(heads)};
  const cuuint64_t strides[2] = {static_cast<cuuint64_t>(row_stride) * 2,
                                 static_cast<cuuint64_t>(head_stride) * 2};  // bytes
  const cuuint32_t box[3] = {64, kBlockRows, 1};
  const cuuint32_t elem_strides[3] = {1, 1, 1};
  const CUresult r =
      encode(map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 3, const_cast<void*>(base), dims, strides, box,
             elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
             CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  return r == CUDA_SUCCESS ? cudaSuccess : cudaErrorInvalidValue;
}

// The instantiation LaunchAttentionSm90 runs.
constexpr int kLaunchStages = 2;
constexpr bool kLaunchPingPong = true;
constexpr int kLaunchItems = 2;

template <int kStages, bool kPingPong, int kItems, int kLab = 0>
cudaError_t LaunchSm90(const AttentionArgs& a, cudaStream_t stream) {
  constexpr int kBytes = Sm90Layout<kStages, kItems>::kSmemBytes;
  static_assert(kBytes <= 227 * 1024, "shared memory over the sm_90 per-block limit");
  // Q over the packed rows; K / V templates (any 16-byte aligned address: each block replaces
  // it with its sequence's base, and the rows with its kv_len).
  Sm90Maps maps;
  cudaError_t err = EncodeTileMap(&maps.q, a.q, a.total_q, a.q_stride, a.num_q_heads, kHeadDim);
  if (err == cudaSuccess) {
    err = EncodeTileMap(&maps.k, a.q, a.max_kv_len, a.kv_token_stride, a.num_kv_heads,
                        a.kv_head_stride);
  }
  if (err == cudaSuccess) {
    err = EncodeTileMap(&maps.v, a.q, a.max_kv_len, a.kv_token_stride, a.num_kv_heads,
                        a.kv_head_stride);
  }
  if (err != cudaSuccess) return err;
  auto* kernel = AttentionPrefillSm90Kernel<kStages, kPingPong, kItems, kLab>;
  err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kBytes);
  if (err != cudaSuccess) return err;
  const dim3 grid(cuda::CeilDiv(cuda::CeilDiv(a.max_q_len, kBlockRows), kItems), a.num_q_heads,
                  a.num_seqs);
  kernel<<<grid, kThreads, kBytes, stream>>>(a, maps);
  return cudaGetLastError();
}

}  // namespace

bool AttentionSm90ArgsOk(const AttentionArgs& a) {
  return a.dtype == DType::kBF16 && a.head_dim == kHeadDim && a.scale > 0.f && Aligned(a.q, 16) &&
         a.q_stride % 8 == 0 && a.kv_token_stride % 8 == 0 && a.kv_head_stride % 8 == 0 &&
         Aligned(a.out, 4) && a.out_stride % 2 == 0 && a.num_q_heads % a.num_kv_heads == 0;
}

bool AttentionSm90DeviceOk() {
  static std::atomic<int8_t> cache[kMaxCachedDevices] = {};
  return KernelRunsHere(
      reinterpret_cast<const void*>(
          AttentionPrefillSm90Kernel<kLaunchStages, kLaunchPingPong, kLaunchItems>),
      cache);
}

cudaError_t LaunchAttentionSm90(const AttentionArgs& a, cudaStream_t stream) {
  return LaunchSm90<kLaunchStages, kLaunchPingPong, kLaunchItems>(a, stream);
}

}  // namespace sieve::kernels
