// Validation of a GenerateRequest that arrived as protobuf (the native protocol's submit), with
// exactly the rules and defaults of the JSON request parser (coordinator/request_parser.h), so a
// request means the same whichever front end it came through. Pure: no sockets, no model.
//
// Every error names the field as the JSON form spells it ("sieve.kv_pool: must be odd, got 6",
// "document_ids[3]: token id must be in [0, 2^31), got -1"); a document over the limit is
// PAYLOAD_TOO_LARGE. Unset optional fields get the parser's defaults explicitly.
//
// Tested by tests/unit/coordinator/proto_request_test.cc and the fuzz target
// tests/fuzz/native_frame_fuzz.cc.
#pragma once

#include "comm/status.h"
#include "coordinator/request_parser.h"
#include "proto/sieve.pb.h"

namespace sieve::coordinator {

// Checks `request` in place and fills the defaults the JSON parser fills.
Status ValidateGenerateRequest(proto::GenerateRequest* request, const RequestLimits& limits = {});

}  // namespace sieve::coordinator
