#include "worker/rope_table.h"

#include <cmath>

namespace sieve::worker {

std::vector<float> ComputeRopeInvFreq(const RopeConfig& rope, int head_dim, DType storage) {
  const int half = head_dim / 2;
  std::vector<float> inv_freq(half);
  const float base = static_cast<float>(rope.theta);
  for (int i = 0; i < half; ++i) {
    // torch: arange(0, dim, 2).float() / dim, then base ** x (float32 pow), then 1.0 / y
    // (reciprocal * 1.0).
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    const float powed = static_cast<float>(std::pow(double(base), double(exponent)));
    inv_freq[i] = 1.0f / powed;
  }
  switch (rope.type) {
    case RopeType::kDefault:
      break;
    case RopeType::kLinear: {
      const float factor = static_cast<float>(rope.factor);
      for (float& f : inv_freq) f = f / factor;
      break;
    }
    case RopeType::kLlama3: {
      const float factor = static_cast<float>(rope.factor);
      const float low = static_cast<float>(rope.low_freq_factor);
      const float high = static_cast<float>(rope.high_freq_factor);
      const float old_ctx = static_cast<float>(rope.original_max_position_embeddings);
      // Python computes these thresholds in double; torch compares against them in float32.
      const float low_freq_wavelen =
          static_cast<float>(double(rope.original_max_position_embeddings) / rope.low_freq_factor);
      const float high_freq_wavelen =
          static_cast<float>(double(rope.original_max_position_embeddings) / rope.high_freq_factor);
      const float two_pi = static_cast<float>(2 * M_PI);
      for (float& f : inv_freq) {
        const float wavelen = (1.0f / f) * two_pi;  // 2π / t == t.reciprocal() * 2π in torch
        float llama = wavelen > low_freq_wavelen ? f / factor : f;
        const float smooth = ((1.0f / wavelen) * old_ctx - low) / (high - low);
        const float smoothed = (1.0f - smooth) * llama / factor + smooth * llama;
        const bool medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
        if (medium) llama = smoothed;
        f = llama;
      }
      break;
    }
  }
  if (storage != DType::kF32) {
    for (float& f : inv_freq) {
      uint16_t bits = 0;
      StoreFromFloat(&bits, storage, 0, f);
      f = LoadAsFloat(&bits, storage, 0);
    }
  }
  return inv_freq;
}

float RopeAttentionScaling(const RopeConfig& rope) { return 1.0f; }

}  // namespace sieve::worker
