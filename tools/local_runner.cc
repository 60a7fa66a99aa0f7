#include "tools/local_runner.h"

#include <chrono>

#include "coordinator/request_tokens.h"
#include "coordinator/streaming_text.h"
#include "worker/pipeline.h"
#include "worker/request_convert.h"

namespace sieve::tools {

StatusOr<proto::GenerateResponse> LocalRunner::Run(
    const proto::GenerateRequest& request, const std::function<void(const std::string&)>& on_text,
    const worker::ChunkProgressFn& progress, const std::function<bool()>& stop_early) const {
  if (!request.model().empty() && request.model() != model_name_) {
    return Status::NotFound(StrFormat("model '%s' is not served here (this service runs '%s')",
                                      request.model().c_str(), model_name_.c_str()));
  }
  const auto t0 = std::chrono::steady_clock::now();
  SIEVE_ASSIGN_OR_RETURN(coordinator::RequestTokens tokens,
                         coordinator::TokenizeRequest(tokenizer_, request, model_.config.vocab_size));
  const double tokenize_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const int document_tokens = static_cast<int>(tokens.document.size());
  const int query_tokens = static_cast<int>(tokens.query.size());
  SIEVE_ASSIGN_OR_RETURN(worker::PipelineInput input,
                         worker::PipelineInputFromRequest(request, std::move(tokens.document),
                                                          std::move(tokens.query)));
  coordinator::StreamingText text(tokenizer_, {request.stop().begin(), request.stop().end()});
  auto sink = [&](int32_t token) {
    const std::string piece = text.Push(token);
    if (on_text && !piece.empty()) on_text(piece);
    return !text.stopped() && !(stop_early && stop_early());
  };
  SIEVE_ASSIGN_OR_RETURN(worker::PipelineResult result,
                         worker::RunPipeline(*model_.model, input, sink, progress));
  const std::string tail = text.Finish();
  if (on_text && !tail.empty()) on_text(tail);
  proto::GenerateResponse response;
  response.set_request_id(request.request_id());
  response.set_model(model_name_);
  worker::FillResponse(result, &response);
  response.set_text(text.text());
  proto::Accounting* a = response.mutable_accounting();
  a->set_document_tokens(document_tokens);
  a->set_query_tokens(query_tokens);
  a->set_device(model_.backend->Describe());
  a->mutable_timing()->set_tokenize_s(tokenize_s);
  a->mutable_timing()->set_total_s(a->timing().total_s() + tokenize_s);
  a->mutable_timing()->set_ttft_s(a->timing().ttft_s() + tokenize_s);
  return response;
}

}  // namespace sieve::tools
