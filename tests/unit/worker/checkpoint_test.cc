// Tests of worker/checkpoint.{h,cc}: ExpectedTensors, opening single-file and sharded model
// directories, precise errors for missing / misshaped / wrongly typed tensors, and up-front
// validation of the tiny fixture and of synthesized checkpoints.
#include "worker/checkpoint.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/unit/test_util.h"
#include "worker/random_weights.h"

namespace sieve::worker {
namespace {

namespace fs = std::filesystem;

class ScopedTempDir {
 public:
  ScopedTempDir() {
    std::string tmpl = (fs::temp_directory_path() / "sieve_checkpoint_XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~ScopedTempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  ASSERT_TRUE(out.good()) << path;
}

// A small untied Llama: vocab 256, hidden 32, 4/2 heads x 8, intermediate 48, 2 layers.
ModelConfig SmallConfig() {
  ModelConfig c;
  c.vocab_size = 256;
  c.hidden_size = 32;
  c.intermediate_size = 48;
  c.num_layers = 2;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 8;
  c.max_position_embeddings = 1024;
  c.rms_norm_eps = 1e-5;
  EXPECT_TRUE(c.Validate().ok());
  return c;
}

constexpr uint64_t kSeed = 42;

// The TensorToWrite entries for `specs` with random bf16 weights.
std::vector<TensorToWrite> RandomTensors(const std::vector<TensorSpec>& specs, float range) {
  std::vector<TensorToWrite> out;
  for (const TensorSpec& spec : specs) {
    out.push_back({spec.name, DType::kBF16, spec.shape, nullptr, [&spec, range](void* dst, size_t) {
                     return FillRandomWeight(spec, kSeed, range, DType::kBF16, dst);
                   }});
  }
  return out;
}

void ExpectMessageHas(const Status& s, std::initializer_list<std::string_view> fragments) {
  for (const std::string_view f : fragments) {
    EXPECT_NE(s.message().find(f), std::string::npos) << "'" << f << "' not in: " << s.message();
  }
}

TEST(CheckpointTest, ExpectedTensorsOfTinyLlama3) {
  StatusOr<ModelConfig> c =
      ModelConfig::FromJsonFile(testing::FixturePath("tiny-llama3/config.json"));
  ASSERT_TRUE(c.ok());
  const std::vector<TensorSpec> specs = ExpectedTensors(*c);
  ASSERT_EQ(specs.size(), 20u);  // tied: no lm_head
  EXPECT_EQ(specs.front().name, "model.embed_tokens.weight");
  EXPECT_EQ(specs.front().shape, (std::vector<int64_t>{128256, 64}));
  EXPECT_EQ(specs.front().kind, TensorKind::kEmbedding);
  EXPECT_EQ(specs.back().name, "model.norm.weight");
  EXPECT_EQ(specs.back().kind, TensorKind::kNorm);
  auto find = [&](const std::string& name) -> const TensorSpec& {
    for (const TensorSpec& s : specs) {
      if (s.name == name) return s;
    }
    ADD_FAILURE() << "no " << name;
    return specs.front();
  };
  EXPECT_EQ(find("model.layers.1.self_attn.q_proj.weight").shape, (std::vector<int64_t>{64, 64}));
  EXPECT_EQ(find("model.layers.1.self_attn.k_proj.weight").shape, (std::vector<int64_t>{32, 64}));
  EXPECT_EQ(find("model.layers.0.self_attn.v_proj.weight").shape, (std::vector<int64_t>{32, 64}));
  EXPECT_EQ(find("model.layers.0.self_attn.o_proj.weight").shape, (std::vector<int64_t>{64, 64}));
  EXPECT_EQ(find("model.layers.0.mlp.gate_proj.weight").shape, (std::vector<int64_t>{192, 64}));
  EXPECT_EQ(find("model.layers.0.mlp.up_proj.weight").shape, (std::vector<int64_t>{192, 64}));
  EXPECT_EQ(find("model.layers.0.mlp.down_proj.weight").shape, (std::vector<int64_t>{64, 192}));
  EXPECT_EQ(find("model.layers.0.input_layernorm.weight").kind, TensorKind::kNorm);
  EXPECT_EQ(find("model.layers.0.post_attention_layernorm.weight").shape,
            (std::vector<int64_t>{64}));
  EXPECT_EQ(find("model.layers.0.mlp.up_proj.weight").kind, TensorKind::kLinear);
  int64_t total = 0;
  for (const TensorSpec& s : specs) total += s.NumElements();
  EXPECT_EQ(total, c->NumParameters());
}

TEST(CheckpointTest, ExpectedTensorsOfLlama31_8B) {
  StatusOr<ModelConfig> c =
      ModelConfig::FromJsonFile(testing::FixturePath("llama3.1-8b/config.json"));
  ASSERT_TRUE(c.ok());
  const std::vector<TensorSpec> specs = ExpectedTensors(*c);
  ASSERT_EQ(specs.size(), 291u);  // embedding + 32 x 9 + final norm + lm_head
  EXPECT_EQ(specs.back().name, "lm_head.weight");
  EXPECT_EQ(specs.back().shape, (std::vector<int64_t>{128256, 4096}));
  EXPECT_EQ(specs[2].name, "model.layers.0.self_attn.q_proj.weight");
  EXPECT_EQ(specs[3].shape, (std::vector<int64_t>{1024, 4096}));  // k_proj: 8 x 128
  int64_t total = 0;
  for (const TensorSpec& s : specs) total += s.NumElements();
  EXPECT_EQ(total, c->NumParameters());
}

TEST(CheckpointTest, TinyFixtureValidates) {
  const std::string dir = testing::FixturePath("tiny-llama3");
  StatusOr<ModelConfig> c = ModelConfig::FromJsonFile(dir + "/config.json");
  ASSERT_TRUE(c.ok());
  StatusOr<Checkpoint> ckpt = Checkpoint::Open(dir);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().ToString();
  EXPECT_EQ(ckpt->num_files(), 1u);
  EXPECT_EQ(ckpt->TensorNames().size(), 20u);
  Status v = ckpt->Validate(*c);
  EXPECT_TRUE(v.ok()) << v.ToString();

  const std::vector<int64_t> shape = {128256, 64};
  StatusOr<TensorView> embed = ckpt->Get("model.embed_tokens.weight", shape);
  ASSERT_TRUE(embed.ok()) << embed.status().ToString();
  EXPECT_EQ(embed->nbytes, size_t{128256} * 64 * 2);
  EXPECT_NE(embed->data, nullptr);

  const std::vector<int64_t> transposed = {64, 128256};
  StatusOr<TensorView> wrong = ckpt->Get("model.embed_tokens.weight", transposed);
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), StatusCode::kInvalidArgument);
  ExpectMessageHas(wrong.status(), {"tensor 'model.embed_tokens.weight' in ",
                                    "model.safetensors: expected shape [64, 128256], got "
                                    "[128256, 64]"});

  StatusOr<TensorView> missing = ckpt->Get("lm_head.weight", shape);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(),
            "missing tensor 'lm_head.weight' (expected shape [128256, 64]) in " + dir);

  // The same weights against an untied config: lm_head is missing.
  ModelConfig untied = *c;
  untied.tie_word_embeddings = false;
  v = ckpt->Validate(untied);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.code(), StatusCode::kNotFound);
  ExpectMessageHas(v, {"1 problem:", "missing tensor 'lm_head.weight'"});

  // A config with another intermediate size: 3 MLP weights x 2 layers, all reported.
  ModelConfig wider = *c;
  wider.intermediate_size = 256;
  v = ckpt->Validate(wider);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.code(), StatusCode::kInvalidArgument);
  ExpectMessageHas(v, {"6 problems", "model.layers.0.mlp.gate_proj.weight",
                       "expected shape [256, 64], got [192, 64]", "and 1 more"});
}

TEST(CheckpointTest, SyntheticSingleFileMatchesRandomWeights) {
  ScopedTempDir dir;
  const ModelConfig c = SmallConfig();
  const std::vector<TensorSpec> specs = ExpectedTensors(c);
  ASSERT_TRUE(
      WriteSafetensors(dir.File(Checkpoint::kSingleFile), RandomTensors(specs, 0.02f)).ok());
  StatusOr<Checkpoint> ckpt = Checkpoint::Open(dir.path());
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().ToString();
  ASSERT_TRUE(ckpt->Validate(c).ok()) << ckpt->Validate(c).ToString();
  for (const TensorSpec& spec : specs) {
    StatusOr<TensorView> view = ckpt->Get(spec.name, spec.shape);
    ASSERT_TRUE(view.ok()) << view.status().ToString();
    std::vector<uint16_t> expected(static_cast<size_t>(spec.NumElements()));
    ASSERT_TRUE(FillRandomWeight(spec, kSeed, 0.02f, DType::kBF16, expected.data()).ok());
    ASSERT_EQ(view->nbytes, expected.size() * 2);
    EXPECT_EQ(std::memcmp(view->data, expected.data(), view->nbytes), 0) << spec.name;
  }
}

TEST(CheckpointTest, ShardedCheckpoint) {
  ScopedTempDir dir;
  const ModelConfig c = SmallConfig();
  const std::vector<TensorSpec> specs = ExpectedTensors(c);
  // Shard 1: embedding and layer 0; shard 2: the rest.
  std::vector<TensorSpec> first(specs.begin(), specs.begin() + 10);
  std::vector<TensorSpec> second(specs.begin() + 10, specs.end());
  const std::string shard1 = "model-00001-of-00002.safetensors";
  const std::string shard2 = "model-00002-of-00002.safetensors";
  ASSERT_TRUE(WriteSafetensors(dir.File(shard1), RandomTensors(first, 0.02f)).ok());
  ASSERT_TRUE(WriteSafetensors(dir.File(shard2), RandomTensors(second, 0.02f)).ok());
  std::string index = "{\"metadata\": {\"total_size\": 0}, \"weight_map\": {";
  for (size_t i = 0; i < specs.size(); ++i) {
    index += (i ? ", \"" : "\"") + specs[i].name + "\": \"" + (i < 10 ? shard1 : shard2) + "\"";
  }
  index += "}}";
  WriteText(dir.File(Checkpoint::kIndexFile), index);

  StatusOr<Checkpoint> ckpt = Checkpoint::Open(dir.path());
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().ToString();
  EXPECT_EQ(ckpt->num_files(), 2u);
  EXPECT_EQ(ckpt->TensorNames().size(), specs.size());
  Status v = ckpt->Validate(c);
  EXPECT_TRUE(v.ok()) << v.ToString();
  StatusOr<TensorView> down =
      ckpt->Get("model.layers.1.mlp.down_proj.weight", std::vector<int64_t>{32, 48});
  ASSERT_TRUE(down.ok()) << down.status().ToString();
  EXPECT_NE(down->file.find(shard2), std::string::npos) << down->file;
  std::vector<uint16_t> expected(32 * 48);
  ASSERT_TRUE(
      FillRandomWeight({"model.layers.1.mlp.down_proj.weight", {32, 48}, TensorKind::kLinear},
                       kSeed, 0.02f, DType::kBF16, expected.data())
          .ok());
  EXPECT_EQ(std::memcmp(down->data, expected.data(), down->nbytes), 0);

  // The index names a tensor its shard does not hold.
  WriteText(dir.File(Checkpoint::kIndexFile),
            "{\"weight_map\": {\"model.norm.weight\": \"" + shard1 + "\"}}");
  StatusOr<Checkpoint> bad = Checkpoint::Open(dir.path());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kDataLoss);
  ExpectMessageHas(bad.status(), {"'model.norm.weight'", shard1});

  // The index names a missing shard.
  WriteText(dir.File(Checkpoint::kIndexFile),
            "{\"weight_map\": {\"model.norm.weight\": \"model-00003-of-00003.safetensors\"}}");
  bad = Checkpoint::Open(dir.path());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kNotFound);
  ExpectMessageHas(bad.status(), {"model-00003-of-00003.safetensors"});

  // Shard names may not leave the directory.
  WriteText(dir.File(Checkpoint::kIndexFile),
            "{\"weight_map\": {\"model.norm.weight\": \"../elsewhere.safetensors\"}}");
  bad = Checkpoint::Open(dir.path());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  ExpectMessageHas(bad.status(), {"../elsewhere.safetensors"});

  // A malformed index.
  WriteText(dir.File(Checkpoint::kIndexFile), "{\"weight_map\": [1, 2]}");
  bad = Checkpoint::Open(dir.path());
  ASSERT_FALSE(bad.ok());
  ExpectMessageHas(bad.status(), {Checkpoint::kIndexFile, "weight_map"});
  WriteText(dir.File(Checkpoint::kIndexFile), "{\"weight_map\": ");
  bad = Checkpoint::Open(dir.path());
  ASSERT_FALSE(bad.ok());
  ExpectMessageHas(bad.status(), {Checkpoint::kIndexFile, "invalid JSON"});

  // A corrupt shard is reported with its path.
  WriteText(dir.File(Checkpoint::kIndexFile),
            "{\"weight_map\": {\"model.norm.weight\": \"" + shard2 + "\"}}");
  fs::resize_file(dir.File(shard2), fs::file_size(dir.File(shard2)) - 1);
  bad = Checkpoint::Open(dir.path());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kDataLoss);
  ExpectMessageHas(bad.status(), {shard2, "truncated"});
}

TEST(CheckpointTest, WrongDtypeIsReported) {
  ScopedTempDir dir;
  const ModelConfig c = SmallConfig();
  // All tensors present and shaped; model.norm.weight stored as I64.
  std::string header = "{";
  size_t offset = 0;
  for (const TensorSpec& spec : ExpectedTensors(c)) {
    const bool as_i64 = spec.name == "model.norm.weight";
    const size_t nbytes = static_cast<size_t>(spec.NumElements()) * (as_i64 ? 8 : 2);
    header += (offset ? ", \"" : "\"") + spec.name + "\": {\"dtype\": \"" +
              (as_i64 ? "I64" : "BF16") + "\", \"shape\": " + ShapeToString(spec.shape) +
              ", \"data_offsets\": [" + std::to_string(offset) + ", " +
              std::to_string(offset + nbytes) + "]}";
    offset += nbytes;
  }
  header += "}";
  header.append((8 - (8 + header.size()) % 8) % 8, ' ');
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(uint64_t{header.size()} >> (8 * i));
  bytes += header + std::string(offset, '\0');
  WriteText(dir.File(Checkpoint::kSingleFile), bytes);

  StatusOr<Checkpoint> ckpt = Checkpoint::Open(dir.path());
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().ToString();
  Status v = ckpt->Validate(c);
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.code(), StatusCode::kUnimplemented);
  ExpectMessageHas(v, {"tensor 'model.norm.weight'", "dtype I64"});
}

TEST(CheckpointTest, DirectoryErrors) {
  StatusOr<Checkpoint> missing = Checkpoint::Open("/nonexistent/model-dir");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  ExpectMessageHas(missing.status(), {"/nonexistent/model-dir"});

  ScopedTempDir dir;
  StatusOr<Checkpoint> empty = Checkpoint::Open(dir.path());
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().code(), StatusCode::kNotFound);
  ExpectMessageHas(empty.status(),
                   {"no model.safetensors or model.safetensors.index.json in", dir.path()});

  WriteText(dir.File("pytorch_model.bin"), "not a pickle");
  empty = Checkpoint::Open(dir.path());
  ASSERT_FALSE(empty.ok());
  ExpectMessageHas(empty.status(), {"pytorch_model.bin", "convert to safetensors"});
}

TEST(CheckpointTest, SingleFileWinsOverIndex) {
  ScopedTempDir dir;
  const ModelConfig c = SmallConfig();
  ASSERT_TRUE(
      WriteSafetensors(dir.File(Checkpoint::kSingleFile), RandomTensors(ExpectedTensors(c), 0.02f))
          .ok());
  WriteText(dir.File(Checkpoint::kIndexFile), "this index is never read");
  StatusOr<Checkpoint> ckpt = Checkpoint::Open(dir.path());
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().ToString();
  EXPECT_TRUE(ckpt->Validate(c).ok());
}

}  // namespace
}  // namespace sieve::worker
