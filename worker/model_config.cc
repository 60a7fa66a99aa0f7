// ModelConfig parsing, validation and serialization (worker/model_config.h).
//
// Tested by tests/unit/worker/model_config_test.cc.
#include "worker/model_config.h"

#include <boost/json.hpp>

#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>

namespace sieve::worker {
namespace {

namespace json = boost::json;

// Upper bounds that keep every size product (NumParameters, byte counts) far from int64 overflow
// and catch absurd values early with a readable message.
constexpr int64_t kMaxVocab = int64_t{1} << 24;
constexpr int64_t kMaxHidden = int64_t{1} << 20;
constexpr int64_t kMaxIntermediate = int64_t{1} << 22;
constexpr int64_t kMaxLayers = int64_t{1} << 12;
constexpr int64_t kMaxHeads = int64_t{1} << 12;
constexpr int64_t kMaxHeadDim = int64_t{1} << 12;
constexpr int64_t kMaxPositions = int64_t{1} << 34;

struct Architecture {
  std::string_view name;
  std::string_view model_type;
};
constexpr Architecture kSupported[] = {{"LlamaForCausalLM", "llama"},
                                       {"MistralForCausalLM", "mistral"}};

std::string Quoted(std::string_view s) {
  std::string q;
  q.reserve(s.size() + 2);
  q.append(1, '\'').append(s).append(1, '\'');
  return q;
}

// A short rendering of a JSON value for error messages.
std::string Render(const json::value& v) {
  std::string s = json::serialize(v);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

// Typed field access on one JSON object; every error names the source and the field.
class Fields {
 public:
  Fields(const json::object& obj, std::string_view source, std::string prefix = "")
      : obj_(obj), source_(source), prefix_(std::move(prefix)) {}

  const json::value* Find(std::string_view key) const {
    const json::value* v = obj_.if_contains(key);
    return (v == nullptr || v->is_null()) ? nullptr : v;
  }
  bool Has(std::string_view key) const { return Find(key) != nullptr; }

  Status Error(std::string_view key, std::string_view what) const {
    return Status::InvalidArgument(
        StrFormat("%.*s: field '%s%.*s' %.*s", static_cast<int>(source_.size()), source_.data(),
                  prefix_.c_str(), static_cast<int>(key.size()), key.data(),
                  static_cast<int>(what.size()), what.data()));
  }

  // Absent or null -> nullopt.
  StatusOr<std::optional<int64_t>> Int(std::string_view key) const {
    const json::value* v = Find(key);
    if (v == nullptr) return std::optional<int64_t>();
    if (v->is_int64()) return std::optional<int64_t>(v->get_int64());
    if (v->is_uint64()) {
      return Error(key, "is out of range: " + Render(*v));
    }
    if (v->is_double()) {
      const double d = v->get_double();
      if (std::isfinite(d) && d == std::floor(d) && std::abs(d) < 9.0e15) {
        return std::optional<int64_t>(static_cast<int64_t>(d));
      }
    }
    return Error(key, "must be an integer, got " + Render(*v));
  }

  StatusOr<int64_t> RequiredInt(std::string_view key) const {
    SIEVE_ASSIGN_OR_RETURN(std::optional<int64_t> v, Int(key));
    if (!v) return Error(key, "is required");
    return *v;
  }

  StatusOr<std::optional<double>> Double(std::string_view key) const {
    const json::value* v = Find(key);
    if (v == nullptr) return std::optional<double>();
    if (v->is_double()) return std::optional<double>(v->get_double());
    if (v->is_int64()) return std::optional<double>(static_cast<double>(v->get_int64()));
    if (v->is_uint64()) return std::optional<double>(static_cast<double>(v->get_uint64()));
    return Error(key, "must be a number, got " + Render(*v));
  }

  StatusOr<double> RequiredDouble(std::string_view key) const {
    SIEVE_ASSIGN_OR_RETURN(std::optional<double> v, Double(key));
    if (!v) return Error(key, "is required");
    return *v;
  }

  StatusOr<std::optional<bool>> Bool(std::string_view key) const {
    const json::value* v = Find(key);
    if (v == nullptr) return std::optional<bool>();
    if (v->is_bool()) return std::optional<bool>(v->get_bool());
    return Error(key, "must be true or false, got " + Render(*v));
  }

  StatusOr<std::optional<std::string>> String(std::string_view key) const {
    const json::value* v = Find(key);
    if (v == nullptr) return std::optional<std::string>();
    if (v->is_string()) return std::optional<std::string>(std::string(v->get_string()));
    return Error(key, "must be a string, got " + Render(*v));
  }

  const std::string& prefix() const { return prefix_; }

 private:
  const json::object& obj_;
  std::string_view source_;
  std::string prefix_;
};

StatusOr<json::value> ParseJsonText(std::string_view text, std::string_view source) {
  json::stream_parser parser;
  boost::system::error_code ec;
  const size_t consumed = parser.write(text.data(), text.size(), ec);
  if (!ec) parser.finish(ec);
  if (ec) {
    return Status::InvalidArgument(StrFormat("%.*s: invalid JSON near byte %zu: %s",
                                             static_cast<int>(source.size()), source.data(),
                                             consumed, ec.message().c_str()));
  }
  return parser.release();
}

StatusOr<std::optional<DType>> ParseDType(const Fields& f) {
  std::optional<DType> result;
  for (const std::string_view key : {"torch_dtype", "dtype"}) {
    SIEVE_ASSIGN_OR_RETURN(std::optional<std::string> name, f.String(key));
    if (!name) continue;
    DType t;
    if (*name == "bfloat16") {
      t = DType::kBF16;
    } else if (*name == "float16" || *name == "half") {
      t = DType::kF16;
    } else if (*name == "float32" || *name == "float") {
      t = DType::kF32;
    } else {
      return f.Error(key, "names an unsupported dtype " + Quoted(*name) +
                              " (supported: bfloat16, float16, float32)");
    }
    if (result && *result != t) {
      return f.Error(key, "disagrees with 'torch_dtype'");
    }
    result = t;
  }
  return result;
}

// Reads the scaling part (rope_type and its parameters) of a rope_scaling / rope_parameters dict.
Status ParseRopeScaling(const Fields& f, bool type_required, RopeConfig* rope) {
  SIEVE_ASSIGN_OR_RETURN(std::optional<std::string> rope_type, f.String("rope_type"));
  SIEVE_ASSIGN_OR_RETURN(std::optional<std::string> legacy_type, f.String("type"));
  if (rope_type && legacy_type && *rope_type != *legacy_type) {
    return f.Error("type", "= " + Quoted(*legacy_type) +
                               " disagrees with 'rope_type' = " + Quoted(*rope_type));
  }
  if (!rope_type) rope_type = legacy_type;
  if (!rope_type) {
    if (type_required) return f.Error("rope_type", "is required");
    rope_type = "default";
  }
  if (*rope_type == "default") {
    rope->type = RopeType::kDefault;
  } else if (*rope_type == "linear") {
    rope->type = RopeType::kLinear;
    SIEVE_ASSIGN_OR_RETURN(rope->factor, f.RequiredDouble("factor"));
  } else if (*rope_type == "llama3") {
    rope->type = RopeType::kLlama3;
    SIEVE_ASSIGN_OR_RETURN(rope->factor, f.RequiredDouble("factor"));
    SIEVE_ASSIGN_OR_RETURN(rope->low_freq_factor, f.RequiredDouble("low_freq_factor"));
    SIEVE_ASSIGN_OR_RETURN(rope->high_freq_factor, f.RequiredDouble("high_freq_factor"));
    SIEVE_ASSIGN_OR_RETURN(rope->original_max_position_embeddings,
                           f.RequiredInt("original_max_position_embeddings"));
  } else {
    Status s = f.Error("rope_type", "= " + Quoted(*rope_type) +
                                        " is not supported (supported: default, linear, llama3)");
    return Status::Unimplemented(s.message());
  }
  return Status::Ok();
}

StatusOr<RopeConfig> ParseRope(const json::object& root, std::string_view source) {
  const Fields top(root, source);
  RopeConfig rope;
  SIEVE_ASSIGN_OR_RETURN(std::optional<double> top_theta, top.Double("rope_theta"));

  if (const json::value* params = top.Find("rope_parameters")) {
    if (!params->is_object()) {
      return top.Error("rope_parameters", "must be an object, got " + Render(*params));
    }
    const json::object* flat = &params->get_object();
    std::string prefix = "rope_parameters.";
    if (!flat->contains("rope_type") && !flat->contains("rope_theta") && !flat->contains("type")) {
      // Nested per layer type: {"full_attention": {...}, "sliding_attention": {...}}.
      const json::object* chosen = nullptr;
      for (const std::string_view key : {"full_attention", "default"}) {
        const json::value* v = flat->if_contains(key);
        if (v != nullptr && v->is_object()) {
          chosen = &v->get_object();
          prefix += std::string(key) + ".";
          break;
        }
      }
      if (chosen == nullptr) {
        std::string keys;
        for (const auto& kv : *flat) keys += (keys.empty() ? "" : ", ") + std::string(kv.key());
        return top.Error("rope_parameters",
                         "has neither 'rope_type'/'rope_theta' nor a 'full_attention' or "
                         "'default' entry (keys: " +
                             (keys.empty() ? std::string("none") : keys) + ")");
      }
      flat = chosen;
    }
    const Fields f(*flat, source, prefix);
    SIEVE_ASSIGN_OR_RETURN(std::optional<double> theta, f.Double("rope_theta"));
    if (theta && top_theta && *theta != *top_theta) {
      return f.Error("rope_theta", StrFormat("= %g disagrees with the top-level rope_theta = %g",
                                             *theta, *top_theta));
    }
    rope.theta = theta ? *theta : top_theta ? *top_theta : 10000.0;
    SIEVE_RETURN_IF_ERROR(ParseRopeScaling(f, /*type_required=*/false, &rope));
    return rope;
  }

  rope.theta = top_theta ? *top_theta : 10000.0;
  if (const json::value* scaling = top.Find("rope_scaling")) {
    if (!scaling->is_object()) {
      return top.Error("rope_scaling", "must be an object or null, got " + Render(*scaling));
    }
    SIEVE_RETURN_IF_ERROR(ParseRopeScaling(Fields(scaling->get_object(), source, "rope_scaling."),
                                           /*type_required=*/true, &rope));
  }
  return rope;
}

// Shortest text that reads back to the same double, Python style ("500000.0", "1e-05").
std::string FormatDouble(double v) {
  if (!std::isfinite(v)) return "null";  // JSON has no inf / NaN (Validate rejects them anyway)
  char buf[128];
  // Python's repr: positional for decimal exponents in [-4, 16), else scientific.
  const int exponent = v == 0 ? 0 : static_cast<int>(std::floor(std::log10(std::abs(v))));
  const std::chars_format format =
      exponent >= -4 && exponent < 16 ? std::chars_format::fixed : std::chars_format::scientific;
  const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v, format);
  std::string s(buf, ec == std::errc() ? end : buf);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

void PrettyPrint(const json::value& v, int indent, std::string* out) {
  const std::string pad(static_cast<size_t>(indent + 2), ' ');
  switch (v.kind()) {
    case json::kind::object: {
      const json::object& o = v.get_object();
      if (o.empty()) {
        *out += "{}";
        return;
      }
      *out += "{\n";
      bool first = true;
      for (const auto& kv : o) {
        if (!first) *out += ",\n";
        first = false;
        *out += pad + json::serialize(json::string(kv.key())) + ": ";
        PrettyPrint(kv.value(), indent + 2, out);
      }
      *out += "\n" + std::string(static_cast<size_t>(indent), ' ') + "}";
      return;
    }
    case json::kind::array: {
      const json::array& a = v.get_array();
      if (a.empty()) {
        *out += "[]";
        return;
      }
      *out += "[\n";
      for (size_t i = 0; i < a.size(); ++i) {
        if (i) *out += ",\n";
        *out += pad;
        PrettyPrint(a[i], indent + 2, out);
      }
      *out += "\n" + std::string(static_cast<size_t>(indent), ' ') + "]";
      return;
    }
    case json::kind::double_:
      *out += FormatDouble(v.get_double());
      return;
    default:
      *out += json::serialize(v);
      return;
  }
}

std::string_view DTypeTorchName(DType t) {
  switch (t) {
    case DType::kF32:
      return "float32";
    case DType::kF16:
      return "float16";
    case DType::kBF16:
      return "bfloat16";
  }
  return "?";
}

}  // namespace

std::string_view RopeTypeName(RopeType type) {
  switch (type) {
    case RopeType::kDefault:
      return "default";
    case RopeType::kLinear:
      return "linear";
    case RopeType::kLlama3:
      return "llama3";
  }
  return "?";
}

StatusOr<ModelConfig> ModelConfig::FromJsonFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(StrFormat("cannot read model config %s", path.c_str()));
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return Status::DataLoss(StrFormat("error reading model config %s", path.c_str()));
  return FromJson(ss.str(), path);
}

StatusOr<ModelConfig> ModelConfig::FromJson(std::string_view text, std::string_view source_name) {
  const std::string source(source_name);
  SIEVE_ASSIGN_OR_RETURN(json::value root_value, ParseJsonText(text, source));
  if (!root_value.is_object()) {
    return Status::InvalidArgument(StrFormat("%s: a config.json must hold a JSON object, got %s",
                                             source.c_str(), Render(root_value).c_str()));
  }
  const json::object& root = root_value.get_object();
  const Fields f(root, source);
  ModelConfig c;

  // What the model is. Quantized checkpoints are rejected first: their shapes would mislead.
  if (const json::value* q = f.Find("quantization_config")) {
    std::string method = "?";
    if (q->is_object()) {
      if (const json::value* m = q->get_object().if_contains("quant_method"); m && m->is_string()) {
        method = std::string(m->get_string());
      }
    }
    return Status::Unimplemented(StrFormat(
        "%s: quantized checkpoints are not supported (quantization_config.quant_method=%s)",
        source.c_str(), method.c_str()));
  }
  SIEVE_ASSIGN_OR_RETURN(std::optional<std::string> model_type, f.String("model_type"));
  std::optional<std::string> architecture;
  if (const json::value* archs = f.Find("architectures")) {
    if (!archs->is_array() || archs->get_array().empty() || !archs->get_array()[0].is_string()) {
      return f.Error("architectures", "must be a non-empty list of strings, got " + Render(*archs));
    }
    architecture = std::string(archs->get_array()[0].get_string());
  }
  const Architecture* arch = nullptr;
  for (const Architecture& a : kSupported) {
    if (architecture ? *architecture == a.name : model_type && *model_type == a.model_type) {
      arch = &a;
    }
  }
  if (arch == nullptr) {
    const std::string what = architecture ? "architecture " + Quoted(*architecture)
                                          : "model_type " + Quoted(model_type.value_or("(none)")) +
                                                " (no 'architectures')";
    return Status::Unimplemented(
        StrFormat("%s: unsupported %s; supported: LlamaForCausalLM (llama), MistralForCausalLM "
                  "(mistral)",
                  source.c_str(), what.c_str()));
  }
  if (model_type && *model_type != arch->model_type) {
    return f.Error("model_type", "= " + Quoted(*model_type) + " does not match architecture " +
                                     Quoted(arch->name) + " (expected " + Quoted(arch->model_type) +
                                     ")");
  }
  c.architecture = std::string(arch->name);
  c.model_type = std::string(arch->model_type);

  SIEVE_ASSIGN_OR_RETURN(std::optional<std::string> act, f.String("hidden_act"));
  if (act && *act != "silu" && *act != "swish") {
    return Status::Unimplemented(
        StrFormat("%s: hidden_act=%s is not supported (only silu)", source.c_str(), act->c_str()));
  }
  for (const std::string_view key : {"attention_bias", "mlp_bias"}) {
    SIEVE_ASSIGN_OR_RETURN(std::optional<bool> bias, f.Bool(key));
    if (bias.value_or(false)) {
      return Status::Unimplemented(StrFormat("%s: %.*s=true is not supported (no bias terms)",
                                             source.c_str(), static_cast<int>(key.size()),
                                             key.data()));
    }
  }

  // Shapes.
  SIEVE_ASSIGN_OR_RETURN(c.vocab_size, f.RequiredInt("vocab_size"));
  SIEVE_ASSIGN_OR_RETURN(c.hidden_size, f.RequiredInt("hidden_size"));
  SIEVE_ASSIGN_OR_RETURN(c.intermediate_size, f.RequiredInt("intermediate_size"));
  SIEVE_ASSIGN_OR_RETURN(c.num_layers, f.RequiredInt("num_hidden_layers"));
  SIEVE_ASSIGN_OR_RETURN(c.num_heads, f.RequiredInt("num_attention_heads"));
  SIEVE_ASSIGN_OR_RETURN(std::optional<int64_t> kv_heads, f.Int("num_key_value_heads"));
  c.num_kv_heads = kv_heads.value_or(c.num_heads);
  SIEVE_ASSIGN_OR_RETURN(std::optional<int64_t> head_dim, f.Int("head_dim"));
  if (head_dim) {
    c.head_dim = *head_dim;
  } else {
    if (c.num_heads <= 0) return f.Error("num_attention_heads", "must be positive");
    if (c.hidden_size % c.num_heads != 0) {
      return Status::InvalidArgument(
          StrFormat("%s: hidden_size=%lld is not a multiple of num_attention_heads=%lld and no "
                    "head_dim is given",
                    source.c_str(), static_cast<long long>(c.hidden_size),
                    static_cast<long long>(c.num_heads)));
    }
    c.head_dim = c.hidden_size / c.num_heads;
  }
  SIEVE_ASSIGN_OR_RETURN(std::optional<double> eps, f.Double("rms_norm_eps"));
  if (eps) c.rms_norm_eps = *eps;
  SIEVE_ASSIGN_OR_RETURN(c.max_position_embeddings, f.RequiredInt("max_position_embeddings"));
  SIEVE_ASSIGN_OR_RETURN(std::optional<bool> tied, f.Bool("tie_word_embeddings"));
  c.tie_word_embeddings = tied.value_or(false);
  SIEVE_ASSIGN_OR_RETURN(std::optional<double> init_range, f.Double("initializer_range"));
  if (init_range) c.initializer_range = *init_range;
  SIEVE_ASSIGN_OR_RETURN(std::optional<int64_t> window, f.Int("sliding_window"));
  c.sliding_window = window.value_or(0);

  // Special tokens.
  SIEVE_ASSIGN_OR_RETURN(c.bos_token_id, f.Int("bos_token_id"));
  if (const json::value* eos = f.Find("eos_token_id")) {
    if (eos->is_array()) {
      const json::array& a = eos->get_array();
      for (size_t i = 0; i < a.size(); ++i) {
        if (!a[i].is_int64()) {
          return f.Error("eos_token_id",
                         StrFormat("[%zu] must be an integer, got %s", i, Render(a[i]).c_str()));
        }
        c.eos_token_ids.push_back(a[i].get_int64());
      }
    } else {
      SIEVE_ASSIGN_OR_RETURN(std::optional<int64_t> id, f.Int("eos_token_id"));
      c.eos_token_ids.push_back(*id);
    }
  }

  SIEVE_ASSIGN_OR_RETURN(c.dtype, ParseDType(f));
  SIEVE_ASSIGN_OR_RETURN(c.rope, ParseRope(root, source));

  Status valid = c.Validate();
  if (!valid.ok()) return valid.WithContext(source);
  return c;
}

Status ModelConfig::Validate() const {
  bool supported = false;
  for (const Architecture& a : kSupported) {
    supported |= (architecture == a.name && model_type == a.model_type);
  }
  if (!supported) {
    return Status::Unimplemented(StrFormat("unsupported architecture '%s' (model_type '%s')",
                                           architecture.c_str(), model_type.c_str()));
  }
  struct Size {
    const char* name;
    int64_t value;
    int64_t max;
  };
  const Size sizes[] = {{"vocab_size", vocab_size, kMaxVocab},
                        {"hidden_size", hidden_size, kMaxHidden},
                        {"intermediate_size", intermediate_size, kMaxIntermediate},
                        {"num_hidden_layers", num_layers, kMaxLayers},
                        {"num_attention_heads", num_heads, kMaxHeads},
                        {"num_key_value_heads", num_kv_heads, kMaxHeads},
                        {"head_dim", head_dim, kMaxHeadDim},
                        {"max_position_embeddings", max_position_embeddings, kMaxPositions}};
  for (const Size& s : sizes) {
    if (s.value <= 0 || s.value > s.max) {
      return Status::InvalidArgument(StrFormat("%s=%lld must be in [1, %lld]", s.name,
                                               static_cast<long long>(s.value),
                                               static_cast<long long>(s.max)));
    }
  }
  if (num_heads % num_kv_heads != 0) {
    return Status::InvalidArgument(
        StrFormat("num_attention_heads=%lld is not a multiple of num_key_value_heads=%lld",
                  static_cast<long long>(num_heads), static_cast<long long>(num_kv_heads)));
  }
  if (head_dim % 2 != 0) {
    return Status::InvalidArgument(StrFormat("head_dim=%lld must be even (RoPE rotates pairs)",
                                             static_cast<long long>(head_dim)));
  }
  if (!(rms_norm_eps > 0) || !std::isfinite(rms_norm_eps)) {
    return Status::InvalidArgument(StrFormat("rms_norm_eps=%g must be positive", rms_norm_eps));
  }
  if (!(initializer_range >= 0) || !std::isfinite(initializer_range)) {
    return Status::InvalidArgument(
        StrFormat("initializer_range=%g must be non-negative", initializer_range));
  }
  if (sliding_window < 0) {
    return Status::InvalidArgument(StrFormat("sliding_window=%lld must be >= 0 (0: none)",
                                             static_cast<long long>(sliding_window)));
  }
  auto check_token = [&](const char* what, int64_t id) {
    if (id < 0 || id >= vocab_size) {
      return Status::InvalidArgument(StrFormat("%s=%lld is outside the vocabulary [0, %lld)", what,
                                               static_cast<long long>(id),
                                               static_cast<long long>(vocab_size)));
    }
    return Status::Ok();
  };
  if (bos_token_id) SIEVE_RETURN_IF_ERROR(check_token("bos_token_id", *bos_token_id));
  for (const int64_t id : eos_token_ids) SIEVE_RETURN_IF_ERROR(check_token("eos_token_id", id));

  if (!(rope.theta > 0) || !std::isfinite(rope.theta)) {
    return Status::InvalidArgument(StrFormat("rope_theta=%g must be positive", rope.theta));
  }
  if (rope.type != RopeType::kDefault && (!(rope.factor > 0) || !std::isfinite(rope.factor))) {
    return Status::InvalidArgument(StrFormat("rope factor=%g must be positive (rope_type %s)",
                                             rope.factor,
                                             std::string(RopeTypeName(rope.type)).c_str()));
  }
  if (rope.type == RopeType::kLlama3) {
    if (!(rope.low_freq_factor > 0) || !(rope.high_freq_factor > rope.low_freq_factor) ||
        !std::isfinite(rope.high_freq_factor)) {
      return Status::InvalidArgument(
          StrFormat("llama3 rope needs 0 < low_freq_factor < high_freq_factor, got %g and %g",
                    rope.low_freq_factor, rope.high_freq_factor));
    }
    if (rope.original_max_position_embeddings <= 0) {
      return Status::InvalidArgument(
          StrFormat("llama3 rope needs original_max_position_embeddings > 0, got %lld",
                    static_cast<long long>(rope.original_max_position_embeddings)));
    }
  }
  return Status::Ok();
}

std::string ModelConfig::ToJson() const {
  json::object o;
  o["architectures"] = json::array{json::string(architecture)};
  o["attention_bias"] = false;
  o["attention_dropout"] = 0.0;
  o["bos_token_id"] = bos_token_id ? json::value(*bos_token_id) : json::value(nullptr);
  if (eos_token_ids.size() == 1) {
    o["eos_token_id"] = eos_token_ids[0];
  } else if (eos_token_ids.empty()) {
    o["eos_token_id"] = nullptr;
  } else {
    json::array a;
    for (const int64_t id : eos_token_ids) a.push_back(id);
    o["eos_token_id"] = std::move(a);
  }
  o["head_dim"] = head_dim;
  o["hidden_act"] = "silu";
  o["hidden_size"] = hidden_size;
  o["initializer_range"] = initializer_range;
  o["intermediate_size"] = intermediate_size;
  o["max_position_embeddings"] = max_position_embeddings;
  o["mlp_bias"] = false;
  o["model_type"] = model_type;
  o["num_attention_heads"] = num_heads;
  o["num_hidden_layers"] = num_layers;
  o["num_key_value_heads"] = num_kv_heads;
  o["pretraining_tp"] = 1;
  o["rms_norm_eps"] = rms_norm_eps;
  switch (rope.type) {
    case RopeType::kDefault:
      o["rope_scaling"] = nullptr;
      break;
    case RopeType::kLinear:
      o["rope_scaling"] = json::object{{"factor", rope.factor}, {"rope_type", "linear"}};
      break;
    case RopeType::kLlama3:
      o["rope_scaling"] =
          json::object{{"factor", rope.factor},
                       {"high_freq_factor", rope.high_freq_factor},
                       {"low_freq_factor", rope.low_freq_factor},
                       {"original_max_position_embeddings", rope.original_max_position_embeddings},
                       {"rope_type", "llama3"}};
      break;
  }
  o["rope_theta"] = rope.theta;
  if (model_type == "mistral" || sliding_window != 0) {
    o["sliding_window"] = sliding_window ? json::value(sliding_window) : json::value(nullptr);
  }
  o["tie_word_embeddings"] = tie_word_embeddings;
  if (dtype) o["torch_dtype"] = DTypeTorchName(*dtype);
  o["use_cache"] = true;
  o["vocab_size"] = vocab_size;
  std::string out;
  PrettyPrint(o, 0, &out);
  out += "\n";
  return out;
}

int64_t ModelConfig::NumParameters() const {
  const int64_t h = hidden_size;
  const int64_t per_layer = 2 * h                             // input / post-attention norms
                            + q_dim() * h + 2 * kv_dim() * h  // q, k, v projections
                            + h * q_dim()                     // o projection
                            + 3 * intermediate_size * h;      // gate, up, down
  return vocab_size * h * (tie_word_embeddings ? 1 : 2) + num_layers * per_layer + h;
}

std::string ModelConfig::Summary() const {
  std::string rope_text =
      StrFormat("rope %s (theta %g", std::string(RopeTypeName(rope.type)).c_str(), rope.theta);
  if (rope.type != RopeType::kDefault) rope_text += StrFormat(", factor %g", rope.factor);
  rope_text += ")";
  const double params = static_cast<double>(NumParameters());
  const std::string params_text =
      params >= 1e9 ? StrFormat("%.2fB", params / 1e9) : StrFormat("%.2fM", params / 1e6);
  return StrFormat(
      "%s: %lld layers, hidden %lld, %lld/%lld heads x %lld, intermediate %lld, vocab %lld, %s, "
      "%s, %s parameters",
      architecture.c_str(), static_cast<long long>(num_layers), static_cast<long long>(hidden_size),
      static_cast<long long>(num_heads), static_cast<long long>(num_kv_heads),
      static_cast<long long>(head_dim), static_cast<long long>(intermediate_size),
      static_cast<long long>(vocab_size), rope_text.c_str(),
      tie_word_embeddings ? "tied" : "untied", params_text.c_str());
}

}  // namespace sieve::worker
