// The boundary between the wire form of a request (proto/sieve.proto) and the pipeline's own
// structs: options in, accounting out. Token ids are supplied by the caller (the coordinator
// tokenizes text; requests may also carry ids directly).
//
// Tested by tests/unit/worker/request_convert_test.cc and, end to end, by the sieve-run CLI test.
#pragma once

#include <cstdint>
#include <vector>

#include "comm/status.h"
#include "proto/sieve.pb.h"
#include "worker/pipeline.h"

namespace sieve::worker {

// Options of `request` (already validated by coordinator/request_parser.h; model-dependent
// checks happen later in ResolveOptions) with the given token ids.
StatusOr<PipelineInput> PipelineInputFromRequest(const proto::GenerateRequest& request,
                                                 std::vector<int32_t> document_ids,
                                                 std::vector<int32_t> query_ids);

// Everything of `result` except the text (which needs the tokenizer) into `response`.
void FillResponse(const PipelineResult& result, proto::GenerateResponse* response);

}  // namespace sieve::worker
