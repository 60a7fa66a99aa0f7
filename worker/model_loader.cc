#include "worker/model_loader.h"

#include <chrono>

#include "comm/log.h"
#include "worker/model_weights.h"

namespace sieve::worker {

StatusOr<LoadedModel> LoadModel(const LoadModelOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  LoadedModel out;
  SIEVE_ASSIGN_OR_RETURN(out.config, ModelConfig::FromJsonFile(options.model_dir + "/config.json"));
  SIEVE_ASSIGN_OR_RETURN(out.backend,
                         MakeBackend(options.device, options.device_index, options.backend));
  if (options.profiling) {
    auto profiler = std::make_unique<ProfilingBackend>(std::move(out.backend));
    out.profiler = profiler.get();
    out.backend = std::move(profiler);
  }
  StatusOr<ModelWeights> weights =
      options.random_seed ? ModelWeights::Random(out.config, *options.random_seed, *out.backend)
                          : ModelWeights::Load(out.config, options.model_dir, *out.backend);
  if (!weights.ok()) return weights.status();
  SIEVE_ASSIGN_OR_RETURN(out.model, Transformer::Create(out.config, std::move(weights).value(),
                                                        *out.backend, options.transformer));
  out.load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  SIEVE_LOG_INFO("model ready", "dir=%s device=\"%s\" seconds=%.2f", options.model_dir.c_str(),
                 out.backend->Describe().c_str(), out.load_seconds);
  return out;
}

}  // namespace sieve::worker
