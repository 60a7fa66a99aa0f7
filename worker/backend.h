// Backend: where tensors live and how the kernels run — the CPU references or the CUDA kernels.
//
// Everything above this interface (the transformer forward, the pipeline stages, KV caches) is
// written once. Each op method takes the op's argument struct from kernels/ with pointers into
// this backend's memory and runs it: CpuBackend calls <Op>Ref, CudaBackend calls Launch<Op> on its
// one stream. Work is ordered on that stream; nothing synchronizes with the host except
// Synchronize() and the Copy*ToHost calls, which the pipeline places at stage boundaries.
//
// Variants: CpuBackend (worker/cpu_backend.cc, always built; fp32 activations and weights,
// OpenBLAS GEMM, OpenMP loops), CudaBackend (worker/cuda_backend.cc, SIEVE_WITH_CUDA; bf16
// activations and weights, fp32 residual stream, cuBLASLt GEMM).
//
// Tested through every kernel test (tests/unit/kernels/*) and the forward parity test
// (tests/unit/worker/transformer_test.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "comm/status.h"
#include "kernels/attention.h"
#include "kernels/dtype.h"
#include "kernels/embedding.h"
#include "kernels/gemm.h"
#include "kernels/gemm_swiglu.h"
#include "kernels/kv_gather.h"
#include "kernels/logprobs.h"
#include "kernels/random_init.h"
#include "kernels/rms_norm.h"
#include "kernels/rope.h"
#include "kernels/sampling.h"
#include "kernels/silu_mul.h"
#include "kernels/topk.h"
#include "kernels/window_scores.h"

namespace sieve::worker {

enum class DeviceKind { kCpu, kCuda };

// Owned backend memory (host memory for the CPU backend). Movable, not copyable.
class DeviceBuffer {
 public:
  using Deleter = void (*)(void*);
  DeviceBuffer() = default;
  DeviceBuffer(void* ptr, size_t bytes, Deleter deleter)
      : ptr_(ptr), bytes_(bytes), deleter_(deleter) {}
  DeviceBuffer(DeviceBuffer&& other) noexcept { *this = std::move(other); }
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      Reset();
      ptr_ = std::exchange(other.ptr_, nullptr);
      bytes_ = std::exchange(other.bytes_, 0);
      deleter_ = std::exchange(other.deleter_, nullptr);
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { Reset(); }

  void* get() const { return ptr_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  size_t bytes() const { return bytes_; }
  explicit operator bool() const { return ptr_ != nullptr; }

  void Reset() {
    if (ptr_ && deleter_) deleter_(ptr_);
    ptr_ = nullptr;
    bytes_ = 0;
  }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
  Deleter deleter_ = nullptr;
};

// Device memory held by a backend's allocations (the CUDA backend; zeros on the CPU).
struct MemoryUsage {
  size_t live_bytes = 0;
  size_t peak_bytes = 0;  // since the last ResetPeakMemory
};

class Backend {
 public:
  virtual ~Backend() = default;

  virtual DeviceKind kind() const = 0;
  // "cpu (OpenBLAS, 2 threads)" or "cuda:0 NVIDIA H100 80GB HBM3 (79.2 GiB)".
  virtual std::string Describe() const = 0;
  // The element type of weights and activations on this backend (kF32 on CPU, kBF16 on CUDA).
  virtual DType compute_dtype() const = 0;
  // The element type of the residual stream (BackendOptions::residual_dtype).
  virtual DType residual_dtype() const { return DType::kF32; }

  // Memory. Allocate returns ResourceExhausted (never aborts) when memory is short.
  virtual StatusOr<DeviceBuffer> Allocate(size_t bytes) = 0;
  virtual size_t FreeMemoryBytes() const = 0;
  // Copies are ordered with the kernels; host memory must stay valid until Synchronize().
  virtual void CopyToDevice(void* dst, const void* src, size_t bytes) = 0;
  virtual void CopyToHost(void* dst, const void* src, size_t bytes) = 0;
  virtual void CopyOnDevice(void* dst, const void* src, size_t bytes) = 0;
  virtual void Fill(void* dst, uint8_t byte, size_t bytes) = 0;
  // Waits for all queued work; returns an Internal error naming the device if any failed.
  virtual Status Synchronize() = 0;
  // The backend's work queue for libraries that enqueue on it (NCCL): the cudaStream_t of the
  // CUDA backend, nullptr on the CPU.
  virtual void* native_stream() const { return nullptr; }
  virtual MemoryUsage Memory() const { return {}; }
  virtual void ResetPeakMemory() {}

  // Ops (kernels/*.h). Pointers in the args point into this backend's memory.
  virtual void Embedding(const kernels::EmbeddingArgs& args) = 0;
  virtual void RmsNorm(const kernels::RmsNormArgs& args) = 0;
  virtual void Rope(const kernels::RopeArgs& args) = 0;
  virtual void Gemm(const kernels::GemmArgs& args) = 0;
  // Picks the fastest GEMM algorithm for args' shape class by timing the candidates once (the
  // CUDA backend: CublasLtGemm::Tune; a no-op elsewhere and for a class already tuned). Runs
  // the product, so args.y is overwritten; waits for the device. Not for inside a forward.
  virtual void TuneGemm(const kernels::GemmArgs& args) { (void)args; }
  // Whether TuneGemm would time anything for args (tuning on, and args' class not tuned yet).
  virtual bool GemmNeedsTuning(const kernels::GemmArgs& args) const {
    (void)args;
    return false;
  }
  virtual void SiluMul(const kernels::SiluMulArgs& args) = 0;
  // The gate-up projection with SwiGLU in its epilogue (kernels/gemm_swiglu.h), when this
  // backend has a kernel for `args` (args.w in the swiglu_block() layout): true once queued;
  // false, with nothing done, otherwise (the caller runs Gemm then SiluMul).
  virtual bool GemmSwiglu(const kernels::GemmSwigluArgs& args) {
    (void)args;
    return false;
  }
  // The gate_up weight layout GemmSwiglu needs (SiluMulArgs::block): kSwigluBlock on a GPU that
  // runs the fused kernel, 0 (plain) elsewhere.
  virtual int64_t swiglu_block() const { return 0; }
  virtual void Attention(const kernels::AttentionArgs& args) = 0;
  virtual void WindowScores(const kernels::WindowScoresArgs& args) = 0;
  virtual void MaxPool1d(const kernels::MaxPool1dArgs& args) = 0;
  virtual void TopkSelect(const kernels::TopkSelectArgs& args) = 0;
  virtual void KvGather(const kernels::KvGatherArgs& args) = 0;
  virtual void LogSoftmaxGather(const kernels::LogSoftmaxGatherArgs& args) = 0;
  virtual void Sample(const kernels::SampleArgs& args) = 0;
  virtual void RandomInit(const kernels::RandomInitArgs& args) = 0;
};

struct BackendOptions {
  // The element type of the residual stream. Unset: the compute dtype, so fp32 on the CPU and
  // bf16 on CUDA, as Hugging Face and vLLM keep it in a bf16 model (the O and down projections
  // add into it in their GEMM epilogue, so the stream is read and written once per layer less
  // than an fp32 stream beside bf16 activations). kF32 on CUDA keeps more precision and costs
  // ~0.1 s per 128K prefill of an 8B model. The CPU backend supports kF32 only.
  std::optional<DType> residual_dtype;
  // Whether TuneGemm times the GEMM candidates (CUDA) instead of keeping cuBLASLt's heuristic
  // choice. Off by default: on the H100 the 128K prefill measured no faster with it (3.303 s
  // against 3.291-3.297 s, alternating runs of one call, bench/RESULTS.md section 1), while the
  // first prefill of each size class pays ~1.5 s for the timing.
  bool tune_gemms = false;
};

std::unique_ptr<Backend> MakeCpuBackend();

// The CUDA backend on `device`; Unavailable when built without CUDA or no GPU is present.
StatusOr<std::unique_ptr<Backend>> MakeCudaBackend(int device, const BackendOptions& options = {});

// Number of CUDA devices visible (0 without CUDA).
int CudaDeviceCount();

// "cpu", "cuda" or "auto" (cuda when a GPU is present).
// InvalidArgument for an unknown name or options the backend cannot honour.
StatusOr<std::unique_ptr<Backend>> MakeBackend(std::string_view device_name, int device_index,
                                               const BackendOptions& options = {});

}  // namespace sieve::worker
