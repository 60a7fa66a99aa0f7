// ModelConfig: the model hyper-parameters read from a Hugging Face config.json.
//
// Supported: LlamaForCausalLM (model_type "llama") and MistralForCausalLM ("mistral"), i.e.
// pre-norm RMSNorm decoders with GQA attention, RoPE, a SiLU-gated MLP and no biases. Everything
// the forward pass cannot run is rejected here, by name, before any weight is touched:
// other architectures, attention_bias / mlp_bias, hidden_act other than silu, quantized
// checkpoints, and RoPE scaling other than default / linear / llama3 (yarn, dynamic, longrope...).
//
// RoPE is read in both forms found in real checkpoints:
//   classic:  "rope_theta": 500000.0, "rope_scaling": {"rope_type" (or "type"): "llama3", ...}
//   newer:    "rope_parameters": {"rope_theta": 500000.0, "rope_type": "llama3", ...}, possibly
//             nested per layer type ({"full_attention": {...}, "sliding_attention": {...}}), in
//             which case the "full_attention" (else "default") entry is used.
// Both give the same RopeConfig.
//
// Tested by tests/unit/worker/model_config_test.cc.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "comm/status.h"
#include "kernels/dtype.h"

namespace sieve::worker {

enum class RopeType { kDefault, kLinear, kLlama3 };

// "default", "linear", "llama3".
std::string_view RopeTypeName(RopeType type);

// Rotary position embedding parameters (HF `rope_scaling` / `rope_parameters`). The inverse
// frequencies are inv_freq[i] = theta^(-2i / head_dim), then:
//   kDefault  unchanged (factor is 1).
//   kLinear   inv_freq / factor (positions divided by factor).
//   kLlama3   wavelengths longer than original_max_position_embeddings / low_freq_factor are
//             divided by factor, shorter than original_max_position_embeddings / high_freq_factor
//             kept, and smoothly interpolated in between.
struct RopeConfig {
  RopeType type = RopeType::kDefault;
  double theta = 10000.0;
  double factor = 1.0;                           // kLinear, kLlama3
  double low_freq_factor = 1.0;                  // kLlama3 only
  double high_freq_factor = 4.0;                 // kLlama3 only
  int64_t original_max_position_embeddings = 0;  // kLlama3 only (0 otherwise)

  friend bool operator==(const RopeConfig&, const RopeConfig&) = default;
};

struct ModelConfig {
  std::string architecture = "LlamaForCausalLM";  // architectures[0]
  std::string model_type = "llama";               // "llama" or "mistral"
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;    // num_hidden_layers
  int64_t num_heads = 0;     // num_attention_heads (query heads)
  int64_t num_kv_heads = 0;  // num_key_value_heads (defaults to num_heads)
  int64_t head_dim = 0;      // explicit `head_dim`, else hidden_size / num_heads
  double rms_norm_eps = 1e-6;
  int64_t max_position_embeddings = 0;
  bool tie_word_embeddings = false;  // lm_head shares model.embed_tokens.weight
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;  // `eos_token_id`: an int or a list (empty if null)
  double initializer_range = 0.02;     // stddev of random Linear/Embedding weights
  int64_t sliding_window = 0;          // 0: full attention (null or absent in config.json)
  std::optional<DType> dtype;          // `torch_dtype` (or `dtype`): the checkpoint's dtype
  RopeConfig rope;

  // Parses and validates config.json text. `source_name` (e.g. the path) prefixes every error:
  // "<source>: num_attention_heads=32 is not a multiple of num_key_value_heads=5".
  // Unsupported models give Unimplemented, malformed or inconsistent fields InvalidArgument.
  static StatusOr<ModelConfig> FromJson(std::string_view text, std::string_view source_name);

  // Reads `path` (NotFound if it cannot be read) and calls FromJson.
  static StatusOr<ModelConfig> FromJsonFile(const std::string& path);

  // Checks the invariants FromJson enforces (positive sizes, heads % kv_heads == 0, even
  // head_dim, token ids inside the vocabulary, RoPE parameters). For hand-built configs.
  Status Validate() const;

  // A Hugging Face config.json (classic rope_theta / rope_scaling form, 2-space indented) that
  // FromJson reads back into an equal ModelConfig. torch_dtype is written only if dtype is set.
  std::string ToJson() const;

  // Weights in the checkpoint (lm_head counted only when not tied).
  int64_t NumParameters() const;

  int64_t q_dim() const { return num_heads * head_dim; }      // rows of q_proj
  int64_t kv_dim() const { return num_kv_heads * head_dim; }  // rows of k_proj / v_proj

  // One line: "LlamaForCausalLM: 32 layers, hidden 4096, 32/8 heads x 128, intermediate 14336,
  // vocab 128256, rope llama3 (theta 500000, factor 8), untied, 8.03B parameters".
  std::string Summary() const;

  friend bool operator==(const ModelConfig&, const ModelConfig&) = default;
};

}  // namespace sieve::worker
