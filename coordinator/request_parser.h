// Request parsing: client JSON -> proto::GenerateRequest, strict and total. Pure: no sockets, no
// model (STYLE rule 25).
//
// The request (sieve-run's --request file, sieve-node's batch mode, and the body of the HTTP API):
//   {"document": "..." | "document_ids": [..], "query": "..." | "query_ids": [..],
//    "max_new_tokens": 64, "temperature": 0, "top_p": 1, "top_k": 0, "seed": 0, "stop": [],
//    "force_continuation_ids": [..], "explain": false,
//    "sieve": {"mode": "parallelcomp" | "parallel" | "full", "chunk_tokens": 6000,
//              "keep_chunks": 3, "kv_capacity": null, "kv_window": 8, "kv_pool": 7,
//              "calibration": null | {"layers": [...], "threshold": 0.1, "region": 100},
//              "scope": {"strategy": "slide" | "adaptive" | "discontinuous" | "off",
//                        "b1": 256, "b2": 256, "T": 64}}}
// plus "request_id", "model", "stream" and "deadline_seconds". Every error is INVALID_ARGUMENT
// with a message that names the field ("sieve.scope.b2: expected an integer, got a string"),
// except a body or document over the configured limit (PAYLOAD_TOO_LARGE). Unknown fields are
// rejected by name. Invalid JSON and invalid UTF-8 are reported with their byte offset.
// Defaults are filled in explicitly, except those that depend on the model (chunk_tokens, T).
//
// Tested by tests/unit/coordinator/request_parser_test.cc and the fuzz target
// tests/fuzz/request_parser_fuzz.cc.
#pragma once

#include <cstdint>
#include <string_view>

#include <boost/json/fwd.hpp>

#include "comm/status.h"
#include "proto/sieve.pb.h"

namespace sieve::coordinator {

struct RequestLimits {
  int64_t max_body_bytes = int64_t{64} << 20;      // whole request
  int64_t max_document_bytes = int64_t{32} << 20;  // document text (or 4 bytes per id)
  int64_t max_document_ids = int64_t{4} << 20;     // document_ids entries
  int max_new_tokens = 32768;
  int max_stop_strings = 16;
};

// Parses and validates a request body.
StatusOr<proto::GenerateRequest> ParseGenerateRequest(std::string_view json,
                                                      const RequestLimits& limits = {});

// The same from an already parsed JSON object (the HTTP front end maps its OpenAI fields first).
StatusOr<proto::GenerateRequest> ParseGenerateRequestObject(const boost::json::object& object,
                                                            const RequestLimits& limits = {});

// Parses JSON text into a value: INVALID_ARGUMENT "invalid JSON at byte N: ..." (or "invalid
// UTF-8 ..."), PAYLOAD_TOO_LARGE over limits.max_body_bytes. Depth is limited to 64.
StatusOr<boost::json::value> ParseJson(std::string_view json, const RequestLimits& limits = {});

// "a string", "an integer", ...: how error messages name what a JSON value is.
const char* JsonKindName(const boost::json::value& v);

}  // namespace sieve::coordinator
