// Typed element access for the CPU references: ElemOf<DType>::Type is the storage type, ToFloat /
// FromFloat convert with the rounding of kernels/dtype.h, and SIEVE_REF_DISPATCH_DTYPE maps a
// runtime DType onto a template instantiation in one switch.
#pragma once

#include <cstdint>

#include "kernels/check.h"
#include "kernels/dtype.h"

namespace sieve::kernels {

struct Bf16 {
  uint16_t bits;
};
struct Half {
  uint16_t bits;
};

template <DType kType>
struct ElemOf;
template <>
struct ElemOf<DType::kF32> {
  using Type = float;
};
template <>
struct ElemOf<DType::kBF16> {
  using Type = Bf16;
};
template <>
struct ElemOf<DType::kF16> {
  using Type = Half;
};

inline float ToFloat(float v) { return v; }
inline float ToFloat(Bf16 v) { return BF16ToFloat(v.bits); }
inline float ToFloat(Half v) { return HalfToFloat(v.bits); }

template <typename T>
T FromFloat(float v);
template <>
inline float FromFloat<float>(float v) {
  return v;
}
template <>
inline Bf16 FromFloat<Bf16>(float v) {
  return Bf16{FloatToBF16(v)};
}
template <>
inline Half FromFloat<Half>(float v) {
  return Half{FloatToHalf(v)};
}

}  // namespace sieve::kernels

#define SIEVE_REF_DISPATCH_DTYPE(dtype, fn, ...) \
  do {                                           \
    switch (dtype) {                             \
      case ::sieve::DType::kF32:                 \
        fn<::sieve::DType::kF32>(__VA_ARGS__);   \
        break;                                   \
      case ::sieve::DType::kBF16:                \
        fn<::sieve::DType::kBF16>(__VA_ARGS__);  \
        break;                                   \
      case ::sieve::DType::kF16:                 \
        fn<::sieve::DType::kF16>(__VA_ARGS__);   \
        break;                                   \
    }                                            \
  } while (0)
