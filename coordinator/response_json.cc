#include "coordinator/response_json.h"

#include <boost/json.hpp>

namespace sieve::coordinator {
namespace json = boost::json;
namespace {

template <typename Repeated>
json::array ToArray(const Repeated& values) {
  json::array out;
  out.reserve(values.size());
  for (const auto& v : values) out.emplace_back(v);
  return out;
}

json::array ListsToArray(const google::protobuf::RepeatedPtrField<proto::IntList>& lists) {
  json::array out;
  for (const proto::IntList& l : lists) out.emplace_back(ToArray(l.values()));
  return out;
}

json::array HeadEntriesToArray(const google::protobuf::RepeatedPtrField<proto::HeadEntries>& in) {
  json::array layers;
  for (const proto::HeadEntries& layer : in) {
    json::array heads;
    for (const proto::EntryList& head : layer.heads()) {
      json::array entries;
      entries.reserve(head.entries_size());
      for (const proto::EntryId& e : head.entries()) entries.emplace_back(json::array{e.chunk(), e.position()});
      heads.emplace_back(std::move(entries));
    }
    layers.emplace_back(std::move(heads));
  }
  return layers;
}

}  // namespace

json::object ResponseToJsonObject(const proto::GenerateResponse& r) {
  json::object out;
  if (!r.request_id().empty()) out["request_id"] = r.request_id();
  if (!r.model().empty()) out["model"] = r.model();
  out["text"] = r.text();
  out["generated_ids"] = ToArray(r.generated_ids());
  if (r.forced_logprobs_size() > 0) out["forced_logprobs"] = ToArray(r.forced_logprobs());
  out["finish_reason"] = r.finish_reason();
  const proto::Accounting& a = r.accounting();
  json::object acc;
  acc["document_tokens"] = a.document_tokens();
  acc["query_tokens"] = a.query_tokens();
  acc["generated_tokens"] = a.generated_tokens();
  json::array chunks;
  for (const proto::ChunkInfo& c : a.chunks()) {
    chunks.emplace_back(json::object{{"index", c.index()},
                                     {"tokens", c.tokens()},
                                     {"score", c.score()},
                                     {"kept", c.kept()},
                                     {"rank", c.rank()}});
  }
  acc["chunks"] = std::move(chunks);
  acc["kept_chunks"] = ToArray(a.kept_chunks());
  acc["p0"] = a.p0();
  acc["prefill_cache"] = ListsToArray(a.prefill_cache());
  const double fraction =
      a.kv_entries_full() > 0 ? double(a.kv_entries_kept()) / double(a.kv_entries_full()) : 0.0;
  acc["kv"] = json::object{{"entries_kept", a.kv_entries_kept()},
                           {"entries_full", a.kv_entries_full()},
                           {"bytes_kept", a.kv_bytes_kept()},
                           {"bytes_full", a.kv_bytes_full()},
                           {"kept_fraction", fraction},
                           {"bytes_moved", a.kv_bytes_moved()}};
  acc["scope_fired_steps"] = ToArray(a.scope_fired_steps());
  acc["final_cache"] = ListsToArray(a.final_cache());
  json::array top;
  for (const proto::TopLogit& t : a.first_top5()) top.emplace_back(json::array{t.id(), t.logit()});
  acc["first_top5"] = std::move(top);
  acc["prefill_forwards"] = a.prefill_forwards();
  acc["workers"] = a.workers();
  if (!a.device().empty()) acc["device"] = a.device();
  const proto::StageTiming& t = a.timing();
  acc["timing"] = json::object{{"tokenize_s", t.tokenize_s()},
                               {"plan_s", t.plan_s()},
                               {"queue_s", t.queue_s()},
                               {"prefill_s", t.prefill_s()},
                               {"score_exchange_s", t.score_exchange_s()},
                               {"kv_transfer_s", t.kv_transfer_s()},
                               {"kv_transfer_gbps", t.kv_transfer_gbps()},
                               {"assemble_s", t.assemble_s()},
                               {"query_prefill_s", t.query_prefill_s()},
                               {"decode_s", t.decode_s()},
                               {"ttft_s", t.ttft_s()},
                               {"total_s", t.total_s()},
                               {"decode_tokens_per_s", t.decode_tokens_per_s()}};
  out["accounting"] = std::move(acc);
  if (r.has_explain()) {
    const proto::Explain& e = r.explain();
    out["layout_prefill"] = HeadEntriesToArray(e.layout_prefill());
    out["calibration_evicted"] = HeadEntriesToArray(e.calibration_evicted());
    json::array positions;
    for (const proto::HeadPositions& layer : e.final_decode_positions()) {
      json::array heads;
      for (const proto::IntList& h : layer.heads()) heads.emplace_back(ToArray(h.values()));
      positions.emplace_back(std::move(heads));
    }
    out["final_decode_positions"] = std::move(positions);
  }
  return out;
}

std::string ResponseToJson(const proto::GenerateResponse& response) {
  return json::serialize(ResponseToJsonObject(response));
}

json::object ErrorToJsonObject(const Status& status, const std::string& request_id) {
  json::object error{{"code", std::string(StatusCodeName(status.code()))},
                     {"status", HttpStatusFor(status.code())},
                     {"message", status.message()}};
  if (!request_id.empty()) error["request_id"] = request_id;
  return json::object{{"error", std::move(error)}};
}

std::string ErrorToJson(const Status& status, const std::string& request_id) {
  return json::serialize(ErrorToJsonObject(status, request_id));
}

}  // namespace sieve::coordinator
