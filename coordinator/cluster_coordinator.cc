#include "coordinator/cluster_coordinator.h"

#include <unistd.h>

#include <algorithm>
#include <set>
#include <thread>

#include "comm/chunk_plan.h"
#include "comm/log.h"
#include "comm/sieve_options.h"
#include "coordinator/admission.h"
#include "coordinator/request_tokens.h"
#include "coordinator/streaming_text.h"

namespace sieve::coordinator {
namespace {

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

Status FromProtoError(proto::ErrorCode code, const std::string& message) {
  return Status(static_cast<StatusCode>(code), message);
}

}  // namespace

struct ClusterCoordinator::Active {
  std::string id;
  proto::GenerateRequest request;
  std::shared_ptr<RequestSink> sink;
  SieveOptions sieve;
  GenerationOptions gen;
  RequestTokens tokens;
  std::vector<ChunkSpan> spans;
  std::vector<std::vector<int>> assignment;  // chunk indices per worker index
  int64_t decode_kv_bytes = 0;               // estimated peak on the decode node
  std::map<int, int64_t> worker_kv_bytes;    // rank -> estimated peak of its candidates
  std::map<int, int64_t> reserved;           // rank -> bytes reserved while dispatched
  bool started = false;                      // tokens and KV reserved, orders sent
  int decode_rank = -1;
  std::set<int> order_ranks;  // ranks that received a WorkOrder
  std::set<int> awaiting;     // ranks whose scores are still due
  std::vector<proto::ChunkInfo> chunk_infos;
  std::vector<int> kept;
  int forwards = 0;
  std::unique_ptr<StreamingText> text;
  std::vector<int32_t> ids;
  std::vector<float> forced_logprobs;
  size_t keep_tokens = SIZE_MAX;  // tokens kept when a stop string matched
  bool stop_sent = false;
  Clock::time_point t_submit, t_dispatched, t_scores_done, t_decided, t_first_token;
  double tokenize_s = 0;
  Clock::time_point deadline = Clock::time_point::max();
};

StatusOr<proto::ModelInfo> ClusterCoordinator::AwaitWorkers(const comm::MpiComm& world,
                                                             const comm::WorldLayout& layout,
                                                             std::chrono::seconds timeout) {
  proto::ModelInfo first;
  for (int w = 0; w < layout.NumWorkers(); ++w) {
    const int rank = layout.WorkerRank(w);
    proto::ModelInfo info;
    auto got = world.RecvWithDeadline(&info, rank, comm::MpiTag::kReady,
                                      std::chrono::duration_cast<std::chrono::milliseconds>(timeout));
    if (!got.ok()) {
      return got.status().WithContext(StrFormat("waiting for rank %d to load the model", rank));
    }
    if (w == 0) {
      first = info;
    } else if (info.vocab_size() != first.vocab_size() || info.num_layers() != first.num_layers()) {
      return Status::FailedPrecondition(
          StrFormat("rank %d serves a different model (vocab %lld, %d layers) than rank %d",
                    rank, static_cast<long long>(info.vocab_size()), info.num_layers(),
                    layout.WorkerRank(0)));
    } else if (info.free_memory_bytes() < first.free_memory_bytes()) {
      first.set_free_memory_bytes(info.free_memory_bytes());
    }
  }
  return first;
}

ClusterCoordinator::ClusterCoordinator(const comm::MpiComm& world, const comm::WorldLayout& layout,
                                       const Tokenizer& tokenizer, proto::ModelInfo model,
                                       const CoordinatorOptions& options)
    : world_(world),
      layout_(layout),
      tokenizer_(tokenizer),
      model_(std::move(model)),
      options_(options) {
  if (options_.kv_budget_bytes > 0) {
    kv_budget_bytes_ = options_.kv_budget_bytes;
  } else if (model_.free_memory_bytes() > 0) {
    kv_budget_bytes_ = static_cast<int64_t>(static_cast<double>(model_.free_memory_bytes()) *
                                            options_.kv_memory_fraction);
  } else {
    kv_budget_bytes_ = INT64_MAX;  // the ranks did not say: no memory admission
  }
  SIEVE_LOG_INFO("coordinator admission",
                 "max_in_flight=%d max_queued=%d max_in_flight_tokens=%lld "
                 "kv_budget_mib=%.1f",
                 options_.max_in_flight, options_.max_queued,
                 static_cast<long long>(options_.max_in_flight_tokens),
                 kv_budget_bytes_ == INT64_MAX ? -1.0 : kv_budget_bytes_ / 1048576.0);
}

ClusterCoordinator::~ClusterCoordinator() = default;

void ClusterCoordinator::Submit(proto::GenerateRequest request, std::shared_ptr<RequestSink> sink) {
  std::lock_guard<std::mutex> lock(mu_);
  if (shutdown_) {
    sink->OnError(Status::Unavailable("the service is shutting down"));
    return;
  }
  inbox_.emplace_back(std::move(request), std::move(sink));
}

void ClusterCoordinator::Cancel(const std::string& request_id) {
  std::lock_guard<std::mutex> lock(mu_);
  cancels_.push_back(request_id);
}

EngineStats ClusterCoordinator::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void ClusterCoordinator::Shutdown(bool drain) {
  std::lock_guard<std::mutex> lock(mu_);
  shutdown_ = true;
  drain_ = drain;
}

void ClusterCoordinator::Admit(proto::GenerateRequest request, std::shared_ptr<RequestSink> sink) {
  auto a = std::make_unique<Active>();
  a->t_submit = Clock::now();
  if (request.request_id().empty()) request.set_request_id(StrFormat("req-%llu", (unsigned long long)next_id_++));
  a->id = request.request_id();
  a->sink = std::move(sink);
  auto reject = [&](const Status& s) {
    a->sink->OnError(s);
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.failed;
  };
  if (active_.count(a->id)) {
    reject(Status::InvalidArgument(StrFormat("request_id '%s' is already in flight", a->id.c_str())));
    return;
  }
  if (!request.model().empty() && request.model() != model_.name()) {
    reject(Status::NotFound(StrFormat("model '%s' is not served here (this service runs '%s')",
                                      request.model().c_str(), model_.name().c_str())));
    return;
  }
  auto tokens = TokenizeRequest(tokenizer_, request, model_.vocab_size());
  if (!tokens.ok()) {
    reject(tokens.status());
    return;
  }
  a->tokens = std::move(tokens).value();
  a->tokenize_s = Seconds(Clock::now() - a->t_submit);
  if (static_cast<int64_t>(a->tokens.document.size()) > options_.max_prompt_tokens) {
    reject(Status::PayloadTooLarge(StrFormat("document: %zu tokens exceed the limit of %lld",
                                             a->tokens.document.size(),
                                             static_cast<long long>(options_.max_prompt_tokens))));
    return;
  }
  OptionsFromProto(request, &a->sieve, &a->gen);
  const ModelLimits limits{.num_layers = model_.num_layers(),
                           .default_chunk_tokens = model_.default_chunk_tokens()};
  if (Status s = ResolveOptions(limits, &a->sieve, &a->gen); !s.ok()) {
    reject(s);
    return;
  }
  // Admission by tokens and memory: refuse what could never run; the rest runs or waits.
  const int64_t doc_tokens = static_cast<int64_t>(a->tokens.document.size());
  if (options_.max_in_flight_tokens > 0 && doc_tokens > options_.max_in_flight_tokens) {
    reject(Status::ResourceExhausted(
        StrFormat("document: %lld tokens exceed the service's in-flight token budget of %lld "
                  "(--max-in-flight-tokens)",
                  static_cast<long long>(doc_tokens),
                  static_cast<long long>(options_.max_in_flight_tokens))));
    return;
  }
  if (a->sieve.mode != PrefillMode::kFull) {
    a->spans = PlanChunks(doc_tokens, a->sieve.chunk_tokens);
    a->assignment = AssignChunks(a->spans, layout_.NumWorkers());
  }
  const KvFootprint footprint =
      EstimateKvFootprint(a->sieve, a->gen, doc_tokens,
                          static_cast<int64_t>(a->tokens.query.size()), a->spans, a->assignment);
  a->decode_kv_bytes = footprint.decode_tokens * model_.kv_bytes_per_token();
  for (size_t w = 0; w < footprint.worker_tokens.size(); ++w) {
    if (footprint.worker_tokens[w] == 0) continue;
    a->worker_kv_bytes[layout_.WorkerRank(static_cast<int>(w))] =
        footprint.worker_tokens[w] * model_.kv_bytes_per_token();
  }
  {
    std::string why;
    bool fits = false;
    for (int d : layout_.DecodeRanks()) fits = fits || Fits(Need(*a, d), /*now=*/false, &why);
    if (!fits) {
      reject(Status::ResourceExhausted(
          StrFormat("%s, even with nothing else running; lower max_new_tokens, keep_chunks or "
                    "chunk_tokens, set sieve.kv_capacity, or avoid mode full",
                    why.c_str())));
      return;
    }
  }
  const double deadline_s =
      request.deadline_seconds() > 0 ? request.deadline_seconds() : options_.default_deadline_s;
  if (deadline_s > 0) {
    a->deadline = a->t_submit + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(deadline_s));
  }
  a->request = std::move(request);
  a->text = std::make_unique<StreamingText>(
      tokenizer_, std::vector<std::string>(a->request.stop().begin(), a->request.stop().end()));
  std::string why;
  // First come, first served: nothing overtakes a request that is already waiting.
  if (!queued_.empty() || !TryStart(*a, &why)) {
    if (why.empty()) why = StrFormat("%zu earlier requests waiting", queued_.size());
    if (static_cast<int>(queued_.size()) >= options_.max_queued) {
      reject(Status::ResourceExhausted(StrFormat(
          "queue full: %zu requests in flight and %zu waiting (limits %d and %d; the next waits "
          "for: %s); retry later",
          active_.size(), queued_.size(), options_.max_in_flight, options_.max_queued,
          why.c_str())));
      return;
    }
    a->sink->OnAccepted(a->id);
    queued_.push_back(std::move(a));
    return;
  }
  a->sink->OnAccepted(a->id);
  const std::string id = a->id;
  Active& ref = *a;
  active_[id] = std::move(a);
  if (Status s = Dispatch(ref); !s.ok()) Fail(id, s);
}

std::map<int, int64_t> ClusterCoordinator::Need(const Active& a, int decode_rank) const {
  std::map<int, int64_t> need = a.worker_kv_bytes;
  need[decode_rank] += a.decode_kv_bytes;
  return need;
}

bool ClusterCoordinator::Fits(const std::map<int, int64_t>& need, bool now,
                              std::string* why) const {
  for (const auto& [rank, bytes] : need) {
    int64_t used = 0;
    if (now) {
      auto it = reserved_.find(rank);
      if (it != reserved_.end()) used = it->second;
    }
    if (bytes > kv_budget_bytes_ - used) {
      const bool decode = std::find(layout_.DecodeRanks().begin(), layout_.DecodeRanks().end(),
                                    rank) != layout_.DecodeRanks().end();
      *why = StrFormat(
          "KV cache: the request needs ~%.1f MiB on rank %d (%s), which has %.1f MiB "
          "of its %.1f MiB budget free",
          bytes / 1048576.0, rank, decode ? "decode node" : "worker",
          (kv_budget_bytes_ - used) / 1048576.0, kv_budget_bytes_ / 1048576.0);
      return false;
    }
  }
  return true;
}

bool ClusterCoordinator::TryStart(Active& a, std::string* why) {
  if (static_cast<int>(active_.size()) >= options_.max_in_flight) {
    *why = StrFormat("%zu requests in flight (--max-in-flight %d)", active_.size(),
                     options_.max_in_flight);
    return false;
  }
  const int64_t tokens = static_cast<int64_t>(a.tokens.document.size());
  if (options_.max_in_flight_tokens > 0 && !active_.empty() &&
      in_flight_tokens_ + tokens > options_.max_in_flight_tokens) {
    *why = StrFormat("tokens: %lld in flight + %lld exceed --max-in-flight-tokens %lld",
                     static_cast<long long>(in_flight_tokens_), static_cast<long long>(tokens),
                     static_cast<long long>(options_.max_in_flight_tokens));
    return false;
  }
  const std::vector<int>& decode_ranks = layout_.DecodeRanks();
  for (size_t i = 0; i < decode_ranks.size(); ++i) {
    const size_t slot = (next_decode_ + i) % decode_ranks.size();
    std::map<int, int64_t> need = Need(a, decode_ranks[slot]);
    if (!Fits(need, /*now=*/true, why)) continue;
    next_decode_ = static_cast<int>(slot + 1);
    a.decode_rank = decode_ranks[slot];
    for (const auto& [rank, bytes] : need) reserved_[rank] += bytes;
    a.reserved = std::move(need);
    in_flight_tokens_ += tokens;
    a.started = true;
    return true;
  }
  return false;
}

void ClusterCoordinator::Release(Active& a) {
  if (!a.started) return;
  for (const auto& [rank, bytes] : a.reserved) reserved_[rank] -= bytes;
  a.reserved.clear();
  in_flight_tokens_ -= static_cast<int64_t>(a.tokens.document.size());
  a.started = false;
}

void ClusterCoordinator::StartQueued() {
  while (!queued_.empty()) {
    std::string why;
    if (!TryStart(*queued_.front(), &why)) return;
    std::unique_ptr<Active> a = std::move(queued_.front());
    queued_.pop_front();
    const std::string id = a->id;
    Active& ref = *a;
    active_[id] = std::move(a);
    if (Status s = Dispatch(ref); !s.ok()) Fail(id, s);
  }
}

Status ClusterCoordinator::Dispatch(Active& a) {
  a.t_dispatched = Clock::now();
  proto::DecodeOrder order;
  order.set_request_id(a.id);
  *order.mutable_query_ids() = {a.tokens.query.begin(), a.tokens.query.end()};
  SieveOptionsToProto(a.sieve, order.mutable_sieve());
  order.set_max_new_tokens(a.gen.max_new_tokens);
  order.set_temperature(a.gen.temperature);
  order.set_top_p(a.gen.top_p);
  order.set_top_k(a.gen.top_k);
  order.set_seed(a.gen.seed);
  *order.mutable_force_continuation_ids() = {a.gen.force_continuation_ids.begin(),
                                             a.gen.force_continuation_ids.end()};
  order.set_explain(a.request.explain());
  *order.mutable_eos_ids() = {model_.eos_ids().begin(), model_.eos_ids().end()};
  if (a.sieve.mode == PrefillMode::kFull) {
    *order.mutable_document_ids() = {a.tokens.document.begin(), a.tokens.document.end()};
    return Post(order, a.decode_rank, comm::MpiTag::kDecodeRequest);
  }
  SIEVE_RETURN_IF_ERROR(Post(order, a.decode_rank, comm::MpiTag::kDecodeRequest));
  const std::vector<std::vector<int>>& assignment = a.assignment;
  const int keep = a.sieve.mode == PrefillMode::kParallel ? static_cast<int>(a.spans.size())
                                                          : a.sieve.keep_chunks;
  for (int w = 0; w < layout_.NumWorkers(); ++w) {
    if (assignment[w].empty()) continue;
    proto::WorkOrder work;
    work.set_request_id(a.id);
    *work.mutable_query_ids() = order.query_ids();
    *work.mutable_sieve() = order.sieve();
    work.set_keep_local(keep);
    work.set_decode_rank(a.decode_rank);
    work.set_num_chunks(static_cast<int>(a.spans.size()));
    for (int index : assignment[w]) {
      proto::PlannedChunk* c = work.add_chunks();
      c->set_index(index);
      const ChunkSpan& span = a.spans[index];
      *c->mutable_ids() = {a.tokens.document.begin() + span.begin,
                           a.tokens.document.begin() + span.end};
    }
    const int rank = layout_.WorkerRank(w);
    SIEVE_RETURN_IF_ERROR(Post(work, rank, comm::MpiTag::kPlan));
    a.order_ranks.insert(rank);
    a.awaiting.insert(rank);
  }
  SIEVE_LOG_INFO("request dispatched", "id=%s tokens=%zu chunks=%zu workers=%zu decode_rank=%d",
                 a.id.c_str(), a.tokens.document.size(), a.spans.size(), a.order_ranks.size(),
                 a.decode_rank);
  return Status::Ok();
}

Status ClusterCoordinator::HandleScores(const proto::WorkerScores& scores) {
  auto it = active_.find(scores.request_id());
  if (it == active_.end()) return Status::Ok();  // already failed or cancelled
  Active& a = *it->second;
  if (!scores.error().empty()) {
    Fail(a.id, FromProtoError(scores.error_code(), scores.error()));
    return Status::Ok();
  }
  a.awaiting.erase(scores.rank());
  for (const proto::ChunkInfo& c : scores.chunks()) a.chunk_infos.push_back(c);
  a.forwards += scores.forwards();
  a.sink->OnProgress(static_cast<int>(a.chunk_infos.size()), static_cast<int>(a.spans.size()));
  if (!a.awaiting.empty()) return Status::Ok();
  a.t_scores_done = Clock::now();
  // The global top-k: lowest score, ties to the lower index; then document order.
  std::vector<proto::ChunkInfo> order = a.chunk_infos;
  std::sort(order.begin(), order.end(), [](const proto::ChunkInfo& x, const proto::ChunkInfo& y) {
    return x.score() < y.score() || (x.score() == y.score() && x.index() < y.index());
  });
  const size_t keep = a.sieve.mode == PrefillMode::kParallel
                          ? order.size()
                          : std::min<size_t>(a.sieve.keep_chunks, order.size());
  order.resize(keep);
  std::sort(order.begin(), order.end(), [](const proto::ChunkInfo& x, const proto::ChunkInfo& y) {
    return x.index() < y.index();
  });
  proto::KeepDecision decision;
  decision.set_request_id(a.id);
  decision.set_decode_rank(a.decode_rank);
  for (const proto::ChunkInfo& c : order) {
    decision.add_kept_chunks(c.index());
    decision.add_owner_ranks(c.rank());
    a.kept.push_back(c.index());
  }
  std::set<int> targets = a.order_ranks;
  targets.insert(a.decode_rank);
  for (int rank : targets) SIEVE_RETURN_IF_ERROR(world_.Send(decision, rank, comm::MpiTag::kKeepDecision));
  a.t_decided = Clock::now();
  return Status::Ok();
}

Status ClusterCoordinator::HandleDecodeUpdate(const proto::DecodeUpdate& update) {
  auto it = active_.find(update.request_id());
  if (it == active_.end()) return Status::Ok();
  Active& a = *it->second;
  if (!update.error().empty()) {
    Fail(a.id, FromProtoError(update.error_code(), update.error()));
    return Status::Ok();
  }
  if (a.ids.empty() && update.ids_size() > 0) a.t_first_token = Clock::now();
  for (int i = 0; i < update.ids_size(); ++i) {
    if (a.ids.size() >= a.keep_tokens) break;
    a.ids.push_back(update.ids(i));
    if (i < update.forced_logprobs_size()) a.forced_logprobs.push_back(update.forced_logprobs(i));
    const std::string piece = a.text->Push(update.ids(i));
    if (!piece.empty()) a.sink->OnText(piece);
    if (a.text->stopped() && !a.stop_sent) {
      a.keep_tokens = a.ids.size();
      a.stop_sent = true;
      if (!update.done()) {
        proto::StopRequest stop;
        stop.set_request_id(a.id);
        SIEVE_RETURN_IF_ERROR(world_.Send(stop, a.decode_rank, comm::MpiTag::kCancel));
      }
    }
  }
  if (update.done()) Finish(a.id, update);
  return Status::Ok();
}

void ClusterCoordinator::Finish(const std::string& id, const proto::DecodeUpdate& update) {
  auto it = active_.find(id);
  Active& a = *it->second;
  const std::string tail = a.text->Finish();
  if (!tail.empty()) a.sink->OnText(tail);
  proto::GenerateResponse r;
  r.set_request_id(a.id);
  r.set_model(model_.name());
  r.set_text(a.text->text());
  *r.mutable_generated_ids() = {a.ids.begin(), a.ids.end()};
  *r.mutable_forced_logprobs() = {a.forced_logprobs.begin(), a.forced_logprobs.end()};
  r.set_finish_reason(a.stop_sent ? "stop" : update.finish_reason());
  proto::Accounting* acc = r.mutable_accounting();
  *acc = update.accounting();
  acc->set_document_tokens(static_cast<int32_t>(a.tokens.document.size()));
  acc->set_query_tokens(static_cast<int32_t>(a.tokens.query.size()));
  acc->set_generated_tokens(static_cast<int32_t>(a.ids.size()));
  std::vector<proto::ChunkInfo> chunks = a.chunk_infos;
  std::sort(chunks.begin(), chunks.end(), [](const proto::ChunkInfo& x, const proto::ChunkInfo& y) {
    return x.index() < y.index();
  });
  for (proto::ChunkInfo& c : chunks) {
    c.set_kept(std::find(a.kept.begin(), a.kept.end(), c.index()) != a.kept.end());
    *acc->add_chunks() = c;
  }
  *acc->mutable_kept_chunks() = {a.kept.begin(), a.kept.end()};
  if (a.sieve.mode != PrefillMode::kFull) acc->set_prefill_forwards(a.forwards);
  const int64_t rows = static_cast<int64_t>(a.tokens.document.size() + a.tokens.query.size() + 2);
  acc->set_kv_entries_full(rows * model_.num_layers() * model_.num_kv_heads());
  acc->set_kv_bytes_full(rows * model_.kv_bytes_per_token());
  acc->set_workers(layout_.NumWorkers());
  acc->set_device(model_.device());
  proto::StageTiming* t = acc->mutable_timing();
  t->set_tokenize_s(a.tokenize_s);
  if (a.sieve.mode != PrefillMode::kFull) {
    t->set_prefill_s(Seconds(a.t_scores_done - a.t_dispatched));
    t->set_queue_s(Seconds(a.t_dispatched - a.t_submit));
    t->set_score_exchange_s(Seconds(a.t_decided - a.t_scores_done));
  }
  const auto now = Clock::now();
  if (!a.ids.empty()) t->set_ttft_s(Seconds(a.t_first_token - a.t_submit));
  t->set_total_s(Seconds(now - a.t_submit));
  const size_t decoded = a.ids.size() > 1 ? a.ids.size() - 1 : 0;
  if (t->decode_s() > 0) t->set_decode_tokens_per_s(decoded / t->decode_s());
  if (update.has_explain()) *r.mutable_explain() = update.explain();
  Release(a);
  a.sink->OnResponse(r);
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.completed;
  }
  active_.erase(it);
}

void ClusterCoordinator::Fail(const std::string& id, const Status& status) {
  auto it = active_.find(id);
  if (it == active_.end()) return;
  Active& a = *it->second;
  // Every rank that may hold state for the request drops it.
  proto::KeepDecision abort;
  abort.set_request_id(id);
  abort.set_abort(true);
  std::set<int> targets = a.order_ranks;
  if (a.decode_rank >= 0) targets.insert(a.decode_rank);
  for (int rank : targets) (void)world_.Send(abort, rank, comm::MpiTag::kKeepDecision);
  Release(a);
  SIEVE_LOG_INFO("request failed", "id=%s error=\"%s\"", id.c_str(), status.ToString().c_str());
  a.sink->OnError(status);
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.failed;
  }
  active_.erase(it);
}

void ClusterCoordinator::CheckDeadlines() {
  const auto now = Clock::now();
  std::vector<std::string> expired;
  for (const auto& [id, a] : active_) {
    if (now > a->deadline) expired.push_back(id);
  }
  for (const std::string& id : expired) {
    Fail(id, Status::DeadlineExceeded(StrFormat("request %s passed its deadline", id.c_str())));
  }
  for (auto it = queued_.begin(); it != queued_.end();) {
    if (now <= (*it)->deadline) {
      ++it;
      continue;
    }
    (*it)->sink->OnError(Status::DeadlineExceeded(StrFormat(
        "request %s passed its deadline while waiting to be dispatched", (*it)->id.c_str())));
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.failed;
    }
    it = queued_.erase(it);
  }
}

Status ClusterCoordinator::Post(const google::protobuf::Message& message, int rank,
                                comm::MpiTag tag) {
  Status status;
  comm::MpiSendRequest request = world_.IsendMessage(message, rank, tag, &status);
  SIEVE_RETURN_IF_ERROR(status);
  if (!request.Test()) sends_.push_back(std::move(request));
  return Status::Ok();
}

bool ClusterCoordinator::ReapSends() {
  const size_t before = sends_.size();
  std::erase_if(sends_, [](comm::MpiSendRequest& r) { return r.Test(); });
  return sends_.size() != before;
}

Status ClusterCoordinator::Run() {
  while (true) {
    bool progressed = false;
    std::deque<std::pair<proto::GenerateRequest, std::shared_ptr<RequestSink>>> inbox;
    std::vector<std::string> cancels;
    bool shutdown = false, drain = true;
    {
      std::lock_guard<std::mutex> lock(mu_);
      inbox.swap(inbox_);
      cancels.swap(cancels_);
      shutdown = shutdown_;
      drain = drain_;
    }
    for (auto& [request, sink] : inbox) {
      Admit(std::move(request), std::move(sink));
      progressed = true;
    }
    for (const std::string& id : cancels) {
      Fail(id, Status::Cancelled(StrFormat("request %s was cancelled", id.c_str())));
      for (auto it = queued_.begin(); it != queued_.end(); ++it) {
        if ((*it)->id != id) continue;
        (*it)->sink->OnError(
            Status::Cancelled(StrFormat("request %s was cancelled while waiting", id.c_str())));
        {
          std::lock_guard<std::mutex> lock(mu_);
          ++stats_.failed;
        }
        queued_.erase(it);
        break;
      }
    }
    if (!queued_.empty()) {
      const size_t before = queued_.size();
      StartQueued();
      progressed = progressed || queued_.size() != before;
    }
    while (auto probe = world_.Iprobe(comm::MpiComm::kAnySource, std::nullopt)) {
      progressed = true;
      SIEVE_LOG_DEBUG("coordinator message", "from=%d tag=%s", probe->source,
                      std::string(comm::MpiTagName(probe->tag)).c_str());
      switch (probe->tag) {
        case comm::MpiTag::kChunkScores: {
          proto::WorkerScores scores;
          SIEVE_RETURN_IF_ERROR(world_.Recv(&scores, probe->source, probe->tag).status());
          SIEVE_RETURN_IF_ERROR(HandleScores(scores));
          break;
        }
        case comm::MpiTag::kTokens:
        case comm::MpiTag::kResponse: {
          proto::DecodeUpdate update;
          SIEVE_RETURN_IF_ERROR(world_.Recv(&update, probe->source, probe->tag).status());
          SIEVE_RETURN_IF_ERROR(HandleDecodeUpdate(update));
          break;
        }
        default:
          return Status::Internal(StrFormat("coordinator: unexpected message %s from rank %d",
                                            std::string(comm::MpiTagName(probe->tag)).c_str(),
                                            probe->source));
      }
    }
    progressed = ReapSends() || progressed;
    CheckDeadlines();
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.queued = static_cast<int64_t>(queued_.size());
      stats_.in_flight = static_cast<int64_t>(active_.size());
    }
    if (shutdown && (!drain || (active_.empty() && queued_.empty()))) {
      std::vector<std::string> left;
      for (const auto& [id, a] : active_) left.push_back(id);
      for (const std::string& id : left) Fail(id, Status::Unavailable("the service shut down"));
      for (auto& q : queued_) {
        q->sink->OnError(Status::Unavailable("the service shut down before the request ran"));
        std::lock_guard<std::mutex> lock(mu_);
        ++stats_.failed;
      }
      queued_.clear();
      break;
    }
    if (!progressed) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  for (comm::MpiSendRequest& r : sends_) r.Wait();
  sends_.clear();
  for (int w = 0; w < layout_.NumWorkers(); ++w) {
    world_.SendBytes(std::string_view(), layout_.WorkerRank(w), comm::MpiTag::kShutdown);
  }
  return Status::Ok();
}

}  // namespace sieve::coordinator
