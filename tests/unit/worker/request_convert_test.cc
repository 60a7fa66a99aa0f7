// Tests of worker/request_convert.{h,cc}: the wire request (proto/sieve.proto) into the pipeline's
// PipelineInput, and PipelineResult back into the GenerateResponse.
//
// Checks every option field (each enum value of mode, calibration pattern and scope strategy),
// the worker defaults when a field is unset, that ids are carried through, that the parser's
// output for a minimal request converts to exactly the pipeline defaults, and that FillResponse
// copies every accounting, timing and explain field (including the derived decode rate and
// transfer bandwidth) and adds explain only when there is something to explain. Also the shared
// conversions of comm/sieve_options.h: SieveOptions <-> proto::SieveOptions for every field
// (unset optionals stay unset) and OptionsFromProto agreeing with PipelineInputFromRequest.
//
//   ./build/tests/sieve_unit_tests --gtest_filter='RequestConvert*:SieveOptionsProto*'
#include "worker/request_convert.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "coordinator/request_parser.h"

namespace sieve::worker {
namespace {

PipelineInput Convert(const proto::GenerateRequest& r, std::vector<int32_t> doc = {1, 2, 3},
                      std::vector<int32_t> query = {4, 5}) {
  StatusOr<PipelineInput> in = PipelineInputFromRequest(r, std::move(doc), std::move(query));
  EXPECT_TRUE(in.ok()) << in.status().ToString();
  return in.ok() ? *in : PipelineInput();
}

void ExpectDefaultOptions(const PipelineInput& in) {
  const SieveOptions d;
  const GenerationOptions gd;
  EXPECT_EQ(in.sieve.mode, d.mode);
  EXPECT_EQ(in.sieve.chunk_tokens, 0);
  EXPECT_EQ(in.sieve.keep_chunks, 3);
  EXPECT_FALSE(in.sieve.kv_capacity.has_value());
  EXPECT_EQ(in.sieve.kv_window, 8);
  EXPECT_EQ(in.sieve.kv_pool, 7);
  EXPECT_FALSE(in.sieve.calibration.has_value());
  EXPECT_EQ(in.sieve.scope.strategy, ScopeStrategy::kSlide);
  EXPECT_EQ(in.sieve.scope.b1, 256);
  EXPECT_EQ(in.sieve.scope.b2, 256);
  EXPECT_EQ(in.sieve.scope.T, 0);
  EXPECT_EQ(in.generation.max_new_tokens, gd.max_new_tokens);
  EXPECT_EQ(in.generation.max_new_tokens, 64);
  EXPECT_EQ(in.generation.temperature, 0.f);
  EXPECT_EQ(in.generation.top_p, 1.f);
  EXPECT_EQ(in.generation.top_k, 0);
  EXPECT_EQ(in.generation.seed, 0u);
  EXPECT_TRUE(in.generation.force_continuation_ids.empty());
  EXPECT_FALSE(in.explain);
}

TEST(RequestConvertTest, UnsetFieldsGiveTheWorkerDefaults) {
  const PipelineInput in = Convert(proto::GenerateRequest());
  ExpectDefaultOptions(in);
  EXPECT_EQ(in.document_ids, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(in.query_ids, (std::vector<int32_t>{4, 5}));
}

TEST(RequestConvertTest, ParsedMinimalRequestGivesTheWorkerDefaults) {
  auto r = coordinator::ParseGenerateRequest(R"({"document": "d", "query": "q"})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ExpectDefaultOptions(Convert(*r));
}

TEST(RequestConvertTest, EveryField) {
  proto::GenerateRequest r;
  r.set_max_new_tokens(40);
  r.set_temperature(0.7f);
  r.set_top_p(0.9f);
  r.set_top_k(50);
  r.set_seed(18446744073709551615ull);
  r.add_force_continuation_ids(220);
  r.add_force_continuation_ids(23670);
  r.set_explain(true);
  proto::SieveOptions* s = r.mutable_sieve();
  s->set_mode(proto::PREFILL_MODE_PARALLEL);
  s->set_chunk_tokens(300);
  s->set_keep_chunks(2);
  s->set_kv_capacity(48);
  s->set_kv_window(16);
  s->set_kv_pool(5);
  s->mutable_calibration()->add_layers(proto::CALIBRATION_RECENT);
  s->mutable_calibration()->add_layers(proto::CALIBRATION_MIDDLE);
  s->mutable_calibration()->set_threshold(0.003f);
  s->mutable_calibration()->set_region(16);
  s->mutable_scope()->set_strategy(proto::SCOPE_DISCONTINUOUS);
  s->mutable_scope()->set_b1(6);
  s->mutable_scope()->set_b2(4);
  s->mutable_scope()->set_t(24);
  const PipelineInput in = Convert(r, {9, 8, 7, 6}, {128000});
  EXPECT_EQ(in.document_ids, (std::vector<int32_t>{9, 8, 7, 6}));
  EXPECT_EQ(in.query_ids, (std::vector<int32_t>{128000}));
  EXPECT_TRUE(in.explain);
  EXPECT_EQ(in.generation.max_new_tokens, 40);
  EXPECT_EQ(in.generation.temperature, 0.7f);
  EXPECT_EQ(in.generation.top_p, 0.9f);
  EXPECT_EQ(in.generation.top_k, 50);
  EXPECT_EQ(in.generation.seed, 18446744073709551615ull);
  EXPECT_EQ(in.generation.force_continuation_ids, (std::vector<int32_t>{220, 23670}));
  EXPECT_EQ(in.sieve.mode, PrefillMode::kParallel);
  EXPECT_EQ(in.sieve.chunk_tokens, 300);
  EXPECT_EQ(in.sieve.keep_chunks, 2);
  ASSERT_TRUE(in.sieve.kv_capacity.has_value());
  EXPECT_EQ(*in.sieve.kv_capacity, 48);
  EXPECT_EQ(in.sieve.kv_window, 16);
  EXPECT_EQ(in.sieve.kv_pool, 5);
  ASSERT_TRUE(in.sieve.calibration.has_value());
  EXPECT_EQ(
      in.sieve.calibration->layers,
      (std::vector<CalibrationPattern>{CalibrationPattern::kRecent, CalibrationPattern::kMiddle}));
  EXPECT_EQ(in.sieve.calibration->threshold, 0.003f);
  EXPECT_EQ(in.sieve.calibration->region, 16);
  EXPECT_EQ(in.sieve.scope.strategy, ScopeStrategy::kDiscontinuous);
  EXPECT_EQ(in.sieve.scope.b1, 6);
  EXPECT_EQ(in.sieve.scope.b2, 4);
  EXPECT_EQ(in.sieve.scope.T, 24);
}

TEST(RequestConvertTest, ZeroValuesThatAreSetAreKept) {
  // proto3 `optional`: an explicit 0 is different from unset.
  proto::GenerateRequest r;
  r.set_top_p(0.5f);
  r.set_seed(0);
  r.mutable_sieve()->mutable_scope()->set_b1(0);
  r.mutable_sieve()->mutable_scope()->set_b2(1);
  const PipelineInput in = Convert(r);
  EXPECT_EQ(in.generation.top_p, 0.5f);
  EXPECT_EQ(in.sieve.scope.b1, 0);
  EXPECT_EQ(in.sieve.scope.b2, 1);
}

TEST(RequestConvertTest, EveryEnumValue) {
  const std::pair<proto::PrefillMode, PrefillMode> modes[] = {
      {proto::PREFILL_MODE_PARALLELCOMP, PrefillMode::kParallelComp},
      {proto::PREFILL_MODE_PARALLEL, PrefillMode::kParallel},
      {proto::PREFILL_MODE_FULL, PrefillMode::kFull}};
  for (const auto& [wire, want] : modes) {
    proto::GenerateRequest r;
    r.mutable_sieve()->set_mode(wire);
    EXPECT_EQ(Convert(r).sieve.mode, want) << wire;
  }
  const std::pair<proto::ScopeStrategy, ScopeStrategy> strategies[] = {
      {proto::SCOPE_SLIDE, ScopeStrategy::kSlide},
      {proto::SCOPE_ADAPTIVE, ScopeStrategy::kAdaptive},
      {proto::SCOPE_DISCONTINUOUS, ScopeStrategy::kDiscontinuous},
      {proto::SCOPE_OFF, ScopeStrategy::kOff}};
  for (const auto& [wire, want] : strategies) {
    proto::GenerateRequest r;
    r.mutable_sieve()->mutable_scope()->set_strategy(wire);
    EXPECT_EQ(Convert(r).sieve.scope.strategy, want) << wire;
  }
  proto::GenerateRequest r;
  for (proto::CalibrationPattern p :
       {proto::CALIBRATION_NONE, proto::CALIBRATION_SINK, proto::CALIBRATION_RECENT,
        proto::CALIBRATION_MIDDLE, proto::CALIBRATION_ALL}) {
    r.mutable_sieve()->mutable_calibration()->add_layers(p);
  }
  const PipelineInput in = Convert(r);
  ASSERT_TRUE(in.sieve.calibration.has_value());
  EXPECT_EQ(in.sieve.calibration->layers,
            (std::vector<CalibrationPattern>{
                CalibrationPattern::kNone, CalibrationPattern::kSink, CalibrationPattern::kRecent,
                CalibrationPattern::kMiddle, CalibrationPattern::kAll}));
}

// ---------------------------------------------------------------------------------------------
// FillResponse.

PipelineResult FullResult() {
  PipelineResult res;
  res.generated_ids = {220, 23670, 1032, 13};
  res.forced_logprobs = {-0.5f, -1.25f, -3.75f, -0.0625f};
  res.finish_reason = "length";
  res.chunks = {{.index = 0, .tokens = 275, .score = 12.157040119171143, .kept = false, .rank = 1},
                {.index = 1, .tokens = 274, .score = 11.800793075561524, .kept = true, .rank = 2}};
  res.kept_chunks = {1};
  res.p0 = 275;
  res.prefill_cache = {{560, 561}, {562, 563}};
  res.final_cache = {{576, 577}, {578, 579}};
  res.scope_fired_steps = {7, 11, 15};
  res.first_top5 = {{102583, 2.9737890f}, {48856, 2.9580030f}};
  res.kv_entries_kept = 2240;
  res.kv_entries_full = 6632;
  res.kv_bytes_kept = int64_t{1} << 40;
  res.kv_bytes_full = (int64_t{1} << 41) + 3;
  res.kv_bytes_moved = 4000000000;
  res.prefill_forwards = 3;
  res.workers = 4;
  res.times = {.prefill = 0.5,
               .select = 0.01,
               .assemble = 0.02,
               .query_prefill = 0.03,
               .decode = 1.5,
               .kv_transfer = 2.0,
               .ttft = 0.6,
               .total = 2.1};
  res.layout_prefill = {{{{1, 0}, {1, 5}, {-1, 275}}, {{1, 0}, {-1, 275}}},
                        {{{1, 0}, {1, 6}}, {{1, 0}, {1, 7}, {-1, 276}}}};
  res.calibration_evicted = {{{}, {{1, 9}}}, {{{1, 3}, {1, 4}}, {}}};
  res.final_decode_positions = {{{286, 287}, {288}}, {{}, {289, 290}}};
  return res;
}

TEST(RequestConvertTest, FillResponseCopiesEverything) {
  proto::GenerateResponse out;
  FillResponse(FullResult(), &out);
  EXPECT_EQ(std::vector<int32_t>(out.generated_ids().begin(), out.generated_ids().end()),
            (std::vector<int32_t>{220, 23670, 1032, 13}));
  EXPECT_EQ(std::vector<float>(out.forced_logprobs().begin(), out.forced_logprobs().end()),
            (std::vector<float>{-0.5f, -1.25f, -3.75f, -0.0625f}));
  EXPECT_EQ(out.finish_reason(), "length");
  EXPECT_EQ(out.text(), "");  // the text needs the tokenizer: the caller sets it
  const proto::Accounting& a = out.accounting();
  EXPECT_EQ(a.generated_tokens(), 4);
  ASSERT_EQ(a.chunks_size(), 2);
  EXPECT_EQ(a.chunks(0).index(), 0);
  EXPECT_EQ(a.chunks(0).tokens(), 275);
  EXPECT_EQ(a.chunks(0).score(), 12.157040119171143);  // double, no float rounding
  EXPECT_FALSE(a.chunks(0).kept());
  EXPECT_EQ(a.chunks(0).rank(), 1);
  EXPECT_EQ(a.chunks(1).index(), 1);
  EXPECT_EQ(a.chunks(1).tokens(), 274);
  EXPECT_EQ(a.chunks(1).score(), 11.800793075561524);
  EXPECT_TRUE(a.chunks(1).kept());
  EXPECT_EQ(a.chunks(1).rank(), 2);
  EXPECT_EQ(std::vector<int32_t>(a.kept_chunks().begin(), a.kept_chunks().end()),
            (std::vector<int32_t>{1}));
  EXPECT_EQ(a.p0(), 275);
  ASSERT_EQ(a.prefill_cache_size(), 2);
  EXPECT_EQ(
      std::vector<int32_t>(a.prefill_cache(1).values().begin(), a.prefill_cache(1).values().end()),
      (std::vector<int32_t>{562, 563}));
  ASSERT_EQ(a.final_cache_size(), 2);
  EXPECT_EQ(
      std::vector<int32_t>(a.final_cache(0).values().begin(), a.final_cache(0).values().end()),
      (std::vector<int32_t>{576, 577}));
  EXPECT_EQ(std::vector<int32_t>(a.scope_fired_steps().begin(), a.scope_fired_steps().end()),
            (std::vector<int32_t>{7, 11, 15}));
  EXPECT_EQ(a.kv_entries_kept(), 2240);
  EXPECT_EQ(a.kv_entries_full(), 6632);
  EXPECT_EQ(a.kv_bytes_kept(), int64_t{1} << 40);
  EXPECT_EQ(a.kv_bytes_full(), (int64_t{1} << 41) + 3);
  EXPECT_EQ(a.kv_bytes_moved(), 4000000000);
  EXPECT_EQ(a.prefill_forwards(), 3);
  EXPECT_EQ(a.workers(), 4);
  ASSERT_EQ(a.first_top5_size(), 2);
  EXPECT_EQ(a.first_top5(0).id(), 102583);
  EXPECT_EQ(a.first_top5(0).logit(), 2.9737890f);
  EXPECT_EQ(a.first_top5(1).id(), 48856);
  EXPECT_EQ(a.first_top5(1).logit(), 2.9580030f);
  const proto::StageTiming& t = a.timing();
  EXPECT_EQ(t.prefill_s(), 0.5);
  EXPECT_EQ(t.score_exchange_s(), 0.01);
  EXPECT_EQ(t.kv_transfer_s(), 2.0);
  EXPECT_EQ(t.assemble_s(), 0.02);
  EXPECT_EQ(t.query_prefill_s(), 0.03);
  EXPECT_EQ(t.decode_s(), 1.5);
  EXPECT_EQ(t.ttft_s(), 0.6);
  EXPECT_EQ(t.total_s(), 2.1);
  // 4 generated tokens: the first comes from the query prefill, 3 from decode steps.
  EXPECT_DOUBLE_EQ(t.decode_tokens_per_s(), 3 / 1.5);
  EXPECT_DOUBLE_EQ(t.kv_transfer_gbps(), 4000000000 / 2.0 / 1e9);
  // Not the pipeline's: set by the caller.
  EXPECT_EQ(t.tokenize_s(), 0.0);
  EXPECT_EQ(a.document_tokens(), 0);
  EXPECT_EQ(a.query_tokens(), 0);
}

TEST(RequestConvertTest, FillResponseExplain) {
  proto::GenerateResponse out;
  FillResponse(FullResult(), &out);
  ASSERT_TRUE(out.has_explain());
  const proto::Explain& e = out.explain();
  ASSERT_EQ(e.layout_prefill_size(), 2);
  ASSERT_EQ(e.layout_prefill(0).heads_size(), 2);
  const proto::EntryList& h00 = e.layout_prefill(0).heads(0);
  ASSERT_EQ(h00.entries_size(), 3);
  EXPECT_EQ(h00.entries(0).chunk(), 1);
  EXPECT_EQ(h00.entries(0).position(), 0);
  EXPECT_EQ(h00.entries(1).chunk(), 1);
  EXPECT_EQ(h00.entries(1).position(), 5);
  EXPECT_EQ(h00.entries(2).chunk(), -1);
  EXPECT_EQ(h00.entries(2).position(), 275);
  const proto::EntryList& h11 = e.layout_prefill(1).heads(1);
  ASSERT_EQ(h11.entries_size(), 3);
  EXPECT_EQ(h11.entries(2).chunk(), -1);
  EXPECT_EQ(h11.entries(2).position(), 276);
  ASSERT_EQ(e.calibration_evicted_size(), 2);
  EXPECT_EQ(e.calibration_evicted(0).heads(0).entries_size(), 0);
  ASSERT_EQ(e.calibration_evicted(0).heads(1).entries_size(), 1);
  EXPECT_EQ(e.calibration_evicted(0).heads(1).entries(0).position(), 9);
  ASSERT_EQ(e.calibration_evicted(1).heads(0).entries_size(), 2);
  EXPECT_EQ(e.calibration_evicted(1).heads(0).entries(1).chunk(), 1);
  EXPECT_EQ(e.calibration_evicted(1).heads(0).entries(1).position(), 4);
  ASSERT_EQ(e.final_decode_positions_size(), 2);
  ASSERT_EQ(e.final_decode_positions(0).heads_size(), 2);
  EXPECT_EQ(std::vector<int32_t>(e.final_decode_positions(0).heads(0).values().begin(),
                                 e.final_decode_positions(0).heads(0).values().end()),
            (std::vector<int32_t>{286, 287}));
  EXPECT_EQ(e.final_decode_positions(1).heads(0).values_size(), 0);
  EXPECT_EQ(std::vector<int32_t>(e.final_decode_positions(1).heads(1).values().begin(),
                                 e.final_decode_positions(1).heads(1).values().end()),
            (std::vector<int32_t>{289, 290}));
}

TEST(RequestConvertTest, FillResponseWithoutExplainOrForcing) {
  PipelineResult res = FullResult();
  res.layout_prefill.clear();
  res.calibration_evicted.clear();
  res.final_decode_positions.clear();
  res.forced_logprobs.clear();
  res.times.kv_transfer = 0;
  res.times.decode = 0;
  res.generated_ids = {7};
  proto::GenerateResponse out;
  FillResponse(res, &out);
  EXPECT_FALSE(out.has_explain());
  EXPECT_EQ(out.forced_logprobs_size(), 0);
  EXPECT_EQ(out.accounting().generated_tokens(), 1);
  // No division by zero: rates are 0 when their time is 0.
  EXPECT_EQ(out.accounting().timing().decode_tokens_per_s(), 0.0);
  EXPECT_EQ(out.accounting().timing().kv_transfer_gbps(), 0.0);
}

// ---------------------------------------------------------------------------------------------
// comm/sieve_options.h: the control plane's wire form of resolved options, both ways.

void ExpectSameOptions(const SieveOptions& a, const SieveOptions& b) {
  EXPECT_EQ(a.mode, b.mode);
  EXPECT_EQ(a.chunk_tokens, b.chunk_tokens);
  EXPECT_EQ(a.keep_chunks, b.keep_chunks);
  EXPECT_EQ(a.kv_capacity, b.kv_capacity);
  EXPECT_EQ(a.kv_window, b.kv_window);
  EXPECT_EQ(a.kv_pool, b.kv_pool);
  ASSERT_EQ(a.calibration.has_value(), b.calibration.has_value());
  if (a.calibration) {
    EXPECT_EQ(a.calibration->layers, b.calibration->layers);
    EXPECT_EQ(a.calibration->threshold, b.calibration->threshold);
    EXPECT_EQ(a.calibration->region, b.calibration->region);
  }
  EXPECT_EQ(a.scope.strategy, b.scope.strategy);
  EXPECT_EQ(a.scope.b1, b.scope.b1);
  EXPECT_EQ(a.scope.b2, b.scope.b2);
  EXPECT_EQ(a.scope.T, b.scope.T);
}

TEST(SieveOptionsProtoTest, RoundTripEveryField) {
  SieveOptions o;
  o.mode = PrefillMode::kParallel;
  o.chunk_tokens = 300;
  o.keep_chunks = 2;
  o.kv_capacity = 48;
  o.kv_window = 16;
  o.kv_pool = 5;
  o.calibration = CalibrationOptions{
      .layers = {CalibrationPattern::kRecent, CalibrationPattern::kMiddle,
                 CalibrationPattern::kNone, CalibrationPattern::kSink, CalibrationPattern::kAll},
      .threshold = 0.003f,
      .region = 16};
  o.scope = {.strategy = ScopeStrategy::kDiscontinuous, .b1 = 6, .b2 = 4, .T = 24};
  proto::SieveOptions wire;
  SieveOptionsToProto(o, &wire);
  SieveOptions back;
  SieveOptionsFromProto(wire, &back);
  ExpectSameOptions(back, o);
  // Every mode and strategy survives too.
  for (PrefillMode m : {PrefillMode::kParallelComp, PrefillMode::kParallel, PrefillMode::kFull}) {
    for (ScopeStrategy st : {ScopeStrategy::kOff, ScopeStrategy::kSlide, ScopeStrategy::kAdaptive,
                             ScopeStrategy::kDiscontinuous}) {
      SieveOptions x;
      x.mode = m;
      x.scope.strategy = st;
      SieveOptionsToProto(x, &wire);
      SieveOptions y;
      y.mode = PrefillMode::kFull == m ? PrefillMode::kParallel : PrefillMode::kFull;
      SieveOptionsFromProto(wire, &y);
      EXPECT_EQ(y.mode, m);
      EXPECT_EQ(y.scope.strategy, st);
    }
  }
}

TEST(SieveOptionsProtoTest, UnsetOptionalsStayUnset) {
  SieveOptions o;  // no kv_capacity, no calibration
  proto::SieveOptions wire;
  wire.set_kv_capacity(99);  // overwritten: ToProto clears first
  wire.mutable_calibration()->add_layers(proto::CALIBRATION_ALL);
  SieveOptionsToProto(o, &wire);
  EXPECT_FALSE(wire.has_kv_capacity());
  EXPECT_FALSE(wire.has_calibration());
  SieveOptions back;
  SieveOptionsFromProto(wire, &back);
  ExpectSameOptions(back, o);
}

TEST(SieveOptionsProtoTest, OptionsFromProtoMatchesPipelineInput) {
  auto r = coordinator::ParseGenerateRequest(R"({"document": "d", "query": "q",
      "max_new_tokens": 12, "temperature": 0.5, "top_p": 0.75, "top_k": 3, "seed": 99,
      "force_continuation_ids": [4, 5],
      "sieve": {"mode": "full", "chunk_tokens": 100, "keep_chunks": 1, "kv_window": 4,
                "scope": {"strategy": "adaptive", "b1": 2, "b2": 3, "T": 11}}})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  SieveOptions s;
  GenerationOptions g;
  OptionsFromProto(*r, &s, &g);
  const PipelineInput in = Convert(*r);
  ExpectSameOptions(s, in.sieve);
  EXPECT_EQ(s.mode, PrefillMode::kFull);
  EXPECT_EQ(s.scope.T, 11);
  EXPECT_EQ(g.max_new_tokens, 12);
  EXPECT_EQ(g.temperature, 0.5f);
  EXPECT_EQ(g.top_p, 0.75f);
  EXPECT_EQ(g.top_k, 3);
  EXPECT_EQ(g.seed, 99u);
  EXPECT_EQ(g.force_continuation_ids, (std::vector<int32_t>{4, 5}));
  EXPECT_EQ(in.generation.force_continuation_ids, g.force_continuation_ids);
  EXPECT_EQ(in.generation.max_new_tokens, g.max_new_tokens);
}

}  // namespace
}  // namespace sieve::worker
