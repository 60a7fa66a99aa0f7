// Tests of coordinator/response_json.{h,cc}: the response and error JSON every front end shares.
//
// Checks field names and shapes (top level, accounting, kv, timing, chunks, first_top5), that
// optional members appear exactly when they should (request_id, model, forced_logprobs, device,
// the explain fields), the explain form ([chunk, position] pairs, the query as [-1, position]),
// that numbers survive exactly (doubles, int64 byte counts, float logprobs), and the error
// object: code name, HTTP status, message, request_id.
//
//   ./build/tests/sieve_unit_tests --gtest_filter='ResponseJson*'
#include "coordinator/response_json.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

namespace sieve::coordinator {
namespace {

namespace json = boost::json;

std::set<std::string> Keys(const json::object& o) {
  std::set<std::string> keys;
  for (const auto& kv : o) keys.insert(std::string(kv.key()));
  return keys;
}

std::vector<int64_t> Ints(const json::value& v) {
  std::vector<int64_t> out;
  for (const json::value& x : v.as_array()) out.push_back(x.as_int64());
  return out;
}

// The comma-separated numbers that follow `prefix` in `text` (up to the first non-number), read
// with strtod.
std::vector<double> NumbersAt(const std::string& text, std::string_view prefix) {
  std::vector<double> out;
  const size_t at = text.find(prefix);
  if (at == std::string::npos) return out;
  const char* p = text.c_str() + at + prefix.size();
  while (true) {
    char* end = nullptr;
    const double x = std::strtod(p, &end);
    if (end == p) break;
    out.push_back(x);
    if (*end != ',') break;
    p = end + 1;
  }
  return out;
}

// Parses the serialized form (what a client sees), not the object.
json::object Render(const proto::GenerateResponse& r) {
  const std::string text = ResponseToJson(r);
  json::value v = json::parse(text);
  EXPECT_TRUE(v.is_object()) << text;
  return v.as_object();
}

proto::EntryId* AddEntry(proto::EntryList* list, int chunk, int position) {
  proto::EntryId* e = list->add_entries();
  e->set_chunk(chunk);
  e->set_position(position);
  return e;
}

// A response with every field set to a distinct value.
proto::GenerateResponse FullResponse() {
  proto::GenerateResponse r;
  r.set_request_id("req-42");
  r.set_model("tiny-llama3");
  r.set_text("The pass key is 71432.");
  r.add_generated_ids(791);
  r.add_generated_ids(1522);
  r.add_generated_ids(128009);
  r.add_forced_logprobs(-0.125f);
  r.add_forced_logprobs(-11.953125f);
  r.add_forced_logprobs(-3.1415927f);
  r.set_finish_reason("eos");
  proto::Accounting* a = r.mutable_accounting();
  a->set_document_tokens(1646);
  a->set_query_tokens(10);
  a->set_generated_tokens(3);
  for (int i = 0; i < 3; ++i) {
    proto::ChunkInfo* c = a->add_chunks();
    c->set_index(i);
    c->set_tokens(275 - (i == 2 ? 1 : 0));
    c->set_score(12.157040119171143 + i);
    c->set_kept(i != 1);
    c->set_rank(i + 1);
  }
  a->add_kept_chunks(0);
  a->add_kept_chunks(2);
  a->set_p0(276);
  for (int l = 0; l < 2; ++l) {
    proto::IntList* p = a->add_prefill_cache();
    p->add_values(560 + l);
    p->add_values(561 + l);
    proto::IntList* f = a->add_final_cache();
    f->add_values(576 - l);
    f->add_values(575 - l);
  }
  a->add_scope_fired_steps(7);
  a->add_scope_fired_steps(11);
  a->set_kv_entries_kept(2240);
  a->set_kv_entries_full(6632);
  a->set_kv_bytes_kept((int64_t{1} << 40) + 1);  // not representable as a float
  a->set_kv_bytes_full((int64_t{1} << 53) + 1);  // not representable as a double
  a->set_kv_bytes_moved(9007199254740993);
  a->set_prefill_forwards(4);
  proto::TopLogit* t = a->add_first_top5();
  t->set_id(102583);
  t->set_logit(2.9737889766693115f);
  t = a->add_first_top5();
  t->set_id(48856);
  t->set_logit(-0.5f);
  a->set_workers(3);
  a->set_device("cpu (test)");
  proto::StageTiming* s = a->mutable_timing();
  s->set_tokenize_s(0.001);
  s->set_plan_s(0.002);
  s->set_prefill_s(0.489215840);
  s->set_score_exchange_s(0.004);
  s->set_kv_transfer_s(0.005);
  s->set_assemble_s(0.006);
  s->set_query_prefill_s(0.007);
  s->set_decode_s(1.055036663);
  s->set_ttft_s(0.5418539689999999);
  s->set_total_s(1.596900376);
  s->set_decode_tokens_per_s(6.634840518333721);
  s->set_kv_transfer_gbps(12.5);
  proto::Explain* e = r.mutable_explain();
  // layout_prefill: 2 layers x 2 heads.
  for (int l = 0; l < 2; ++l) {
    proto::HeadEntries* layer = e->add_layout_prefill();
    for (int g = 0; g < 2; ++g) {
      proto::EntryList* head = layer->add_heads();
      AddEntry(head, 0, 0);
      AddEntry(head, 2, 17 + l + g);
      AddEntry(head, -1, 276);
    }
    proto::HeadEntries* ev = e->add_calibration_evicted();
    proto::EntryList* h0 = ev->add_heads();
    if (l == 1) AddEntry(h0, 2, 5);
    ev->add_heads();  // an empty head
    proto::HeadPositions* pos = e->add_final_decode_positions();
    for (int g = 0; g < 2; ++g) {
      proto::IntList* p = pos->add_heads();
      p->add_values(287 + g);
      p->add_values(300 + l);
    }
  }
  return r;
}

TEST(ResponseJsonTest, TopLevelFieldsAndShapes) {
  const json::object o = Render(FullResponse());
  EXPECT_EQ(Keys(o),
            (std::set<std::string>{
                "request_id", "model", "text", "generated_ids", "forced_logprobs", "finish_reason",
                "accounting", "layout_prefill", "calibration_evicted", "final_decode_positions"}));
  EXPECT_EQ(o.at("request_id").as_string(), "req-42");
  EXPECT_EQ(o.at("model").as_string(), "tiny-llama3");
  EXPECT_EQ(o.at("text").as_string(), "The pass key is 71432.");
  EXPECT_EQ(Ints(o.at("generated_ids")), (std::vector<int64_t>{791, 1522, 128009}));
  EXPECT_EQ(o.at("finish_reason").as_string(), "eos");
}

TEST(ResponseJsonTest, AccountingFieldsAndShapes) {
  const json::object o = Render(FullResponse());
  const json::object& a = o.at("accounting").as_object();
  EXPECT_EQ(Keys(a), (std::set<std::string>{"document_tokens", "query_tokens", "generated_tokens",
                                            "chunks", "kept_chunks", "p0", "prefill_cache", "kv",
                                            "scope_fired_steps", "final_cache", "first_top5",
                                            "prefill_forwards", "workers", "device", "timing"}));
  EXPECT_EQ(a.at("document_tokens").as_int64(), 1646);
  EXPECT_EQ(a.at("query_tokens").as_int64(), 10);
  EXPECT_EQ(a.at("generated_tokens").as_int64(), 3);
  const json::array& chunks = a.at("chunks").as_array();
  ASSERT_EQ(chunks.size(), 3u);
  for (size_t i = 0; i < chunks.size(); ++i) {
    const json::object& c = chunks[i].as_object();
    EXPECT_EQ(Keys(c), (std::set<std::string>{"index", "tokens", "score", "kept", "rank"}));
    EXPECT_EQ(c.at("index").as_int64(), static_cast<int64_t>(i));
    EXPECT_EQ(c.at("tokens").as_int64(), i == 2 ? 274 : 275);
    EXPECT_DOUBLE_EQ(c.at("score").as_double(), 12.157040119171143 + static_cast<double>(i));
    EXPECT_EQ(c.at("kept").as_bool(), i != 1);
    EXPECT_EQ(c.at("rank").as_int64(), static_cast<int64_t>(i + 1));
  }
  EXPECT_EQ(Ints(a.at("kept_chunks")), (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(a.at("p0").as_int64(), 276);
  const json::array& prefill = a.at("prefill_cache").as_array();
  ASSERT_EQ(prefill.size(), 2u);
  EXPECT_EQ(Ints(prefill[0]), (std::vector<int64_t>{560, 561}));
  EXPECT_EQ(Ints(prefill[1]), (std::vector<int64_t>{561, 562}));
  const json::array& final_cache = a.at("final_cache").as_array();
  ASSERT_EQ(final_cache.size(), 2u);
  EXPECT_EQ(Ints(final_cache[0]), (std::vector<int64_t>{576, 575}));
  EXPECT_EQ(Ints(final_cache[1]), (std::vector<int64_t>{575, 574}));
  EXPECT_EQ(Ints(a.at("scope_fired_steps")), (std::vector<int64_t>{7, 11}));
  EXPECT_EQ(a.at("prefill_forwards").as_int64(), 4);
  EXPECT_EQ(a.at("workers").as_int64(), 3);
  EXPECT_EQ(a.at("device").as_string(), "cpu (test)");
  const json::array& top = a.at("first_top5").as_array();
  ASSERT_EQ(top.size(), 2u);
  ASSERT_EQ(top[0].as_array().size(), 2u);
  EXPECT_EQ(top[0].as_array()[0].as_int64(), 102583);
  EXPECT_EQ(static_cast<float>(top[0].as_array()[1].as_double()), 2.9737889766693115f);
  EXPECT_EQ(top[1].as_array()[0].as_int64(), 48856);
  EXPECT_EQ(top[1].as_array()[1].as_double(), -0.5);
}

TEST(ResponseJsonTest, KvAndTiming) {
  const json::object a = Render(FullResponse()).at("accounting").as_object();
  const json::object& kv = a.at("kv").as_object();
  EXPECT_EQ(Keys(kv), (std::set<std::string>{"entries_kept", "entries_full", "bytes_kept",
                                             "bytes_full", "kept_fraction", "bytes_moved"}));
  EXPECT_EQ(kv.at("entries_kept").as_int64(), 2240);
  EXPECT_EQ(kv.at("entries_full").as_int64(), 6632);
  // int64 counts are exact, also beyond 2^53 (no detour through double).
  EXPECT_EQ(kv.at("bytes_kept").as_int64(), (int64_t{1} << 40) + 1);
  EXPECT_EQ(kv.at("bytes_full").as_int64(), (int64_t{1} << 53) + 1);
  EXPECT_EQ(kv.at("bytes_moved").as_int64(), 9007199254740993);
  EXPECT_DOUBLE_EQ(kv.at("kept_fraction").as_double(), 2240.0 / 6632.0);
  const json::object& t = a.at("timing").as_object();
  EXPECT_EQ(Keys(t), (std::set<std::string>{"tokenize_s", "plan_s", "prefill_s", "score_exchange_s",
                                            "kv_transfer_s", "kv_transfer_gbps", "assemble_s",
                                            "query_prefill_s", "decode_s", "ttft_s", "total_s",
                                            "decode_tokens_per_s", "queue_s"}));
  EXPECT_DOUBLE_EQ(t.at("tokenize_s").as_double(), 0.001);
  EXPECT_DOUBLE_EQ(t.at("plan_s").as_double(), 0.002);
  EXPECT_DOUBLE_EQ(t.at("prefill_s").as_double(), 0.489215840);
  EXPECT_DOUBLE_EQ(t.at("score_exchange_s").as_double(), 0.004);
  EXPECT_DOUBLE_EQ(t.at("kv_transfer_s").as_double(), 0.005);
  EXPECT_DOUBLE_EQ(t.at("kv_transfer_gbps").as_double(), 12.5);
  EXPECT_DOUBLE_EQ(t.at("assemble_s").as_double(), 0.006);
  EXPECT_DOUBLE_EQ(t.at("query_prefill_s").as_double(), 0.007);
  EXPECT_DOUBLE_EQ(t.at("decode_s").as_double(), 1.055036663);
  EXPECT_DOUBLE_EQ(t.at("ttft_s").as_double(), 0.5418539689999999);
  EXPECT_DOUBLE_EQ(t.at("total_s").as_double(), 1.596900376);
  EXPECT_DOUBLE_EQ(t.at("decode_tokens_per_s").as_double(), 6.634840518333721);
}

TEST(ResponseJsonTest, KeptFractionIsZeroWithoutEntries) {
  proto::GenerateResponse r;
  const json::object o = Render(r);
  EXPECT_EQ(o.at("accounting").at("kv").at("kept_fraction").as_double(), 0.0);
}

TEST(ResponseJsonTest, NumbersArePrecise) {
  proto::GenerateResponse r;
  const float lps[] = {-1e-7f, -123.456789f, -0.1f, 0.f, -3.4028235e38f};
  for (float x : lps) r.add_forced_logprobs(x);
  r.add_generated_ids(2147483647);
  r.add_generated_ids(0);
  proto::ChunkInfo* c = r.mutable_accounting()->add_chunks();
  c->set_score(0.1 + 0.2);  // 0.30000000000000004: every digit must survive
  r.mutable_accounting()->mutable_timing()->set_total_s(12.157040119171143);
  const std::string text = ResponseToJson(r);
  // Boost 1.81's parser may round the last digit, so the numbers are read back from the text with
  // strtod (correctly rounded, like Python's json module).
  const std::vector<double> lp = NumbersAt(text, "\"forced_logprobs\":[");
  ASSERT_EQ(lp.size(), std::size(lps)) << text;
  for (size_t i = 0; i < lp.size(); ++i) {
    EXPECT_EQ(static_cast<float>(lp[i]), lps[i]) << i << " in " << text;
  }
  EXPECT_EQ(NumbersAt(text, "\"score\":"), (std::vector<double>{0.1 + 0.2})) << text;
  EXPECT_EQ(NumbersAt(text, "\"total_s\":"), (std::vector<double>{12.157040119171143})) << text;
  EXPECT_EQ(Ints(json::parse(text).at("generated_ids")), (std::vector<int64_t>{2147483647, 0}));
}

TEST(ResponseJsonTest, ExplainForm) {
  const json::object o = Render(FullResponse());
  const json::array& layout = o.at("layout_prefill").as_array();
  ASSERT_EQ(layout.size(), 2u);  // layers
  for (size_t l = 0; l < 2; ++l) {
    const json::array& heads = layout[l].as_array();
    ASSERT_EQ(heads.size(), 2u);
    for (size_t g = 0; g < 2; ++g) {
      const json::array& entries = heads[g].as_array();
      ASSERT_EQ(entries.size(), 3u);
      // Each entry is a [chunk, position] pair; the query is chunk -1.
      EXPECT_EQ(Ints(entries[0]), (std::vector<int64_t>{0, 0}));
      EXPECT_EQ(Ints(entries[1]), (std::vector<int64_t>{2, static_cast<int64_t>(17 + l + g)}));
      EXPECT_EQ(Ints(entries[2]), (std::vector<int64_t>{-1, 276}));
    }
  }
  const json::array& evicted = o.at("calibration_evicted").as_array();
  ASSERT_EQ(evicted.size(), 2u);
  EXPECT_EQ(json::serialize(evicted), "[[[],[]],[[[2,5]],[]]]");
  const json::array& positions = o.at("final_decode_positions").as_array();
  EXPECT_EQ(json::serialize(positions), "[[[287,300],[288,300]],[[287,301],[288,301]]]");
  // The whole layout in its exact textual form.
  EXPECT_EQ(json::serialize(layout),
            "[[[[0,0],[2,17],[-1,276]],[[0,0],[2,18],[-1,276]]],"
            "[[[0,0],[2,18],[-1,276]],[[0,0],[2,19],[-1,276]]]]");
}

TEST(ResponseJsonTest, OptionalMembersAbsentWhenUnset) {
  proto::GenerateResponse r;
  r.set_text("hi");
  r.set_finish_reason("length");
  r.add_generated_ids(5);
  const json::object o = Render(r);
  EXPECT_EQ(Keys(o),
            (std::set<std::string>{"text", "generated_ids", "finish_reason", "accounting"}));
  EXPECT_FALSE(o.at("accounting").as_object().contains("device"));
  // Empty lists are still present, as empty arrays.
  const json::object& a = o.at("accounting").as_object();
  EXPECT_TRUE(a.at("chunks").as_array().empty());
  EXPECT_TRUE(a.at("kept_chunks").as_array().empty());
  EXPECT_TRUE(a.at("scope_fired_steps").as_array().empty());
  EXPECT_TRUE(a.at("first_top5").as_array().empty());
  EXPECT_EQ(a.at("p0").as_int64(), 0);
  // Explain present but empty: the three members appear, empty.
  r.mutable_explain();
  const json::object e = Render(r);
  EXPECT_TRUE(e.at("layout_prefill").as_array().empty());
  EXPECT_TRUE(e.at("calibration_evicted").as_array().empty());
  EXPECT_TRUE(e.at("final_decode_positions").as_array().empty());
}

TEST(ResponseJsonTest, ObjectAndStringFormsAgree) {
  const proto::GenerateResponse r = FullResponse();
  EXPECT_EQ(json::serialize(ResponseToJsonObject(r)), ResponseToJson(r));
}

TEST(ResponseJsonTest, TextIsEscapedAndRoundTrips) {
  proto::GenerateResponse r;
  const std::string text =
      "quote \" backslash \\ newline \n tab \t nul \x01 \xe6\x9d\xb1\xf0\x9f\x98\x80";
  r.set_text(text);
  r.set_request_id("id \"1\"");
  const json::object o = Render(r);
  EXPECT_EQ(o.at("text").as_string(), text);
  EXPECT_EQ(o.at("request_id").as_string(), "id \"1\"");
}

TEST(ResponseJsonTest, ErrorJsonExactForm) {
  EXPECT_EQ(ErrorToJson(Status::InvalidArgument("max_new_tokens: must be an integer in [1, 8]")),
            R"({"error":{"code":"INVALID_ARGUMENT","status":400,)"
            R"("message":"max_new_tokens: must be an integer in [1, 8]"}})");
  EXPECT_EQ(ErrorToJson(Status::NotFound("model 'x' is not served here"), "req-9"),
            R"({"error":{"code":"NOT_FOUND","status":404,)"
            R"("message":"model 'x' is not served here","request_id":"req-9"}})");
}

TEST(ResponseJsonTest, ErrorCodesAndStatuses) {
  const struct {
    Status status;
    const char* code;
    int http;
  } cases[] = {
      {Status::InvalidArgument("a"), "INVALID_ARGUMENT", 400},
      {Status::PayloadTooLarge("b"), "PAYLOAD_TOO_LARGE", 413},
      {Status::NotFound("c"), "NOT_FOUND", 404},
      {Status::ResourceExhausted("d"), "RESOURCE_EXHAUSTED", 429},
      {Status::Unavailable("e"), "UNAVAILABLE", 503},
      {Status::Internal("f"), "INTERNAL", 500},
      {Status::DeadlineExceeded("g"), "DEADLINE_EXCEEDED", 504},
      {Status::Unimplemented("h"), "UNIMPLEMENTED", 501},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.code);
    const json::value v = json::parse(ErrorToJson(c.status, "r1"));
    const json::object& outer = v.as_object();
    EXPECT_EQ(Keys(outer), (std::set<std::string>{"error"}));
    const json::object& e = outer.at("error").as_object();
    EXPECT_EQ(Keys(e), (std::set<std::string>{"code", "status", "message", "request_id"}));
    EXPECT_EQ(e.at("code").as_string(), c.code);
    EXPECT_EQ(e.at("status").as_int64(), c.http);
    EXPECT_EQ(e.at("message").as_string(), c.status.message());
    EXPECT_EQ(e.at("request_id").as_string(), "r1");
    // The object form is the same document.
    EXPECT_EQ(json::serialize(ErrorToJsonObject(c.status, "r1")), ErrorToJson(c.status, "r1"));
  }
}

TEST(ResponseJsonTest, ErrorMessageIsEscaped) {
  const std::string message = "unknown field 'a\"b'\n\xc3\xa9";
  const json::value v = json::parse(ErrorToJson(Status::InvalidArgument(message)));
  EXPECT_EQ(v.at("error").at("message").as_string(), message);
  EXPECT_FALSE(v.at("error").as_object().contains("request_id"));
}

}  // namespace
}  // namespace sieve::coordinator
