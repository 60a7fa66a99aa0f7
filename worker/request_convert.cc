#include "worker/request_convert.h"

namespace sieve::worker {
namespace {

void FillHeadEntries(const std::vector<std::vector<std::vector<CacheEntryId>>>& in,
                     google::protobuf::RepeatedPtrField<proto::HeadEntries>* out) {
  for (const auto& layer : in) {
    proto::HeadEntries* l = out->Add();
    for (const auto& head : layer) {
      proto::EntryList* h = l->add_heads();
      for (const CacheEntryId& e : head) {
        proto::EntryId* id = h->add_entries();
        id->set_chunk(e.chunk);
        id->set_position(e.position);
      }
    }
  }
}

}  // namespace

StatusOr<PipelineInput> PipelineInputFromRequest(const proto::GenerateRequest& r,
                                                 std::vector<int32_t> document_ids,
                                                 std::vector<int32_t> query_ids) {
  PipelineInput in;
  in.document_ids = std::move(document_ids);
  in.query_ids = std::move(query_ids);
  in.explain = r.explain();
  OptionsFromProto(r, &in.sieve, &in.generation);
  return in;
}

void FillResponse(const PipelineResult& res, proto::GenerateResponse* out) {
  *out->mutable_generated_ids() = {res.generated_ids.begin(), res.generated_ids.end()};
  *out->mutable_forced_logprobs() = {res.forced_logprobs.begin(), res.forced_logprobs.end()};
  out->set_finish_reason(res.finish_reason);
  proto::Accounting* a = out->mutable_accounting();
  a->set_generated_tokens(static_cast<int32_t>(res.generated_ids.size()));
  for (const ChunkReport& c : res.chunks) {
    proto::ChunkInfo* info = a->add_chunks();
    info->set_index(c.index);
    info->set_tokens(c.tokens);
    info->set_score(c.score);
    info->set_kept(c.kept);
    info->set_rank(c.rank);
  }
  *a->mutable_kept_chunks() = {res.kept_chunks.begin(), res.kept_chunks.end()};
  a->set_p0(res.p0);
  for (const auto& l : res.prefill_cache)
    *a->add_prefill_cache()->mutable_values() = {l.begin(), l.end()};
  for (const auto& l : res.final_cache)
    *a->add_final_cache()->mutable_values() = {l.begin(), l.end()};
  *a->mutable_scope_fired_steps() = {res.scope_fired_steps.begin(), res.scope_fired_steps.end()};
  a->set_kv_entries_kept(res.kv_entries_kept);
  a->set_kv_entries_full(res.kv_entries_full);
  a->set_kv_bytes_kept(res.kv_bytes_kept);
  a->set_kv_bytes_full(res.kv_bytes_full);
  a->set_kv_bytes_moved(res.kv_bytes_moved);
  a->set_prefill_forwards(res.prefill_forwards);
  for (const auto& [id, logit] : res.first_top5) {
    proto::TopLogit* t = a->add_first_top5();
    t->set_id(id);
    t->set_logit(logit);
  }
  proto::StageTiming* t = a->mutable_timing();
  t->set_prefill_s(res.times.prefill);
  t->set_score_exchange_s(res.times.select);
  t->set_kv_transfer_s(res.times.kv_transfer);
  t->set_assemble_s(res.times.assemble);
  t->set_query_prefill_s(res.times.query_prefill);
  t->set_decode_s(res.times.decode);
  t->set_ttft_s(res.times.ttft);
  t->set_total_s(res.times.total);
  const size_t decoded = res.generated_ids.size() > 1 ? res.generated_ids.size() - 1 : 0;
  t->set_decode_tokens_per_s(res.times.decode > 0 ? decoded / res.times.decode : 0);
  if (res.times.kv_transfer > 0)
    t->set_kv_transfer_gbps(res.kv_bytes_moved / res.times.kv_transfer / 1e9);
  a->set_workers(res.workers);
  if (!res.layout_prefill.empty() || !res.final_decode_positions.empty()) {
    proto::Explain* e = out->mutable_explain();
    FillHeadEntries(res.layout_prefill, e->mutable_layout_prefill());
    FillHeadEntries(res.calibration_evicted, e->mutable_calibration_evicted());
    for (const auto& layer : res.final_decode_positions) {
      proto::HeadPositions* l = e->add_final_decode_positions();
      for (const auto& head : layer) *l->add_heads()->mutable_values() = {head.begin(), head.end()};
    }
  }
}

}  // namespace sieve::worker
