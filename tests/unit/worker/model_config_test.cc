// Tests of worker/model_config.{h,cc}: config.json parsing (both RoPE forms, EOS int or list,
// explicit head_dim, tied embeddings), rejection of unsupported models with named errors,
// validation, NumParameters, and the ToJson round trip.
#include "worker/model_config.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <string>

#include "tests/unit/test_util.h"

namespace sieve::worker {
namespace {

namespace json = boost::json;

// A minimal valid Llama config as a JSON object, for tests to edit.
json::object BaseConfig() {
  return json::parse(R"({
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "vocab_size": 1000,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-6
  })")
      .as_object();
}

StatusOr<ModelConfig> Parse(const json::object& o) {
  return ModelConfig::FromJson(json::serialize(o), "test-config.json");
}

// Expects failure with `code` and every one of `fragments` in the message.
void ExpectError(const StatusOr<ModelConfig>& result, StatusCode code,
                 std::initializer_list<std::string_view> fragments) {
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), code) << result.status().ToString();
  for (const std::string_view f : fragments) {
    EXPECT_NE(result.status().message().find(f), std::string::npos)
        << "'" << f << "' not in: " << result.status().message();
  }
}

TEST(ModelConfigTest, TinyFixtureClassicForm) {
  const std::string path = testing::FixturePath("tiny-llama3/config.json");
  StatusOr<ModelConfig> c = ModelConfig::FromJsonFile(path);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->architecture, "LlamaForCausalLM");
  EXPECT_EQ(c->model_type, "llama");
  EXPECT_EQ(c->vocab_size, 128256);
  EXPECT_EQ(c->hidden_size, 64);
  EXPECT_EQ(c->intermediate_size, 192);
  EXPECT_EQ(c->num_layers, 2);
  EXPECT_EQ(c->num_heads, 4);
  EXPECT_EQ(c->num_kv_heads, 2);
  EXPECT_EQ(c->head_dim, 16);
  EXPECT_DOUBLE_EQ(c->rms_norm_eps, 1e-5);
  EXPECT_EQ(c->max_position_embeddings, 131072);
  EXPECT_TRUE(c->tie_word_embeddings);
  ASSERT_TRUE(c->bos_token_id.has_value());
  EXPECT_EQ(*c->bos_token_id, 128000);
  EXPECT_EQ(c->eos_token_ids, (std::vector<int64_t>{128001, 128008, 128009}));
  ASSERT_TRUE(c->dtype.has_value());
  EXPECT_EQ(*c->dtype, DType::kBF16);
  EXPECT_EQ(c->rope.type, RopeType::kLlama3);
  EXPECT_DOUBLE_EQ(c->rope.theta, 500000.0);
  EXPECT_DOUBLE_EQ(c->rope.factor, 8.0);
  EXPECT_DOUBLE_EQ(c->rope.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(c->rope.high_freq_factor, 4.0);
  EXPECT_EQ(c->rope.original_max_position_embeddings, 8192);
  EXPECT_EQ(c->sliding_window, 0);
}

// reference.json's "model" is the same config as written by transformers 5 (rope_parameters,
// "dtype"): it must parse to the same ModelConfig, RoPE included.
TEST(ModelConfigTest, RopeParametersFormMatchesClassicForm) {
  const json::value reference =
      json::parse(testing::ReadFileOrDie(testing::FixturePath("tiny-llama3/reference.json")));
  const json::object& model = reference.at("model").as_object();
  ASSERT_TRUE(model.contains("rope_parameters"));
  ASSERT_FALSE(model.contains("rope_scaling"));
  StatusOr<ModelConfig> newer = ModelConfig::FromJson(json::serialize(model), "reference.json");
  ASSERT_TRUE(newer.ok()) << newer.status().ToString();
  StatusOr<ModelConfig> classic =
      ModelConfig::FromJsonFile(testing::FixturePath("tiny-llama3/config.json"));
  ASSERT_TRUE(classic.ok()) << classic.status().ToString();
  EXPECT_EQ(newer->rope.type, RopeType::kLlama3);
  EXPECT_TRUE(newer->rope == classic->rope);
  EXPECT_TRUE(*newer == *classic);
}

TEST(ModelConfigTest, RopeParametersNestedPerLayerType) {
  json::object o = BaseConfig();
  o["rope_parameters"] = json::parse(R"({
      "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
      "full_attention": {"rope_type": "linear", "rope_theta": 1000000.0, "factor": 4.0}})");
  StatusOr<ModelConfig> c = Parse(o);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->rope.type, RopeType::kLinear);
  EXPECT_DOUBLE_EQ(c->rope.theta, 1e6);
  EXPECT_DOUBLE_EQ(c->rope.factor, 4.0);

  o["rope_parameters"] = json::parse(R"({"default": {"rope_theta": 20000.0}})");
  c = Parse(o);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->rope.type, RopeType::kDefault);
  EXPECT_DOUBLE_EQ(c->rope.theta, 20000.0);

  o["rope_parameters"] = json::parse(R"({"sliding_attention": {"rope_theta": 10000.0}})");
  ExpectError(Parse(o), StatusCode::kInvalidArgument,
              {"test-config.json", "rope_parameters", "full_attention", "sliding_attention"});
}

TEST(ModelConfigTest, RopeDefaultAndLinear) {
  json::object o = BaseConfig();
  StatusOr<ModelConfig> c = Parse(o);  // no rope fields at all
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->rope, RopeConfig{});
  EXPECT_DOUBLE_EQ(c->rope.theta, 10000.0);

  o["rope_theta"] = 250000.0;
  o["rope_scaling"] = nullptr;
  c = Parse(o);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->rope.type, RopeType::kDefault);
  EXPECT_DOUBLE_EQ(c->rope.theta, 250000.0);

  o["rope_scaling"] = json::parse(R"({"type": "linear", "factor": 2.0})");  // legacy key
  c = Parse(o);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->rope.type, RopeType::kLinear);
  EXPECT_DOUBLE_EQ(c->rope.factor, 2.0);

  o["rope_scaling"] = json::parse(R"({"rope_type": "linear"})");
  ExpectError(Parse(o), StatusCode::kInvalidArgument, {"rope_scaling.factor", "required"});
}

TEST(ModelConfigTest, RopeUnsupportedTypesAreNamed) {
  json::object o = BaseConfig();
  o["rope_scaling"] = json::parse(R"({"type": "dynamic", "factor": 2.0})");
  ExpectError(Parse(o), StatusCode::kUnimplemented, {"'dynamic'", "llama3"});

  o.erase("rope_scaling");
  o["rope_parameters"] =
      json::parse(R"({"rope_type": "yarn", "rope_theta": 10000.0, "factor": 4.0})");
  ExpectError(Parse(o), StatusCode::kUnimplemented, {"'yarn'", "rope_parameters.rope_type"});
}

TEST(ModelConfigTest, RopeLlama3NeedsAllParameters) {
  json::object o = BaseConfig();
  o["rope_scaling"] = json::parse(
      R"({"rope_type": "llama3", "factor": 8.0, "high_freq_factor": 4.0,
          "original_max_position_embeddings": 8192})");
  ExpectError(Parse(o), StatusCode::kInvalidArgument, {"rope_scaling.low_freq_factor"});

  o["rope_scaling"].as_object()["low_freq_factor"] = 4.0;  // high must exceed low
  ExpectError(Parse(o), StatusCode::kInvalidArgument, {"low_freq_factor < high_freq_factor"});
}

TEST(ModelConfigTest, ConflictingRopeThetaIsAnError) {
  json::object o = BaseConfig();
  o["rope_theta"] = 10000.0;
  o["rope_parameters"] = json::parse(R"({"rope_type": "default", "rope_theta": 500000.0})");
  ExpectError(Parse(o), StatusCode::kInvalidArgument, {"rope_theta", "disagrees"});
}

TEST(ModelConfigTest, ExplicitHeadDim) {
  json::object o = BaseConfig();
  o["num_attention_heads"] = 2;
  o["num_key_value_heads"] = 1;
  o["head_dim"] = 16;  // hidden 64 / 2 heads would give 32
  StatusOr<ModelConfig> c = Parse(o);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->head_dim, 16);
  EXPECT_EQ(c->q_dim(), 32);
  EXPECT_EQ(c->kv_dim(), 16);

  o["head_dim"] = nullptr;  // Mistral configs write null: derived
  c = Parse(o);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->head_dim, 32);

  o["head_dim"] = 15;
  ExpectError(Parse(o), StatusCode::kInvalidArgument, {"head_dim=15", "even"});
}

TEST(ModelConfigTest, KvHeadsDefaultToHeads) {
  json::object o = BaseConfig();
  o.erase("num_key_value_heads");
  StatusOr<ModelConfig> c = Parse(o);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->num_kv_heads, 4);
  EXPECT_EQ(c->head_dim, 16);
}

TEST(ModelConfigTest, EosIntListOrNull) {
  json::object o = BaseConfig();
  o["eos_token_id"] = 2;
  o["bos_token_id"] = 1;
  StatusOr<ModelConfig> c = Parse(o);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->eos_token_ids, std::vector<int64_t>{2});
  EXPECT_EQ(c->bos_token_id, std::optional<int64_t>(1));

  o["eos_token_id"] = json::array{7, 9};
  c = Parse(o);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->eos_token_ids, (std::vector<int64_t>{7, 9}));

  o["eos_token_id"] = nullptr;
  o["bos_token_id"] = nullptr;
  c = Parse(o);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->eos_token_ids.empty());
  EXPECT_FALSE(c->bos_token_id.has_value());

  o["eos_token_id"] = json::array{7, "x"};
  ExpectError(Parse(o), StatusCode::kInvalidArgument, {"eos_token_id", "[1]"});
  o["eos_token_id"] = 1000;  // == vocab_size
  ExpectError(Parse(o), StatusCode::kInvalidArgument, {"eos_token_id=1000", "vocabulary"});
}

TEST(ModelConfigTest, TiedEmbeddingsDefaultFalse) {
  json::object o = BaseConfig();
  StatusOr<ModelConfig> c = Parse(o);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->tie_word_embeddings);
  o["tie_word_embeddings"] = true;
  c = Parse(o);
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->tie_word_embeddings);
  o["tie_word_embeddings"] = "yes";
  ExpectError(Parse(o), StatusCode::kInvalidArgument, {"tie_word_embeddings", "true or false"});
}

TEST(ModelConfigTest, Mistral) {
  json::object o = BaseConfig();
  o["architectures"] = json::array{"MistralForCausalLM"};
  o["model_type"] = "mistral";
  o["sliding_window"] = 4096;
  o["head_dim"] = nullptr;
  StatusOr<ModelConfig> c = Parse(o);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->architecture, "MistralForCausalLM");
  EXPECT_EQ(c->sliding_window, 4096);
  o["sliding_window"] = nullptr;
  c = Parse(o);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->sliding_window, 0);

  o["model_type"] = "llama";  // contradicts the architecture
  ExpectError(Parse(o), StatusCode::kInvalidArgument, {"model_type", "MistralForCausalLM"});
}

TEST(ModelConfigTest, UnsupportedModelsAreNamed) {
  json::object o = BaseConfig();
  o["architectures"] = json::array{"Qwen2ForCausalLM"};
  o["model_type"] = "qwen2";
  ExpectError(Parse(o), StatusCode::kUnimplemented,
              {"test-config.json", "'Qwen2ForCausalLM'", "LlamaForCausalLM"});

  o.erase("architectures");
  o["model_type"] = "gpt2";
  ExpectError(Parse(o), StatusCode::kUnimplemented, {"'gpt2'"});

  o = BaseConfig();
  o.erase("architectures");  // model_type alone is enough
  EXPECT_TRUE(Parse(o).ok());

  o = BaseConfig();
  o["attention_bias"] = true;
  ExpectError(Parse(o), StatusCode::kUnimplemented, {"attention_bias=true"});
  o = BaseConfig();
  o["mlp_bias"] = true;
  ExpectError(Parse(o), StatusCode::kUnimplemented, {"mlp_bias=true"});
  o = BaseConfig();
  o["hidden_act"] = "gelu";
  ExpectError(Parse(o), StatusCode::kUnimplemented, {"hidden_act=gelu"});
  o = BaseConfig();
  o["quantization_config"] = json::parse(R"({"quant_method": "awq", "bits": 4})");
  ExpectError(Parse(o), StatusCode::kUnimplemented, {"quantized", "awq"});
}

TEST(ModelConfigTest, ValidationErrors) {
  json::object o = BaseConfig();
  o["num_attention_heads"] = 32;
  o["num_key_value_heads"] = 5;
  o["head_dim"] = 8;
  ExpectError(Parse(o), StatusCode::kInvalidArgument,
              {"num_attention_heads=32", "num_key_value_heads=5"});

  o = BaseConfig();
  o["hidden_size"] = -64;
  ExpectError(Parse(o), StatusCode::kInvalidArgument, {"hidden_size=-64"});

  o = BaseConfig();
  o["intermediate_size"] = int64_t{1} << 40;
  ExpectError(Parse(o), StatusCode::kInvalidArgument, {"intermediate_size"});

  o = BaseConfig();
  o["hidden_size"] = "64";
  ExpectError(Parse(o), StatusCode::kInvalidArgument, {"'hidden_size'", "integer"});

  o = BaseConfig();
  o["hidden_size"] = 64.5;
  ExpectError(Parse(o), StatusCode::kInvalidArgument, {"'hidden_size'", "integer"});

  o = BaseConfig();
  o.erase("vocab_size");
  ExpectError(Parse(o), StatusCode::kInvalidArgument, {"'vocab_size'", "required"});

  o = BaseConfig();
  o["num_attention_heads"] = 3;  // 64 % 3 != 0 and no head_dim
  o["num_key_value_heads"] = 1;
  ExpectError(Parse(o), StatusCode::kInvalidArgument, {"not a multiple"});

  o = BaseConfig();
  o["rms_norm_eps"] = 0;
  ExpectError(Parse(o), StatusCode::kInvalidArgument, {"rms_norm_eps"});

  o = BaseConfig();
  o["torch_dtype"] = "int8";
  ExpectError(Parse(o), StatusCode::kInvalidArgument, {"'int8'"});

  ExpectError(ModelConfig::FromJson("{\"vocab_size\": 3,", "broken.json"),
              StatusCode::kInvalidArgument, {"broken.json", "invalid JSON"});
  ExpectError(ModelConfig::FromJson("[1, 2]", "array.json"), StatusCode::kInvalidArgument,
              {"array.json", "object"});
  ExpectError(ModelConfig::FromJsonFile("/nonexistent/config.json"), StatusCode::kNotFound,
              {"/nonexistent/config.json"});
}

TEST(ModelConfigTest, Llama31_8B) {
  StatusOr<ModelConfig> c =
      ModelConfig::FromJsonFile(testing::FixturePath("llama3.1-8b/config.json"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->head_dim, 128);
  EXPECT_EQ(c->num_kv_heads, 8);
  EXPECT_FALSE(c->tie_word_embeddings);
  EXPECT_EQ(c->rope.type, RopeType::kLlama3);
  // 2 * 128256 * 4096 (embedding + lm_head) + 32 * 218112000 (layers) + 4096 (final norm).
  EXPECT_EQ(c->NumParameters(), int64_t{8030261248});
  EXPECT_NE(c->Summary().find("8.03B"), std::string::npos) << c->Summary();
  EXPECT_NE(c->Summary().find("32 layers"), std::string::npos) << c->Summary();
}

TEST(ModelConfigTest, TiedNumParameters) {
  StatusOr<ModelConfig> c =
      ModelConfig::FromJsonFile(testing::FixturePath("tiny-llama3/config.json"));
  ASSERT_TRUE(c.ok());
  // 128256 * 64 + 2 * (2*64 + 64*64 + 2*32*64 + 64*64 + 3*192*64) + 64.
  EXPECT_EQ(c->NumParameters(), 8208384 + 2 * 49280 + 64);
}

TEST(ModelConfigTest, ToJsonRoundTrips) {
  StatusOr<ModelConfig> tiny =
      ModelConfig::FromJsonFile(testing::FixturePath("tiny-llama3/config.json"));
  ASSERT_TRUE(tiny.ok());
  const std::string text = tiny->ToJson();
  EXPECT_NE(text.find("\"rope_theta\": 500000.0"), std::string::npos) << text;
  EXPECT_NE(text.find("\"rms_norm_eps\": 1e-05"), std::string::npos) << text;
  EXPECT_NE(text.find("\"torch_dtype\": \"bfloat16\""), std::string::npos) << text;
  StatusOr<ModelConfig> back = ModelConfig::FromJson(text, "roundtrip");
  ASSERT_TRUE(back.ok()) << back.status().ToString() << "\n" << text;
  EXPECT_TRUE(*back == *tiny) << text;

  ModelConfig variant = *tiny;
  variant.architecture = "MistralForCausalLM";
  variant.model_type = "mistral";
  variant.sliding_window = 4096;
  variant.rope = RopeConfig{.type = RopeType::kLinear, .theta = 1e6, .factor = 2.5};
  variant.eos_token_ids = {5};
  variant.bos_token_id.reset();
  variant.dtype.reset();
  variant.rms_norm_eps = 1e-6;
  variant.initializer_range = 0.006;
  back = ModelConfig::FromJson(variant.ToJson(), "roundtrip");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(*back == variant) << variant.ToJson();

  variant.rope = RopeConfig{};
  back = ModelConfig::FromJson(variant.ToJson(), "roundtrip");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_TRUE(*back == variant) << variant.ToJson();
}

}  // namespace
}  // namespace sieve::worker
