// LocalEngine: the Engine (coordinator/engine.h) of a one-rank sieve-node service: every role in
// this process, requests run one at a time through LocalRunner (tools/local_runner.h) on the
// thread that calls Run(), the same code path as sieve-run. No batched decode here (one request
// at a time); the queue, admission (413 over max_prompt_tokens, 429 over the token or KV budget
// or a full queue, with the reason), deadlines, cancel and the graceful shutdown behave as in the
// ClusterCoordinator. Cancel and deadlines take effect between generated tokens (a prefill in
// progress finishes first).
//
// Threading: Submit, Cancel, Stats and Shutdown are thread-safe; sink callbacks come from the
// Run() thread.
//
// Tested by tests/cli/service_test.sh (the -np 1 service).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

#include "coordinator/engine.h"
#include "coordinator/tokenizer.h"
#include "tools/local_runner.h"
#include "worker/model_loader.h"

namespace sieve::tools {

struct LocalEngineOptions {
  int max_queued = 64;
  double default_deadline_s = 0;
  int64_t max_prompt_tokens = 4 << 20;
  int64_t max_in_flight_tokens = 0;  // 0: no limit
  int64_t kv_budget_bytes = 0;       // 0: kv_memory_fraction of the free memory at startup
  double kv_memory_fraction = 0.8;
};

class LocalEngine final : public coordinator::Engine {
 public:
  // `model` and `tokenizer` must outlive the engine.
  LocalEngine(const worker::LoadedModel& model, const coordinator::Tokenizer& tokenizer,
              std::string model_name, const LocalEngineOptions& options);

  void Submit(proto::GenerateRequest request,
              std::shared_ptr<coordinator::RequestSink> sink) override;
  void Cancel(const std::string& request_id) override;
  coordinator::EngineStats Stats() const override;
  std::string ModelName() const override { return model_name_; }
  Status Run() override;
  void Shutdown(bool drain) override;

 private:
  using Clock = std::chrono::steady_clock;
  struct Pending {
    proto::GenerateRequest request;
    std::shared_ptr<coordinator::RequestSink> sink;
    Clock::time_point submitted;
    Clock::time_point deadline = Clock::time_point::max();
  };

  void Process(Pending& p);
  // The reason `p` must stop now (cancelled, deadline, shutdown), or OK.
  Status StopReason(const Pending& p) const;
  void Count(bool ok);

  const worker::LoadedModel& model_;
  const coordinator::Tokenizer& tokenizer_;
  std::string model_name_;
  LocalEngineOptions options_;
  LocalRunner runner_;
  int64_t kv_budget_bytes_ = 0;
  int64_t kv_bytes_per_token_ = 0;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Pending> queue_;
  coordinator::EngineStats stats_;
  bool shutdown_ = false;
  bool drain_ = true;
  std::string current_;  // id of the running request
  std::atomic<bool> cancel_current_{false};
  std::atomic<bool> abort_{false};  // shutdown without drain
};

}  // namespace sieve::tools
