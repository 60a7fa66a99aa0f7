// The token ids of a request: its document and query text through the model's tokenizer (no
// special tokens added: the pipeline adds the BOS tokens of ParallelComp's layout itself), or the
// ids it carried. Ids are checked against the vocabulary.
//
// Tested by tests/unit/coordinator/request_tokens_test.cc.
#pragma once

#include <cstdint>
#include <vector>

#include "comm/status.h"
#include "coordinator/tokenizer.h"
#include "proto/sieve.pb.h"

namespace sieve::coordinator {

struct RequestTokens {
  std::vector<int32_t> document;
  std::vector<int32_t> query;
};

StatusOr<RequestTokens> TokenizeRequest(const Tokenizer& tokenizer,
                                        const proto::GenerateRequest& request, int64_t vocab_size);

}  // namespace sieve::coordinator
