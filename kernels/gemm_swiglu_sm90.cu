// GemmSwigluSm90Kernel: out = silu(x · W_gateᵀ) * (x · W_upᵀ) on Hopper warpgroup MMA (wgmma,
// sm_90a) with the SwiGLU in the epilogue, for bf16. Contract: kernels/gemm_swiglu.h
// (GemmSwigluArgs, interleaved weight); CPU reference: kernels/ref/gemm_swiglu_ref.cc. Also here:
// LaunchSwigluInterleave (the weight permutation, a plain copy kernel).
//
// Algorithm (persistent: one block of 3 warpgroups per SM, tiles taken in a fixed stride):
//   - Tiles of 128 rows of x by kBlockN rows of the interleaved weight (kBlockN / 2 gate and
//     kBlockN / 2 up columns, i.e. kBlockN / 2 output columns), visited in groups of kGroupM
//     row tiles (the grid's concurrent tiles then share few A and B tiles in L2).
//   - Warpgroup 0 produces: one thread issues every copy through the copy engine (TMA,
//     cp.async.bulk.tensor.2d), per k step of 64 an A box (64 k x 128 rows) and a B box (64 k x
//     kBlockN rows) with the 128-byte swizzle into a ring of kStages stages; a stage's "full"
//     mbarrier completes on its bytes (expect_tx), the consumers free it through "empty". Rows
//     past m, weight rows past 2 * inter and k past the end arrive as zeros, so no shape needs a
//     masked main loop. The producer gives registers back (setmaxnreg 40; consumers 232).
//   - Warpgroups 1 and 2 consume, with fp32 accumulators (128 registers a thread), in one of
//     three schedules (GemmSwigluSchedule; LaunchGemmSwigluSm90 runs kCooperative128x256):
//       kCooperative128x256: both on one 128 x 256 tile, 64 rows each, one wgmma m64n256k16 per
//         k16 step (A and B from shared memory, K-major); a stage is freed by both.
//       kCooperativeCluster2: the same in clusters of two blocks on adjacent row tiles and the
//         same weight rows: each block copies half of the weight tile (128 rows) into both
//         blocks (TMA multicast), and a stage is refilled once the consumers of both blocks
//         have freed it (they arrive on both blocks' "empty" barriers); a third less L2 -> SM
//         traffic per tile.
//       kPingPong128x128: each warpgroup its own 128 x 128 tile (two wgmma m64n128k16 per k16
//         step, sharing B), the block's tiles alternating between them; their main loops run
//         one at a time in tile order (named barriers), so one's epilogue runs while the
//         other's MMAs occupy the tensor cores.
//     In all, one wgmma group stays in flight: the stage of k step j - 1 is freed once k step
//     j has been issued and j - 1 has completed (wgmma.wait_group 1).
//   - Epilogue: with the weight interleaved in blocks of 64 rows, accumulator columns c and
//     c + 64 of each 128-column half are the gate and up values of one output column and sit in
//     the same registers of the same thread (the wgmma accumulator layout: element 4 i + e holds
//     column 8 i + 2 (lane % 4) + (e & 1)), so silu(g) * u is computed in registers (fp32:
//     g / (1 + 2^(-g log2 e)) with the approximate exp2 and division), rounded to bf16 and
//     written as two 64 x 64 boxes into a per-warpgroup staging buffer in the 128-byte swizzle
//     (conflict-free 4-byte stores), then stored by the copy engine (TMA store, clipped at m
//     and inter); the warpgroup moves on to its next tile while the store drains, and waits for
//     its read of the staging buffer only before rewriting it.
// Shared memory: kStages x (16 KB A + kBlockN x 128 B) = 192 KB either way (4 stages of 48 KB or
// 6 of 32 KB) + 32 KB staging + barriers, within the 227 KB a block may have.
// Numerics: bf16 operands, fp32 accumulation, g and u in fp32, out rounded once (the reference's
// formula; exp2 / division approximate to a few fp32 ulps).
//
// Measured on an H100 SXM (sieve-gemm-swiglu-bench, k 4096, inter 14336; every op once per
// round, 20-25 rounds, L2 flushed; TFLOP/s = 2 m (2 inter) k / median; "x" = median per-round
// ratio of cuBLASLt gate-up + SiluMul over the fused kernel). Three device calls (commits
// f13a9c5, 7798a4f, 9563a72), the card at its 700 W limit (mean SM clock 1907, 1824, 1841 MHz):
//   m 8192:   cuBLASLt alone 804 / 743 / 735, + SiluMul 729 / 677 / 670; fused coop 800 / 739 /
//             731 (1.097x / 1.090x / 1.090x); cluster 2 302 (remote arrivals with
//             .release.cluster) / 740 / 731 (1.093x / 1.091x)
//   m 16384:  cuBLASLt 797 / 729 / 721, + SiluMul 727 / 666 / 658; coop 798 / 732 / 717 (1.102x /
//             1.097x / 1.096x); cluster 2 733 / 718 (1.102x / 1.100x)
//   m 32768:  cuBLASLt 792 / 719 / 704, + SiluMul 728 / 656 / 636; coop 790 / 717 / 701 (1.086x /
//             1.095x / 1.097x); cluster 2 719 / 712 (1.104x / 1.107x)
//   m 131072 (a 128K-token prefill, last call only): cuBLASLt 727 (42.3 ms), + SiluMul 653
//             (47.2 ms); coop 704 (43.7 ms, 1.082x); cluster 2 696 (1.079x)
// i.e. the fused kernel runs about as fast as cuBLASLt's GEMM alone (0-3% slower) and saves the
// SiLU-mul pass: ~3.4 ms of 47.2 per layer at 128K tokens.
// The main loop alone (kLabSkipEpilogue) is 3.8-4.7% faster than the whole kernel (11% at m
// 131072, not understood; perhaps its lower power draw buys it higher clocks in 40 ms runs): the
// epilogue, which both warpgroups run at once while the tensor cores idle, costs ~2 us per tile
// (by count, about half of that is SFU time: an exp2 and a reciprocal per output). Multicast
// (cluster 2) measured the same as the plain schedule, so L2 -> SM traffic does not seem to be
// what limits the main loop (the card sits at its power limit). Ping-pong measured 485-558
// TFLOP/s at m <= 32768 (0.76-0.82x) and 308 at m 131072 (not investigated), presumably because one
// warpgroup issuing m64n128 MMAs alone does not keep the tensor cores busy, and its 128 x 128 tiles
// move a third more bytes per FLOP. Tried and not kept: the SiLU's reciprocal by two Newton steps
// on the FMA pipe instead of the SFU (798 / 788 / 788 vs 800 / 798 / 790 TFLOP/s in the same call,
// no gain).
// Overlapping the epilogue, and other attempts (branch swiglu-epi, three device calls on an H100
// SXM, k 4096, inter 14336; "vs coop" = median per-round ratio of kCooperative128x256's time
// over the variant's in the same round; every variant passed GemmSwigluTest.GpuMatchesRef and
// the bench's check): none beat kCooperative128x256, which stays the default. nvidia-smi every
// 250 ms showed the card at its 700 W limit through the timed rounds (mean 1363 and 1312 MHz at
// 698 and 695 W in calls 2 and 3, against 1980 MHz idle): the kernel is power-bound, so idle
// tensor cores during the epilogue cost less than their share of the time suggests.
//   - Consumer warpgroup 1 kept 1 k step behind warpgroup 0 (named barriers, one per k step), so
//     that each one's epilogue overlaps the other's MMAs: m 32768 0.966x / 0.972x, m 49356 0.992x
//     / 0.966x (calls 1 / 2); 2 steps behind: 0.616x (32768), 0.652x (49356) (call 1; presumably
//     warpgroup 0 then finds its next stage not yet loaded: with 4 stages, it issues step s + 2
//     about one step after warpgroup 1 freed the stage it needs). Held back only at each tile's
//     start (warpgroup 1 waits for warpgroup 0's step 3, then runs free): 0.995x (32768), 0.994x
//     (49356).
//   - Weight-tile multicast in clusters of 4 / 8 blocks: 0.907x / 0.911x (32768), 0.895x / 0.890x
//     (49356); clusters of 2 (kCooperativeCluster2): 1.005x / 1.004x (call 2).
//   - The SiLU on ex2/rcp.approx.ftz instead of __expf/__fdividef (the full-range forms' denormal
//     fix-ups gone: per output one FSETP and two FMUL fewer, 912 SASS instructions in the kernel
//     instead of 1104; same results but for denormals): 0.989x (32768), 0.990x (49356); with it,
//     raster groups of 32 row tiles: 1.001x / 0.997x; the SiLU as g/2 (1 + tanh(g/2)) on
//     tanh.approx (one SFU op per output, 784 instructions, a larger absolute error for g << 0):
//     1.018x / 1.006x (call 3). None is a gain beyond the noise of these ratios (unfused over
//     coop, the same pair of ops, read 0.904x-0.914x across the three calls).
//   - Main loop alone against the whole kernel (calls 2 / 3): 1.045x / 1.049x (32768), 1.046x /
//     1.047x (49356).
//   - Call 1 ran every round's ops in a fixed order and cluster 2, timed right after the slow
//     2-steps-behind variant, read 1.026x (32768) and 1.095x (49356); with the order shuffled per
//     round (calls 2 and 3, now the bench's way) it reads 1.005x / 1.004x.
//   The code of these variants is in commit 93aa932 (merged into main's history; kStaggeredLag1/2,
//   kStaggeredTileStart, kCooperativeCluster4/8, kCooperativeFtz, kCooperativeFtzGroup32,
//   kCooperativeTanh), not kept here.
//
// Tested by tests/unit/kernels/gemm_swiglu_test.cc; timed against cuBLASLt gate-up + SiluMul by
// tests/bench/gemm_swiglu_bench.cc (sieve-gemm-swiglu-bench).
#include <cuda.h>  // CUtensorMap and its enums only: the encoder comes through the runtime
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdint>

#include "kernels/cuda_util.cuh"
#include "kernels/gemm_swiglu.h"
#include "kernels/sm90.cuh"

namespace sieve::kernels {
namespace {

using namespace sm90;  // NOLINT: the shared Hopper primitives

constexpr int kThreads = 384;  // producer warpgroup + 2 consumer warpgroups
constexpr int kProducerRegs = 40;
constexpr int kConsumerRegs = 232;
constexpr int kBlockM = 128;  // rows of x per tile
constexpr int kBlockK = 64;   // k per stage: one 128-byte swizzled row of bf16
constexpr int kGroupM = 16;   // row tiles per raster group
constexpr int kOutBox = 64;   // output TMA box: 64 columns x 64 rows
constexpr int kOutBoxBytes = kOutBox * kOutBox * 2;
constexpr int kATileBytes = kBlockM * kBlockK * 2;
static_assert(kSwigluBlock == 64, "the epilogue pairs accumulator columns c and c + 64");

template <GemmSwigluSchedule kSchedule>
struct Sm90Config {
  static constexpr bool kPingPong = kSchedule == GemmSwigluSchedule::kPingPong128x128;
  // Blocks per cluster (along m): each copies half of every weight tile to both.
  static constexpr int kCluster = kSchedule == GemmSwigluSchedule::kCooperativeCluster2 ? 2 : 1;
  static constexpr int kBlockN = kPingPong ? 128 : 256;  // weight rows per tile
  static constexpr int kStages = kPingPong ? 6 : 4;
  static constexpr int kBTileBytes = kBlockN * kBlockK * 2;
  static constexpr int kStageBytes = kATileBytes + kBTileBytes;
  // Frees of a stage: lane 0 of each warp that read it, in every block of the cluster (a stage
  // is refilled in all of them at once).
  static constexpr int kEmptyArrivals = (kPingPong ? 4 : 8) * kCluster;
  // Layout: A stages, B stages, two staging buffers (one per consumer warpgroup, two boxes
  // each), full[s], empty[s]; + 1024 since the base is rounded up to the swizzle's 1024 bytes.
  static constexpr int kAOffset = 0;
  static constexpr int kBOffset = kStages * kATileBytes;
  static constexpr int kOutOffset = kBOffset + kStages * kBTileBytes;
  static constexpr int kBarOffset = kOutOffset + 2 * 2 * kOutBoxBytes;
  static constexpr int kSmemBytes = kBarOffset + 2 * 8 * kStages + 1024;
  static_assert(kSmemBytes <= 227 * 1024, "shared memory over the sm_90 per-block limit");
};

// The launch's tensor maps (host-encoded, __grid_constant__): x {k, m} and w {k, 2 inter} read in
// boxes of 64 k x (128 | kBlockN) rows, out {inter, m} written in 64 x 64 boxes; all 128-byte
// swizzle; loads past the tensor are zero-filled, stores past it clipped.
struct Sm90Maps {
  CUtensorMap x, w, out;
};

// num_m_tiles counts row tiles of a cluster (128 x kCluster rows); num_tiles = num_m_tiles x
// num_n_tiles is the number of cluster tiles.
struct Problem {
  int m, inter, k;
  int num_m_tiles, num_n_tiles, num_tiles, num_k_blocks;
};

#if SIEVE_SM90A

// ---- copies --------------------------------------------------------------------------------

// The box at {inner, outer} of `map` into shared memory at `dst` (1024-byte aligned); its bytes
// (the whole box, zero-filled parts included) count against `bar`'s transactions.
__device__ __forceinline__ void TmaLoad2d(uint32_t dst, const CUtensorMap* map, int inner,
                                          int outer, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%2, %3}], [%4];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(inner), "r"(outer), "r"(bar)
      : "memory");
}

// TmaLoad2d into the same shared-memory offset of every block in `cta_mask` (of the cluster),
// counted against the barrier at `bar`'s offset in each of them.
__device__ __forceinline__ void TmaLoad2dMulticast(uint32_t dst, const CUtensorMap* map, int inner,
                                                   int outer, uint32_t bar, uint16_t cta_mask) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
      ".multicast::cluster [%0], [%1, {%2, %3}], [%4], %5;\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(inner), "r"(outer), "r"(bar), "h"(cta_mask)
      : "memory");
}

// Arrives on the barrier at `bar`'s offset in block `rank` of the cluster. Default semantics
// (release at CTA scope), as for a local arrive: the arrival only has to order this warp's
// completed wgmma reads of the stage before the other block's next copy into it, which waits
// for the arrival. An explicit .release.cluster compiled to MEMBAR.ALL.GPU before every
// arrival and ran the cluster schedule at ~0.4x of the plain one.
__device__ __forceinline__ void MbarArriveRemote(uint32_t bar, uint32_t rank) {
  asm volatile(
      "{\n .reg .b32 remote;\n mapa.shared::cluster.u32 remote, %0, %1;\n"
      " mbarrier.arrive.shared::cluster.b64 _, [remote];\n}\n" ::"r"(bar),
      "r"(rank)
      : "memory");
}

__device__ __forceinline__ uint32_t ClusterRank() {
  uint32_t r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
  return r;
}

// Every thread of every block of the cluster (not .aligned: warps may arrive diverged).
__device__ __forceinline__ void ClusterSync() {
  asm volatile("barrier.cluster.arrive.release;\n barrier.cluster.wait.acquire;\n" ::: "memory");
}

// The box at shared `src` to {inner, outer} of `map` (parts past the tensor are not written).
__device__ __forceinline__ void TmaStore2d(const CUtensorMap* map, uint32_t src, int inner,
                                           int outer) {
  asm volatile(
      "cp.async.bulk.tensor.2d.global.shared::cta.bulk_group [%0, {%1, %2}], [%3];\n" ::"l"(
          reinterpret_cast<uint64_t>(map)),
      "r"(inner), "r"(outer), "r"(src)
      : "memory");
}

__device__ __forceinline__ void BulkCommit() {
  asm volatile("cp.async.bulk.commit_group;\n" ::: "memory");
}
// This thread's committed stores have finished reading shared memory.
__device__ __forceinline__ void BulkWaitRead() {
  asm volatile("cp.async.bulk.wait_group.read 0;\n" ::: "memory");
}
// ... and have completed.
__device__ __forceinline__ void BulkWaitAll() {
  asm volatile("cp.async.bulk.wait_group 0;\n" ::: "memory");
}

// ---- wgmma ---------------------------------------------------------------------------------

// Shared-memory matrix descriptor, 128-byte swizzle, K-major: start address, leading byte offset
// (unused with this swizzle) and stride byte offset (between 8-row groups: 1024), in 16 bytes.
__device__ __forceinline__ uint64_t Desc(uint32_t addr) {
  return static_cast<uint64_t>((addr & 0x3FFFF) >> 4) | (uint64_t{16 >> 4} << 16) |
         (uint64_t{1024 >> 4} << 32) | (uint64_t{1} << 62);
}

#define SIEVE_WG_D8(d, i)                                                                     \
  "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), "+f"(d[i + 4]), "+f"(d[i + 5]), \
      "+f"(d[i + 6]), "+f"(d[i + 7])
#define SIEVE_WG_D64(d)                                                         \
  SIEVE_WG_D8(d, 0), SIEVE_WG_D8(d, 8), SIEVE_WG_D8(d, 16), SIEVE_WG_D8(d, 24), \
      SIEVE_WG_D8(d, 32), SIEVE_WG_D8(d, 40), SIEVE_WG_D8(d, 48), SIEVE_WG_D8(d, 56)
#define SIEVE_WG_REGS0_63                                                            \
  "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "           \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
  "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
  "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
#define SIEVE_WG_REGS64_127                                                                      \
  "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, "             \
  "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, "             \
  "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, " \
  "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127"

// d (64 x 128, fp32) {=, +=} A (64 x 16, K-major in shared memory) * B (16 x 128: 128 rows of 16
// k-elements, K-major in shared memory).
__device__ __forceinline__ void WgmmaN128(float (&d)[64], uint64_t desc_a, uint64_t desc_b,
                                          int accumulate) {
  asm volatile(
      "{\n .reg .pred p;\n setp.ne.b32 p, %66, 0;\n"
      " wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {" SIEVE_WG_REGS0_63
      "}, %64, %65, p, 1, 1, 0, 0;\n}\n"
      : SIEVE_WG_D64(d)
      : "l"(desc_a), "l"(desc_b), "r"(accumulate));
}

// [d0 | d1] (64 x 256, fp32: columns 0..127 in d0, 128..255 in d1, each in the m64n128
// accumulator layout) {=, +=} A (64 x 16) * B (16 x 256), both K-major in shared memory.
__device__ __forceinline__ void WgmmaN256(float (&d0)[64], float (&d1)[64], uint64_t desc_a,
                                          uint64_t desc_b, int accumulate) {
  asm volatile(
      "{\n .reg .pred p;\n setp.ne.b32 p, %130, 0;\n"
      " wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 {" SIEVE_WG_REGS0_63
      ", " SIEVE_WG_REGS64_127 "}, %128, %129, p, 1, 1, 0, 0;\n}\n"
      : SIEVE_WG_D64(d0), SIEVE_WG_D64(d1)
      : "l"(desc_a), "l"(desc_b), "r"(accumulate));
}

// An empty instruction that claims to read and rewrite all 64 values: placed after a wgmma wait,
// it keeps the compiler from reading the (asynchronously written) accumulators above the wait.
__device__ __forceinline__ void RegisterFence(float (&d)[64]) {
  asm volatile("" : SIEVE_WG_D64(d)::"memory");
}

#undef SIEVE_WG_D8
#undef SIEVE_WG_D64
#undef SIEVE_WG_REGS0_63
#undef SIEVE_WG_REGS64_127

// silu(g) * u in fp32: g / (1 + e^-g) with ex2.approx and the approximate division (for
// g < -88, e^-g = inf and the quotient is -0, as the exact formula's limit).
__device__ __forceinline__ float SiluTimes(float g, float u) {
  return __fdividef(g, 1.f + __expf(-g)) * u;
}

// One 64 x 64 output box from a 64 x 128 accumulator half (gate columns 0..63, up 64..127) into
// the staging box at `box` (128-byte rows, 16-byte chunk c of row r at chunk c ^ (r % 8), as
// the TMA store's 128-byte swizzle reads it). Thread (warp w, lane l) holds rows 16 w + l / 4
// and + 8, columns 8 i + 2 (l % 4) (+ 1): each 4-byte store of a warp hits 8 rows x 4 words of
// 8 distinct chunks, i.e. all 32 banks once.
__device__ __forceinline__ void EpilogueBox(const float (&d)[64], uint32_t box, int warp,
                                            int lane) {
  const int r = 16 * warp + lane / 4;
  const uint32_t row0 = box + r * 128 + 4 * (lane % 4);
  const uint32_t row1 = row0 + 8 * 128;
  const int sw = r % 8;
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const uint32_t v0 =
        PackBf16(SiluTimes(d[4 * i], d[4 * i + 32]), SiluTimes(d[4 * i + 1], d[4 * i + 33]));
    const uint32_t v1 =
        PackBf16(SiluTimes(d[4 * i + 2], d[4 * i + 34]), SiluTimes(d[4 * i + 3], d[4 * i + 35]));
    const uint32_t chunk = static_cast<uint32_t>((i ^ sw) << 4);
    asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(row0 + chunk), "r"(v0) : "memory");
    asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(row1 + chunk), "r"(v1) : "memory");
  }
}

// Cluster tile t of the raster: groups of kGroupM rows of blocks (fewer in the last group),
// column-major within a group. Returns the first row of x of block `rank` of the cluster and
// the first row of the interleaved weight.
template <int kCluster>
__device__ __forceinline__ void TileAt(const Problem& p, int t, int block_n, int rank, int& m0,
                                       int& n0) {
  constexpr int kGroup = kGroupM / kCluster;
  const int per_group = kGroup * p.num_n_tiles;
  const int group = t / per_group;
  const int first_m = group * kGroup;
  const int group_m = min(kGroup, p.num_m_tiles - first_m);
  const int local = t - group * per_group;
  m0 = ((first_m + local % group_m) * kCluster + rank) * kBlockM;
  n0 = (local / group_m) * block_n;
}

#endif  // SIEVE_SM90A

// Named barriers (0 is __syncthreads): kStagingBarrier + c orders consumer warpgroup c's
// staging-buffer writes around its TMA store (128 threads); in the ping-pong schedule
// kOrderBarrier + c lets warpgroup c start its next main loop (its 128 threads plus the other
// warpgroup's arrival once that one has issued its whole main loop).
constexpr int kStagingBarrier = 1;
constexpr int kOrderBarrier = 3;

// Lab switch (kLab bits; LaunchGemmSwigluSm90 runs kLab = 0), for timing only:
constexpr int kLabSkipEpilogue = 1;  // diagnostic, wrong results: no SiLU and no stores

template <GemmSwigluSchedule kSchedule, int kLab = 0>
__global__ void __launch_bounds__(kThreads, 1)
    GemmSwigluSm90Kernel(const Problem p, const __grid_constant__ Sm90Maps maps) {
#if SIEVE_SM90A
  using C = Sm90Config<kSchedule>;
  constexpr int kStages = C::kStages;
  constexpr int kCluster = C::kCluster;
  extern __shared__ __align__(16) uint8_t smem_raw[];
  const uint32_t smem = (SmemAddr(smem_raw) + 1023u) & ~1023u;
  auto a_s = [&](int st) { return smem + C::kAOffset + st * kATileBytes; };
  auto b_s = [&](int st) { return smem + C::kBOffset + st * C::kBTileBytes; };
  auto full = [&](int st) { return smem + C::kBarOffset + 8 * st; };
  auto empty = [&](int st) { return smem + C::kBarOffset + 8 * (kStages + st); };
  // Clusters take cluster tiles in a fixed stride; a block works on rows 128 rank.. of each.
  const int rank = kCluster > 1 ? static_cast<int>(ClusterRank()) : 0;
  const int cluster_id = blockIdx.x / kCluster;
  const int num_clusters = gridDim.x / kCluster;

  if (threadIdx.x == 0) {
    for (int st = 0; st < kStages; ++st) {
      MbarInit(full(st), 1);
      MbarInit(empty(st), C::kEmptyArrivals);
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  // The other block's copies and arrivals reach this block's barriers: all must be initialized.
  if constexpr (kCluster > 1) {
    ClusterSync();
  } else {
    __syncthreads();
  }

  const int wg = threadIdx.x / 128;
  const int t = threadIdx.x % 128;

  if (wg == 0) {
    // ---------------------------------------------------------------- producer warpgroup
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kProducerRegs));
    if (t == 0) {
      asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(&maps.x))
                   : "memory");
      asm volatile("prefetch.tensormap [%0];\n" ::"l"(reinterpret_cast<uint64_t>(&maps.w))
                   : "memory");
      // The ring runs on over the block's tiles: stage st in its round-th use.
      int st = 0, round = 0;
      for (int tile = cluster_id; tile < p.num_tiles; tile += num_clusters) {
        int m0, n0;
        TileAt<kCluster>(p, tile, C::kBlockN, rank, m0, n0);
        for (int kb = 0; kb < p.num_k_blocks; ++kb) {
          // In a cluster this also waits for the other block's consumers (they arrive here).
          if (round > 0) MbarWait(empty(st), (round - 1) & 1);
          // All of A and B, whichever block copies them.
          MbarArriveExpectTx(full(st), C::kStageBytes);
          TmaLoad2d(a_s(st), &maps.x, kb * kBlockK, m0, full(st));
          if constexpr (kCluster > 1) {
            // This block's share of the weight tile, into every block of the cluster.
            constexpr int kShare = C::kBlockN / kCluster;
            TmaLoad2dMulticast(b_s(st) + rank * kShare * 128, &maps.w, kb * kBlockK,
                               n0 + rank * kShare, full(st), (1u << kCluster) - 1);
          } else {
            TmaLoad2d(b_s(st), &maps.w, kb * kBlockK, n0, full(st));
          }
          if (++st == kStages) {
            st = 0;
            ++round;
          }
        }
      }
    }
  } else {
    // ------------------------------------------------------------------ consumer warpgroups
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kConsumerRegs));
    const int cw = wg - 1;
    const int warp = t / 32;
    const int lane = t % 32;
    const uint32_t out_s = smem + C::kOutOffset + cw * 2 * kOutBoxBytes;
    float acc0[64], acc1[64];
    // Frees stage st in every block of the cluster that copied into it.
    auto release = [&](int st) {
      __syncwarp();
      if (lane == 0) {
        MbarArrive(empty(st));
        if constexpr (kCluster > 1) {
#pragma unroll
          for (int r = 1; r < kCluster; ++r) MbarArriveRemote(empty(st), (rank + r) % kCluster);
        }
      }
    };

    // Cooperative: every tile of the block, rows 64 cw.. of it. Ping-pong: the block's tiles
    // j = cw, cw + 2, ... (the ring position of tile j's first stage is j * num_k_blocks).
    const int tile_step = C::kPingPong ? 2 * num_clusters : num_clusters;
    int j = C::kPingPong ? cw : 0;
    for (int tile = cluster_id + (C::kPingPong ? cw * num_clusters : 0); tile < p.num_tiles;
         tile += tile_step, j += C::kPingPong ? 2 : 1) {
      int m0, n0;
      TileAt<kCluster>(p, tile, C::kBlockN, rank, m0, n0);
      const int it0 = j * p.num_k_blocks;
      int st = it0 % kStages, round = it0 / kStages;
      int prev_st = 0;
      // Ping-pong: the main loops of the block's tiles run one at a time, in tile order. This is
      // also what makes the parity waits below valid: a warpgroup waits for round r of a stage
      // only once the other warpgroup has consumed round r - 1 of it (an mbarrier wait by parity
      // cannot tell round r from round r - 2).
      if constexpr (C::kPingPong) {
        if (j > 0) NamedBarrierSync(kOrderBarrier + cw, 256);
      }
      for (int kb = 0; kb < p.num_k_blocks; ++kb) {
        MbarWait(full(st), round & 1);
        WgmmaFence();
#pragma unroll
        for (int kk = 0; kk < kBlockK / 16; ++kk) {
          const int accumulate = kb > 0 || kk > 0;
          const uint64_t desc_b = Desc(b_s(st) + kk * 32);
          if constexpr (C::kPingPong) {
            WgmmaN128(acc0, Desc(a_s(st) + kk * 32), desc_b, accumulate);
            WgmmaN128(acc1, Desc(a_s(st) + 64 * 128 + kk * 32), desc_b, accumulate);
          } else {
            WgmmaN256(acc0, acc1, Desc(a_s(st) + cw * 64 * 128 + kk * 32), desc_b, accumulate);
          }
        }
        WgmmaCommit();
        WgmmaWait<1>();  // k step kb - 1 has completed: free its stage
        if (kb > 0) release(prev_st);
        prev_st = st;
        if (++st == kStages) {
          st = 0;
          ++round;
        }
      }
      if constexpr (C::kPingPong) {
        if (tile + num_clusters < p.num_tiles) NamedBarrierArrive(kOrderBarrier + (cw ^ 1), 256);
      }
      WgmmaWait<0>();
      RegisterFence(acc0);
      RegisterFence(acc1);
      release(prev_st);

      if constexpr ((kLab & kLabSkipEpilogue) != 0) {
        // Keeps the MMAs: ptxas drops wgmma whose results are never read.
        if (acc0[0] == 1.2345e-30f && acc1[0] == 1.2345e-30f) {
          asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(out_s), "f"(acc0[1] + acc1[1]) : "memory");
        }
      } else {
        // The previous store of this warpgroup has read the staging buffer.
        if (t == 0) BulkWaitRead();
        NamedBarrierSync(kStagingBarrier + cw, 128);
        EpilogueBox(acc0, out_s, warp, lane);
        EpilogueBox(acc1, out_s + kOutBoxBytes, warp, lane);
        FenceProxyAsync();
        NamedBarrierSync(kStagingBarrier + cw, 128);
        if (t == 0) {
          const int o0 = n0 / 2;  // output column of the tile's first gate column
          if constexpr (C::kPingPong) {
            TmaStore2d(&maps.out, out_s, o0, m0);
            TmaStore2d(&maps.out, out_s + kOutBoxBytes, o0, m0 + 64);
          } else {
            TmaStore2d(&maps.out, out_s, o0, m0 + 64 * cw);
            TmaStore2d(&maps.out, out_s + kOutBoxBytes, o0 + 64, m0 + 64 * cw);
          }
          BulkCommit();
        }
      }
    }
    if (t == 0) BulkWaitAll();
  }
  // The other block of the cluster may still arrive on this block's barriers until it is done.
  if constexpr (kCluster > 1) ClusterSync();
#else
  __trap();  // built without sm_90a code; GemmSwigluSm90DeviceOk keeps this from launching
#endif
}

// ---- weight interleave -----------------------------------------------------------------------

// dst row j of the interleaved weight from src row SrcRow(j); `units` copy units of T per row.
template <typename T>
__global__ void SwigluInterleaveKernel(const T* __restrict__ src, T* __restrict__ dst, int64_t rows,
                                       int64_t inter, int64_t units) {
  for (int64_t j = blockIdx.y; j < rows; j += gridDim.y) {
    const int64_t b = j / (2 * kSwigluBlock), r = j % (2 * kSwigluBlock);
    const int64_t src_row =
        r < kSwigluBlock ? b * kSwigluBlock + r : inter + b * kSwigluBlock + (r - kSwigluBlock);
    const T* s = src + src_row * units;
    T* d = dst + j * units;
    for (int64_t u = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; u < units;
         u += static_cast<int64_t>(gridDim.x) * blockDim.x) {
      d[u] = s[u];
    }
  }
}

template <typename T>
cudaError_t LaunchInterleave(const SwigluInterleaveArgs& a, int64_t row_bytes,
                             cudaStream_t stream) {
  constexpr int kCopyThreads = 256;
  const int64_t units = row_bytes / static_cast<int64_t>(sizeof(T));
  const int64_t rows = 2 * a.inter;
  const dim3 grid(
      static_cast<unsigned>(std::min<int64_t>(cuda::CeilDiv<int64_t>(units, kCopyThreads), 64)),
      static_cast<unsigned>(std::min<int64_t>(rows, 65535)));
  SwigluInterleaveKernel<T><<<grid, kCopyThreads, 0, stream>>>(
      static_cast<const T*>(a.src), static_cast<T*>(a.dst), rows, a.inter, units);
  return cudaGetLastError();
}

bool Aligned(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

// ---- host ----------------------------------------------------------------------------------

// A map of the bf16 matrix [rows, cols] at `base` (row stride in elements), boxes of box_cols x
// box_rows, 128-byte swizzle (box_cols * 2 must be 128).
cudaError_t EncodeMap(CUtensorMap* map, const void* base, int64_t rows, int64_t cols,
                      int64_t row_stride, int box_cols, int box_rows,
                      CUtensorMapL2promotion promotion) {
  const TensorMapEncodeTiledFn encode = TensorMapEncoder();
  if (encode == nullptr) return cudaErrorNotSupported;
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(cols),
                              static_cast<cuuint64_t>(std::max<int64_t>(rows, 1))};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(row_stride) * 2};  // bytes
  const cuuint32_t box[2] = {static_cast<cuuint32_t>(box_cols), static_cast<cuuint32_t>(box_rows)};
  const cuuint32_t elem_strides[2] = {1, 1};
  const CUresult r =
      encode(map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, const_cast<void*>(base), dims, strides, box,
             elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B, promotion,
             CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  return r == CUDA_SUCCESS ? cudaSuccess : cudaErrorInvalidValue;
}

int SmCount() {
  constexpr int kMaxDevices = 64;
  static std::atomic<int> cache[kMaxDevices] = {};
  int dev = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || dev < 0 || dev >= kMaxDevices) return 0;
  int n = cache[dev].load(std::memory_order_relaxed);
  if (n == 0) {
    if (cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) return 0;
    cache[dev].store(n, std::memory_order_relaxed);
  }
  return n;
}

template <GemmSwigluSchedule kSchedule, int kLab = 0>
cudaError_t LaunchSm90(const GemmSwigluArgs& a, cudaStream_t stream) {
  using C = Sm90Config<kSchedule>;
  if (!GemmSwigluSm90Ok(a)) return cudaErrorNotSupported;
  if (a.m == 0) return cudaSuccess;
  Problem p{};
  p.m = static_cast<int>(a.m);
  p.inter = static_cast<int>(a.inter);
  p.k = static_cast<int>(a.k);
  p.num_m_tiles = static_cast<int>(cuda::CeilDiv<int64_t>(a.m, kBlockM * C::kCluster));
  p.num_n_tiles = static_cast<int>(cuda::CeilDiv<int64_t>(2 * a.inter, C::kBlockN));
  p.num_k_blocks = static_cast<int>(cuda::CeilDiv<int64_t>(a.k, kBlockK));
  const int64_t tiles = int64_t{p.num_m_tiles} * p.num_n_tiles;
  if (tiles > INT_MAX / 2 || tiles * p.num_k_blocks > INT_MAX) return cudaErrorNotSupported;
  p.num_tiles = static_cast<int>(tiles);
  Sm90Maps maps;
  cudaError_t err = EncodeMap(&maps.x, a.x, a.m, a.k, a.ldx, kBlockK, kBlockM,
                              CU_TENSOR_MAP_L2_PROMOTION_L2_256B);
  if (err == cudaSuccess) {
    err = EncodeMap(&maps.w, a.w, 2 * a.inter, a.k, a.k, kBlockK, C::kBlockN / C::kCluster,
                    CU_TENSOR_MAP_L2_PROMOTION_L2_256B);
  }
  if (err == cudaSuccess) {
    err = EncodeMap(&maps.out, a.out, a.m, a.inter, a.ldo, kOutBox, kOutBox,
                    CU_TENSOR_MAP_L2_PROMOTION_NONE);
  }
  if (err != cudaSuccess) return err;
  const int sms = SmCount();
  if (sms <= 0) return cudaErrorInvalidDevice;
  auto* kernel = GemmSwigluSm90Kernel<kSchedule, kLab>;
  err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, C::kSmemBytes);
  if (err != cudaSuccess) return err;
  if constexpr (C::kCluster == 1) {
    const int grid = static_cast<int>(std::min<int64_t>(sms, p.num_tiles));
    kernel<<<grid, kThreads, C::kSmemBytes, stream>>>(p, maps);
    return cudaGetLastError();
  } else {
    cudaLaunchAttribute attr{};
    attr.id = cudaLaunchAttributeClusterDimension;
    attr.val.clusterDim.x = C::kCluster;
    attr.val.clusterDim.y = 1;
    attr.val.clusterDim.z = 1;
    cudaLaunchConfig_t config{};
    config.blockDim = dim3(kThreads);
    config.dynamicSmemBytes = C::kSmemBytes;
    config.stream = stream;
    config.attrs = &attr;
    config.numAttrs = 1;
    // Clusters that fit at once (a cluster's blocks share a GPC), asked once per device.
    constexpr int kMaxDevices = 64;
    static std::atomic<int> max_clusters[kMaxDevices] = {};
    int dev = 0;
    err = cudaGetDevice(&dev);
    if (err != cudaSuccess) return err;
    if (dev < 0 || dev >= kMaxDevices) return cudaErrorInvalidDevice;
    int clusters = max_clusters[dev].load(std::memory_order_relaxed);
    if (clusters == 0) {
      config.gridDim = dim3(sms / C::kCluster * C::kCluster);
      err = cudaOccupancyMaxActiveClusters(&clusters, kernel, &config);
      if (err != cudaSuccess) return err;
      if (clusters <= 0) return cudaErrorNotSupported;
      max_clusters[dev].store(clusters, std::memory_order_relaxed);
    }
    config.gridDim =
        dim3(static_cast<unsigned>(std::min<int64_t>(clusters, p.num_tiles)) * C::kCluster);
    return cudaLaunchKernelEx(&config, kernel, p, maps);
  }
}

// The schedule LaunchGemmSwigluSm90 runs without one named.
constexpr GemmSwigluSchedule kDefaultSchedule = GemmSwigluSchedule::kCooperative128x256;

}  // namespace

cudaError_t LaunchSwigluInterleave(const SwigluInterleaveArgs& a, cudaStream_t stream) {
  if (a.inter < 0 || a.k < 0) return cudaErrorInvalidValue;
  if (a.inter == 0 || a.k == 0) return cudaSuccess;
  if (a.src == nullptr || a.dst == nullptr || a.inter % kSwigluBlock != 0) {
    return cudaErrorInvalidValue;
  }
  const int64_t row_bytes = a.k * static_cast<int64_t>(DTypeSize(a.dtype));
  const bool aligned16 = Aligned(a.src, 16) && Aligned(a.dst, 16);
  if (aligned16 && row_bytes % 16 == 0) return LaunchInterleave<uint4>(a, row_bytes, stream);
  if (DTypeSize(a.dtype) == 4) return LaunchInterleave<uint32_t>(a, row_bytes, stream);
  return LaunchInterleave<uint16_t>(a, row_bytes, stream);
}

bool GemmSwigluSm90Ok(const GemmSwigluArgs& a) {
  constexpr int64_t kMax = INT_MAX;
  return a.dtype == DType::kBF16 && a.m >= 0 && a.m < kMax && a.inter > 0 &&
         a.inter % kSwigluBlock == 0 && 2 * a.inter < kMax && a.k > 0 && a.k < kMax &&
         a.k % 8 == 0 && a.ldx >= a.k && a.ldx % 8 == 0 && a.ldo >= a.inter && a.ldo % 8 == 0 &&
         a.x != nullptr && a.w != nullptr && a.out != nullptr && Aligned(a.x, 16) &&
         Aligned(a.w, 16) && Aligned(a.out, 16);
}

bool GemmSwigluSm90DeviceOk() {
  static std::atomic<int8_t> cache[kMaxCachedDevices] = {};
  return KernelRunsHere(reinterpret_cast<const void*>(GemmSwigluSm90Kernel<kDefaultSchedule>),
                        cache);
}

cudaError_t LaunchGemmSwigluSm90(const GemmSwigluArgs& a, GemmSwigluSchedule schedule,
                                 cudaStream_t stream) {
  switch (schedule) {
    case GemmSwigluSchedule::kDefault:
      return LaunchSm90<kDefaultSchedule>(a, stream);
    case GemmSwigluSchedule::kCooperative128x256:
      return LaunchSm90<GemmSwigluSchedule::kCooperative128x256>(a, stream);
    case GemmSwigluSchedule::kPingPong128x128:
      return LaunchSm90<GemmSwigluSchedule::kPingPong128x128>(a, stream);
    case GemmSwigluSchedule::kCooperativeCluster2:
      return LaunchSm90<GemmSwigluSchedule::kCooperativeCluster2>(a, stream);
  }
  return cudaErrorNotSupported;
}

cudaError_t LaunchGemmSwigluSm90MainLoopOnly(const GemmSwigluArgs& a, GemmSwigluSchedule schedule,
                                             cudaStream_t stream) {
  switch (schedule) {
    case GemmSwigluSchedule::kDefault:
      return LaunchSm90<kDefaultSchedule, kLabSkipEpilogue>(a, stream);
    case GemmSwigluSchedule::kCooperative128x256:
      return LaunchSm90<GemmSwigluSchedule::kCooperative128x256, kLabSkipEpilogue>(a, stream);
    case GemmSwigluSchedule::kPingPong128x128:
      return LaunchSm90<GemmSwigluSchedule::kPingPong128x128, kLabSkipEpilogue>(a, stream);
    case GemmSwigluSchedule::kCooperativeCluster2:
      return LaunchSm90<GemmSwigluSchedule::kCooperativeCluster2, kLabSkipEpilogue>(a, stream);
  }
  return cudaErrorNotSupported;
}

cudaError_t LaunchGemmSwigluSm90(const GemmSwigluArgs& a, cudaStream_t stream) {
  return LaunchGemmSwigluSm90(a, GemmSwigluSchedule::kDefault, stream);
}

}  // namespace sieve::kernels
