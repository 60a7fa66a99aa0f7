#include "worker/pipeline.h"

#include <algorithm>
#include <chrono>

#include "comm/chunk_plan.h"
#include "comm/log.h"
#include "worker/generation.h"

namespace sieve::worker {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

Status CheckIds(const std::vector<int32_t>& ids, int64_t vocab, const char* field) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab) {
      return Status::InvalidArgument(
          StrFormat("%s[%zu]: token id %d outside the vocabulary [0, %lld)", field, i, ids[i],
                    static_cast<long long>(vocab)));
    }
  }
  return Status::Ok();
}

}  // namespace

StatusOr<PipelineResult> RunPipeline(const Transformer& model, const PipelineInput& input,
                                     const TokenSink& sink, const ChunkProgressFn& progress) {
  const auto start = Clock::now();
  const ModelConfig& c = model.config();
  SieveOptions opt = input.sieve;
  GenerationOptions gen = input.generation;
  SIEVE_RETURN_IF_ERROR(ResolveOptions(c, &opt, &gen));
  if (input.document_ids.empty()) return Status::InvalidArgument("document: empty");
  if (input.query_ids.empty()) return Status::InvalidArgument("query: empty");
  SIEVE_RETURN_IF_ERROR(CheckIds(input.document_ids, c.vocab_size, "document_ids"));
  SIEVE_RETURN_IF_ERROR(CheckIds(input.query_ids, c.vocab_size, "query_ids"));
  SIEVE_RETURN_IF_ERROR(
      CheckIds(gen.force_continuation_ids, c.vocab_size, "force_continuation_ids"));
  if (!c.bos_token_id) {
    return Status::FailedPrecondition("the model config has no bos_token_id");
  }
  const int32_t bos = static_cast<int32_t>(*c.bos_token_id);
  const std::vector<int32_t>& doc = input.document_ids;
  const std::vector<int32_t>& query = input.query_ids;
  const KvShape shape = KvShape::Of(c, model.dtype());
  const int64_t prompt_rows = static_cast<int64_t>(doc.size()) + 2 + query.size();
  const int64_t entry_bytes_kv = 2 * static_cast<int64_t>(shape.entry_bytes()) / shape.num_kv_heads;

  PipelineResult res;
  res.kv_entries_full = prompt_rows * shape.num_layers * shape.num_kv_heads;
  res.kv_bytes_full = res.kv_entries_full * entry_bytes_kv;
  SIEVE_ASSIGN_OR_RETURN(std::unique_ptr<Decoder> decoder, Decoder::Create(model, 1));
  DecodeState state;

  // Stages 1-6: the prefill cache and the first token's logits.
  auto t = Clock::now();
  if (opt.mode == PrefillMode::kFull) {
    const ChunkInput whole{.index = 0, .context = doc};
    SIEVE_ASSIGN_OR_RETURN(
        ChunkPrefillResult pre,
        PrefillChunks(model, query, std::span(&whole, 1),
                      {.full_sequence = true, .max_batch_rows = input.max_batch_rows}, progress));
    res.times.prefill = SecondsSince(t);
    res.prefill_forwards = pre.forwards;
    t = Clock::now();
    SIEVE_ASSIGN_OR_RETURN(state, CacheFromFullPrefill(model, pre.kept.front(), opt.scope,
                                                       gen.max_new_tokens, input.explain));
    SIEVE_RETURN_IF_ERROR(decoder->SetLogits(0, pre.last_logits));
    res.times.assemble = SecondsSince(t);
  } else {
    const std::vector<ChunkSpan> spans =
        PlanChunks(static_cast<int64_t>(doc.size()), opt.chunk_tokens);
    std::vector<ChunkInput> chunks;
    for (size_t i = 0; i < spans.size(); ++i) {
      chunks.push_back({.index = static_cast<int>(i),
                        .context = std::span(doc).subspan(spans[i].begin, spans[i].size())});
    }
    const int keep = opt.mode == PrefillMode::kParallel
                         ? static_cast<int>(chunks.size())
                         : std::min<int>(opt.keep_chunks, chunks.size());
    ChunkPrefillOptions popt{.kv_capacity = opt.kv_capacity,
                             .kv_window = opt.kv_window,
                             .kv_pool = opt.kv_pool,
                             .keep_local = keep,
                             .max_batch_rows = input.max_batch_rows};
    SIEVE_ASSIGN_OR_RETURN(ChunkPrefillResult pre,
                           PrefillChunks(model, query, chunks, popt, progress));
    res.times.prefill = SecondsSince(t);
    res.prefill_forwards = pre.forwards;
    // Stage 3: with one worker the local top-k is the global top-k.
    t = Clock::now();
    std::vector<const ChunkKv*> kept;
    for (const ChunkKv& kv : pre.kept) {
      kept.push_back(&kv);
      res.kept_chunks.push_back(kv.index);
    }
    for (const ChunkScore& s : pre.scores) {
      const bool is_kept = std::find(res.kept_chunks.begin(), res.kept_chunks.end(), s.index) !=
                           res.kept_chunks.end();
      res.chunks.push_back(
          {.index = s.index, .tokens = s.tokens, .score = s.score, .kept = is_kept});
    }
    res.times.select = SecondsSince(t);
    t = Clock::now();
    const int query_rows = 1 + static_cast<int>(query.size());
    SIEVE_ASSIGN_OR_RETURN(state, AssemblePrefillCache(model, kept, query_rows, opt.scope,
                                                       gen.max_new_tokens, input.explain));
    res.p0 = state.p0;
    res.times.assemble = SecondsSince(t);
    t = Clock::now();
    std::vector<int32_t> bos_query{bos};
    bos_query.insert(bos_query.end(), query.begin(), query.end());
    SIEVE_RETURN_IF_ERROR(decoder->QueryPrefill(state, bos_query, opt.calibration, 0));
  }
  for (int l = 0; l < shape.num_layers; ++l) {
    res.prefill_cache.emplace_back(shape.num_kv_heads, state.cache.prefix_len(l));
    res.kv_entries_kept += int64_t{state.cache.prefix_len(l)} * shape.num_kv_heads;
  }
  res.kv_bytes_kept = res.kv_entries_kept * entry_bytes_kv;
  if (input.explain) {
    res.layout_prefill.resize(shape.num_layers);
    res.calibration_evicted.resize(shape.num_layers);
    for (int l = 0; l < shape.num_layers && !state.layout.empty(); ++l) {
      for (int g = 0; g < shape.num_kv_heads; ++g) {
        res.layout_prefill[l].push_back(state.layout[size_t(l) * shape.num_kv_heads + g]);
        res.calibration_evicted[l].push_back(
            state.calibration_evicted[size_t(l) * shape.num_kv_heads + g]);
      }
    }
  }
  SIEVE_ASSIGN_OR_RETURN(res.first_top5, decoder->TopLogits(0, 5));

  // Stage 7: generation.
  SequenceGenerator generator(gen, c.eos_token_ids);
  SequenceGenerator* generators[] = {&generator};
  DecodeState* states[] = {&state};
  SIEVE_RETURN_IF_ERROR(ChooseNextTokens(*decoder, generators));
  res.times.query_prefill = SecondsSince(t);
  res.times.ttft = SecondsSince(start);
  if (sink && !sink(generator.tokens().back())) generator.Stop();
  t = Clock::now();
  while (!generator.done()) {
    state.last_token = generator.tokens().back();
    SIEVE_RETURN_IF_ERROR(decoder->Step(states));
    SIEVE_RETURN_IF_ERROR(ChooseNextTokens(*decoder, generators));
    if (sink && !sink(generator.tokens().back())) generator.Stop();
  }
  res.generated_ids = generator.tokens();
  res.forced_logprobs = generator.forced_logprobs();
  res.finish_reason = generator.finish_reason();
  res.times.decode = SecondsSince(t);
  res.scope_fired_steps = state.fired_steps;
  for (int l = 0; l < shape.num_layers; ++l) {
    res.final_cache.emplace_back(shape.num_kv_heads, state.cache.length(l));
    if (input.explain) {
      auto& per_head = res.final_decode_positions.emplace_back();
      for (int g = 0; g < shape.num_kv_heads; ++g)
        per_head.push_back(state.cache.DecodePositions(l, g));
    }
  }
  res.times.total = SecondsSince(start);
  SIEVE_LOG_INFO("request done", "chunks=%zu kept=%zu tokens=%zu ttft_s=%.3f total_s=%.3f",
                 res.chunks.size(), res.kept_chunks.size(), res.generated_ids.size(),
                 res.times.ttft, res.times.total);
  return res;
}

}  // namespace sieve::worker
