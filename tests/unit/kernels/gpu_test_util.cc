// Helpers shared by the kernel tests; see gpu_test_util.h.
#include "tests/unit/kernels/gpu_test_util.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <sstream>
#include <utility>

namespace sieve::testing {

bool HasCudaDevice() {
#if SIEVE_WITH_CUDA
  static const bool has = [] {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
      cudaGetLastError();
      return false;
    }
    return count > 0;
  }();
  return has;
#else
  return false;
#endif
}

std::string NoGpuReason() {
#if SIEVE_WITH_CUDA
  return "no CUDA device visible: GPU case skipped (the CPU-reference cases still ran)";
#else
  return "built with SIEVE_ENABLE_CUDA=OFF: GPU case skipped";
#endif
}

std::vector<float> RandomNormal(size_t n, uint64_t seed, float stddev, float mean) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(mean, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

std::vector<float> RandomUniform(size_t n, uint64_t seed, float lo, float hi) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

std::vector<int32_t> RandomInts(size_t n, uint64_t seed, int32_t lo, int32_t hi) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> dist(lo, hi);
  std::vector<int32_t> v(n);
  for (int32_t& x : v) x = dist(rng);
  return v;
}

std::vector<uint16_t> ToBf16(std::span<const float> v) {
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = FloatToBF16(v[i]);
  return out;
}

std::vector<float> FromBf16(std::span<const uint16_t> v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = BF16ToFloat(v[i]);
  return out;
}

std::vector<float> RoundBf16(std::span<const float> v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = BF16ToFloat(FloatToBF16(v[i]));
  return out;
}

std::vector<uint8_t> ToBytes(std::span<const float> v, DType dtype) {
  std::vector<uint8_t> out(v.size() * DTypeSize(dtype));
  for (size_t i = 0; i < v.size(); ++i) StoreFromFloat(out.data(), dtype, i, v[i]);
  return out;
}

std::vector<float> FromBytes(std::span<const uint8_t> bytes, DType dtype, size_t n) {
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = LoadAsFloat(bytes.data(), dtype, i);
  return out;
}

GemmOperands MakeGemmOperands(int64_t m, int64_t n, int64_t k, int64_t ldx, int64_t ldy,
                              DType y_dtype) {
  return {.x = ToBytes(RandomNormal(m * ldx, m + n + k), DType::kBF16),
          .w = ToBytes(RandomNormal(n * k, n * 7 + k, 0.05f), DType::kBF16),
          .y = ToBytes(RandomNormal(m * ldy, 9), y_dtype)};
}

Tolerance GemmTolerance(int64_t k, DType y_dtype) {
  const double accum = double(k) * std::pow(2.0, -24) * std::sqrt(double(k)) * 0.05 * 4;
  return y_dtype == DType::kBF16 ? Tolerance{1e-4 + accum, 1.0 / 128}
                                 : Tolerance{1e-5 + accum, 1e-5};
}

double Norm(std::span<const float> v) {
  double s = 0;
  for (float x : v) {
    if (std::isfinite(x)) s += double(x) * double(x);
  }
  return std::sqrt(s);
}

::testing::AssertionResult AllClose(std::span<const float> got, std::span<const float> want,
                                    Tolerance tol, const std::string& what, bool require_nonzero) {
  if (got.size() != want.size()) {
    return ::testing::AssertionFailure()
           << what << ": size " << got.size() << " vs expected " << want.size();
  }
  std::ostringstream msg;
  size_t bad = 0, nan_count = 0;
  double worst = 0;
  size_t worst_i = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], w = want[i];
    bool ok;
    if (std::isnan(g) || std::isnan(w)) {
      ok = false;
      ++nan_count;
    } else if (std::isinf(g) || std::isinf(w)) {
      ok = g == w;
    } else {
      const double diff = std::abs(g - w);
      const double limit = tol.atol + tol.rtol * std::abs(w);
      ok = diff <= limit;
      const double excess = diff - limit;
      if (!ok && excess > worst) {
        worst = excess;
        worst_i = i;
      }
    }
    if (!ok) {
      if (bad < 10) msg << "\n  [" << i << "] got " << got[i] << " expected " << want[i];
      ++bad;
    }
  }
  if (bad > 0) {
    return ::testing::AssertionFailure()
           << what << ": " << bad << " of " << got.size() << " elements outside atol " << tol.atol
           << " + rtol " << tol.rtol << " (" << nan_count << " NaN); worst at [" << worst_i
           << "] got " << got[worst_i] << " expected " << want[worst_i] << msg.str();
  }
  if (require_nonzero && (Norm(got) <= 0 || Norm(want) <= 0)) {
    return ::testing::AssertionFailure()
           << what << ": all-zero result (norm got " << Norm(got) << ", expected " << Norm(want)
           << "): the comparison proves nothing";
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult AllEqual(std::span<const int32_t> got, std::span<const int32_t> want,
                                    const std::string& what) {
  if (got.size() != want.size()) {
    return ::testing::AssertionFailure()
           << what << ": size " << got.size() << " vs expected " << want.size();
  }
  std::ostringstream msg;
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i] != want[i]) {
      if (bad < 10) msg << "\n  [" << i << "] got " << got[i] << " expected " << want[i];
      ++bad;
    }
  }
  if (bad > 0) {
    return ::testing::AssertionFailure()
           << what << ": " << bad << " of " << got.size() << " differ" << msg.str();
  }
  return ::testing::AssertionSuccess();
}

#if SIEVE_WITH_CUDA
DeviceMemory::DeviceMemory(size_t bytes) : bytes_(bytes) {
  const cudaError_t err = cudaMalloc(&ptr_, std::max<size_t>(bytes, 1));
  if (err != cudaSuccess) {
    ADD_FAILURE() << "cudaMalloc(" << bytes << "): " << cudaGetErrorString(err);
    cudaGetLastError();
    ptr_ = nullptr;
    bytes_ = 0;
  }
}

DeviceMemory::DeviceMemory(DeviceMemory&& other) noexcept { *this = std::move(other); }

DeviceMemory& DeviceMemory::operator=(DeviceMemory&& other) noexcept {
  if (this != &other) {
    if (ptr_) cudaFree(ptr_);
    ptr_ = std::exchange(other.ptr_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

DeviceMemory::~DeviceMemory() {
  if (ptr_) cudaFree(ptr_);
}

void DeviceMemory::Upload(const void* src, size_t bytes, size_t offset) {
  if (bytes == 0) return;
  ASSERT_LE(offset + bytes, bytes_) << "upload out of range";
  const cudaError_t err =
      cudaMemcpy(static_cast<char*>(ptr_) + offset, src, bytes, cudaMemcpyHostToDevice);
  ASSERT_EQ(err, cudaSuccess) << cudaGetErrorString(err);
}

void DeviceMemory::Download(void* dst, size_t bytes, size_t offset) const {
  if (bytes == 0) return;
  ASSERT_LE(offset + bytes, bytes_) << "download out of range";
  const cudaError_t err =
      cudaMemcpy(dst, static_cast<const char*>(ptr_) + offset, bytes, cudaMemcpyDeviceToHost);
  ASSERT_EQ(err, cudaSuccess) << cudaGetErrorString(err);
}

::testing::AssertionResult DeviceSync() {
  cudaError_t err = cudaDeviceSynchronize();
  if (err == cudaSuccess) err = cudaGetLastError();
  if (err != cudaSuccess) {
    return ::testing::AssertionFailure()
           << "CUDA error: " << cudaGetErrorName(err) << ": " << cudaGetErrorString(err);
  }
  return ::testing::AssertionSuccess();
}
#endif

}  // namespace sieve::testing
