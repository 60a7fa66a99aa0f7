// Checkpoint directory loading and validation (worker/checkpoint.h).
//
// Tested by tests/unit/worker/checkpoint_test.cc.
#include "worker/checkpoint.h"

#include <boost/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace sieve::worker {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;

constexpr size_t kMaxReportedProblems = 5;

// A shard name from an index must stay inside the model directory.
bool IsSafeRelativePath(const std::string& name) {
  if (name.empty() || name.front() == '/') return false;
  for (const auto& part : fs::path(name)) {
    if (part == "..") return false;
  }
  return true;
}

StatusOr<std::map<std::string, std::string>> ReadWeightMap(const std::string& index_path) {
  std::ifstream in(index_path, std::ios::binary);
  if (!in) return Status::NotFound(StrFormat("cannot read %s", index_path.c_str()));
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  json::stream_parser parser;
  boost::system::error_code ec;
  const size_t consumed = parser.write(text.data(), text.size(), ec);
  if (!ec) parser.finish(ec);
  if (ec) {
    return Status::InvalidArgument(StrFormat("%s: invalid JSON near byte %zu: %s",
                                             index_path.c_str(), consumed, ec.message().c_str()));
  }
  const json::value root = parser.release();
  const json::value* weight_map =
      root.is_object() ? root.get_object().if_contains("weight_map") : nullptr;
  if (weight_map == nullptr || !weight_map->is_object()) {
    return Status::InvalidArgument(
        StrFormat("%s: expected an object with a \"weight_map\" object (tensor name -> shard "
                  "file)",
                  index_path.c_str()));
  }
  std::map<std::string, std::string> result;
  for (const auto& kv : weight_map->get_object()) {
    if (!kv.value().is_string() || !IsSafeRelativePath(std::string(kv.value().get_string()))) {
      return Status::InvalidArgument(StrFormat(
          "%s: weight_map['%s'] must be a shard file name inside the model directory, got %s",
          index_path.c_str(), std::string(kv.key()).c_str(), json::serialize(kv.value()).c_str()));
    }
    result[std::string(kv.key())] = std::string(kv.value().get_string());
  }
  if (result.empty()) {
    return Status::InvalidArgument(StrFormat("%s: weight_map is empty", index_path.c_str()));
  }
  return result;
}

}  // namespace

int64_t TensorSpec::NumElements() const { return worker::NumElements(shape); }

std::vector<TensorSpec> ExpectedTensors(const ModelConfig& c) {
  const int64_t h = c.hidden_size;
  std::vector<TensorSpec> specs;
  specs.push_back({"model.embed_tokens.weight", {c.vocab_size, h}, TensorKind::kEmbedding});
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    specs.push_back({p + "input_layernorm.weight", {h}, TensorKind::kNorm});
    specs.push_back({p + "self_attn.q_proj.weight", {c.q_dim(), h}, TensorKind::kLinear});
    specs.push_back({p + "self_attn.k_proj.weight", {c.kv_dim(), h}, TensorKind::kLinear});
    specs.push_back({p + "self_attn.v_proj.weight", {c.kv_dim(), h}, TensorKind::kLinear});
    specs.push_back({p + "self_attn.o_proj.weight", {h, c.q_dim()}, TensorKind::kLinear});
    specs.push_back({p + "post_attention_layernorm.weight", {h}, TensorKind::kNorm});
    specs.push_back({p + "mlp.gate_proj.weight", {c.intermediate_size, h}, TensorKind::kLinear});
    specs.push_back({p + "mlp.up_proj.weight", {c.intermediate_size, h}, TensorKind::kLinear});
    specs.push_back({p + "mlp.down_proj.weight", {h, c.intermediate_size}, TensorKind::kLinear});
  }
  specs.push_back({"model.norm.weight", {h}, TensorKind::kNorm});
  if (!c.tie_word_embeddings) {
    specs.push_back({"lm_head.weight", {c.vocab_size, h}, TensorKind::kLinear});
  }
  return specs;
}

StatusOr<Checkpoint> Checkpoint::Open(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return Status::NotFound(StrFormat(fs::exists(dir, ec) ? "model directory %s is not a directory"
                                                          : "model directory %s does not exist",
                                      dir.c_str()));
  }
  Checkpoint ckpt;
  ckpt.dir_ = dir;
  const fs::path root(dir);
  const std::string single = (root / kSingleFile).string();
  const std::string index = (root / kIndexFile).string();

  if (fs::exists(single, ec)) {
    SIEVE_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file, SafetensorsFile::Open(single));
    for (const SafetensorsEntry& e : file->entries()) ckpt.where_[e.name] = file.get();
    ckpt.files_.push_back(std::move(file));
    return ckpt;
  }
  if (!fs::exists(index, ec)) {
    std::string hint;
    if (fs::exists(root / "pytorch_model.bin", ec) ||
        fs::exists(root / "pytorch_model.bin.index.json", ec)) {
      hint =
          " (found pytorch_model.bin: PyTorch pickles are not supported; convert to "
          "safetensors)";
    }
    return Status::NotFound(
        StrFormat("no %s or %s in %s%s", kSingleFile, kIndexFile, dir.c_str(), hint.c_str()));
  }

  SIEVE_ASSIGN_OR_RETURN(auto weight_map, ReadWeightMap(index));
  std::map<std::string, const SafetensorsFile*> shards;  // shard name -> opened file
  for (const auto& [tensor, shard] : weight_map) {
    auto it = shards.find(shard);
    if (it == shards.end()) {
      SIEVE_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file,
                             SafetensorsFile::Open((root / shard).string()));
      it = shards.emplace(shard, file.get()).first;
      ckpt.files_.push_back(std::move(file));
    }
    if (it->second->Find(tensor) == nullptr) {
      return Status::DataLoss(StrFormat("%s maps tensor '%s' to %s, which does not contain it",
                                        index.c_str(), tensor.c_str(), it->second->path().c_str()));
    }
    ckpt.where_[tensor] = it->second;
  }
  return ckpt;
}

StatusOr<TensorView> Checkpoint::Get(const std::string& name) const {
  const auto it = where_.find(name);
  if (it == where_.end()) {
    return Status::NotFound(StrFormat("missing tensor '%s' in %s", name.c_str(), dir_.c_str()));
  }
  return it->second->Get(name);
}

StatusOr<TensorView> Checkpoint::Get(const std::string& name,
                                     std::span<const int64_t> expected_shape) const {
  const auto it = where_.find(name);
  if (it == where_.end()) {
    return Status::NotFound(StrFormat("missing tensor '%s' (expected shape %s) in %s", name.c_str(),
                                      ShapeToString(expected_shape).c_str(), dir_.c_str()));
  }
  SIEVE_ASSIGN_OR_RETURN(TensorView view, it->second->Get(name));
  if (!std::equal(view.shape.begin(), view.shape.end(), expected_shape.begin(),
                  expected_shape.end())) {
    return Status::InvalidArgument(
        StrFormat("tensor '%s' in %s: expected shape %s, got %s", name.c_str(), view.file.c_str(),
                  ShapeToString(expected_shape).c_str(), ShapeToString(view.shape).c_str()));
  }
  return view;
}

Status Checkpoint::Validate(const ModelConfig& config) const {
  std::vector<Status> problems;
  for (const TensorSpec& spec : ExpectedTensors(config)) {
    StatusOr<TensorView> view = Get(spec.name, spec.shape);
    if (!view.ok()) problems.push_back(view.status());
  }
  if (problems.empty()) return Status::Ok();
  std::string message =
      StrFormat("checkpoint %s does not match the config (%s): %zu problem%s: ", dir_.c_str(),
                config.architecture.c_str(), problems.size(), problems.size() == 1 ? "" : "s");
  for (size_t i = 0; i < problems.size() && i < kMaxReportedProblems; ++i) {
    if (i) message += "; ";
    message += problems[i].message();
  }
  if (problems.size() > kMaxReportedProblems) {
    message += StrFormat("; and %zu more", problems.size() - kMaxReportedProblems);
  }
  return Status(problems[0].code(), message);
}

std::vector<std::string> Checkpoint::TensorNames() const {
  std::vector<std::string> names;
  names.reserve(where_.size());
  for (const auto& kv : where_) names.push_back(kv.first);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace sieve::worker
