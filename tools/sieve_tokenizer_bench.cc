// sieve-tokenizer-bench: correctness and throughput of the coordinator's tokenizer
// (coordinator/tokenizer.h) on the Llama-3.1 fixture, self-validating (STYLE rule 21).
//
//   sieve-tokenizer-bench [--tokenizer PATH] [--cases PATH] [--reps N]
//
// Defaults are the vendored fixtures (tests/fixtures/llama3.1-tokenizer/). It first checks every
// case of cases.jsonl (ids, ids with BOS, decode) and counts the wrong ones (#wrong), then times,
// on one thread:
//   encode_largest  Encode(text, false) of the largest case (~150 KB), median of --reps runs
//                   after one warm-up, in MB/s = text bytes / median seconds / 1e6;
//   encode_cold     the very first Encode of that case after loading (empty word cache);
//   encode_all      every case once per run (median), same formula over the summed bytes;
//   decode_largest  Decode(ids) of the largest case, MB/s of produced text;
//   stream_largest  IncrementalDecoder::Push over the same ids, MB/s of produced text;
//   pretok_fast     the Llama-3 pre-tokenizer split alone (hand-written matcher) on that text,
//   pretok_generic  and the same pattern on the generic regex engine (both must agree).
// Prints a human-readable table and one JSON line (prefix "json: "). Exit status 1 if any case
// is wrong. Results are recorded in bench/TOKENIZER.md.
#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "coordinator/pretokenizer_regex.h"
#include "coordinator/tokenizer.h"
#include "coordinator/tokenizer_unicode.h"

namespace {

using sieve::coordinator::IncrementalDecoder;
using sieve::coordinator::PretokenizerRegex;
using sieve::coordinator::RegexMatch;
using sieve::coordinator::Tokenizer;
using Clock = std::chrono::steady_clock;

struct Case {
  std::string text;
  std::vector<int32_t> ids;
  std::vector<int32_t> ids_bos;
};

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

std::vector<int32_t> Ids(const boost::json::value& v) {
  std::vector<int32_t> out;
  for (const auto& x : v.as_array()) out.push_back(static_cast<int32_t>(x.as_int64()));
  return out;
}

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

int Usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s [--tokenizer PATH] [--cases PATH] [--reps N]\n", argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = std::string(SIEVE_TOOLS_SOURCE_DIR) + "/../tests/fixtures/llama3.1-tokenizer";
  std::string tokenizer_path = dir + "/tokenizer.json";
  std::string cases_path = dir + "/cases.jsonl";
  int reps = 21;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (i + 1 >= argc) return Usage(argv[0]);
    if (arg == "--tokenizer") {
      tokenizer_path = argv[++i];
    } else if (arg == "--cases") {
      cases_path = argv[++i];
    } else if (arg == "--reps") {
      reps = std::max(1, std::atoi(argv[++i]));
    } else {
      return Usage(argv[0]);
    }
  }

  auto t0 = Clock::now();
  auto loaded = Tokenizer::FromFile(tokenizer_path);
  auto t1 = Clock::now();
  if (!loaded.ok()) {
    std::fprintf(stderr, "error: %s\n", loaded.status().ToString().c_str());
    return 1;
  }
  const Tokenizer& tok = *loaded;

  std::string data;
  if (!ReadFile(cases_path, &data)) {
    std::fprintf(stderr, "error: %s: cannot open\n", cases_path.c_str());
    return 1;
  }
  std::vector<Case> cases;
  std::istringstream lines(data);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    auto o = boost::json::parse(line).as_object();
    cases.push_back(
        {std::string(o.at("text").as_string()), Ids(o.at("ids")), Ids(o.at("ids_bos"))});
  }
  if (cases.empty()) {
    std::fprintf(stderr, "error: %s: no cases\n", cases_path.c_str());
    return 1;
  }
  size_t largest = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    if (cases[i].text.size() > cases[largest].text.size()) largest = i;
  }
  const Case& big = cases[largest];

  // Cold: the first encode after loading (word cache empty).
  auto c0 = Clock::now();
  auto cold = tok.Encode(big.text, false);
  auto c1 = Clock::now();

  // Correctness (#wrong), once, before timing.
  int wrong = 0;
  for (const Case& c : cases) {
    auto ids = tok.Encode(c.text, false);
    auto ids_bos = tok.Encode(c.text, true);
    bool ok = ids.ok() && *ids == c.ids && ids_bos.ok() && *ids_bos == c.ids_bos &&
              tok.Decode(c.ids) == c.text;
    wrong += ok ? 0 : 1;
  }
  if (!cold.ok() || *cold != big.ids) ++wrong;

  std::vector<double> enc, all, dec, stream;
  size_t all_bytes = 0;
  for (const Case& c : cases) all_bytes += c.text.size();
  for (int r = 0; r <= reps; ++r) {  // r == 0 is the warm-up
    auto a = Clock::now();
    auto ids = tok.Encode(big.text, false);
    auto b = Clock::now();
    for (const Case& c : cases) (void)tok.Encode(c.text, false);
    auto d = Clock::now();
    std::string text = tok.Decode(big.ids);
    auto e = Clock::now();
    IncrementalDecoder inc(tok);
    size_t streamed = 0;
    for (int32_t id : big.ids) streamed += inc.Push(id).size();
    streamed += inc.Flush().size();
    auto f = Clock::now();
    if (!ids.ok() || *ids != big.ids || text != big.text || streamed != big.text.size()) ++wrong;
    if (r == 0) continue;
    enc.push_back(Seconds(a, b));
    all.push_back(Seconds(b, d));
    dec.push_back(Seconds(d, e));
    stream.push_back(Seconds(e, f));
  }

  // The pre-tokenizer alone: hand-written Llama-3 matcher vs the generic engine.
  std::u32string cps;
  for (size_t i = 0; i < big.text.size();) {
    cps.push_back(sieve::coordinator::unicode::DecodeValid(big.text, &i));
  }
  auto fast = PretokenizerRegex::Compile(sieve::coordinator::kLlama3SplitPattern, true);
  auto generic = PretokenizerRegex::Compile(sieve::coordinator::kLlama3SplitPattern, false);
  std::vector<double> pre_fast, pre_generic;
  for (int r = 0; r <= std::max(1, reps / 4); ++r) {
    std::vector<RegexMatch> mf, mg;
    auto a = Clock::now();
    fast->FindAll(cps, &mf);
    auto b = Clock::now();
    generic->FindAll(cps, &mg);
    auto d = Clock::now();
    if (mf != mg) ++wrong;
    if (r == 0) continue;
    pre_fast.push_back(Seconds(a, b));
    pre_generic.push_back(Seconds(b, d));
  }

  const double mb = big.text.size() / 1e6;
  const double enc_mbs = mb / Median(enc);
  const double cold_mbs = mb / Seconds(c0, c1);
  const double all_mbs = all_bytes / 1e6 / Median(all);
  const double dec_mbs = mb / Median(dec);
  const double stream_mbs = mb / Median(stream);
  std::printf("tokenizer        %s (load %.2f s)\n", tokenizer_path.c_str(), Seconds(t0, t1));
  std::printf("cases            %zu, #wrong %d\n", cases.size(), wrong);
  std::printf("largest case     %zu bytes -> %zu tokens\n", big.text.size(), big.ids.size());
  std::printf("%-16s %10s %12s\n", "metric", "MB/s", "median ms");
  std::printf("%-16s %10.2f %12.3f\n", "encode_largest", enc_mbs, Median(enc) * 1e3);
  std::printf("%-16s %10.2f %12.3f\n", "encode_cold", cold_mbs, Seconds(c0, c1) * 1e3);
  std::printf("%-16s %10.2f %12.3f\n", "encode_all", all_mbs, Median(all) * 1e3);
  std::printf("%-16s %10.2f %12.3f\n", "decode_largest", dec_mbs, Median(dec) * 1e3);
  std::printf("%-16s %10.2f %12.3f\n", "stream_largest", stream_mbs, Median(stream) * 1e3);
  std::printf("%-16s %10.2f %12.3f\n", "pretok_fast", mb / Median(pre_fast),
              Median(pre_fast) * 1e3);
  std::printf("%-16s %10.2f %12.3f\n", "pretok_generic", mb / Median(pre_generic),
              Median(pre_generic) * 1e3);
  std::printf(
      "json: {\"cases\": %zu, \"wrong\": %d, \"load_s\": %.3f, \"largest_bytes\": %zu, "
      "\"encode_largest_mbs\": %.3f, \"encode_cold_mbs\": %.3f, \"encode_all_mbs\": %.3f, "
      "\"decode_largest_mbs\": %.3f, \"stream_largest_mbs\": %.3f, \"pretok_fast_mbs\": %.3f, "
      "\"pretok_generic_mbs\": %.3f, \"reps\": %d}\n",
      cases.size(), wrong, Seconds(t0, t1), big.text.size(), enc_mbs, cold_mbs, all_mbs, dec_mbs,
      stream_mbs, mb / Median(pre_fast), mb / Median(pre_generic), reps);
  return wrong == 0 ? 0 : 1;
}
