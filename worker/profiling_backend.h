// ProfilingBackend: a Backend decorator that times every op by kind, for per-stage breakdowns
// (sieve-bench). When enabled it synchronizes around each op, so the breakdown comes from a
// separate run from the headline timings; when disabled it only forwards.
//
//   auto backend = MakeProfilingBackend(MakeCpuBackend());
//   ... run with profiler->Enable(true) ...
//   for (const OpTime& t : profiler->Take()) ...   // "gemm", "attention", "norm", ...
//
// Tested by tests/unit/worker/profiling_backend_test.cc.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "worker/backend.h"

namespace sieve::worker {

struct OpTime {
  std::string op;
  double seconds = 0;
  int64_t calls = 0;
};

class ProfilingBackend final : public Backend {
 public:
  explicit ProfilingBackend(std::unique_ptr<Backend> inner) : inner_(std::move(inner)) {}

  void Enable(bool on) { enabled_ = on; }
  // Accumulated times since the last Take, largest first.
  std::vector<OpTime> Take();
  Backend& inner() { return *inner_; }

  DeviceKind kind() const override { return inner_->kind(); }
  std::string Describe() const override { return inner_->Describe(); }
  DType compute_dtype() const override { return inner_->compute_dtype(); }
  DType residual_dtype() const override { return inner_->residual_dtype(); }
  StatusOr<DeviceBuffer> Allocate(size_t bytes) override { return inner_->Allocate(bytes); }
  size_t FreeMemoryBytes() const override { return inner_->FreeMemoryBytes(); }
  void CopyToDevice(void* d, const void* s, size_t n) override;
  void CopyToHost(void* d, const void* s, size_t n) override;
  void CopyOnDevice(void* d, const void* s, size_t n) override;
  void Fill(void* d, uint8_t b, size_t n) override { inner_->Fill(d, b, n); }
  Status Synchronize() override { return inner_->Synchronize(); }
  void* native_stream() const override { return inner_->native_stream(); }
  MemoryUsage Memory() const override { return inner_->Memory(); }
  void ResetPeakMemory() override { inner_->ResetPeakMemory(); }

  void Embedding(const kernels::EmbeddingArgs& a) override;
  void RmsNorm(const kernels::RmsNormArgs& a) override;
  void Rope(const kernels::RopeArgs& a) override;
  void Gemm(const kernels::GemmArgs& a) override;
  void TuneGemm(const kernels::GemmArgs& a) override { inner_->TuneGemm(a); }
  bool GemmNeedsTuning(const kernels::GemmArgs& a) const override {
    return inner_->GemmNeedsTuning(a);
  }
  void SiluMul(const kernels::SiluMulArgs& a) override;
  bool GemmSwiglu(const kernels::GemmSwigluArgs& a) override;
  int64_t swiglu_block() const override { return inner_->swiglu_block(); }
  void Attention(const kernels::AttentionArgs& a) override;
  void WindowScores(const kernels::WindowScoresArgs& a) override;
  void MaxPool1d(const kernels::MaxPool1dArgs& a) override;
  void TopkSelect(const kernels::TopkSelectArgs& a) override;
  void KvGather(const kernels::KvGatherArgs& a) override;
  void LogSoftmaxGather(const kernels::LogSoftmaxGatherArgs& a) override;
  void Sample(const kernels::SampleArgs& a) override;
  void RandomInit(const kernels::RandomInitArgs& a) override { inner_->RandomInit(a); }

 private:
  template <typename Fn>
  void Timed(const char* op, Fn&& fn);

  std::unique_ptr<Backend> inner_;
  bool enabled_ = false;
  std::map<std::string, OpTime> times_;
};

}  // namespace sieve::worker
