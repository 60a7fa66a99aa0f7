// LocalRunner: one request, every role in this process — tokenize (coordinator), the pipeline
// (worker), the text with stop strings (coordinator). What sieve-run does, and what a one-rank
// sieve-node does.
//
// Tested by tests/cli/sieve_run_test.sh.
#pragma once

#include <functional>
#include <string>

#include "comm/status.h"
#include "coordinator/tokenizer.h"
#include "proto/sieve.pb.h"
#include "worker/chunk_prefill.h"
#include "worker/model_loader.h"

namespace sieve::tools {

class LocalRunner {
 public:
  // `model_name` is what requests may name in their "model" field.
  LocalRunner(const worker::LoadedModel& model, const coordinator::Tokenizer& tokenizer,
              std::string model_name)
      : model_(model), tokenizer_(tokenizer), model_name_(std::move(model_name)) {}

  // `on_text` receives final text pieces as tokens are generated (may be null). `stop_early`
  // (may be null) is asked after every token; when it returns true generation stops there (the
  // caller decides what that means: tools/local_engine.h turns it into a cancel or a deadline).
  StatusOr<proto::GenerateResponse> Run(
      const proto::GenerateRequest& request,
      const std::function<void(const std::string&)>& on_text = nullptr,
      const worker::ChunkProgressFn& progress = nullptr,
      const std::function<bool()>& stop_early = nullptr) const;

 private:
  const worker::LoadedModel& model_;
  const coordinator::Tokenizer& tokenizer_;
  std::string model_name_;
};

}  // namespace sieve::tools
