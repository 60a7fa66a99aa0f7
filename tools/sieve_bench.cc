// sieve-bench: Sieve's benchmarks. Every figure is a median over repetitions after a warm-up,
// printed as one JSON line per measurement plus a table; FLOP formulas are in bench/METRICS.md.
//
//   sieve-bench gemm    [--device D] [--m 16384 --k 4096 --n 14336]
//       the backend's GEMM rate at a prefill shape (the ceiling for the linear layers)
//   sieve-bench prefill --model DIR [--random-weights S] --tokens 32768,131072 --chunk-tokens 8192
//                       [--mode parallel|parallelcomp|full] [--query-tokens 16] [--reps 3]
//                       [--breakdown]
//       the local prefill of every chunk (the same work as HF chunked prefill in parallel mode):
//       seconds, tokens/s, TFLOP/s and MFU against the GEMM rate measured in the same run;
//       --breakdown adds a profiled run split by op (gemm, attention, norm, rope, scoring, ...);
//       --residual-dtype f32|bf16 overrides the backend's residual stream and --gemm-tuning on
//       times cuBLASLt's candidate algorithms once per size class (worker/backend.h
//       BackendOptions; off by default)
//   sieve-bench decode  --model DIR [--random-weights S] [--prompt-tokens 24576] [--steps 64]
//                       [--breakdown]
//       ms per generated token at batch 1 with a prompt-sized cache (SCOPE off)
//   sieve-bench ttft    --model DIR ... --tokens N [--mode ...] [--keep-chunks K]
//       time to first token of the whole single-process pipeline
//   sieve-bench quality / eval: answer quality against length (tools/bench_quality.h)
//
// Benchmarks are opt-in and never run as timed tests in CI.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <numeric>
#include <random>
#include <sstream>

#include <boost/json.hpp>

#include "comm/chunk_plan.h"
#include "tools/bench_quality.h"
#include "tools/bench_scaling.h"
#include "tools/cli.h"
#include "worker/chunk_prefill.h"
#include "worker/decoder.h"
#include "worker/model_loader.h"
#include "worker/pipeline.h"

namespace sieve::tools {
namespace {
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

constexpr const char* kUsage =
    "usage: sieve-bench gemm    [--device D] [--m M --k K --n N] [--reps R]\n"
    "       sieve-bench prefill --model DIR [--random-weights S] --tokens N[,N...] [--chunk-tokens "
    "C]\n"
    "                           [--mode parallel|parallelcomp|full] [--query-tokens Q] [--reps R]\n"
    "                           [--breakdown] [--device D] [--residual-dtype f32|bf16]\n"
    "                           [--gemm-tuning on|off]\n"
    "       sieve-bench decode  --model DIR [--random-weights S] [--prompt-tokens P] [--steps N]\n"
    "                           [--breakdown]\n"
    "       sieve-bench ttft    --model DIR [--random-weights S] --tokens N [--chunk-tokens C]\n"
    "                           [--mode M] [--keep-chunks K] [--reps R]\n"
    "       sieve-bench quality --model DIR [--lengths 1024,...] [--depths 0,0.5,1] [--samples N]\n"
    "                           [--modes full,truncated,parallel,parallelcomp_k1,...]\n"
    "                           [--out FILE.json] [--png FILE.png]\n"
    "       sieve-bench eval    --model DIR --data FILE.jsonl [--metric auto|em|contains|f1]\n"
    "                           [--limit N] [--query-template T] [--score-only]\n"
    "       sieve-bench scaling --model DIR [--random-weights S] [--gpus 1,2,4] [--tokens N,...]\n"
    "                           [--node PATH] [--out FILE.json] [--png FILE.png]\n"
    "       mpirun -np 2 sieve-bench nccl [--bytes B]\n";

int Fail(const Status& s, int code) {
  std::cerr << "sieve-bench: " << s.ToString() << std::endl;
  return code;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

void Emit(const json::object& o) { std::cout << json::serialize(o) << std::endl; }

std::vector<int32_t> RandomTokens(int64_t n, int64_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> ids(n);
  // Avoid the special-token range at the top of Llama vocabularies; any id works for timing.
  const int64_t hi = std::max<int64_t>(2, std::min<int64_t>(vocab, 128000));
  for (auto& id : ids) id = static_cast<int32_t>(rng() % hi);
  return ids;
}

// FLOPs of a forward over `rows` rows made of sequences of the given lengths: 2 * linear
// parameters * rows for the projections, plus causal attention 2 * S^2 * hidden per sequence and
// layer (bench/METRICS.md). The LM head is counted for `lm_rows` rows only.
double ForwardFlops(const worker::ModelConfig& c, const std::vector<int64_t>& seq_lens,
                    int64_t lm_rows) {
  const double per_layer_linear = double(c.hidden_size) * (c.q_dim() + 2 * c.kv_dim()) +
                                  double(c.q_dim()) * c.hidden_size +
                                  3.0 * c.hidden_size * c.intermediate_size;
  double rows = 0, attention = 0;
  for (int64_t s : seq_lens) {
    rows += s;
    attention += 2.0 * double(s) * double(s) * double(c.q_dim()) * c.num_layers;
  }
  return 2.0 * per_layer_linear * c.num_layers * rows + attention +
         2.0 * double(c.vocab_size) * c.hidden_size * lm_rows;
}

StatusOr<worker::LoadedModel> Load(const Args& args, bool profiling) {
  auto model = args.Get("model");
  if (!model) return Status::InvalidArgument("--model is required");
  SIEVE_ASSIGN_OR_RETURN(auto seed, args.GetUint("random-weights"));
  SIEVE_ASSIGN_OR_RETURN(auto index, args.GetInt("device-index"));
  worker::LoadModelOptions options;
  options.model_dir = *model;
  options.device = args.GetOr("device", "auto");
  options.device_index = static_cast<int>(index.value_or(0));
  options.random_seed = seed;
  options.profiling = profiling;
  if (auto residual = args.Get("residual-dtype")) {
    if (*residual == "f32") {
      options.backend.residual_dtype = DType::kF32;
    } else if (*residual == "bf16") {
      options.backend.residual_dtype = DType::kBF16;
    } else {
      return Status::InvalidArgument("--residual-dtype: f32 or bf16, not '" + *residual + "'");
    }
  }
  if (auto tuning = args.Get("gemm-tuning")) {
    if (*tuning != "on" && *tuning != "off") {
      return Status::InvalidArgument("--gemm-tuning: on or off, not '" + *tuning + "'");
    }
    options.backend.tune_gemms = *tuning == "on";
  }
  return worker::LoadModel(options);
}

// GEMM rate of the backend at one shape, in TFLOP/s (median of `reps` timed batches).
StatusOr<double> MeasureGemm(worker::Backend& be, int64_t m, int64_t k, int64_t n, int reps) {
  const DType dt = be.compute_dtype();
  const size_t e = DTypeSize(dt);
  SIEVE_ASSIGN_OR_RETURN(worker::DeviceBuffer x, be.Allocate(m * k * e));
  SIEVE_ASSIGN_OR_RETURN(worker::DeviceBuffer w, be.Allocate(n * k * e));
  SIEVE_ASSIGN_OR_RETURN(worker::DeviceBuffer y, be.Allocate(m * n * e));
  be.RandomInit({.out = x.get(),
                 .dtype = dt,
                 .n = m * k,
                 .seed = 1,
                 .stream = 1,
                 .mean = 0,
                 .stddev = 1,
                 .constant = false});
  be.RandomInit({.out = w.get(),
                 .dtype = dt,
                 .n = n * k,
                 .seed = 1,
                 .stream = 2,
                 .mean = 0,
                 .stddev = 1,
                 .constant = false});
  const kernels::GemmArgs args = kernels::DenseGemmArgs(x.get(), w.get(), y.get(), m, n, k, dt, dt);
  be.Gemm(args);
  SIEVE_RETURN_IF_ERROR(be.Synchronize());
  const int inner = be.kind() == worker::DeviceKind::kCpu ? 1 : 10;
  std::vector<double> rates;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    for (int i = 0; i < inner; ++i) be.Gemm(args);
    SIEVE_RETURN_IF_ERROR(be.Synchronize());
    const double s = std::chrono::duration<double>(Clock::now() - t0).count() / inner;
    rates.push_back(2.0 * m * n * k / s / 1e12);
  }
  return Median(rates);
}

int Gemm(const Args& args) {
  auto backend = worker::MakeBackend(args.GetOr("device", "auto"), 0);
  if (!backend.ok()) return Fail(backend.status(), kExitModel);
  auto m = args.GetInt("m"), k = args.GetInt("k"), n = args.GetInt("n"), reps = args.GetInt("reps");
  if (!m.ok() || !k.ok() || !n.ok() || !reps.ok())
    return Fail(Status::InvalidArgument("bad shape"), kExitUsage);
  std::vector<std::array<int64_t, 3>> shapes;
  if (*m || *k || *n) {
    shapes.push_back({m->value_or(16384), k->value_or(4096), n->value_or(14336)});
  } else {
    shapes = {{16384, 4096, 14336}, {16384, 4096, 6144}, {16384, 14336, 4096}};
  }
  for (const auto& [mm, kk, nn] : shapes) {
    auto rate = MeasureGemm(**backend, mm, kk, nn, static_cast<int>(reps->value_or(5)));
    if (!rate.ok()) return Fail(rate.status(), kExitInternal);
    Emit({{"what", "gemm"},
          {"device", (*backend)->Describe()},
          {"m", mm},
          {"k", kk},
          {"n", nn},
          {"tflops", *rate}});
  }
  return kExitOk;
}

int Prefill(const Args& args) {
  auto loaded = Load(args, args.Has("breakdown"));
  if (!loaded.ok()) return Fail(loaded.status(), kExitModel);
  const worker::ModelConfig& c = loaded->config;
  worker::Backend& be = *loaded->backend;
  auto tokens_list = args.GetIntList("tokens");
  auto chunk = args.GetInt("chunk-tokens");
  auto qtokens = args.GetInt("query-tokens");
  auto reps = args.GetInt("reps");
  auto keep = args.GetInt("keep-chunks");
  if (!tokens_list.ok() || !*tokens_list || !chunk.ok() || !qtokens.ok() || !reps.ok() ||
      !keep.ok()) {
    return Fail(Status::InvalidArgument("--tokens N[,N...] is required; numbers must be integers"),
                kExitUsage);
  }
  const std::string mode = args.GetOr("mode", "parallel");
  if (mode != "parallel" && mode != "parallelcomp" && mode != "full") {
    return Fail(Status::InvalidArgument("--mode: parallel, parallelcomp or full"), kExitUsage);
  }
  const int64_t chunk_tokens = chunk->value_or(8192);
  const int64_t m = qtokens->value_or(16);
  const int r = static_cast<int>(reps->value_or(3));
  // GEMM ceiling in the same run (bf16 at a prefill shape on CUDA; fp32 on the CPU).
  const bool cpu = be.kind() == worker::DeviceKind::kCpu;
  auto peak = cpu ? MeasureGemm(be, 1024, 1024, 1024, 3) : MeasureGemm(be, 16384, 4096, 14336, 5);
  if (!peak.ok()) return Fail(peak.status(), kExitInternal);
  const std::vector<int32_t> query = RandomTokens(m, c.vocab_size, 7);
  for (int32_t n : **tokens_list) {
    const std::vector<int32_t> doc = RandomTokens(n, c.vocab_size, 11);
    std::vector<worker::ChunkInput> chunks;
    std::vector<int64_t> lens;
    worker::ChunkPrefillOptions opt;
    if (mode == "full") {
      chunks.push_back({.index = 0, .context = doc});
      lens.push_back(n + 2 + m);
      opt.full_sequence = true;
    } else {
      const auto spans = PlanChunks(n, chunk_tokens);
      for (size_t i = 0; i < spans.size(); ++i) {
        chunks.push_back(
            {.index = int(i), .context = std::span(doc).subspan(spans[i].begin, spans[i].size())});
        lens.push_back(spans[i].size() + 2 + m);
      }
      opt.keep_local = mode == "parallel" ? int(chunks.size()) : int(keep->value_or(3));
    }
    const int64_t lm_rows = mode == "full" ? 1 : int64_t(chunks.size()) * m;
    const double flops = ForwardFlops(c, lens, lm_rows);
    std::vector<double> seconds;
    int forwards = 0;
    be.ResetPeakMemory();
    for (int i = 0; i < r + 1; ++i) {  // the first run warms up (allocator, cuBLAS heuristics)
      const auto t0 = Clock::now();
      auto res = worker::PrefillChunks(*loaded->model, query, chunks, opt);
      if (!res.ok()) return Fail(res.status(), ExitCodeFor(res.status()));
      if (Status s = be.Synchronize(); !s.ok()) return Fail(s, kExitInternal);
      if (i > 0) seconds.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
      forwards = res->forwards;
    }
    const double med = Median(seconds);
    const double tflops = flops / med / 1e12;
    json::object line{{"what", "prefill"},
                      {"device", be.Describe()},
                      {"mode", mode},
                      {"tokens", n},
                      {"chunk_tokens", mode == "full" ? n : chunk_tokens},
                      {"chunks", chunks.size()},
                      {"forwards", forwards},
                      {"residual_dtype", DTypeName(be.residual_dtype())},
                      {"gemm_tuning", args.GetOr("gemm-tuning", "off")},
                      {"seconds", med},
                      {"tok_per_s", n / med},
                      {"tflops", tflops},
                      {"gemm_tflops", *peak},
                      {"mfu_vs_gemm", tflops / *peak},
                      {"reps", r},
                      {"peak_gib", be.Memory().peak_bytes / double(1 << 30)},
                      {"weights_gib", loaded->model->weights().bytes() / double(1 << 30)}};
    if (loaded->profiler) {
      loaded->profiler->Take();
      loaded->profiler->Enable(true);
      auto res = worker::PrefillChunks(*loaded->model, query, chunks, opt);
      loaded->profiler->Enable(false);
      if (!res.ok()) return Fail(res.status(), kExitInternal);
      json::object breakdown;
      for (const worker::OpTime& t : loaded->profiler->Take()) breakdown[t.op] = t.seconds;
      line["breakdown_s"] = std::move(breakdown);
    }
    Emit(line);
  }
  return kExitOk;
}

int Decode(const Args& args) {
  auto loaded = Load(args, args.Has("breakdown"));
  if (!loaded.ok()) return Fail(loaded.status(), kExitModel);
  const worker::ModelConfig& c = loaded->config;
  auto prompt = args.GetInt("prompt-tokens");
  auto steps = args.GetInt("steps");
  if (!prompt.ok() || !steps.ok()) return Fail(Status::InvalidArgument("bad numbers"), kExitUsage);
  const int64_t p = prompt->value_or(24576);
  const int n_steps = static_cast<int>(steps->value_or(64));
  const std::vector<int32_t> doc = RandomTokens(p - 3, c.vocab_size, 3);
  const std::vector<int32_t> query = RandomTokens(1, c.vocab_size, 4);
  const worker::ChunkInput whole{.index = 0, .context = doc};
  worker::ChunkPrefillOptions whole_sequence;
  whole_sequence.full_sequence = true;
  auto pre = worker::PrefillChunks(*loaded->model, query, std::span(&whole, 1), whole_sequence);
  if (!pre.ok()) return Fail(pre.status(), kExitInternal);
  worker::ScopeOptions off{.strategy = worker::ScopeStrategy::kOff};
  auto state =
      worker::CacheFromFullPrefill(*loaded->model, pre->kept.front(), off, n_steps + 32, false);
  if (!state.ok()) return Fail(state.status(), kExitInternal);
  auto decoder = worker::Decoder::Create(*loaded->model, 1);
  if (!decoder.ok()) return Fail(decoder.status(), kExitInternal);
  std::vector<double> ms;
  state->last_token = query[0];
  // One greedy step: the forward, then the token chosen on the device and read back.
  auto step = [&]() -> Status {
    worker::DecodeState* states[] = {&*state};
    SIEVE_RETURN_IF_ERROR((*decoder)->Step(states));
    const worker::SamplingParams greedy;
    const float u = 0;
    SIEVE_ASSIGN_OR_RETURN(std::vector<int32_t> ids,
                           (*decoder)->Choose(std::span(&greedy, 1), std::span(&u, 1)));
    state->last_token = ids[0];
    return Status::Ok();
  };
  for (int s = 0; s < n_steps + 3; ++s) {
    const auto t0 = Clock::now();
    if (Status st = step(); !st.ok()) return Fail(st, kExitInternal);
    if (s >= 3) ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  json::object line{{"what", "decode"},
                    {"device", loaded->backend->Describe()},
                    {"prompt_tokens", p},
                    {"steps", n_steps},
                    {"ms_per_token", Median(ms)}};
  if (loaded->profiler) {
    // Device time per op per token (each op timed alone: the sum exceeds ms_per_token by the
    // launch gaps the profiler's synchronization adds, and falls short of it by host time).
    constexpr int kProfiledSteps = 8;
    loaded->profiler->Take();
    loaded->profiler->Enable(true);
    for (int s = 0; s < kProfiledSteps; ++s) {
      if (Status st = step(); !st.ok()) return Fail(st, kExitInternal);
    }
    loaded->profiler->Enable(false);
    json::object breakdown;
    for (const worker::OpTime& t : loaded->profiler->Take()) {
      breakdown[t.op] = t.seconds * 1e3 / kProfiledSteps;
    }
    line["breakdown_ms"] = std::move(breakdown);
  }
  Emit(line);
  return kExitOk;
}

int Ttft(const Args& args) {
  auto loaded = Load(args, false);
  if (!loaded.ok()) return Fail(loaded.status(), kExitModel);
  const worker::ModelConfig& c = loaded->config;
  auto tokens = args.GetInt("tokens");
  auto chunk = args.GetInt("chunk-tokens");
  auto keep = args.GetInt("keep-chunks");
  auto reps = args.GetInt("reps");
  if (!tokens.ok() || !*tokens || !chunk.ok() || !keep.ok() || !reps.ok()) {
    return Fail(Status::InvalidArgument("--tokens N is required"), kExitUsage);
  }
  worker::PipelineInput in;
  in.document_ids = RandomTokens(**tokens, c.vocab_size, 11);
  in.query_ids = RandomTokens(16, c.vocab_size, 7);
  in.generation.max_new_tokens = 1;
  const std::string mode = args.GetOr("mode", "parallelcomp");
  auto parsed = worker::ParsePrefillMode(mode);
  if (!parsed)
    return Fail(Status::InvalidArgument("--mode: parallelcomp, parallel or full"), kExitUsage);
  in.sieve.mode = *parsed;
  in.sieve.chunk_tokens = static_cast<int>(chunk->value_or(0));
  in.sieve.keep_chunks = static_cast<int>(keep->value_or(3));
  std::vector<double> ttft;
  for (int i = 0; i < reps->value_or(3) + 1; ++i) {
    auto res = worker::RunPipeline(*loaded->model, in);
    if (!res.ok()) return Fail(res.status(), ExitCodeFor(res.status()));
    if (i > 0) ttft.push_back(res->times.ttft);
  }
  Emit({{"what", "ttft"},
        {"device", loaded->backend->Describe()},
        {"mode", mode},
        {"tokens", **tokens},
        {"ttft_s", Median(ttft)}});
  return kExitOk;
}

int Main(int argc, char** argv) {
  auto args = Args::Parse(argc, argv, {"breakdown", "help", "score-only", "no-baseline"});
  if (!args.ok()) return Fail(args.status(), kExitUsage);
  if (args->Has("help") || args->positional().empty()) {
    std::cerr << kUsage;
    return args->Has("help") ? kExitOk : kExitUsage;
  }
  if (Status s = ApplyLogLevel(*args); !s.ok()) return Fail(s, kExitUsage);
  const std::string& cmd = args->positional()[0];
  if (cmd == "gemm") return Gemm(*args);
  if (cmd == "prefill") return Prefill(*args);
  if (cmd == "decode") return Decode(*args);
  if (cmd == "ttft") return Ttft(*args);
  if (cmd == "quality") return QualityMain(*args);
  if (cmd == "eval") return EvalMain(*args);
  if (cmd == "scaling") return ScalingMain(*args);
  if (cmd == "nccl") return NcclMain(argc, argv, *args);
  std::cerr << kUsage;
  return Fail(Status::InvalidArgument("unknown command '" + cmd + "'"), kExitUsage);
}

}  // namespace
}  // namespace sieve::tools

int main(int argc, char** argv) { return sieve::tools::Main(argc, argv); }
