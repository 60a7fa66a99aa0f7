#include "worker/profiling_backend.h"

#include <algorithm>
#include <chrono>

namespace sieve::worker {

template <typename Fn>
void ProfilingBackend::Timed(const char* op, Fn&& fn) {
  if (!enabled_) {
    fn();
    return;
  }
  (void)inner_->Synchronize();
  const auto t0 = std::chrono::steady_clock::now();
  fn();
  (void)inner_->Synchronize();
  OpTime& t = times_[op];
  t.op = op;
  t.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ++t.calls;
}

std::vector<OpTime> ProfilingBackend::Take() {
  std::vector<OpTime> out;
  for (auto& [name, t] : times_) out.push_back(t);
  times_.clear();
  std::sort(out.begin(), out.end(),
            [](const OpTime& a, const OpTime& b) { return a.seconds > b.seconds; });
  return out;
}

void ProfilingBackend::CopyToDevice(void* d, const void* s, size_t n) {
  Timed("copy", [&] { inner_->CopyToDevice(d, s, n); });
}
void ProfilingBackend::CopyToHost(void* d, const void* s, size_t n) {
  Timed("copy", [&] { inner_->CopyToHost(d, s, n); });
}
void ProfilingBackend::CopyOnDevice(void* d, const void* s, size_t n) {
  Timed("copy", [&] { inner_->CopyOnDevice(d, s, n); });
}
void ProfilingBackend::Embedding(const kernels::EmbeddingArgs& a) {
  Timed("embedding", [&] { inner_->Embedding(a); });
}
void ProfilingBackend::RmsNorm(const kernels::RmsNormArgs& a) {
  Timed("norm", [&] { inner_->RmsNorm(a); });
}
void ProfilingBackend::Rope(const kernels::RopeArgs& a) {
  Timed("rope", [&] { inner_->Rope(a); });
}
void ProfilingBackend::Gemm(const kernels::GemmArgs& a) {
  Timed("gemm", [&] { inner_->Gemm(a); });
}
bool ProfilingBackend::GemmSwiglu(const kernels::GemmSwigluArgs& a) {
  bool ran = false;
  Timed("gemm_swiglu", [&] { ran = inner_->GemmSwiglu(a); });
  return ran;
}
void ProfilingBackend::SiluMul(const kernels::SiluMulArgs& a) {
  Timed("silu_mul", [&] { inner_->SiluMul(a); });
}
void ProfilingBackend::Attention(const kernels::AttentionArgs& a) {
  Timed("attention", [&] { inner_->Attention(a); });
}
void ProfilingBackend::WindowScores(const kernels::WindowScoresArgs& a) {
  Timed("scoring", [&] { inner_->WindowScores(a); });
}
void ProfilingBackend::MaxPool1d(const kernels::MaxPool1dArgs& a) {
  Timed("scoring", [&] { inner_->MaxPool1d(a); });
}
void ProfilingBackend::TopkSelect(const kernels::TopkSelectArgs& a) {
  Timed("scoring", [&] { inner_->TopkSelect(a); });
}
void ProfilingBackend::KvGather(const kernels::KvGatherArgs& a) {
  Timed("kv_gather", [&] { inner_->KvGather(a); });
}
void ProfilingBackend::LogSoftmaxGather(const kernels::LogSoftmaxGatherArgs& a) {
  Timed("lm_head_nll", [&] { inner_->LogSoftmaxGather(a); });
}
void ProfilingBackend::Sample(const kernels::SampleArgs& a) {
  Timed("sample", [&] { inner_->Sample(a); });
}

}  // namespace sieve::worker
