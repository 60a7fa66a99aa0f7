#include "coordinator/request_tokens.h"

namespace sieve::coordinator {
namespace {

Status CheckVocab(const std::vector<int32_t>& ids, int64_t vocab, const char* field) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] >= vocab) {
      return Status::InvalidArgument(
          StrFormat("%s[%zu]: token id %d is outside the model's vocabulary of %lld", field, i,
                    ids[i], static_cast<long long>(vocab)));
    }
  }
  return Status::Ok();
}

}  // namespace

StatusOr<RequestTokens> TokenizeRequest(const Tokenizer& tokenizer,
                                        const proto::GenerateRequest& request, int64_t vocab) {
  RequestTokens out;
  if (request.has_document_ids()) {
    out.document.assign(request.document_ids().ids().begin(), request.document_ids().ids().end());
  } else {
    auto ids = tokenizer.Encode(request.document_text(), /*add_special_tokens=*/false);
    if (!ids.ok()) return ids.status().WithContext("document");
    out.document = std::move(ids).value();
  }
  if (request.has_query_ids()) {
    out.query.assign(request.query_ids().ids().begin(), request.query_ids().ids().end());
  } else {
    auto ids = tokenizer.Encode(request.query_text(), /*add_special_tokens=*/false);
    if (!ids.ok()) return ids.status().WithContext("query");
    out.query = std::move(ids).value();
  }
  if (out.document.empty()) return Status::InvalidArgument("document: no tokens");
  if (out.query.empty()) return Status::InvalidArgument("query: no tokens");
  SIEVE_RETURN_IF_ERROR(CheckVocab(out.document, vocab, "document_ids"));
  SIEVE_RETURN_IF_ERROR(CheckVocab(out.query, vocab, "query_ids"));
  std::vector<int32_t> forced(request.force_continuation_ids().begin(),
                              request.force_continuation_ids().end());
  SIEVE_RETURN_IF_ERROR(CheckVocab(forced, vocab, "force_continuation_ids"));
  return out;
}

}  // namespace sieve::coordinator
