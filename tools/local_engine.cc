// LocalEngine: the one-process Engine of sieve-node's service mode (see local_engine.h).
#include "tools/local_engine.h"

#include "comm/chunk_plan.h"
#include "comm/log.h"
#include "comm/sieve_options.h"
#include "coordinator/admission.h"
#include "coordinator/request_tokens.h"
#include "worker/pipeline_options.h"

namespace sieve::tools {

LocalEngine::LocalEngine(const worker::LoadedModel& model, const coordinator::Tokenizer& tokenizer,
                         std::string model_name, const LocalEngineOptions& options)
    : model_(model),
      tokenizer_(tokenizer),
      model_name_(std::move(model_name)),
      options_(options),
      runner_(model, tokenizer, model_name_) {
  const worker::ModelConfig& c = model.config;
  kv_bytes_per_token_ = 2 * c.num_layers * c.kv_dim() *
                        static_cast<int64_t>(DTypeSize(model.backend->compute_dtype()));
  if (options_.kv_budget_bytes > 0) {
    kv_budget_bytes_ = options_.kv_budget_bytes;
  } else {
    kv_budget_bytes_ = static_cast<int64_t>(static_cast<double>(model.backend->FreeMemoryBytes()) *
                                            options_.kv_memory_fraction);
  }
}

void LocalEngine::Submit(proto::GenerateRequest request,
                         std::shared_ptr<coordinator::RequestSink> sink) {
  Status refused;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shutdown_) {
      refused = Status::Unavailable("the service is shutting down");
    } else if (static_cast<int>(queue_.size()) >= options_.max_queued) {
      refused = Status::ResourceExhausted(StrFormat(
          "queue full: 1 request running and %zu waiting (limit %d; one process runs one request "
          "at a time); retry later",
          queue_.size(), options_.max_queued));
    } else {
      Pending p{.request = std::move(request), .sink = std::move(sink), .submitted = Clock::now()};
      const double deadline_s = p.request.deadline_seconds() > 0 ? p.request.deadline_seconds()
                                                                 : options_.default_deadline_s;
      if (deadline_s > 0) {
        p.deadline = p.submitted + std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>(deadline_s));
      }
      queue_.push_back(std::move(p));
      stats_.queued = static_cast<int64_t>(queue_.size());
      wake_.notify_all();
      return;
    }
    ++stats_.failed;
  }
  sink->OnError(refused);
}

void LocalEngine::Cancel(const std::string& id) {
  std::shared_ptr<coordinator::RequestSink> sink;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (id == current_) {
      cancel_current_.store(true);
      return;
    }
    for (auto it = queue_.begin(); it != queue_.end(); ++it) {
      if (it->request.request_id() != id) continue;
      sink = std::move(it->sink);
      queue_.erase(it);
      stats_.queued = static_cast<int64_t>(queue_.size());
      ++stats_.failed;
      break;
    }
  }
  if (sink) sink->OnError(Status::Cancelled(StrFormat("request %s was cancelled", id.c_str())));
}

coordinator::EngineStats LocalEngine::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void LocalEngine::Shutdown(bool drain) {
  std::lock_guard<std::mutex> lock(mu_);
  shutdown_ = true;
  drain_ = drain_ && drain;
  if (!drain) abort_.store(true);
  wake_.notify_all();
}

void LocalEngine::Count(bool ok) {
  std::lock_guard<std::mutex> lock(mu_);
  ++(ok ? stats_.completed : stats_.failed);
}

Status LocalEngine::StopReason(const Pending& p) const {
  if (cancel_current_.load()) {
    return Status::Cancelled(StrFormat("request %s was cancelled", p.request.request_id().c_str()));
  }
  if (abort_.load()) return Status::Unavailable("the service shut down");
  if (Clock::now() > p.deadline) {
    return Status::DeadlineExceeded(
        StrFormat("request %s passed its deadline", p.request.request_id().c_str()));
  }
  return Status::Ok();
}

Status LocalEngine::Run() {
  while (true) {
    Pending p;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [&] { return !queue_.empty() || shutdown_; });
      if (shutdown_ && (!drain_ || queue_.empty())) break;
      p = std::move(queue_.front());
      queue_.pop_front();
      current_ = p.request.request_id();
      cancel_current_.store(false);
      stats_.queued = static_cast<int64_t>(queue_.size());
      stats_.in_flight = 1;
    }
    Process(p);
    std::lock_guard<std::mutex> lock(mu_);
    current_.clear();
    stats_.in_flight = 0;
  }
  std::deque<Pending> left;
  {
    std::lock_guard<std::mutex> lock(mu_);
    left.swap(queue_);
    stats_.failed += static_cast<int64_t>(left.size());
    stats_.queued = 0;
  }
  for (Pending& p : left) {
    p.sink->OnError(Status::Unavailable("the service shut down before the request ran"));
  }
  return Status::Ok();
}

void LocalEngine::Process(Pending& p) {
  proto::GenerateRequest& request = p.request;
  auto fail = [&](const Status& s) {
    SIEVE_LOG_INFO("request failed", "id=%s error=\"%s\"", request.request_id().c_str(),
                   s.ToString().c_str());
    Count(false);
    p.sink->OnError(s);
  };
  if (Status s = StopReason(p); !s.ok()) return fail(s);
  if (!request.model().empty() && request.model() != model_name_) {
    return fail(Status::NotFound(StrFormat("model '%s' is not served here (this service runs '%s')",
                                           request.model().c_str(), model_name_.c_str())));
  }
  const auto t0 = Clock::now();
  auto tokens = coordinator::TokenizeRequest(tokenizer_, request, model_.config.vocab_size);
  if (!tokens.ok()) return fail(tokens.status());
  const double tokenize_s = std::chrono::duration<double>(Clock::now() - t0).count();
  const int64_t doc_tokens = static_cast<int64_t>(tokens->document.size());
  if (doc_tokens > options_.max_prompt_tokens) {
    return fail(Status::PayloadTooLarge(StrFormat(
        "document: %lld tokens exceed the limit of %lld", static_cast<long long>(doc_tokens),
        static_cast<long long>(options_.max_prompt_tokens))));
  }
  if (options_.max_in_flight_tokens > 0 && doc_tokens > options_.max_in_flight_tokens) {
    return fail(Status::ResourceExhausted(
        StrFormat("document: %lld tokens exceed the service's in-flight token budget of %lld "
                  "(--max-in-flight-tokens)",
                  static_cast<long long>(doc_tokens),
                  static_cast<long long>(options_.max_in_flight_tokens))));
  }
  SieveOptions sieve;
  GenerationOptions gen;
  OptionsFromProto(request, &sieve, &gen);
  const ModelLimits limits{.num_layers = model_.config.num_layers,
                           .default_chunk_tokens = worker::DefaultChunkTokens(model_.config)};
  if (Status s = ResolveOptions(limits, &sieve, &gen); !s.ok()) return fail(s);
  std::vector<ChunkSpan> spans;
  std::vector<std::vector<int>> assignment;
  if (sieve.mode != PrefillMode::kFull) {
    spans = PlanChunks(doc_tokens, sieve.chunk_tokens);
    assignment = AssignChunks(spans, 1);
  }
  const coordinator::KvFootprint f = coordinator::EstimateKvFootprint(
      sieve, gen, doc_tokens, static_cast<int64_t>(tokens->query.size()), spans, assignment);
  // One process plays both roles: the candidates and the decode cache add up.
  int64_t need_tokens = f.decode_tokens;
  for (int64_t t : f.worker_tokens) need_tokens += t;
  const int64_t need = need_tokens * kv_bytes_per_token_;
  if (need > kv_budget_bytes_) {
    return fail(Status::ResourceExhausted(StrFormat(
        "KV cache: the request needs ~%.1f MiB, over this process's budget of %.1f MiB; lower "
        "max_new_tokens, keep_chunks or chunk_tokens, set sieve.kv_capacity, or avoid mode full",
        need / 1048576.0, kv_budget_bytes_ / 1048576.0)));
  }
  p.sink->OnAccepted(request.request_id());
  *request.mutable_document_ids()->mutable_ids() = {tokens->document.begin(),
                                                    tokens->document.end()};
  *request.mutable_query_ids()->mutable_ids() = {tokens->query.begin(), tokens->query.end()};
  Status stop;
  auto response = runner_.Run(
      request, [&](const std::string& piece) { p.sink->OnText(piece); },
      [&](int done, int total) { p.sink->OnProgress(done, total); },
      [&] {
        stop = StopReason(p);
        return !stop.ok();
      });
  if (!stop.ok()) return fail(stop);
  if (!response.ok()) return fail(response.status());
  proto::StageTiming* t = response->mutable_accounting()->mutable_timing();
  t->set_tokenize_s(t->tokenize_s() + tokenize_s);
  t->set_ttft_s(t->ttft_s() + tokenize_s);
  t->set_total_s(t->total_s() + tokenize_s);
  Count(true);
  p.sink->OnResponse(*response);
}

}  // namespace sieve::tools
