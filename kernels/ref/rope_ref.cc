// CPU reference for kernels/rope.h. Built with -ffp-contract=off: the angle must be the plain
// fp32 product PyTorch computes, and the rotation its unfused multiply-adds.
#include <cmath>

#include "kernels/rope.h"

namespace sieve::kernels {
namespace {

void RotateRow(void* base, DType dtype, int64_t offset, int head_dim, const float* cos_t,
               const float* sin_t) {
  const int half = head_dim / 2;
  for (int i = 0; i < half; ++i) {
    const float x1 = LoadAsFloat(base, dtype, offset + i);
    const float x2 = LoadAsFloat(base, dtype, offset + i + half);
    const float a = x1 * cos_t[i];
    const float b = -x2 * sin_t[i];
    const float c = x2 * cos_t[i];
    const float d = x1 * sin_t[i];
    StoreFromFloat(base, dtype, offset + i, a + b);
    StoreFromFloat(base, dtype, offset + i + half, c + d);
  }
}

}  // namespace

void RopeRef(const RopeArgs& args) {
  const int half = args.head_dim / 2;
#pragma omp parallel for if (args.num_tokens > 64)
  for (int64_t t = 0; t < args.num_tokens; ++t) {
    float cos_t[512], sin_t[512];  // head_dim <= 1024
    const float pos = static_cast<float>(args.positions[t]);
    for (int i = 0; i < half; ++i) {
      const float angle = args.inv_freq[i] * pos;  // fp32 product, as torch forms it
      cos_t[i] = static_cast<float>(std::cos(static_cast<double>(angle))) * args.attention_scaling;
      sin_t[i] = static_cast<float>(std::sin(static_cast<double>(angle))) * args.attention_scaling;
    }
    for (int h = 0; h < args.num_q_heads; ++h) {
      RotateRow(args.q, args.dtype, t * args.q_stride + int64_t{h} * args.head_dim, args.head_dim,
                cos_t, sin_t);
    }
    for (int h = 0; h < args.num_kv_heads; ++h) {
      RotateRow(args.k, args.dtype, t * args.k_stride + int64_t{h} * args.head_dim, args.head_dim,
                cos_t, sin_t);
    }
  }
}

}  // namespace sieve::kernels
