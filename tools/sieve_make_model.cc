// sieve-make-model: writes a Hugging Face Llama model directory with deterministic random weights.
//
//   sieve-make-model --preset tiny --out /tmp/tiny [--seed 0] [--tokenizer path/tokenizer.json]
//   sieve-make-model --list-presets
//
// Writes DIR/config.json (classic rope_theta/rope_scaling form, torch_dtype bfloat16),
// DIR/model.safetensors (bf16; norms 1.0, everything else normal(0, initializer_range), drawn by
// the RandomInit trio so a GPU-side init gives the same bytes), DIR/generation_config.json, and,
// with --tokenizer, a copy of tokenizer.json plus a minimal tokenizer_config.json. Tensors are
// generated and written one at a time, so memory stays at the largest tensor (1 GB for 8b's
// embedding), not the model. The same preset and seed always give the same files.
//
// Prints one summary line on stdout; errors go to stderr with a non-zero exit status.
// Exercised by hand and through the loader tests' fixtures (tests/unit/worker/checkpoint_test.cc
// validates directories of the same layout).
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "comm/log.h"
#include "comm/status.h"
#include "worker/checkpoint.h"
#include "worker/model_config.h"
#include "worker/random_weights.h"
#include "worker/safetensors.h"

namespace sieve::worker {
namespace {

namespace fs = std::filesystem;

struct Preset {
  const char* name;
  const char* description;
  ModelConfig (*make)();
};

// Llama-3.x common fields: vocabulary and special tokens of the Llama-3 tokenizer, llama3 RoPE.
ModelConfig Llama3Base() {
  ModelConfig c;
  c.architecture = "LlamaForCausalLM";
  c.model_type = "llama";
  c.vocab_size = 128256;
  c.rms_norm_eps = 1e-5;
  c.max_position_embeddings = 131072;
  c.bos_token_id = 128000;
  c.eos_token_ids = {128001, 128008, 128009};
  c.initializer_range = 0.02;
  c.dtype = DType::kBF16;
  c.rope = RopeConfig{.type = RopeType::kLlama3,
                      .theta = 500000.0,
                      .factor = 8.0,
                      .low_freq_factor = 1.0,
                      .high_freq_factor = 4.0,
                      .original_max_position_embeddings = 8192};
  return c;
}

ModelConfig Tiny() {  // tests/fixtures/tiny-llama3
  ModelConfig c = Llama3Base();
  c.num_layers = 2;
  c.hidden_size = 64;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 16;
  c.intermediate_size = 192;
  c.tie_word_embeddings = true;
  return c;
}

ModelConfig Small() {
  ModelConfig c = Llama3Base();
  c.num_layers = 4;
  c.hidden_size = 256;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.head_dim = 64;
  c.intermediate_size = 768;
  c.tie_word_embeddings = true;
  return c;
}

ModelConfig Llama32_1B() {  // meta-llama/Llama-3.2-1B(-Instruct)
  ModelConfig c = Llama3Base();
  c.num_layers = 16;
  c.hidden_size = 2048;
  c.num_heads = 32;
  c.num_kv_heads = 8;
  c.head_dim = 64;
  c.intermediate_size = 8192;
  c.tie_word_embeddings = true;
  c.rope.factor = 32.0;
  return c;
}

ModelConfig Llama31_8B() {  // tests/fixtures/llama3.1-8b/config.json
  ModelConfig c = Llama3Base();
  c.num_layers = 32;
  c.hidden_size = 4096;
  c.num_heads = 32;
  c.num_kv_heads = 8;
  c.head_dim = 128;
  c.intermediate_size = 14336;
  c.tie_word_embeddings = false;
  return c;
}

constexpr Preset kPresets[] = {
    {"tiny", "the tiny-llama3 fixture's shape (2 layers, hidden 64)", Tiny},
    {"small", "4 layers, hidden 256, 4/2 heads x 64", Small},
    {"1b", "Llama-3.2-1B shape", Llama32_1B},
    {"8b", "Llama-3.1-8B shape", Llama31_8B},
};

void PrintUsage(std::FILE* out) {
  std::fprintf(out,
               "usage: sieve-make-model --preset NAME --out DIR [--seed N] "
               "[--tokenizer PATH/tokenizer.json] [--log-level LEVEL]\n"
               "       sieve-make-model --list-presets\n");
}

Status WriteTextFile(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return Status::Internal(StrFormat("cannot write %s", path.string().c_str()));
  return Status::Ok();
}

std::string IdListJson(const std::vector<int64_t>& ids) {
  if (ids.size() == 1) return std::to_string(ids[0]);
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? ", " : "") + std::to_string(ids[i]);
  return s + "]";
}

// Fills one tensor, split across threads for large ones (each slice is independent).
Status FillParallel(const TensorSpec& spec, uint64_t seed, float init_range, void* out) {
  const int64_t n = spec.NumElements();
  const int64_t threads = std::clamp<int64_t>(std::thread::hardware_concurrency(), 1, 32);
  constexpr int64_t kMinPerThread = int64_t{1} << 18;
  const int64_t parts = std::clamp<int64_t>(n / kMinPerThread, 1, threads);
  if (parts == 1) return FillRandomWeight(spec, seed, init_range, DType::kBF16, out);
  std::vector<Status> results(static_cast<size_t>(parts));
  std::vector<std::thread> workers;
  for (int64_t p = 0; p < parts; ++p) {
    const int64_t begin = n * p / parts;
    const int64_t end = n * (p + 1) / parts;
    workers.emplace_back([&, p, begin, end] {
      results[static_cast<size_t>(p)] =
          FillRandomWeightSlice(spec, seed, init_range, DType::kBF16, begin, end - begin,
                                static_cast<uint16_t*>(out) + begin);
    });
  }
  for (std::thread& t : workers) t.join();
  for (const Status& s : results) SIEVE_RETURN_IF_ERROR(s);
  return Status::Ok();
}

Status MakeModel(const ModelConfig& config, const fs::path& dir, uint64_t seed,
                 const std::string& tokenizer) {
  SIEVE_RETURN_IF_ERROR(config.Validate());
  std::error_code ec;
  if (!tokenizer.empty() && !fs::is_regular_file(tokenizer, ec)) {  // fail before writing
    return Status::NotFound(StrFormat("tokenizer %s is not a readable file", tokenizer.c_str()));
  }
  fs::create_directories(dir, ec);
  if (ec) {
    return Status::Internal(
        StrFormat("cannot create %s: %s", dir.string().c_str(), ec.message().c_str()));
  }
  SIEVE_RETURN_IF_ERROR(WriteTextFile(dir / "config.json", config.ToJson()));

  std::string generation = "{\n";
  if (config.bos_token_id) {
    generation +=
        StrFormat("  \"bos_token_id\": %lld,\n", static_cast<long long>(*config.bos_token_id));
  }
  if (!config.eos_token_ids.empty()) {
    generation += "  \"eos_token_id\": " + IdListJson(config.eos_token_ids) + ",\n";
  }
  generation += "  \"do_sample\": false\n}\n";
  SIEVE_RETURN_IF_ERROR(WriteTextFile(dir / "generation_config.json", generation));

  if (!tokenizer.empty()) {
    fs::copy_file(tokenizer, dir / "tokenizer.json", fs::copy_options::overwrite_existing, ec);
    if (ec) {
      return Status::NotFound(
          StrFormat("cannot copy tokenizer %s: %s", tokenizer.c_str(), ec.message().c_str()));
    }
    const std::string tokenizer_config = StrFormat(
        "{\n"
        "  \"bos_token\": \"<|begin_of_text|>\",\n"
        "  \"eos_token\": \"<|eot_id|>\",\n"
        "  \"clean_up_tokenization_spaces\": true,\n"
        "  \"model_input_names\": [\"input_ids\", \"attention_mask\"],\n"
        "  \"model_max_length\": %lld,\n"
        "  \"tokenizer_class\": \"PreTrainedTokenizerFast\"\n"
        "}\n",
        static_cast<long long>(config.max_position_embeddings));
    SIEVE_RETURN_IF_ERROR(WriteTextFile(dir / "tokenizer_config.json", tokenizer_config));
  }

  const float init_range = static_cast<float>(config.initializer_range);
  std::vector<TensorSpec> specs = ExpectedTensors(config);
  std::vector<TensorToWrite> tensors;
  tensors.reserve(specs.size());
  for (const TensorSpec& spec : specs) {
    tensors.push_back(TensorToWrite{.name = spec.name,
                                    .dtype = DType::kBF16,
                                    .shape = spec.shape,
                                    .data = nullptr,
                                    .fill = [&spec, seed, init_range](void* out, size_t) {
                                      SIEVE_LOG_INFO("writing tensor", "name=%s shape=%s",
                                                     spec.name.c_str(),
                                                     ShapeToString(spec.shape).c_str());
                                      return FillParallel(spec, seed, init_range, out);
                                    }});
  }
  return WriteSafetensors((dir / Checkpoint::kSingleFile).string(), tensors,
                          {{"format", "pt"},
                           {"sieve_seed", std::to_string(seed)},
                           {"sieve_generator", "sieve-make-model"}});
}

int Main(int argc, char** argv) {
  std::string preset_name, out_dir, tokenizer;
  uint64_t seed = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    auto value = [&](const char* flag) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "sieve-make-model: %s needs a value\n", flag);
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--preset") {
      preset_name = value("--preset");
    } else if (arg == "--out") {
      out_dir = value("--out");
    } else if (arg == "--tokenizer") {
      tokenizer = value("--tokenizer");
    } else if (arg == "--seed") {
      const char* text = value("--seed");
      char* end = nullptr;
      errno = 0;
      seed = std::strtoull(text, &end, 10);
      if (*text == '\0' || *end != '\0' || errno != 0 || *text == '-') {
        std::fprintf(stderr, "sieve-make-model: --seed wants a non-negative integer, got '%s'\n",
                     text);
        return 2;
      }
    } else if (arg == "--log-level") {
      LogLevel level;
      const char* text = value("--log-level");
      if (!ParseLogLevel(text, &level)) {
        std::fprintf(stderr, "sieve-make-model: unknown --log-level '%s'\n", text);
        return 2;
      }
      SetLogLevel(level);
    } else if (arg == "--list-presets") {
      for (const Preset& p : kPresets) {
        std::printf("%-6s %s: %s\n", p.name, p.description, p.make().Summary().c_str());
      }
      return 0;
    } else if (arg == "--help" || arg == "-h") {
      PrintUsage(stdout);
      return 0;
    } else {
      std::fprintf(stderr, "sieve-make-model: unknown argument '%s'\n", argv[i]);
      PrintUsage(stderr);
      return 2;
    }
  }
  if (preset_name.empty() || out_dir.empty()) {
    std::fprintf(stderr, "sieve-make-model: --preset and --out are required\n");
    PrintUsage(stderr);
    return 2;
  }
  const Preset* preset = nullptr;
  for (const Preset& p : kPresets) {
    if (preset_name == p.name) preset = &p;
  }
  if (preset == nullptr) {
    std::fprintf(stderr, "sieve-make-model: unknown preset '%s' (try --list-presets)\n",
                 preset_name.c_str());
    return 2;
  }
  const ModelConfig config = preset->make();
  const auto start = std::chrono::steady_clock::now();
  const Status status = MakeModel(config, out_dir, seed, tokenizer);
  if (!status.ok()) {
    std::fprintf(stderr, "sieve-make-model: %s\n", status.ToString().c_str());
    return 1;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("wrote %s (preset %s, seed %llu, bf16, %.2f GB, %.1f s): %s\n", out_dir.c_str(),
              preset->name, static_cast<unsigned long long>(seed),
              2.0 * static_cast<double>(config.NumParameters()) / 1e9, seconds,
              config.Summary().c_str());
  return 0;
}

}  // namespace
}  // namespace sieve::worker

int main(int argc, char** argv) { return sieve::worker::Main(argc, argv); }
