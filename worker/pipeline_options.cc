#include "worker/pipeline_options.h"

#include <algorithm>

namespace sieve::worker {

int DefaultChunkTokens(const ModelConfig& config) {
  const bool llama3_rope = config.rope.type == RopeType::kLlama3;
  const int64_t window = llama3_rope && config.rope.original_max_position_embeddings > 0
                             ? config.rope.original_max_position_embeddings
                             : config.max_position_embeddings;
  if (llama3_rope && window == 8192) return 6000;  // Llama-3.1: reuse a 6K position range
  if (window == 8192) return 7600;                 // 8K-native models (Llama-3)
  if (window >= 4000) return static_cast<int>(window - 1000);
  return static_cast<int>(std::max<int64_t>(16, window - window / 4));
}

ModelLimits LimitsOf(const ModelConfig& config) {
  return ModelLimits{.num_layers = config.num_layers,
                     .default_chunk_tokens = DefaultChunkTokens(config)};
}

Status ResolveOptions(const ModelConfig& config, SieveOptions* sieve, GenerationOptions* gen) {
  return ::sieve::ResolveOptions(LimitsOf(config), sieve, gen);
}

}  // namespace sieve::worker
