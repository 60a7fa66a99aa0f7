// RoPE inverse frequencies exactly as Hugging Face transformers computes them in float32.
//
// Keys cached after RoPE must match the reference at positions up to 128K, where one ulp of an
// inverse frequency moves the angle by ~1e-3 rad. So every step below is the float32 operation
// PyTorch performs (pow, reciprocal-then-multiply for `scalar / tensor`, true division), not a
// double-precision formula rounded at the end:
//   default: inv_freq[i] = 1 / theta^(2i / d)
//   linear:  inv_freq[i] / factor
//   llama3:  wavelen = 2π / inv_freq; high frequencies kept, low ones divided by factor, the band
//            between interpolated with smooth = (orig_ctx / wavelen - low) / (high - low).
//
// Test: tests/unit/worker/rope_table_test.cc (and the far-position fixture case).
#pragma once

#include <vector>

#include "worker/model_config.h"

namespace sieve::worker {

// [head_dim / 2] inverse frequencies for the config's RoPE, rounded to `storage` (kF32: as
// computed). Hugging Face keeps them in a float buffer that follows the model's dtype: a model
// loaded with from_pretrained(dtype=bf16) keeps float32 frequencies, while one built and then
// cast with .to(torch.bfloat16) (as tests/fixtures' make_fixtures.py does) holds them rounded to
// bf16. The rotation itself is always computed in float32 from these values.
std::vector<float> ComputeRopeInvFreq(const RopeConfig& rope, int head_dim,
                                      DType storage = DType::kF32);

// The cos/sin scale of the RoPE type (1 for default, linear and llama3).
float RopeAttentionScaling(const RopeConfig& rope);

}  // namespace sieve::worker
