#include "worker/model_weights.h"

#include <cstring>
#include <string_view>

#include "comm/log.h"
#include "kernels/random_init.h"
#include "worker/checkpoint.h"

namespace sieve::worker {
namespace {

// Where one Hugging Face tensor lands: a fused buffer and an element offset inside it. gate_proj
// and up_proj are halves 0 and 1 of gate_up, whose rows ForEachGateUpRun places.
struct Destination {
  void* base = nullptr;
  int64_t offset = 0;
  int half = -1;
};

// The runs of rows of a gate_proj (half 0) or up_proj (half 1) tensor in the fused gate_up
// weight: source row r goes to row 2 B (r / B) + half * B + r % B, B = `block` (the interleaved
// layout of kernels/gemm_swiglu.h), or intermediate_size when block is 0 (the plain layout: one
// run). fn(dst_row, src_row, rows).
template <typename Fn>
void ForEachGateUpRun(int64_t inter, int64_t block, int half, Fn fn) {
  const int64_t b_rows = block > 0 ? block : inter;
  for (int64_t b = 0; b < inter / b_rows; ++b)
    fn(2 * b_rows * b + half * b_rows, b * b_rows, b_rows);
}

// Allocates every fused buffer for `config` in the backend's compute dtype.
Status AllocateAll(const ModelConfig& c, Backend& backend, DType dtype, bool tied,
                   DeviceBuffer* embed, DeviceBuffer* final_norm, DeviceBuffer* lm_head,
                   std::vector<LayerWeights>* layers) {
  const size_t e = DTypeSize(dtype);
  const int64_t H = c.hidden_size, I = c.intermediate_size;
  SIEVE_ASSIGN_OR_RETURN(*embed, backend.Allocate(e * c.vocab_size * H));
  SIEVE_ASSIGN_OR_RETURN(*final_norm, backend.Allocate(e * H));
  if (!tied) {
    SIEVE_ASSIGN_OR_RETURN(*lm_head, backend.Allocate(e * c.vocab_size * H));
  }
  layers->resize(c.num_layers);
  for (LayerWeights& w : *layers) {
    SIEVE_ASSIGN_OR_RETURN(w.attn_norm, backend.Allocate(e * H));
    SIEVE_ASSIGN_OR_RETURN(w.qkv, backend.Allocate(e * (c.q_dim() + 2 * c.kv_dim()) * H));
    SIEVE_ASSIGN_OR_RETURN(w.o, backend.Allocate(e * H * c.q_dim()));
    SIEVE_ASSIGN_OR_RETURN(w.mlp_norm, backend.Allocate(e * H));
    SIEVE_ASSIGN_OR_RETURN(w.gate_up, backend.Allocate(e * 2 * I * H));
    SIEVE_ASSIGN_OR_RETURN(w.down, backend.Allocate(e * H * I));
  }
  return Status::Ok();
}

// Maps a Hugging Face weight name onto its fused destination; NotFound for names the model
// does not use (they are ignored by the caller).
StatusOr<Destination> Locate(const ModelConfig& c, std::string_view name, const DeviceBuffer& embed,
                             const DeviceBuffer& final_norm, const DeviceBuffer& lm_head,
                             std::vector<LayerWeights>& layers) {
  const int64_t H = c.hidden_size;
  if (name == "model.embed_tokens.weight") return Destination{embed.get(), 0};
  if (name == "model.norm.weight") return Destination{final_norm.get(), 0};
  if (name == "lm_head.weight" && lm_head) return Destination{lm_head.get(), 0};
  constexpr std::string_view kLayers = "model.layers.";
  if (name.substr(0, kLayers.size()) == kLayers) {
    name.remove_prefix(kLayers.size());
    const size_t dot = name.find('.');
    int layer = 0;
    for (char ch : name.substr(0, dot)) layer = layer * 10 + (ch - '0');
    if (dot == std::string_view::npos || layer >= c.num_layers) {
      return Status::NotFound("layer index out of range");
    }
    LayerWeights& w = layers[layer];
    const std::string_view rest = name.substr(dot + 1);
    if (rest == "input_layernorm.weight") return Destination{w.attn_norm.get(), 0};
    if (rest == "self_attn.q_proj.weight") return Destination{w.qkv.get(), 0};
    if (rest == "self_attn.k_proj.weight") return Destination{w.qkv.get(), c.q_dim() * H};
    if (rest == "self_attn.v_proj.weight") {
      return Destination{w.qkv.get(), (c.q_dim() + c.kv_dim()) * H};
    }
    if (rest == "self_attn.o_proj.weight") return Destination{w.o.get(), 0};
    if (rest == "post_attention_layernorm.weight") return Destination{w.mlp_norm.get(), 0};
    if (rest == "mlp.gate_proj.weight") return Destination{w.gate_up.get(), 0, 0};
    if (rest == "mlp.up_proj.weight") {
      return Destination{w.gate_up.get(), c.intermediate_size * H, 1};
    }
    if (rest == "mlp.down_proj.weight") return Destination{w.down.get(), 0};
  }
  return Status::NotFound(std::string(name));
}

char* ElementPtr(void* base, int64_t offset, DType dtype) {
  return static_cast<char*>(base) + offset * static_cast<int64_t>(DTypeSize(dtype));
}

}  // namespace

ModelWeights ModelWeights::Empty(const ModelConfig& config, const Backend& backend) {
  ModelWeights w;
  w.dtype_ = backend.compute_dtype();
  w.tied_ = config.tie_word_embeddings;
  const int64_t block = backend.swiglu_block();
  w.swiglu_block_ = block > 0 && config.intermediate_size % block == 0 ? block : 0;
  return w;
}

size_t ModelWeights::bytes() const {
  size_t total = embed_.bytes() + final_norm_.bytes() + lm_head_.bytes();
  for (const LayerWeights& w : layers_) {
    total += w.attn_norm.bytes() + w.qkv.bytes() + w.o.bytes() + w.mlp_norm.bytes() +
             w.gate_up.bytes() + w.down.bytes();
  }
  return total;
}

StatusOr<ModelWeights> ModelWeights::Load(const ModelConfig& config, const std::string& model_dir,
                                          Backend& backend) {
  SIEVE_ASSIGN_OR_RETURN(Checkpoint checkpoint, Checkpoint::Open(model_dir));
  SIEVE_RETURN_IF_ERROR(checkpoint.Validate(config));
  ModelWeights w = Empty(config, backend);
  SIEVE_RETURN_IF_ERROR(AllocateAll(config, backend, w.dtype_, w.tied_, &w.embed_, &w.final_norm_,
                                    &w.lm_head_, &w.layers_));
  // Tensors are converted one at a time: straight into place on the CPU backend, through one
  // host staging buffer (the size of the largest tensor) for a device backend or an interleaved
  // gate_up.
  const bool host_memory = backend.kind() == DeviceKind::kCpu;
  const size_t e = DTypeSize(w.dtype_);
  const int64_t H = config.hidden_size;
  auto place = [&](void* dst, const void* src, size_t bytes) {
    if (host_memory) {
      std::memcpy(dst, src, bytes);
    } else {
      backend.CopyToDevice(dst, src, bytes);
    }
  };
  std::vector<char> staging;
  const std::vector<TensorSpec> specs = ExpectedTensors(config);
  for (size_t i = 0; i < specs.size(); ++i) {
    const TensorSpec& spec = specs[i];
    SIEVE_ASSIGN_OR_RETURN(TensorView view, checkpoint.Get(spec.name, spec.shape));
    SIEVE_ASSIGN_OR_RETURN(
        Destination dst, Locate(config, spec.name, w.embed_, w.final_norm_, w.lm_head_, w.layers_));
    const int64_t n = view.NumElements();
    char* out = ElementPtr(dst.base, dst.offset, w.dtype_);
    const bool runs = dst.half >= 0 && w.swiglu_block_ > 0;
    const bool direct = host_memory && !runs;
    void* convert_to = out;
    if (!direct) {
      staging.resize(n * e);
      convert_to = staging.data();
    }
    if (view.dtype == w.dtype_) {
      std::memcpy(convert_to, view.data, view.nbytes);
    } else {
      for (int64_t j = 0; j < n; ++j) {
        StoreFromFloat(convert_to, w.dtype_, j, LoadAsFloat(view.data, view.dtype, j));
      }
    }
    if (runs) {
      ForEachGateUpRun(config.intermediate_size, w.swiglu_block_, dst.half,
                       [&](int64_t dst_row, int64_t src_row, int64_t rows) {
                         place(ElementPtr(dst.base, dst_row * H, w.dtype_),
                               staging.data() + src_row * H * e, rows * H * e);
                       });
    } else if (!direct) {
      place(out, staging.data(), staging.size());
    }
    if (!host_memory) SIEVE_RETURN_IF_ERROR(backend.Synchronize());
    SIEVE_LOG_DEBUG("weight loaded", "name=%s elements=%lld", spec.name.c_str(),
                    static_cast<long long>(n));
  }
  SIEVE_LOG_INFO("weights loaded", "dir=%s tensors=%zu bytes=%zu", model_dir.c_str(), specs.size(),
                 w.bytes());
  return w;
}

StatusOr<ModelWeights> ModelWeights::Random(const ModelConfig& config, uint64_t seed,
                                            Backend& backend) {
  ModelWeights w = Empty(config, backend);
  SIEVE_RETURN_IF_ERROR(AllocateAll(config, backend, w.dtype_, w.tied_, &w.embed_, &w.final_norm_,
                                    &w.lm_head_, &w.layers_));
  const int64_t H = config.hidden_size;
  for (const TensorSpec& spec : ExpectedTensors(config)) {
    SIEVE_ASSIGN_OR_RETURN(
        Destination dst, Locate(config, spec.name, w.embed_, w.final_norm_, w.lm_head_, w.layers_));
    const bool norm = spec.kind == TensorKind::kNorm;
    const kernels::RandomInitArgs args{.out = ElementPtr(dst.base, dst.offset, w.dtype_),
                                       .dtype = w.dtype_,
                                       .n = spec.NumElements(),
                                       .seed = seed,
                                       .stream = kernels::TensorStreamId(spec.name),
                                       .mean = norm ? 1.f : 0.f,
                                       .stddev = static_cast<float>(config.initializer_range),
                                       .constant = norm};
    if (dst.half < 0 || w.swiglu_block_ == 0) {
      backend.RandomInit(args);
      continue;
    }
    // The same values as the plain layout, drawn run by run at their stream offsets.
    ForEachGateUpRun(config.intermediate_size, w.swiglu_block_, dst.half,
                     [&](int64_t dst_row, int64_t src_row, int64_t rows) {
                       kernels::RandomInitArgs run = args;
                       run.out = ElementPtr(dst.base, dst_row * H, w.dtype_);
                       run.n = rows * H;
                       run.offset = src_row * H;
                       backend.RandomInit(run);
                     });
  }
  SIEVE_RETURN_IF_ERROR(backend.Synchronize());
  SIEVE_LOG_INFO("random weights", "seed=%llu bytes=%zu", static_cast<unsigned long long>(seed),
                 w.bytes());
  return w;
}

}  // namespace sieve::worker
