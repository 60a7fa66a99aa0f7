// What the kernel benchmarks share (tests/bench/*_bench.cc): owned device memory, random bf16
// fill on the GPU, and the timing method of tests/bench/METRICS.md — warm-ups, then repetitions
// each after a write that evicts L2, bracketed by CUDA events on the default stream.
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <vector>

#include "kernels/cuda_check.h"
#include "kernels/random_init.h"

namespace sieve::bench {

// Owned device memory.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) {
    SIEVE_CUDA_CHECK(cudaMalloc(&ptr_, std::max<size_t>(bytes, 1)));
  }
  ~DeviceBuffer() { cudaFree(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  template <typename T = void>
  T* get() const {
    return static_cast<T*>(ptr_);
  }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// n bf16 values ~ N(0, stddev^2) from (seed, stream) (kernels/random_init.h).
inline void FillRandomBf16(void* p, int64_t n, uint64_t seed, uint64_t stream, float stddev) {
  SIEVE_CUDA_CHECK(kernels::LaunchRandomInit({.out = p,
                                              .dtype = DType::kBF16,
                                              .n = n,
                                              .seed = seed,
                                              .stream = stream,
                                              .mean = 0.f,
                                              .stddev = stddev,
                                              .constant = false},
                                             nullptr));
}

struct Timing {
  double median_ms = 0;
  double min_ms = 0;
};

// Runs `run` 3 times, then `reps` times, each after overwriting `flush` (sized to evict L2).
inline Timing TimeFlushed(const std::function<void()>& run, const DeviceBuffer& flush, int reps) {
  cudaEvent_t start = nullptr, stop = nullptr;
  SIEVE_CUDA_CHECK(cudaEventCreate(&start));
  SIEVE_CUDA_CHECK(cudaEventCreate(&stop));
  for (int i = 0; i < 3; ++i) run();
  std::vector<float> ms(reps);
  for (int i = 0; i < reps; ++i) {
    SIEVE_CUDA_CHECK(cudaMemsetAsync(flush.get(), i & 0xff, flush.bytes(), nullptr));
    SIEVE_CUDA_CHECK(cudaEventRecord(start, nullptr));
    run();
    SIEVE_CUDA_CHECK(cudaEventRecord(stop, nullptr));
    SIEVE_CUDA_CHECK(cudaEventSynchronize(stop));
    SIEVE_CUDA_CHECK(cudaEventElapsedTime(&ms[i], start, stop));
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(ms.begin(), ms.end());
  return {.median_ms = ms[ms.size() / 2], .min_ms = ms.front()};
}

}  // namespace sieve::bench
