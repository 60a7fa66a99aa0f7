// Checkpoint: the weights of a Hugging Face model directory, memory-mapped, plus the list of
// tensors a Llama-family model needs (ExpectedTensors) and an up-front check of both.
//
// A directory holds either `model.safetensors` (preferred when both exist) or
// `model.safetensors.index.json` whose "weight_map" names the shard holding each tensor; each
// shard is opened once. Views returned by Get point into the mappings: the weights are never
// copied into host memory by this class, and stay valid as long as the Checkpoint lives.
//
//   SIEVE_ASSIGN_OR_RETURN(Checkpoint ckpt, Checkpoint::Open(dir));
//   SIEVE_RETURN_IF_ERROR(ckpt.Validate(config));     // before any GPU work
//   SIEVE_ASSIGN_OR_RETURN(TensorView w, ckpt.Get(name, shape));
//
// Tested by tests/unit/worker/checkpoint_test.cc.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "comm/status.h"
#include "worker/model_config.h"
#include "worker/safetensors.h"

namespace sieve::worker {

// How a weight is initialized when synthesized (worker/random_weights.h).
enum class TensorKind {
  kEmbedding,  // normal(0, initializer_range)
  kLinear,     // normal(0, initializer_range)
  kNorm,       // ones
};

struct TensorSpec {
  std::string name;            // Hugging Face name, e.g. "model.layers.0.self_attn.q_proj.weight"
  std::vector<int64_t> shape;  // [out_features, in_features] for Linear, [hidden] for Norm
  TensorKind kind;

  int64_t NumElements() const;
};

// Every weight of the model in Hugging Face naming and order of use, with its shape
// (H hidden, V vocab, I intermediate, d head_dim, Hq/Hkv query/KV heads):
//   model.embed_tokens.weight                        [V, H]        Embedding
//   model.layers.{l}.input_layernorm.weight          [H]           Norm
//   model.layers.{l}.self_attn.q_proj.weight         [Hq*d, H]     Linear
//   model.layers.{l}.self_attn.k_proj.weight         [Hkv*d, H]    Linear
//   model.layers.{l}.self_attn.v_proj.weight         [Hkv*d, H]    Linear
//   model.layers.{l}.self_attn.o_proj.weight         [H, Hq*d]     Linear
//   model.layers.{l}.post_attention_layernorm.weight [H]           Norm
//   model.layers.{l}.mlp.gate_proj.weight            [I, H]        Linear
//   model.layers.{l}.mlp.up_proj.weight              [I, H]        Linear
//   model.layers.{l}.mlp.down_proj.weight            [H, I]        Linear
//   model.norm.weight                                [H]           Norm
//   lm_head.weight                                   [V, H]        Linear (absent when tied)
std::vector<TensorSpec> ExpectedTensors(const ModelConfig& config);

class Checkpoint {
 public:
  static constexpr const char* kSingleFile = "model.safetensors";
  static constexpr const char* kIndexFile = "model.safetensors.index.json";

  // Opens the safetensors file(s) of `dir` and validates their headers. NotFound if the
  // directory has neither file (or a shard named by the index is missing); InvalidArgument /
  // DataLoss for a malformed index or file.
  static StatusOr<Checkpoint> Open(const std::string& dir);

  Checkpoint(Checkpoint&&) noexcept = default;
  Checkpoint& operator=(Checkpoint&&) noexcept = default;
  Checkpoint(const Checkpoint&) = delete;
  Checkpoint& operator=(const Checkpoint&) = delete;
  ~Checkpoint() = default;

  // A view of tensor `name` with its shape checked against `expected_shape`:
  //   NotFound         "missing tensor 'X' (expected shape [a, b]) in <dir>"
  //   InvalidArgument  "tensor 'X' in <file>: expected shape [a, b], got [c, d]"
  //   Unimplemented    "tensor 'X' in <file>: dtype I64 is not supported ..."
  StatusOr<TensorView> Get(const std::string& name, std::span<const int64_t> expected_shape) const;

  // A view of tensor `name` with whatever shape it has.
  StatusOr<TensorView> Get(const std::string& name) const;

  bool Contains(const std::string& name) const { return where_.count(name) != 0; }

  // Checks every tensor of ExpectedTensors(config): present, shaped, and of a supported dtype.
  // Reports all problems at once (the first few in the message), with the first one's code.
  // Tensors the model does not use (e.g. rotary inv_freq buffers) are ignored.
  Status Validate(const ModelConfig& config) const;

  const std::string& dir() const { return dir_; }
  size_t num_files() const { return files_.size(); }
  // All tensor names, sorted.
  std::vector<std::string> TensorNames() const;

 private:
  Checkpoint() = default;

  std::string dir_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::unordered_map<std::string, const SafetensorsFile*> where_;  // tensor -> file holding it
};

}  // namespace sieve::worker
