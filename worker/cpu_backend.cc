// CpuBackend: host memory, the CPU references of kernels/ref, fp32 everywhere. Also the backend
// factory (MakeBackend), which picks CUDA when asked for "auto" and a GPU is present.
#include <omp.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>

#include "kernels/cpu/attention_cpu.h"
#include "worker/backend.h"

namespace sieve::worker {
namespace {

void FreeHost(void* p) { std::free(p); }

class CpuBackend final : public Backend {
 public:
  DeviceKind kind() const override { return DeviceKind::kCpu; }
  std::string Describe() const override {
    return StrFormat("cpu (%s GEMM, %d threads)", kernels::GemmRefImplementation(),
                     omp_get_max_threads());
  }
  DType compute_dtype() const override { return DType::kF32; }

  StatusOr<DeviceBuffer> Allocate(size_t bytes) override {
    const size_t rounded = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded);
    if (!p) {
      return Status::ResourceExhausted(
          StrFormat("cpu: cannot allocate %.3f GiB of host memory", bytes / double(1 << 30)));
    }
    return DeviceBuffer(p, bytes, &FreeHost);
  }
  size_t FreeMemoryBytes() const override {
    std::ifstream meminfo("/proc/meminfo");
    std::string key;
    size_t kib = 0;
    std::string unit;
    while (meminfo >> key >> kib >> unit) {
      if (key == "MemAvailable:") return kib * 1024;
    }
    return size_t{8} << 30;
  }
  void CopyToDevice(void* dst, const void* src, size_t bytes) override {
    if (bytes) std::memcpy(dst, src, bytes);
  }
  void CopyToHost(void* dst, const void* src, size_t bytes) override {
    if (bytes) std::memcpy(dst, src, bytes);
  }
  void CopyOnDevice(void* dst, const void* src, size_t bytes) override {
    if (bytes) std::memmove(dst, src, bytes);
  }
  void Fill(void* dst, uint8_t byte, size_t bytes) override { std::memset(dst, byte, bytes); }
  Status Synchronize() override { return Status::Ok(); }

  void Embedding(const kernels::EmbeddingArgs& a) override { kernels::EmbeddingRef(a); }
  void RmsNorm(const kernels::RmsNormArgs& a) override { kernels::RmsNormRef(a); }
  void Rope(const kernels::RopeArgs& a) override { kernels::RopeRef(a); }
  void Gemm(const kernels::GemmArgs& a) override { kernels::GemmRef(a); }
  void SiluMul(const kernels::SiluMulArgs& a) override { kernels::SiluMulRef(a); }
  void Attention(const kernels::AttentionArgs& a) override { kernels::AttentionCpu(a); }
  void WindowScores(const kernels::WindowScoresArgs& a) override { kernels::WindowScoresRef(a); }
  void MaxPool1d(const kernels::MaxPool1dArgs& a) override { kernels::MaxPool1dRef(a); }
  void TopkSelect(const kernels::TopkSelectArgs& a) override { kernels::TopkSelectRef(a); }
  void KvGather(const kernels::KvGatherArgs& a) override { kernels::KvGatherRef(a); }
  void LogSoftmaxGather(const kernels::LogSoftmaxGatherArgs& a) override {
    kernels::LogSoftmaxGatherRef(a);
  }
  void Sample(const kernels::SampleArgs& a) override { kernels::SampleRef(a); }
  void RandomInit(const kernels::RandomInitArgs& a) override { kernels::RandomInitRef(a); }
};

}  // namespace

std::unique_ptr<Backend> MakeCpuBackend() { return std::make_unique<CpuBackend>(); }

#if !SIEVE_WITH_CUDA
StatusOr<std::unique_ptr<Backend>> MakeCudaBackend(int, const BackendOptions&) {
  return Status::Unavailable("this build of Sieve has no CUDA backend (SIEVE_ENABLE_CUDA=OFF)");
}
int CudaDeviceCount() { return 0; }
#endif

StatusOr<std::unique_ptr<Backend>> MakeBackend(std::string_view device_name, int device_index,
                                               const BackendOptions& options) {
  const bool cuda = device_name == "cuda" || (device_name == "auto" && CudaDeviceCount() > 0);
  if (cuda) return MakeCudaBackend(device_index, options);
  if (device_name == "cpu" || device_name == "auto") {
    if (options.residual_dtype && *options.residual_dtype != DType::kF32) {
      return Status::InvalidArgument(
          StrFormat("the CPU backend keeps its residual stream in f32 (asked for %s)",
                    DTypeName(*options.residual_dtype).data()));
    }
    return MakeCpuBackend();
  }
  return Status::InvalidArgument(StrFormat("unknown device '%.*s' (expected cpu, cuda or auto)",
                                           static_cast<int>(device_name.size()),
                                           device_name.data()));
}

}  // namespace sieve::worker
