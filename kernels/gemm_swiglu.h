// Gate-up projection with the SwiGLU activation fused into the GEMM's epilogue:
//   g = x · W_gateᵀ,  u = x · W_upᵀ,  out = silu(g) * u,  silu(v) = v / (1 + exp(-v))
// i.e. what GemmArgs (kernels/gemm.h) on the fused gate_up weight followed by SiluMul
// (kernels/silu_mul.h) compute, without writing the [m, 2 * inter] gate-up product to memory.
//
// The weight is stored interleaved (SwigluInterleave below): blocks of kSwigluBlock gate rows
// alternate with the kSwigluBlock up rows of the same intermediate columns, so one N tile of the
// GEMM holds matching gate and up columns and the epilogue finds g and u in the same thread.
//
// Numerics: bf16 operands, fp32 accumulation; g and u stay in fp32 (they are not rounded to bf16
// as the unfused path's [m, 2 * inter] bf16 product rounds them) and out is rounded once to the
// dtype. The unfused path (GemmRef to bf16, then SiluMulRef) therefore differs from this op by
// up to about two bf16 roundings relative to |out| (plus the accumulation-order error); the
// reference below keeps g and u in fp32 like the kernel.
//
// CPU reference: kernels/ref/gemm_swiglu_ref.cc (GemmSwigluRef, SwigluInterleaveRef; any dtype).
// CUDA: kernels/gemm_swiglu_sm90.cu (Hopper wgmma + TMA, bf16 only; LaunchGemmSwigluSm90) and
// LaunchSwigluInterleave. Test: tests/unit/kernels/gemm_swiglu_test.cc. Bench (against cuBLASLt
// gate-up + LaunchSiluMul): tests/bench/gemm_swiglu_bench.cc (sieve-gemm-swiglu-bench).
#pragma once

#include <cstdint>

#include "kernels/cuda_decl.h"
#include "kernels/dtype.h"

namespace sieve::kernels {

// Rows per gate (and per up) block of the interleaved weight. 64 lets either schedule of the
// sm90 kernel pair its gate and up columns (a 128-wide N tile is one block, a 256-wide tile two).
inline constexpr int kSwigluBlock = 64;

struct GemmSwigluArgs {
  const void* x = nullptr;  // [m, k], row stride ldx elements
  const void* w = nullptr;  // [2 * inter, k], row stride k, interleaved: rows 2 B b .. 2 B b + B -
                            // 1 are gate rows B b .. B b + B - 1, the next B rows the up rows of
                            // the same range (B = kSwigluBlock); see SwigluInterleaveArgs
  void* out = nullptr;      // [m, inter], row stride ldo elements
  int64_t m = 0;
  int64_t inter = 0;  // intermediate size (Llama-3.1-8B: 14336); a multiple of kSwigluBlock
  int64_t k = 0;      // hidden size (4096)
  int64_t ldx = 0;    // >= k
  int64_t ldo = 0;    // >= inter
  DType dtype = DType::kBF16;  // of x, w and out alike
};

// out = silu(x · W_gateᵀ) * (x · W_upᵀ) with fp32 dot products (blocked partial sums) and fp32 g,
// u; one rounding to the dtype at the store. m == 0 is a no-op. Host memory.
void GemmSwigluRef(const GemmSwigluArgs& args);

// Permutes a standard fused gate_up weight ([gate rows; up rows], as kernels/silu_mul.h lays the
// gate-up product out) into the interleaved layout GemmSwigluArgs::w expects:
//   dst row 2 B b + r     = src row B b + r          (gate), r < B
//   dst row 2 B b + B + r = src row inter + B b + r  (up)
// Rows are copied whole (k elements, no rounding). inter must be a multiple of kSwigluBlock.
struct SwigluInterleaveArgs {
  const void* src = nullptr;  // [2 * inter, k]: gate rows, then up rows
  void* dst = nullptr;        // [2 * inter, k]: interleaved; must not overlap src
  int64_t inter = 0;
  int64_t k = 0;
  DType dtype = DType::kBF16;
};

void SwigluInterleaveRef(const SwigluInterleaveArgs& args);

#if SIEVE_WITH_CUDA
// Async on `stream`; 16-byte copies when k * elem is a multiple of 16 and both pointers are
// 16-byte aligned, else element copies. cudaErrorInvalidValue when inter is not a multiple of
// kSwigluBlock or a pointer is null (with inter, k > 0).
cudaError_t LaunchSwigluInterleave(const SwigluInterleaveArgs& args, cudaStream_t stream);

// True when the arguments alone allow the sm90 kernel: bf16; inter > 0 a multiple of
// kSwigluBlock; k > 0, k, ldx and ldo multiples of 8 (16-byte rows for the tensor maps); x, w,
// out 16-byte aligned; ldx >= k, ldo >= inter; m, inter and k below 2^31.
bool GemmSwigluSm90Ok(const GemmSwigluArgs& args);

// True when the current device is compute capability 9.0, this binary carries sm_90a code for
// the kernel and the driver provides cuTensorMapEncodeTiled. Cached per device.
bool GemmSwigluSm90DeviceOk();

// Work schedules of the sm90 kernel (see kernels/gemm_swiglu_sm90.cu). kDefault is what
// LaunchGemmSwigluSm90 runs; the others are exposed for the test and the bench.
enum class GemmSwigluSchedule : uint8_t {
  kDefault = 0,
  kCooperative128x256 = 1,   // both consumer warpgroups on one 128 x 256 tile (64 rows each)
  kPingPong128x128 = 2,      // each consumer warpgroup its own 128 x 128 tile, staggered
  kCooperativeCluster2 = 3,  // kCooperative128x256 in clusters of 2 blocks (adjacent row tiles)
                             // that share each weight tile (TMA multicast: half each)
};

// Launches the fused kernel (persistent grid, one block per SM; async on `stream`, no workspace,
// no synchronization). Encodes three tensor maps on the host per call. m == 0 is a no-op.
// cudaErrorNotSupported when !GemmSwigluSm90Ok(args); the caller checks GemmSwigluSm90DeviceOk.
cudaError_t LaunchGemmSwigluSm90(const GemmSwigluArgs& args, cudaStream_t stream);
cudaError_t LaunchGemmSwigluSm90(const GemmSwigluArgs& args, GemmSwigluSchedule schedule,
                                 cudaStream_t stream);

// Diagnostic for the bench only, WRONG RESULTS: the same kernel without its epilogue (no SiLU,
// nothing stored), to time the main loop alone.
cudaError_t LaunchGemmSwigluSm90MainLoopOnly(const GemmSwigluArgs& args,
                                             GemmSwigluSchedule schedule, cudaStream_t stream);
#endif

}  // namespace sieve::kernels
