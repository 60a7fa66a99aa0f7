// CPU reference for kernels/rms_norm.h: the mean of squares in double, the scaling in fp32 as
// Hugging Face's LlamaRMSNorm does it (x * rsqrt(var + eps), then weight * x).
#include <cmath>
#include <vector>

#include "kernels/rms_norm.h"

namespace sieve::kernels {

void RmsNormRef(const RmsNormArgs& args) {
  std::vector<float> row(args.cols);
#pragma omp parallel for firstprivate(row) if (args.rows > 16)
  for (int64_t r = 0; r < args.rows; ++r) {
    const int64_t base = r * args.cols;
    double sum_sq = 0;
    for (int64_t c = 0; c < args.cols; ++c) {
      float v = LoadAsFloat(args.residual, args.residual_dtype, base + c);
      if (args.input) v += LoadAsFloat(args.input, args.act_dtype, base + c);
      if (args.input) StoreFromFloat(args.residual, args.residual_dtype, base + c, v);
      // The stored residual is what the next layer adds to: normalize the rounded value.
      v = LoadAsFloat(args.residual, args.residual_dtype, base + c);
      row[c] = v;
      sum_sq += double(v) * double(v);
    }
    const float inv = 1.f / std::sqrt(float(sum_sq / double(args.cols)) + args.eps);
    for (int64_t c = 0; c < args.cols; ++c) {
      const float w = LoadAsFloat(args.weight, args.weight_dtype, c);
      StoreFromFloat(args.out, args.act_dtype, base + c, w * (row[c] * inv));
    }
  }
}

}  // namespace sieve::kernels
