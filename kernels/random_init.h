// RandomInit: deterministic random weights, bit-identical on the CPU and on the GPU.
//
// A kernel trio (STYLE rule 2) sharing RandomInitArgs:
//   kernels/random_init.h            the args struct, the counter-based generator, the launcher
//   kernels/random_init.cu           LaunchRandomInit: grid-stride kernel, one element a thread
//   kernels/ref/random_init_ref.cc   RandomInitRef: the same generator in a plain loop
//
// Element i of a tensor depends only on (seed, stream, i): there is no generator state, so a
// tensor can be filled in any order, in chunks (RandomInitArgs::offset), by any number of threads,
// on either device, with the same bytes as a result. `stream` tells tensors apart; the worker
// uses TensorStreamId(name) so that a weight's values depend on its name, not on load order.
//
// Why the values are bit-identical across devices: the generator uses only integer arithmetic,
// IEEE-754 operations that both the host and CUDA round correctly (double +, -, *, /, sqrt) and
// explicit fma() (also correctly rounded on both). Every multiply-add is written as fma() so that
// neither gcc nor nvcc can contract it differently (-ffp-contract / --fmad). log() and cos()/sin()
// are not taken from libm (whose last bit differs between glibc and CUDA): RandomNormal evaluates
// its own range-reduced polynomials in double, accurate to ~1e-12 relative, then rounds once to
// float. Box–Muller: z = sqrt(-2 ln u1) * {cos, sin}(2 pi u2), with u1, u2 from one 64-bit hash
// per pair of elements (even elements take the cosine, odd ones the sine).
//
// Tested by tests/unit/worker/random_init_test.cc (determinism, moments, bf16 == round(fp32),
// chunked == whole; the GPU case compares LaunchRandomInit with RandomInitRef bit for bit and
// skips when no device is present).
#pragma once

#include <cmath>
#include <cstdint>
#include <string_view>

#include "kernels/dtype.h"

#if SIEVE_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

namespace sieve::kernels {

struct RandomInitArgs {
  void* out;           // [n] elements of `dtype`: host memory for RandomInitRef, device memory for
                       // LaunchRandomInit. Element j holds the value of tensor index offset + j.
  DType dtype;         // F32, F16 or BF16; the value is computed in float and rounded once (RNE).
  int64_t n;           // number of elements to write (>= 0)
  uint64_t seed;       // the model-wide seed
  uint64_t stream;     // tells tensors apart: TensorStreamId(tensor name)
  float mean;          // mean of the normal distribution (the fill value when `constant`)
  float stddev;        // standard deviation of the normal distribution (ignored when `constant`)
  bool constant;       // fill with `mean` (norm weights = 1.0) instead of drawing
  int64_t offset = 0;  // tensor index of out[0]: fills a slice [offset, offset + n) of a larger
                       // tensor (a tensor-parallel shard, or one chunk of a streamed tensor)
};

// A stable 64-bit id of a tensor name (FNV-1a over its bytes), used as RandomInitArgs::stream.
constexpr uint64_t TensorStreamId(std::string_view name) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (const char c : name) {
    h ^= static_cast<uint8_t>(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

// The splitmix64 output function: a bijective 64-bit mix.
SIEVE_HOST_DEVICE uint64_t SplitMix64(uint64_t x) {
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// 64 random bits for (seed, stream, counter): the splitmix64 sequence keyed by (seed, stream).
SIEVE_HOST_DEVICE uint64_t RandomBits(uint64_t seed, uint64_t stream, uint64_t counter) {
  constexpr uint64_t kGamma = 0x9e3779b97f4a7c15ull;
  const uint64_t key = SplitMix64(seed * kGamma + SplitMix64(stream + kGamma));
  return SplitMix64(key + (counter + 1) * kGamma);
}

namespace random_init_internal {

SIEVE_HOST_DEVICE double Fma(double a, double b, double c) {
  // ::fma is correctly rounded on the host (libm / FMA instruction) and on the GPU (DFMA).
  return ::fma(a, b, c);
}

SIEVE_HOST_DEVICE int CountLeadingZeros64(uint64_t x) {
#if defined(__CUDA_ARCH__)
  return __clzll(static_cast<long long>(x));
#else
  return x == 0 ? 64 : __builtin_clzll(x);
#endif
}

// ln(v * 2^-32) for an integer v in [1, 2^32]: v = m * 2^e with m in [sqrt(1/2), sqrt(2)),
// ln(m) = 2 atanh(s) with s = (m - 1) / (m + 1), |s| <= 0.1716, by its odd series to s^17.
SIEVE_HOST_DEVICE double LogOfUnitInterval(uint64_t v) {
  const int bits = 64 - CountLeadingZeros64(v);  // 1..33; v / 2^bits is in [0.5, 1)
  double m = static_cast<double>(v) / static_cast<double>(uint64_t{1} << bits);  // exact
  int e = bits - 32;
  if (m < 0.70710678118654752440) {
    m *= 2.0;  // exact
    e -= 1;
  }
  const double s = (m - 1.0) / (m + 1.0);
  const double s2 = s * s;
  double p = 1.0 / 17;
  p = Fma(p, s2, 1.0 / 15);
  p = Fma(p, s2, 1.0 / 13);
  p = Fma(p, s2, 1.0 / 11);
  p = Fma(p, s2, 1.0 / 9);
  p = Fma(p, s2, 1.0 / 7);
  p = Fma(p, s2, 1.0 / 5);
  p = Fma(p, s2, 1.0 / 3);
  p = Fma(p, s2, 1.0);
  constexpr double kLn2 = 0.69314718055994530942;
  return Fma(static_cast<double>(e), kLn2, (2.0 * s) * p);
}

// cos(x) and sin(x) for |x| <= pi/4 by Taylor series to x^16 / x^17 (error < 1e-16).
SIEVE_HOST_DEVICE double CosSmall(double x) {
  const double x2 = x * x;
  double p = 1.0 / 20922789888000.0;  // 1/16!
  p = Fma(p, x2, -1.0 / 87178291200.0);
  p = Fma(p, x2, 1.0 / 479001600.0);
  p = Fma(p, x2, -1.0 / 3628800.0);
  p = Fma(p, x2, 1.0 / 40320.0);
  p = Fma(p, x2, -1.0 / 720.0);
  p = Fma(p, x2, 1.0 / 24.0);
  p = Fma(p, x2, -0.5);
  return Fma(p, x2, 1.0);
}

SIEVE_HOST_DEVICE double SinSmall(double x) {
  const double x2 = x * x;
  double p = 1.0 / 355687428096000.0;  // 1/17!
  p = Fma(p, x2, -1.0 / 1307674368000.0);
  p = Fma(p, x2, 1.0 / 6227020800.0);
  p = Fma(p, x2, -1.0 / 39916800.0);
  p = Fma(p, x2, 1.0 / 362880.0);
  p = Fma(p, x2, -1.0 / 5040.0);
  p = Fma(p, x2, 1.0 / 120.0);
  p = Fma(p, x2, -1.0 / 6.0);
  return Fma(x * x2, p, x);
}

// cos(2 pi k / 2^32) (use_sin false) or sin(2 pi k / 2^32) (use_sin true) for a 32-bit k. The
// angle is reduced exactly in integers to the nearest multiple of pi/2 plus |x| <= pi/4.
SIEVE_HOST_DEVICE double CosSinOfTurn(uint32_t k, bool use_sin) {
  const uint32_t quadrant = ((k >> 29) + 1) >> 1;  // nearest quarter turn, 0..4
  const int64_t d = static_cast<int64_t>(k) - (static_cast<int64_t>(quadrant) << 30);
  constexpr double kTwoPiOver2Pow32 = 6.28318530717958647692 / 4294967296.0;
  const double x = static_cast<double>(d) * kTwoPiOver2Pow32;  // in [-pi/4, pi/4]
  // angle = quadrant * pi/2 + x.
  const uint32_t q = (quadrant + (use_sin ? 3u : 0u)) & 3u;  // sin(a) = cos(a - pi/2)
  switch (q) {
    case 0:
      return CosSmall(x);
    case 1:
      return -SinSmall(x);
    case 2:
      return -CosSmall(x);
    default:
      return SinSmall(x);
  }
}

}  // namespace random_init_internal

// A standard normal sample for element `index` of the tensor (seed, stream), in double, with
// |z| <= sqrt(2 ln 2^32) ~ 6.66. Bit-identical on host and device (see the file comment).
SIEVE_HOST_DEVICE double RandomNormal(uint64_t seed, uint64_t stream, uint64_t index) {
  namespace ri = random_init_internal;
  const uint64_t bits = RandomBits(seed, stream, index >> 1);
  const uint64_t u1 = (bits & 0xffffffffull) + 1;  // u1 * 2^-32 in (0, 1]
  const uint32_t u2 = static_cast<uint32_t>(bits >> 32);
  const double radius = ::sqrt(-2.0 * ri::LogOfUnitInterval(u1));
  return radius * ri::CosSinOfTurn(u2, (index & 1) != 0);
}

// The float value RandomInit stores (before rounding to args.dtype) at tensor index `index`.
SIEVE_HOST_DEVICE float RandomInitValue(const RandomInitArgs& args, int64_t index) {
  if (args.constant) return args.mean;
  const double z = RandomNormal(args.seed, args.stream, static_cast<uint64_t>(index));
  return static_cast<float>(random_init_internal::Fma(static_cast<double>(args.stddev), z,
                                                      static_cast<double>(args.mean)));
}

// Fills args.out (host memory) with args.n values. Single-threaded plain loop.
void RandomInitRef(const RandomInitArgs& args);

#if SIEVE_WITH_CUDA
// Fills args.out (device memory) with the same bytes RandomInitRef writes. Asynchronous on
// `stream`; no allocation, no synchronization. Returns cudaErrorInvalidValue for n < 0 or a null
// `out` with n > 0, else the launch error (cudaSuccess when n == 0 and nothing is launched).
cudaError_t LaunchRandomInit(const RandomInitArgs& args, cudaStream_t stream);
#endif

}  // namespace sieve::kernels
