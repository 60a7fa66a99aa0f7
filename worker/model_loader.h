// LoadModel: a model directory (or just its config.json with random weights) on a backend, ready
// to run. The one entry point the tools, the node roles and the tests share.
//
//   --model DIR              config.json (+ model.safetensors or a sharded index)
//   --random-weights SEED    synthesize weights instead of reading them (any config, e.g. the 8B
//                            benchmark config, which has no checkpoint)
//   --device cpu|cuda|auto   auto = cuda when a GPU is present
//
// Tested through tests/unit/worker/transformer_test.cc and the CLI tests.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "comm/status.h"
#include "worker/backend.h"
#include "worker/model_config.h"
#include "worker/profiling_backend.h"
#include "worker/transformer.h"

namespace sieve::worker {

struct LoadModelOptions {
  std::string model_dir;
  std::string device = "auto";
  int device_index = 0;
  BackendOptions backend;               // e.g. the residual stream's dtype
  std::optional<uint64_t> random_seed;  // set: random weights
  TransformerOptions transformer;
  bool profiling = false;  // wrap the backend in a ProfilingBackend (LoadedModel::profiler)
};

struct LoadedModel {
  ModelConfig config;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Transformer> model;
  ProfilingBackend* profiler = nullptr;  // owned by `backend`, with LoadModelOptions::profiling
  double load_seconds = 0;
};

StatusOr<LoadedModel> LoadModel(const LoadModelOptions& options);

}  // namespace sieve::worker
