// Helpers shared by the kernel tests (tests/unit/kernels/*_test.cc) and the CUDA backend test:
// device detection and skipping, seeded random data, bf16 rounding, the per-element comparison
// of STYLE rule 18 (|got - want| <= atol + rtol |want|, NaN checks, nonzero norms, the first 10
// mismatches printed), and (with SIEVE_WITH_CUDA) an owned device buffer.
//
// The header builds with and without CUDA: GPU cases call SIEVE_SKIP_WITHOUT_GPU() first and
// keep their CUDA calls inside #if SIEVE_WITH_CUDA.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "kernels/dtype.h"

#if SIEVE_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace sieve::testing {

// True when this build has CUDA and at least one device is visible.
bool HasCudaDevice();
// Why HasCudaDevice() is false (for GTEST_SKIP messages).
std::string NoGpuReason();

#define SIEVE_SKIP_WITHOUT_GPU()                       \
  do {                                                 \
    if (!::sieve::testing::HasCudaDevice()) {          \
      GTEST_SKIP() << ::sieve::testing::NoGpuReason(); \
    }                                                  \
  } while (0)

// Seeded data (std::mt19937_64; the same seed gives the same values on every machine).
std::vector<float> RandomNormal(size_t n, uint64_t seed, float stddev = 1.f, float mean = 0.f);
std::vector<float> RandomUniform(size_t n, uint64_t seed, float lo, float hi);
std::vector<int32_t> RandomInts(size_t n, uint64_t seed, int32_t lo, int32_t hi);  // [lo, hi]

// Storage conversions with the rounding of kernels/dtype.h.
std::vector<uint16_t> ToBf16(std::span<const float> v);
std::vector<float> FromBf16(std::span<const uint16_t> v);
// v rounded to bf16 and back.
std::vector<float> RoundBf16(std::span<const float> v);
// Bytes of v stored as dtype (fp32 copies, bf16 / fp16 rounds).
std::vector<uint8_t> ToBytes(std::span<const float> v, DType dtype);
// n elements of dtype read back as floats.
std::vector<float> FromBytes(std::span<const uint8_t> bytes, DType dtype, size_t n);

struct Tolerance {
  double atol;
  double rtol;
};
// One bf16 ulp is between 2^-8 and 2^-7 of the value: a rounding flip must pass, a real error not.
constexpr Tolerance kExact{0.0, 0.0};
constexpr Tolerance kBf16RoundingTol{1e-5, 1.0 / 128};
constexpr Tolerance kF32Tol{1e-6, 1e-5};

// A bf16 GEMM test case (kernels/gemm.h) with row strides ldx >= k and ldy >= n: x [m, ldx]
// and w [n, k] (stddev 0.05) in bf16, y [m, ldy] in y_dtype, each drawn from seeds of the shape.
struct GemmOperands {
  std::vector<uint8_t> x, w, y;
};
GemmOperands MakeGemmOperands(int64_t m, int64_t n, int64_t k, int64_t ldx, int64_t ldy,
                              DType y_dtype);
// A GPU GEMM against GemmRef on those operands: the output rounding plus k * 2^-24 of the
// typical magnitude sqrt(k) |x| |w| (the accumulation orders differ).
Tolerance GemmTolerance(int64_t k, DType y_dtype);

double Norm(std::span<const float> v);

// Every element within tol (equal infinities match; any NaN fails), and, when require_nonzero,
// both norms > 0. Prints the first 10 mismatches and the worst one.
::testing::AssertionResult AllClose(std::span<const float> got, std::span<const float> want,
                                    Tolerance tol, const std::string& what,
                                    bool require_nonzero = true);

// Exact equality of integer arrays, printing the first 10 differences.
::testing::AssertionResult AllEqual(std::span<const int32_t> got, std::span<const int32_t> want,
                                    const std::string& what);

#if SIEVE_WITH_CUDA
// Owned device memory for tests (STYLE rule 7). Failures are reported as test failures.
class DeviceMemory {
 public:
  DeviceMemory() = default;
  explicit DeviceMemory(size_t bytes);
  DeviceMemory(DeviceMemory&& other) noexcept;
  DeviceMemory& operator=(DeviceMemory&& other) noexcept;
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;
  ~DeviceMemory();

  void* get() const { return ptr_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }
  size_t bytes() const { return bytes_; }

  // Synchronous copies (cudaMemcpy).
  void Upload(const void* src, size_t bytes, size_t offset = 0);
  void Download(void* dst, size_t bytes, size_t offset = 0) const;

  template <typename T>
  static DeviceMemory From(std::span<const T> host) {
    DeviceMemory m(std::max<size_t>(1, host.size_bytes()));
    m.Upload(host.data(), host.size_bytes());
    return m;
  }
  template <typename T>
  static DeviceMemory From(const std::vector<T>& host) {
    return From(std::span<const T>(host));
  }
  template <typename T>
  std::vector<T> ToVector(size_t n) const {
    std::vector<T> out(n);
    Download(out.data(), n * sizeof(T));
    return out;
  }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// cudaDeviceSynchronize + cudaGetLastError as an assertion.
::testing::AssertionResult DeviceSync();
#endif

}  // namespace sieve::testing
