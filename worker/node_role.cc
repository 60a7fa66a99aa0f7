#include "worker/node_role.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "comm/log.h"
#include "comm/sieve_options.h"
#include "worker/chunk_prefill.h"
#include "worker/request_convert.h"

namespace sieve::worker {
namespace {

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

proto::ErrorCode ToProtoCode(StatusCode code) { return static_cast<proto::ErrorCode>(code); }

}  // namespace

struct NodeRole::DecodeRequest {
  std::string id;
  bool have_order = false;
  proto::DecodeOrder order;
  SieveOptions sieve;
  bool have_decision = false;
  std::vector<int> kept;    // chunk indices, document order
  std::vector<int> owners;  // world rank holding each kept chunk
  std::map<int, ChunkKv> received;
  int64_t bytes_moved = 0;
  Clock::time_point t_decision, t_kv_done;
  bool started = false;
  DecodeState state;
  std::unique_ptr<SequenceGenerator> generator;
  size_t tokens_sent = 0;
  proto::Accounting accounting;  // decode-side fields, sent with the final update
  Clock::time_point t_decode_start;

  bool Complete() const {
    if (!have_order) return false;
    if (sieve.mode == PrefillMode::kFull) return true;
    return have_decision && received.size() == kept.size();
  }
};

NodeRole::NodeRole(const Transformer& model, const comm::MpiComm& world,
                   const comm::WorldLayout& layout, KvTransport& transport,
                   const NodeOptions& options)
    : model_(model), world_(world), layout_(layout), transport_(transport), options_(options) {}

NodeRole::~NodeRole() = default;

NodeRole::DecodeRequest& NodeRole::DecodeEntry(const std::string& id) {
  auto& slot = decode_[id];
  if (!slot) {
    slot = std::make_unique<DecodeRequest>();
    slot->id = id;
    decode_order_.push_back(id);
  }
  return *slot;
}

Status NodeRole::Serve(const proto::ModelInfo& info) {
  SIEVE_ASSIGN_OR_RETURN(decoder_, Decoder::Create(model_, options_.max_decode_batch));
  SIEVE_RETURN_IF_ERROR(world_.Send(info, 0, comm::MpiTag::kReady));
  SIEVE_LOG_INFO("node serving", "%s transport=%s", layout_.ToString().c_str(), transport_.name());
  while (true) {
    transport_.ReleaseCompletedSends();
    // Wait for a message only when nothing is left to compute.
    bool busy = transport_.pending_sends() > 0;
    for (const auto& [id, r] : decode_) {
      busy |= r->started ? !r->generator->done() : r->Complete();
    }
    if (!busy) (void)world_.Probe(comm::MpiComm::kAnySource, std::nullopt);
    // Control messages first: they are small, and each can let a request move on (a keep
    // decision sends its KV to the decode node). MPI keeps each tag's frames in order but lets a
    // receive of one tag pass frames of another, so a rank with work orders queued behind its
    // current prefill still takes every decision as soon as that prefill ends.
    SIEVE_RETURN_IF_ERROR(HandleControlMessages());
    // Then messages in arrival order until one prefill ran (a WorkOrder: the only long one);
    // the requests this rank decodes get their step before the next prefill (and between the
    // prefill's forwards: HandleWorkOrder), so under load a request's tokens stream while later
    // requests are being prefilled.
    std::optional<comm::ProbeResult> probe = world_.Iprobe(comm::MpiComm::kAnySource, std::nullopt);
    bool prefilled = false;
    while (probe && !prefilled) {
      bool shutdown = false;
      SIEVE_RETURN_IF_ERROR(HandleMessage(*probe, &prefilled, &shutdown));
      if (shutdown) return DrainAndSync();
      if (!prefilled) probe = world_.Iprobe(comm::MpiComm::kAnySource, std::nullopt);
    }
    SIEVE_RETURN_IF_ERROR(StartReadyRequests());
    SIEVE_RETURN_IF_ERROR(DecodeStep());
  }
}

Status NodeRole::HandleMessage(const comm::ProbeResult& probe, bool* prefilled, bool* shutdown) {
  const int source = probe.source;
  SIEVE_LOG_DEBUG("node message", "rank=%d from=%d tag=%s", world_.Rank(), source,
                  std::string(comm::MpiTagName(probe.tag)).c_str());
  Status st;
  switch (probe.tag) {
    case comm::MpiTag::kPlan: {
      proto::WorkOrder order;
      SIEVE_RETURN_IF_ERROR(world_.Recv(&order, source, probe.tag).status());
      st = HandleWorkOrder(order);
      *prefilled = true;
      break;
    }
    case comm::MpiTag::kKeepDecision: {
      proto::KeepDecision decision;
      SIEVE_RETURN_IF_ERROR(world_.Recv(&decision, source, probe.tag).status());
      st = HandleKeepDecision(decision);
      break;
    }
    case comm::MpiTag::kDecodeRequest: {
      proto::DecodeOrder order;
      SIEVE_RETURN_IF_ERROR(world_.Recv(&order, source, probe.tag).status());
      st = HandleDecodeOrder(order);
      break;
    }
    case comm::MpiTag::kKvManifest: {
      proto::KvManifest manifest;
      SIEVE_RETURN_IF_ERROR(world_.Recv(&manifest, source, probe.tag).status());
      st = HandleManifest(manifest, source);
      break;
    }
    case comm::MpiTag::kCancel: {
      proto::StopRequest stop;
      SIEVE_RETURN_IF_ERROR(world_.Recv(&stop, source, probe.tag).status());
      HandleCancel(stop.request_id());
      break;
    }
    case comm::MpiTag::kShutdown: {
      std::string ignored;
      SIEVE_RETURN_IF_ERROR(world_.RecvBytes(&ignored, source, probe.tag).status());
      SIEVE_LOG_INFO("node shutting down", "rank=%d", world_.Rank());
      *shutdown = true;
      break;
    }
    default:
      return Status::Internal(StrFormat("rank %d: unexpected message tag %s from rank %d",
                                        world_.Rank(),
                                        std::string(comm::MpiTagName(probe.tag)).c_str(), source));
  }
  return st;
}

Status NodeRole::HandleControlMessages() {
  for (comm::MpiTag tag : {comm::MpiTag::kDecodeRequest, comm::MpiTag::kKeepDecision,
                           comm::MpiTag::kKvManifest, comm::MpiTag::kCancel}) {
    while (auto control = world_.Iprobe(comm::MpiComm::kAnySource, tag)) {
      bool prefilled = false, shutdown = false;
      SIEVE_RETURN_IF_ERROR(HandleMessage(*control, &prefilled, &shutdown));
    }
  }
  return Status::Ok();
}

Status NodeRole::ServeOthers() {
  transport_.ReleaseCompletedSends();
  SIEVE_RETURN_IF_ERROR(HandleControlMessages());
  SIEVE_RETURN_IF_ERROR(StartReadyRequests());
  return DecodeStep();
}

bool NodeRole::TakeAborted(const std::string& id) {
  const auto it = std::find(aborted_.begin(), aborted_.end(), id);
  if (it == aborted_.end()) return false;
  aborted_.erase(it);
  return true;
}

Status NodeRole::DrainAndSync() {
  while (transport_.pending_sends() > 0) {
    transport_.ReleaseCompletedSends();
    usleep(100);
  }
  return model_.backend().Synchronize();
}

Status NodeRole::HandleWorkOrder(const proto::WorkOrder& order) {
  if (options_.debug_fail_rank == world_.Rank()) {
    std::fprintf(stderr,
                 "[sieve] FATAL rank %d: exiting in the middle of request %s "
                 "(--debug-fail-rank %d)\n",
                 world_.Rank(), order.request_id().c_str(), options_.debug_fail_rank);
    std::fflush(stderr);
    _exit(3);
  }
  if (TakeAborted(order.request_id())) {
    // The request failed or was cancelled before its work order was taken: nothing to do.
    SIEVE_LOG_INFO("dropped request: work order skipped", "rank=%d id=%s", world_.Rank(),
                   order.request_id().c_str());
    return Status::Ok();
  }
  SieveOptions sieve;
  SieveOptionsFromProto(order.sieve(), &sieve);
  std::vector<ChunkInput> chunks;
  for (const proto::PlannedChunk& c : order.chunks()) {
    chunks.push_back({.index = c.index(), .context = std::span(c.ids().data(), c.ids_size())});
  }
  const std::vector<int32_t> query(order.query_ids().begin(), order.query_ids().end());
  ChunkPrefillOptions popt{.kv_capacity = sieve.kv_capacity,
                           .kv_window = sieve.kv_window,
                           .kv_pool = sieve.kv_pool,
                           .keep_local = order.keep_local(),
                           .max_batch_rows = options_.max_batch_rows};
  // While other requests are in flight on this rank (decoding, or waiting for a keep
  // decision), the prefill runs in short forwards (NodeOptions::interleave_rows) and the rank
  // serves them between forwards: control messages, requests ready to start, a decode step.
  const std::string& id = order.request_id();
  const bool others =
      !candidates_.empty() || std::any_of(decode_.begin(), decode_.end(), [&](const auto& entry) {
        return entry.first != id;  // this rank may be the request's own decode node
      });
  if (others && options_.interleave_rows > 0) {
    popt.max_batch_rows = popt.max_batch_rows > 0
                              ? std::min(popt.max_batch_rows, options_.interleave_rows)
                              : options_.interleave_rows;
  }
  Status between_status;
  const ChunkProgressFn between_forwards = [&](int done, int total) {
    if (between_status.ok() && done < total) between_status = ServeOthers();
  };
  proto::WorkerScores scores;
  scores.set_request_id(order.request_id());
  scores.set_rank(world_.Rank());
  auto result = PrefillChunks(model_, query, chunks, popt, between_forwards);
  SIEVE_RETURN_IF_ERROR(between_status);
  if (TakeAborted(order.request_id())) {
    // Aborted while it was being prefilled (a control message taken between forwards).
    SIEVE_LOG_INFO("dropped request: prefill discarded", "rank=%d id=%s", world_.Rank(),
                   order.request_id().c_str());
    return Status::Ok();
  }
  if (!result.ok()) {
    scores.set_error(StrFormat("rank %d: %s", world_.Rank(), result.status().ToString().c_str()));
    scores.set_error_code(ToProtoCode(result.status().code()));
  } else {
    for (const ChunkScore& s : result->scores) {
      proto::ChunkInfo* info = scores.add_chunks();
      info->set_index(s.index);
      info->set_tokens(s.tokens);
      info->set_score(s.score);
      info->set_rank(world_.Rank());
    }
    for (const ChunkKv& kv : result->kept) scores.add_candidates(kv.index);
    scores.set_prefill_s(result->seconds);
    scores.set_forwards(result->forwards);
    candidates_[order.request_id()] = std::move(result->kept);
  }
  return world_.Send(scores, 0, comm::MpiTag::kChunkScores);
}

Status NodeRole::HandleKeepDecision(const proto::KeepDecision& decision) {
  const std::string& id = decision.request_id();
  const int me = world_.Rank();
  auto own = candidates_.find(id);
  if (decision.abort()) {
    if (own != candidates_.end()) {
      SIEVE_LOG_INFO("dropped request: candidate KV freed", "rank=%d id=%s chunks=%zu", me,
                     id.c_str(), own->second.size());
      candidates_.erase(own);
    } else {
      // Control messages pass queued work orders (Serve): this request's order may still come.
      aborted_.push_back(id);
      if (aborted_.size() > kAbortedKept) aborted_.pop_front();
    }
    HandleCancel(id);
    return Status::Ok();
  }
  const int decode_rank = decision.decode_rank();
  const KvShape shape = KvShape::Of(model_.config(), model_.dtype());
  if (own != candidates_.end()) {
    for (int i = 0; i < decision.kept_chunks_size(); ++i) {
      if (decision.owner_ranks(i) != me) continue;
      const int index = decision.kept_chunks(i);
      auto it = std::find_if(own->second.begin(), own->second.end(),
                             [index](const ChunkKv& kv) { return kv.index == index; });
      if (it == own->second.end()) {
        return Status::Internal(
            StrFormat("rank %d: request %s keeps chunk %d, which this rank "
                      "does not hold",
                      me, id.c_str(), index));
      }
      if (decode_rank == me) {
        DecodeEntry(id).received[index] = std::move(*it);
        continue;
      }
      proto::KvManifest manifest;
      manifest.set_request_id(id);
      manifest.set_chunk(index);
      manifest.set_context_tokens(it->context_tokens);
      manifest.set_entries(it->entries);
      manifest.set_score(it->score);
      *manifest.mutable_positions() = {it->positions.begin(), it->positions.end()};
      manifest.set_bytes(static_cast<int64_t>(it->data.bytes()));
      SIEVE_RETURN_IF_ERROR(world_.Send(manifest, decode_rank, comm::MpiTag::kKvManifest));
      SIEVE_RETURN_IF_ERROR(transport_.PostSend(std::move(*it), decode_rank));
    }
    candidates_.erase(own);
  }
  (void)shape;
  if (decode_rank == me) {
    DecodeRequest& r = DecodeEntry(id);
    r.have_decision = true;
    r.kept.assign(decision.kept_chunks().begin(), decision.kept_chunks().end());
    r.owners.assign(decision.owner_ranks().begin(), decision.owner_ranks().end());
    r.t_decision = Clock::now();
  }
  return Status::Ok();
}

Status NodeRole::HandleDecodeOrder(const proto::DecodeOrder& order) {
  DecodeRequest& r = DecodeEntry(order.request_id());
  r.order = order;
  r.have_order = true;
  SieveOptionsFromProto(order.sieve(), &r.sieve);
  GenerationOptions gen;
  gen.max_new_tokens = order.max_new_tokens();
  gen.temperature = order.temperature();
  gen.top_p = order.top_p();
  gen.top_k = order.top_k();
  gen.seed = order.seed();
  gen.force_continuation_ids.assign(order.force_continuation_ids().begin(),
                                    order.force_continuation_ids().end());
  std::vector<int64_t> eos(order.eos_ids().begin(), order.eos_ids().end());
  r.generator = std::make_unique<SequenceGenerator>(std::move(gen), std::move(eos));
  if (r.sieve.mode == PrefillMode::kFull) r.t_decision = Clock::now();
  return Status::Ok();
}

Status NodeRole::HandleManifest(const proto::KvManifest& manifest, int source) {
  const KvShape shape = KvShape::Of(model_.config(), model_.dtype());
  if (auto late = late_manifests_.find(manifest.request_id()); late != late_manifests_.end()) {
    // The request was dropped while this chunk was on its way: take the payload off the wire
    // and free it.
    auto kv = ChunkKv::Allocate(model_.backend(), shape, manifest.entries());
    if (!kv.ok() || static_cast<int64_t>(kv->data.bytes()) != manifest.bytes()) {
      return Status::Internal(StrFormat("rank %d: cannot drain chunk %d of dropped request %s",
                                        world_.Rank(), manifest.chunk(),
                                        manifest.request_id().c_str()));
    }
    SIEVE_RETURN_IF_ERROR(transport_.Recv(&*kv, source));
    SIEVE_RETURN_IF_ERROR(transport_.ReceivesReady());
    SIEVE_LOG_INFO("dropped request: late KV chunk freed", "rank=%d id=%s chunk=%d bytes=%lld",
                   world_.Rank(), manifest.request_id().c_str(), manifest.chunk(),
                   static_cast<long long>(manifest.bytes()));
    if (--late->second <= 0) late_manifests_.erase(late);
    return Status::Ok();
  }
  DecodeRequest& r = DecodeEntry(manifest.request_id());
  auto kv = ChunkKv::Allocate(model_.backend(), shape, manifest.entries());
  if (!kv.ok() || static_cast<int64_t>(kv->data.bytes()) != manifest.bytes()) {
    // The payload still has to be drained to keep the point-to-point streams in order.
    return Status::Internal(
        StrFormat("rank %d: cannot take chunk %d of request %s from rank %d "
                  "(%lld bytes): %s",
                  world_.Rank(), manifest.chunk(), manifest.request_id().c_str(), source,
                  static_cast<long long>(manifest.bytes()),
                  kv.ok() ? "size mismatch" : kv.status().ToString().c_str()));
  }
  kv->index = manifest.chunk();
  kv->context_tokens = manifest.context_tokens();
  kv->score = manifest.score();
  kv->positions.assign(manifest.positions().begin(), manifest.positions().end());
  SIEVE_RETURN_IF_ERROR(transport_.Recv(&*kv, source));
  r.bytes_moved += manifest.bytes();
  r.received[manifest.chunk()] = std::move(kv).value();
  return Status::Ok();
}

void NodeRole::HandleCancel(const std::string& id) {
  if (candidates_.erase(id) > 0) {
    SIEVE_LOG_INFO("dropped request: candidate KV freed", "rank=%d id=%s", world_.Rank(),
                   id.c_str());
  }
  auto it = decode_.find(id);
  if (it == decode_.end()) return;
  if (it->second->started) {
    SIEVE_LOG_INFO("request stopped early: decode KV freed", "rank=%d id=%s tokens=%zu",
                   world_.Rank(), id.c_str(), it->second->generator->tokens().size());
    // Stop: answer now with what was generated so far (the coordinator decides what to keep).
    it->second->generator->Stop();
    if (Status s = SendUpdate(*it->second); !s.ok()) {
      SIEVE_LOG_ERROR("cannot send the final update", "request=%s error=\"%s\"", id.c_str(),
                      s.ToString().c_str());
    }
    return;
  }
  if (!it->second->started) {
    DecodeRequest& r = *it->second;
    const int missing = r.have_decision ? static_cast<int>(r.kept.size() - r.received.size()) : 0;
    if (missing > 0) late_manifests_[id] = missing;
    SIEVE_LOG_INFO("dropped request: decode state freed",
                   "rank=%d id=%s chunks_received=%zu "
                   "chunks_in_transit=%d",
                   world_.Rank(), id.c_str(), r.received.size(), missing);
    decode_.erase(it);
    decode_order_.erase(std::remove(decode_order_.begin(), decode_order_.end(), id),
                        decode_order_.end());
  }
}

void NodeRole::FailDecode(const std::string& id, const Status& status) {
  proto::DecodeUpdate update;
  update.set_request_id(id);
  update.set_done(true);
  update.set_error(StrFormat("rank %d (decode): %s", world_.Rank(), status.ToString().c_str()));
  update.set_error_code(ToProtoCode(status.code()));
  (void)world_.Send(update, 0, comm::MpiTag::kResponse);
  decode_.erase(id);
  decode_order_.erase(std::remove(decode_order_.begin(), decode_order_.end(), id),
                      decode_order_.end());
}

Status NodeRole::StartReadyRequests() {
  const std::vector<std::string> ids(decode_order_.begin(), decode_order_.end());
  for (const std::string& id : ids) {
    auto found = decode_.find(id);
    if (found == decode_.end()) continue;
    DecodeRequest& r = *found->second;
    if (r.started || !r.Complete()) continue;
    r.started = true;
    // The KV has arrived once the posted receives complete (NCCL: on the transfer stream).
    if (r.sieve.mode != PrefillMode::kFull) SIEVE_RETURN_IF_ERROR(transport_.ReceivesReady());
    r.t_kv_done = Clock::now();
    const auto t0 = Clock::now();
    const GenerationOptions& gen = r.generator->options();
    const std::vector<int32_t> query(r.order.query_ids().begin(), r.order.query_ids().end());
    StatusOr<DecodeState> state = Status::Internal("unset");
    double assemble_s = 0;
    if (r.sieve.mode == PrefillMode::kFull) {
      const std::vector<int32_t> doc(r.order.document_ids().begin(), r.order.document_ids().end());
      const ChunkInput whole{.index = 0, .context = doc};
      auto pre = PrefillChunks(model_, query, std::span(&whole, 1),
                               {.full_sequence = true, .max_batch_rows = options_.max_batch_rows});
      if (!pre.ok()) {
        FailDecode(id, pre.status());
        continue;
      }
      r.accounting.mutable_timing()->set_prefill_s(pre->seconds);
      r.accounting.set_prefill_forwards(pre->forwards);
      state =
          CacheFromFullPrefill(model_, pre->kept.front(), r.sieve.scope, gen.max_new_tokens, false);
      if (state.ok()) {
        if (Status s = decoder_->SetLogits(0, pre->last_logits); !s.ok()) state = s;
      }
    } else {
      std::vector<const ChunkKv*> kept;
      for (int index : r.kept) kept.push_back(&r.received.at(index));
      state = AssemblePrefillCache(model_, kept, 1 + static_cast<int>(query.size()), r.sieve.scope,
                                   gen.max_new_tokens, r.order.explain());
      assemble_s = Seconds(Clock::now() - t0);
      if (state.ok()) {
        std::vector<int32_t> bos_query{static_cast<int32_t>(*model_.config().bos_token_id)};
        bos_query.insert(bos_query.end(), query.begin(), query.end());
        if (Status s = decoder_->QueryPrefill(*state, bos_query, r.sieve.calibration, 0); !s.ok()) {
          state = s;
        }
      }
    }
    if (!state.ok()) {
      FailDecode(id, state.status());
      continue;
    }
    r.state = std::move(state).value();
    r.received.clear();  // Phi_p holds its own copy now
    proto::Accounting& a = r.accounting;
    a.set_p0(r.state.p0);
    auto top = decoder_->TopLogits(0, 5);
    if (!top.ok()) return top.status();
    for (const auto& [tid, logit] : *top) {
      proto::TopLogit* t = a.add_first_top5();
      t->set_id(tid);
      t->set_logit(logit);
    }
    const int heads = static_cast<int>(model_.config().num_kv_heads);
    int64_t entries = 0;
    for (int l = 0; l < model_.config().num_layers; ++l) {
      proto::IntList* row = a.add_prefill_cache();
      for (int g = 0; g < heads; ++g) row->add_values(r.state.cache.prefix_len(l));
      entries += int64_t{r.state.cache.prefix_len(l)} * heads;
    }
    a.set_kv_entries_kept(entries);
    a.set_kv_bytes_kept(entries * 2 * int64_t(r.state.cache.shape().entry_bytes()) / heads);
    a.set_kv_bytes_moved(r.bytes_moved);
    SequenceGenerator* gens[] = {r.generator.get()};
    SIEVE_RETURN_IF_ERROR(ChooseNextTokens(*decoder_, gens));
    proto::StageTiming* t = a.mutable_timing();
    const double kv_s =
        r.sieve.mode == PrefillMode::kFull ? 0 : Seconds(r.t_kv_done - r.t_decision);
    t->set_kv_transfer_s(kv_s);
    if (kv_s > 0 && r.bytes_moved > 0) t->set_kv_transfer_gbps(r.bytes_moved / kv_s / 1e9);
    t->set_assemble_s(assemble_s);
    t->set_query_prefill_s(Seconds(Clock::now() - t0) - assemble_s);
    r.t_decode_start = Clock::now();
    SIEVE_RETURN_IF_ERROR(SendUpdate(r));
  }
  return Status::Ok();
}

Status NodeRole::DecodeStep() {
  std::vector<DecodeRequest*> batch;
  for (const std::string& id : decode_order_) {
    auto it = decode_.find(id);
    if (it == decode_.end() || !it->second->started || it->second->generator->done()) continue;
    batch.push_back(it->second.get());
    if (static_cast<int>(batch.size()) == options_.max_decode_batch) break;
  }
  if (batch.empty()) return Status::Ok();
  std::vector<DecodeState*> states;
  std::vector<SequenceGenerator*> gens;
  for (DecodeRequest* r : batch) {
    r->state.last_token = r->generator->tokens().back();
    states.push_back(&r->state);
    gens.push_back(r->generator.get());
  }
  SIEVE_RETURN_IF_ERROR(decoder_->Step(states));
  SIEVE_RETURN_IF_ERROR(ChooseNextTokens(*decoder_, gens));
  for (DecodeRequest* r : batch) SIEVE_RETURN_IF_ERROR(SendUpdate(*r));
  return Status::Ok();
}

Status NodeRole::SendUpdate(DecodeRequest& r) {
  const std::vector<int32_t>& tokens = r.generator->tokens();
  const bool done = r.generator->done();
  proto::DecodeUpdate update;
  update.set_request_id(r.id);
  for (size_t i = r.tokens_sent; i < tokens.size(); ++i) update.add_ids(tokens[i]);
  const auto& lps = r.generator->forced_logprobs();
  for (size_t i = r.tokens_sent; i < lps.size(); ++i) update.add_forced_logprobs(lps[i]);
  r.tokens_sent = tokens.size();
  if (!done) return world_.Send(update, 0, comm::MpiTag::kTokens);
  update.set_done(true);
  update.set_finish_reason(r.generator->finish_reason());
  proto::Accounting& a = r.accounting;
  const int heads = static_cast<int>(model_.config().num_kv_heads);
  for (int l = 0; l < model_.config().num_layers; ++l) {
    proto::IntList* row = a.add_final_cache();
    for (int g = 0; g < heads; ++g) row->add_values(r.state.cache.length(l));
  }
  *a.mutable_scope_fired_steps() = {r.state.fired_steps.begin(), r.state.fired_steps.end()};
  a.mutable_timing()->set_decode_s(Seconds(Clock::now() - r.t_decode_start));
  *update.mutable_accounting() = a;
  if (r.order.explain() && r.sieve.mode != PrefillMode::kFull) {
    PipelineResult explain;
    for (int l = 0; l < model_.config().num_layers; ++l) {
      auto& lay = explain.layout_prefill.emplace_back();
      auto& ev = explain.calibration_evicted.emplace_back();
      auto& pos = explain.final_decode_positions.emplace_back();
      for (int g = 0; g < heads; ++g) {
        lay.push_back(r.state.layout[size_t(l) * heads + g]);
        ev.push_back(r.state.calibration_evicted[size_t(l) * heads + g]);
        pos.push_back(r.state.cache.DecodePositions(l, g));
      }
    }
    proto::GenerateResponse scratch;
    FillResponse(explain, &scratch);
    *update.mutable_explain() = scratch.explain();
  }
  const std::string id = r.id;
  SIEVE_RETURN_IF_ERROR(world_.Send(update, 0, comm::MpiTag::kResponse));
  decode_.erase(id);
  decode_order_.erase(std::remove(decode_order_.begin(), decode_order_.end(), id),
                      decode_order_.end());
  return Status::Ok();
}

}  // namespace sieve::worker
