// Response and error JSON, the one rendering shared by sieve-run, sieve-node's batch mode and the
// HTTP API's native (non-OpenAI) fields.
//
//   {"request_id", "model", "text", "generated_ids", "forced_logprobs" (forced runs),
//    "finish_reason", "accounting": {"document_tokens", "query_tokens", "generated_tokens",
//      "chunks": [{"index", "tokens", "score", "kept", "rank"}], "kept_chunks", "p0",
//      "prefill_cache", "kv": {"entries_kept", "entries_full", "bytes_kept", "bytes_full",
//      "kept_fraction", "bytes_moved"}, "scope_fired_steps", "final_cache", "first_top5",
//      "prefill_forwards", "workers", "device", "timing": {... seconds per stage ...}},
//    and with explain: "layout_prefill", "calibration_evicted", "final_decode_positions" in the
//    form tools/oracle.py writes them ([chunk, position] pairs; the query as [-1, position])}
//   errors: {"error": {"code": "INVALID_ARGUMENT", "status": 400, "message": "..."}}
//
// Tested by tests/unit/coordinator/response_json_test.cc.
#pragma once

#include <string>

#include <boost/json/fwd.hpp>

#include "comm/status.h"
#include "proto/sieve.pb.h"

namespace sieve::coordinator {

boost::json::object ResponseToJsonObject(const proto::GenerateResponse& response);
std::string ResponseToJson(const proto::GenerateResponse& response);

// {"error": {...}} for a non-ok status (request_id added when non-empty).
boost::json::object ErrorToJsonObject(const Status& status, const std::string& request_id = "");
std::string ErrorToJson(const Status& status, const std::string& request_id = "");

}  // namespace sieve::coordinator
