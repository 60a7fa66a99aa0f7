// ModelWeights: a Llama checkpoint resident on a backend, in the backend's compute dtype, with the
// attention and MLP input projections fused:
//   qkv[l]     = [q_proj; k_proj; v_proj]   [(Hq + 2 Hkv) d, hidden]
//   gate_up[l] = [gate_proj; up_proj]        [2 I, hidden]
// or, on a backend that fuses SwiGLU into the gate-up GEMM (Backend::swiglu_block() = B > 0),
// gate_up interleaved in blocks of B rows: B gate rows, then the B up rows of the same range
// (kernels/gemm_swiglu.h; swiglu_block() says which).
//
// Load() streams one tensor at a time from the memory-mapped safetensors files (never the whole
// checkpoint in host RAM) and converts it to the compute dtype on the way. Random() synthesizes
// the same shapes from a seed with kernels/random_init.h — on the device itself for the CUDA
// backend, so an 8B model appears in seconds; CPU and GPU draw identical values.
//
// Tested by tests/unit/worker/transformer_test.cc (fixture parity) and model_weights_test.cc.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "comm/status.h"
#include "worker/backend.h"
#include "worker/model_config.h"

namespace sieve::worker {

struct LayerWeights {
  DeviceBuffer attn_norm;  // [hidden]
  DeviceBuffer qkv;        // [(Hq + 2 Hkv) d, hidden]
  DeviceBuffer o;          // [hidden, Hq d]
  DeviceBuffer mlp_norm;   // [hidden]
  DeviceBuffer gate_up;    // [2 I, hidden], laid out by ModelWeights::swiglu_block()
  DeviceBuffer down;       // [hidden, I]
};

class ModelWeights {
 public:
  // Loads a Hugging Face model directory (model.safetensors or a sharded index). Validates every
  // tensor's name, shape and dtype before moving any data.
  static StatusOr<ModelWeights> Load(const ModelConfig& config, const std::string& model_dir,
                                     Backend& backend);

  // Random weights for any config: norms 1, everything else N(0, initializer_range), each tensor
  // drawn from (seed, hash of its Hugging Face name).
  static StatusOr<ModelWeights> Random(const ModelConfig& config, uint64_t seed, Backend& backend);

  DType dtype() const { return dtype_; }
  const void* embed() const { return embed_.get(); }                             // [vocab, hidden]
  const void* final_norm() const { return final_norm_.get(); }                   // [hidden]
  const void* lm_head() const { return tied_ ? embed_.get() : lm_head_.get(); }  // [vocab, hidden]
  const LayerWeights& layer(int l) const { return layers_[l]; }
  // The gate_up layout: 0 plain, B > 0 interleaved in blocks of B rows (SiluMulArgs::block).
  int64_t swiglu_block() const { return swiglu_block_; }
  size_t bytes() const;  // total weight memory on the backend

 private:
  // dtype, tying and gate_up layout for `backend`, no buffers yet.
  static ModelWeights Empty(const ModelConfig& config, const Backend& backend);

  DType dtype_ = DType::kF32;
  bool tied_ = false;
  int64_t swiglu_block_ = 0;
  DeviceBuffer embed_, final_norm_, lm_head_;
  std::vector<LayerWeights> layers_;
};

}  // namespace sieve::worker
