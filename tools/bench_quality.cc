#include "tools/bench_quality.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include <boost/json.hpp>

#include "comm/chunk_plan.h"
#include "coordinator/tokenizer.h"
#include "tools/plot.h"
#include "worker/model_loader.h"
#include "worker/pipeline.h"
#include "worker/pipeline_options.h"

namespace sieve::tools {
namespace json = boost::json;
namespace {

// The haystack vocabulary: the same sentences the pass-key model was trained with
// (tools/train_passkey.py), so the filler is in-distribution and only the length is new.
constexpr std::string_view kFiller[] = {
    "The grass is green.",
    "The sky is blue.",
    "The sun is yellow.",
    "Here we go.",
    "There and back again.",
    "The river ran past the market and under the old bridge.",
    "Nobody hurried that day.",
    "A lamp was lit in every window of the street.",
    "The evening was quiet and long.",
    "Traders counted their coins.",
    "Children ran along the road.",
    "The bell rang twice.",
    "Clouds drifted over the hills.",
    "A cat slept on the warm stone.",
    "The baker opened his shop before dawn.",
    "Boats rocked gently in the harbor.",
    "The wind carried the smell of rain.",
    "An old man told stories by the fire.",
    "The train left the station at noon.",
    "Birds sang in the tall trees.",
    "The library was full of dusty books.",
    "Snow covered the mountain in winter.",
    "The market smelled of bread and spice.",
    "A dog barked at the passing cart.",
    "The mill turned slowly by the stream.",
    "Farmers brought apples to the square.",
    "The moon rose over the quiet town.",
    "Lanterns swayed on the long bridge.",
    "The teacher wrote on the board.",
    "Rain fell softly on the roofs.",
    "The road wound through the valley.",
    "Music drifted from an open window.",
    "The garden was full of roses.",
    "A ship appeared on the horizon.",
    "The clock in the tower struck six.",
};
constexpr std::string_view kQuery = " What is the pass key? The pass key is";

using Clock = std::chrono::steady_clock;

int Fail(const Status& s, int code) {
  std::cerr << "sieve-bench: " << s.ToString() << std::endl;
  return code;
}

struct Haystack {
  std::vector<int32_t> document;
  int key = 0;
  // Sentences the needle was moved by so that no chunk boundary cuts it (0: it sits at `depth`).
  int needle_shift = 0;
  int64_t needle_begin = 0;  // document token where the needle starts
  int needle_chunk = 0;      // the chunk (of the plan Make was given) that holds it
};

class HaystackMaker {
 public:
  explicit HaystackMaker(const coordinator::Tokenizer& tok) : tok_(tok) {}

  // A document of about `length` tokens: filler sentences with the needle between two of them,
  // at the sentence boundary nearest `depth`. ParallelComp's chunks are cut at fixed token counts
  // (comm/chunk_plan.h, `chunk_tokens` per chunk), and a needle cut in two is in no chunk whole;
  // such a needle moves to the nearest sentence boundary where it lies inside one chunk, and
  // `needle_shift` says by how many sentences (reported with every result).
  StatusOr<Haystack> Make(int64_t length, double depth, uint64_t seed, int64_t chunk_tokens) {
    std::mt19937_64 rng(seed);
    Haystack h;
    h.key = 10000 + static_cast<int>(rng() % 90000);
    const std::string needle =
        StrFormat(" The pass key is %d. Remember it. %d is the pass key.", h.key, h.key);
    SIEVE_ASSIGN_OR_RETURN(std::vector<int32_t> needle_ids, tok_.Encode(needle, false));
    std::vector<const std::vector<int32_t>*> sentences;
    int64_t tokens = static_cast<int64_t>(needle_ids.size());
    while (tokens < length) {
      SIEVE_ASSIGN_OR_RETURN(const std::vector<int32_t>* ids, Sentence(rng() % std::size(kFiller)));
      sentences.push_back(ids);
      tokens += static_cast<int64_t>(ids->size());
    }
    const size_t wanted =
        static_cast<size_t>(std::lround(std::clamp(depth, 0.0, 1.0) * sentences.size()));
    // offsets[i]: where the needle starts when it goes before sentence i.
    std::vector<int64_t> offsets(sentences.size() + 1, 0);
    for (size_t i = 0; i < sentences.size(); ++i) {
      offsets[i + 1] = offsets[i] + static_cast<int64_t>(sentences[i]->size());
    }
    const int64_t needle_len = static_cast<int64_t>(needle_ids.size());
    const std::vector<ChunkSpan> plan = PlanChunks(tokens, chunk_tokens);
    auto whole = [&](size_t i) {
      const int64_t begin = offsets[i], end = begin + needle_len;
      for (const ChunkSpan& c : plan) {
        if (begin >= c.begin && end <= c.end) return true;
      }
      return false;
    };
    size_t at = wanted;
    for (size_t d = 0; d <= sentences.size(); ++d) {
      if (wanted >= d && whole(wanted - d)) {
        at = wanted - d;
        break;
      }
      if (wanted + d <= sentences.size() && whole(wanted + d)) {
        at = wanted + d;
        break;
      }
    }
    h.needle_shift = static_cast<int>(static_cast<int64_t>(at) - static_cast<int64_t>(wanted));
    h.needle_begin = offsets[at];
    for (size_t c = 0; c < plan.size(); ++c) {
      if (h.needle_begin >= plan[c].begin && h.needle_begin < plan[c].end) {
        h.needle_chunk = static_cast<int>(c);
      }
    }
    for (size_t i = 0; i <= sentences.size(); ++i) {
      if (i == at) h.document.insert(h.document.end(), needle_ids.begin(), needle_ids.end());
      if (i < sentences.size())
        h.document.insert(h.document.end(), sentences[i]->begin(), sentences[i]->end());
    }
    return h;
  }

 private:
  StatusOr<const std::vector<int32_t>*> Sentence(size_t i) {
    auto it = cache_.find(i);
    if (it == cache_.end()) {
      SIEVE_ASSIGN_OR_RETURN(std::vector<int32_t> ids,
                             tok_.Encode(" " + std::string(kFiller[i]), false));
      it = cache_.emplace(i, std::move(ids)).first;
    }
    return &it->second;
  }

  const coordinator::Tokenizer& tok_;
  std::map<size_t, std::vector<int32_t>> cache_;
};

// The calibration recipe of the ParallelComp paper (layers 1-8 middle, 9-16 recent, 25-32 sink
// of 32) scaled to the model's depth.
CalibrationOptions PaperCalibration(int64_t layers) {
  CalibrationOptions c;
  for (int64_t l = 0; l < layers; ++l) {
    const double f = double(l) / double(layers);
    c.layers.push_back(f < 0.25   ? CalibrationPattern::kMiddle
                       : f < 0.5  ? CalibrationPattern::kRecent
                       : f < 0.75 ? CalibrationPattern::kNone
                                  : CalibrationPattern::kSink);
  }
  return c;
}

// Builds the pipeline input of `mode` for a document and query.
StatusOr<worker::PipelineInput> InputFor(const std::string& mode, const worker::ModelConfig& config,
                                         std::vector<int32_t> doc, std::vector<int32_t> query,
                                         int max_new, int chunk_tokens) {
  worker::PipelineInput in;
  in.query_ids = std::move(query);
  in.generation.max_new_tokens = max_new;
  in.sieve.scope.strategy = ScopeStrategy::kOff;
  in.sieve.chunk_tokens = chunk_tokens;
  if (mode == "full") {
    in.sieve.mode = PrefillMode::kFull;
  } else if (mode == "truncated") {
    // Keep the first and last halves of what fits in the trained window with the query.
    const int64_t budget =
        std::max<int64_t>(16, config.max_position_embeddings -
                                  static_cast<int64_t>(in.query_ids.size()) - 2 - max_new);
    if (static_cast<int64_t>(doc.size()) > budget) {
      std::vector<int32_t> cut(doc.begin(), doc.begin() + budget / 2);
      cut.insert(cut.end(), doc.end() - (budget - budget / 2), doc.end());
      doc = std::move(cut);
    }
    in.sieve.mode = PrefillMode::kFull;
  } else if (mode == "parallel") {
    in.sieve.mode = PrefillMode::kParallel;
  } else if (mode == "parallelcomp_k1" || mode == "parallelcomp_k3") {
    in.sieve.keep_chunks = mode == "parallelcomp_k1" ? 1 : 3;
  } else if (mode == "compress") {
    in.sieve.keep_chunks = 3;
    in.sieve.kv_capacity = 128;
  } else if (mode == "calibrate") {
    in.sieve.keep_chunks = 3;
    in.sieve.calibration = PaperCalibration(config.num_layers);
  } else {
    return Status::InvalidArgument("--modes: unknown mode '" + mode + "'");
  }
  in.document_ids = std::move(doc);
  return in;
}

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::string LengthLabel(int64_t n) {
  return n >= 1024 && n % 1024 == 0 ? StrFormat("%lldK", static_cast<long long>(n / 1024))
                                    : std::to_string(n);
}

// One heatmap panel per mode: x = length, y = depth, cell color = accuracy.
Status WriteHeatmap(
    const std::string& path, const std::vector<std::string>& modes,
    const std::vector<int64_t>& lengths, const std::vector<double>& depths,
    const std::map<std::tuple<std::string, int64_t, double>, std::pair<int, int>>& cells,
    const std::string& title) {
  const int cell_w = 64, cell_h = 26, left = 70, top = 40, panel_gap = 44;
  const int panel_h = cell_h * static_cast<int>(depths.size()) + panel_gap;
  const int width = std::max(left + cell_w * static_cast<int>(lengths.size()) + 150,
                             20 + Canvas::TextWidth(title));
  const int height = top + panel_h * static_cast<int>(modes.size()) + 20;
  Canvas c(width, height);
  const Rgb ink{30, 30, 30};
  c.Text(10, 14, title, ink, 1);
  for (size_t m = 0; m < modes.size(); ++m) {
    const int y0 = top + static_cast<int>(m) * panel_h + 18;
    c.Text(left, y0 - 14, modes[m], ink, 1);
    for (size_t d = 0; d < depths.size(); ++d) {
      const int y = y0 + static_cast<int>(d) * cell_h;
      c.Text(8, y + 9, StrFormat("%d%%", static_cast<int>(std::lround(depths[d] * 100))), ink);
      for (size_t l = 0; l < lengths.size(); ++l) {
        const int x = left + static_cast<int>(l) * cell_w;
        auto it = cells.find({modes[m], lengths[l], depths[d]});
        if (it == cells.end() || it->second.second == 0) {
          c.FillRect(x, y, x + cell_w - 2, y + cell_h - 2, {220, 220, 220});
          continue;
        }
        const double acc = double(it->second.first) / it->second.second;
        c.FillRect(x, y, x + cell_w - 2, y + cell_h - 2, AccuracyColor(acc));
        const std::string label = StrFormat("%d", static_cast<int>(std::lround(acc * 100)));
        c.Text(x + (cell_w - Canvas::TextWidth(label)) / 2, y + 9, label, ink);
      }
    }
    const int yl = y0 + static_cast<int>(depths.size()) * cell_h + 2;
    for (size_t l = 0; l < lengths.size(); ++l) {
      const std::string label = LengthLabel(lengths[l]);
      c.Text(left + static_cast<int>(l) * cell_w + (cell_w - Canvas::TextWidth(label)) / 2, yl,
             label, ink);
    }
  }
  // Legend.
  const int lx = left + cell_w * static_cast<int>(lengths.size()) + 30;
  c.Text(lx, top + 4, "ACCURACY", ink);
  for (int i = 0; i <= 10; ++i) {
    c.FillRect(lx, top + 20 + (10 - i) * 14, lx + 24, top + 34 + (10 - i) * 14,
               AccuracyColor(i / 10.0));
    if (i % 5 == 0) c.Text(lx + 30, top + 24 + (10 - i) * 14, StrFormat("%d%%", i * 10), ink);
  }
  c.Text(lx, top + 190, "X: LENGTH", ink);
  c.Text(lx, top + 202, "Y: DEPTH", ink);
  return c.WritePng(path);
}

// SQuAD-style normalization: lowercase, drop punctuation and the articles a/an/the.
std::vector<std::string> NormalizedWords(const std::string& s) {
  std::string cleaned;
  for (unsigned char ch : s) {
    if (std::ispunct(ch)) continue;
    cleaned += static_cast<char>(std::tolower(ch));
  }
  std::vector<std::string> words;
  std::stringstream ss(cleaned);
  std::string w;
  while (ss >> w) {
    if (w != "a" && w != "an" && w != "the") words.push_back(w);
  }
  return words;
}

std::string Join(const std::vector<std::string>& words) {
  std::string out;
  for (const std::string& w : words) out += (out.empty() ? "" : " ") + w;
  return out;
}

}  // namespace

double AnswerF1(const std::string& prediction, const std::string& reference) {
  const auto p = NormalizedWords(prediction), r = NormalizedWords(reference);
  if (p.empty() || r.empty()) return p == r ? 1.0 : 0.0;
  std::map<std::string, int> counts;
  for (const auto& w : r) ++counts[w];
  int common = 0;
  for (const auto& w : p) {
    if (counts[w] > 0) {
      --counts[w];
      ++common;
    }
  }
  if (common == 0) return 0.0;
  const double precision = double(common) / p.size(), recall = double(common) / r.size();
  return 2 * precision * recall / (precision + recall);
}

bool AnswerExact(const std::string& prediction, const std::string& reference) {
  return Join(NormalizedWords(prediction)) == Join(NormalizedWords(reference));
}

bool AnswerContains(const std::string& prediction, const std::string& reference) {
  const std::string r = Join(NormalizedWords(reference));
  return !r.empty() &&
         (" " + Join(NormalizedWords(prediction)) + " ").find(" " + r + " ") != std::string::npos;
}

int QualityMain(const Args& args) {
  const auto model_dir = args.Get("model");
  if (!model_dir) return Fail(Status::InvalidArgument("--model is required"), kExitUsage);
  auto lengths_in = args.GetIntList("lengths");
  auto samples_in = args.GetInt("samples");
  auto chunk_in = args.GetInt("chunk-tokens");
  if (!lengths_in.ok() || !samples_in.ok() || !chunk_in.ok()) {
    return Fail(Status::InvalidArgument("--lengths, --samples and --chunk-tokens take integers"),
                kExitUsage);
  }
  std::vector<int64_t> lengths;
  for (int32_t n : lengths_in->value_or(std::vector<int32_t>{1024, 2048, 8192, 32768}))
    lengths.push_back(n);
  std::vector<double> depths;
  for (const std::string& d : SplitList(args.GetOr("depths", "0,0.25,0.5,0.75,1")))
    depths.push_back(std::stod(d));
  const std::vector<std::string> modes = SplitList(args.GetOr(
      "modes", "full,truncated,parallel,parallelcomp_k1,parallelcomp_k3,compress,calibrate"));
  const int samples = static_cast<int>(samples_in->value_or(2));
  const int max_new = 8;
  auto tok = coordinator::Tokenizer::FromFile(*model_dir + "/tokenizer.json");
  if (!tok.ok()) return Fail(tok.status(), kExitModel);
  auto model = worker::LoadModel({.model_dir = *model_dir, .device = args.GetOr("device", "auto")});
  if (!model.ok()) return Fail(model.status(), kExitModel);
  auto query = tok->Encode(std::string(kQuery), false);
  if (!query.ok()) return Fail(query.status(), kExitInternal);
  HaystackMaker maker(*tok);
  // The chunk size every chunked mode runs with (what the pipeline resolves 0 to).
  const int64_t asked_chunk = chunk_in->value_or(0);
  const int64_t chunk_tokens =
      asked_chunk > 0 ? asked_chunk : worker::DefaultChunkTokens(model->config);
  int needles_moved = 0, haystacks = 0;
  std::map<std::tuple<std::string, int64_t, double>, std::pair<int, int>> cells;
  json::array results;
  for (int64_t length : lengths) {
    for (double depth : depths) {
      for (int s = 0; s < samples; ++s) {
        const uint64_t seed = uint64_t(length) * 1000003u + uint64_t(depth * 1000) * 101u + s;
        auto hay = maker.Make(length, depth, seed, chunk_tokens);
        if (!hay.ok()) return Fail(hay.status(), kExitInternal);
        ++haystacks;
        needles_moved += hay->needle_shift != 0;
        for (const std::string& mode : modes) {
          auto in = InputFor(mode, model->config, hay->document, *query, max_new,
                             static_cast<int>(chunk_tokens));
          if (!in.ok()) return Fail(in.status(), kExitUsage);
          const auto t0 = Clock::now();
          auto res = worker::RunPipeline(*model->model, *in);
          if (!res.ok()) return Fail(res.status().WithContext(mode), kExitInternal);
          const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
          const std::string text = tok->Decode(res->generated_ids, true);
          const bool correct = text.find(std::to_string(hay->key)) != std::string::npos;
          // Where the needle's chunk ranked by query NLL (1: the lowest, kept first).
          int needle_rank = 0;
          for (const worker::ChunkReport& c : res->chunks) {
            if (c.index == hay->needle_chunk) {
              needle_rank = 1;
              for (const worker::ChunkReport& o : res->chunks) {
                needle_rank += o.score < c.score || (o.score == c.score && o.index < c.index);
              }
            }
          }
          auto& cell = cells[{mode, length, depth}];
          cell.first += correct;
          cell.second += 1;
          results.emplace_back(json::object{
              {"mode", mode},
              {"length", length},
              {"tokens", hay->document.size()},
              {"depth", depth},
              {"sample", s},
              {"key", hay->key},
              {"needle_shift", hay->needle_shift},
              {"needle_begin", hay->needle_begin},
              {"needle_chunk", hay->needle_chunk},
              {"needle_chunk_rank", needle_rank},  // 0: full attention (no chunks)
              {"answer", text},
              {"correct", correct},
              {"seconds", secs},
              {"ttft_s", res->times.ttft},
              {"kept_chunks", json::array(res->kept_chunks.begin(), res->kept_chunks.end())}});
          std::cerr << StrFormat("%-16s %6lld tokens depth %.2f sample %d: %s (%.2f s)\n",
                                 mode.c_str(), static_cast<long long>(hay->document.size()), depth,
                                 s, correct ? "correct" : "wrong", secs);
        }
      }
    }
  }
  // Table: accuracy per mode and length (over depths and samples).
  std::cout << StrFormat("%-16s", "mode");
  for (int64_t l : lengths) std::cout << StrFormat("%9s", LengthLabel(l).c_str());
  std::cout << "\n";
  json::object summary;
  for (const std::string& mode : modes) {
    std::cout << StrFormat("%-16s", mode.c_str());
    json::object per_length;
    for (int64_t l : lengths) {
      int ok = 0, total = 0;
      for (double d : depths) {
        const auto& cell = cells[{mode, l, d}];
        ok += cell.first;
        total += cell.second;
      }
      const double acc = total ? 100.0 * ok / total : 0;
      std::cout << StrFormat("%8.1f%%", acc);
      per_length[LengthLabel(l)] = acc;
    }
    std::cout << "\n";
    summary[mode] = std::move(per_length);
  }
  std::cout << StrFormat("%d of %d needles moved off a chunk boundary (%lld-token chunks)\n",
                         needles_moved, haystacks, static_cast<long long>(chunk_tokens));
  const std::string device = model->backend->Describe();
  if (auto out = args.Get("out")) {
    std::ofstream f(*out);
    f << json::serialize(json::object{{"model", *model_dir},
                                      {"device", device},
                                      {"samples", samples},
                                      {"chunk_tokens", chunk_tokens},
                                      {"haystacks", haystacks},
                                      {"needles_moved_off_a_chunk_boundary", needles_moved},
                                      {"accuracy_percent", summary},
                                      {"results", results}})
      << "\n";
  }
  if (auto png = args.Get("png")) {
    const std::string title = StrFormat("PASS KEY ACCURACY: %s", model_dir->c_str());
    if (Status s = WriteHeatmap(*png, modes, lengths, depths, cells, title); !s.ok())
      return Fail(s, kExitInternal);
  }
  return kExitOk;
}

int EvalMain(const Args& args) {
  const auto model_dir = args.Get("model");
  const auto data = args.Get("data");
  if (!model_dir || !data)
    return Fail(Status::InvalidArgument("--model and --data are required"), kExitUsage);
  auto limit = args.GetInt("limit");
  auto max_new_in = args.GetInt("max-new-tokens");
  auto keep = args.GetInt("keep-chunks");
  auto chunk = args.GetInt("chunk-tokens");
  if (!limit.ok() || !max_new_in.ok() || !keep.ok() || !chunk.ok()) {
    return Fail(Status::InvalidArgument("numeric options take integers"), kExitUsage);
  }
  const std::string metric = args.GetOr("metric", "auto");
  if (metric != "auto" && metric != "em" && metric != "contains" && metric != "f1") {
    return Fail(Status::InvalidArgument("--metric: auto, em, contains or f1"), kExitUsage);
  }
  const std::string tmpl = args.GetOr("query-template", "\n\nQuestion: {input}\nAnswer:");
  const std::string mode = args.GetOr("mode", "parallelcomp");
  auto parsed_mode = worker::ParsePrefillMode(mode);
  if (!parsed_mode)
    return Fail(Status::InvalidArgument("--mode: parallelcomp, parallel or full"), kExitUsage);
  std::ifstream in(*data);
  if (!in) return Fail(Status::NotFound("cannot read --data " + *data), kExitUsage);
  StatusOr<coordinator::Tokenizer> tok = Status::Unavailable("not loaded");
  StatusOr<worker::LoadedModel> model = Status::Unavailable("not loaded");
  const bool dry = args.Has("score-only");  // score a "prediction" field instead of running
  if (!dry) {
    tok = coordinator::Tokenizer::FromFile(*model_dir + "/tokenizer.json");
    if (!tok.ok()) return Fail(tok.status(), kExitModel);
    auto seed = args.GetUint("random-weights");
    if (!seed.ok()) return Fail(seed.status(), kExitUsage);
    model = worker::LoadModel(
        {.model_dir = *model_dir, .device = args.GetOr("device", "auto"), .random_seed = *seed});
    if (!model.ok()) return Fail(model.status(), kExitModel);
  }
  std::string line;
  int n = 0;
  double total = 0;
  std::map<std::string, std::pair<double, int>> by_metric;
  while (std::getline(in, line) && (!limit->has_value() || n < **limit)) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    boost::system::error_code ec;
    json::value v = json::parse(line, ec);
    if (ec || !v.is_object()) {
      return Fail(
          Status::InvalidArgument(StrFormat("%s line %d: not a JSON object", data->c_str(), n + 1)),
          kExitUsage);
    }
    const json::object& rec = v.as_object();
    auto str = [&](const char* key) -> std::string {
      const json::value* x = rec.if_contains(key);
      return x && x->is_string() ? std::string(x->as_string()) : "";
    };
    std::vector<std::string> answers;
    for (const char* key : {"answers", "answer", "outputs"}) {
      const json::value* x = rec.if_contains(key);
      if (!x) continue;
      if (x->is_string()) answers.push_back(std::string(x->as_string()));
      if (x->is_array()) {
        for (const auto& a : x->as_array()) {
          if (a.is_string()) answers.push_back(std::string(a.as_string()));
          if (a.is_int64()) answers.push_back(std::to_string(a.as_int64()));
        }
      }
      if (x->is_int64()) answers.push_back(std::to_string(x->as_int64()));
      break;
    }
    const std::string context = str("context");
    const std::string input = str("input");
    if (context.empty() || answers.empty()) {
      return Fail(
          Status::InvalidArgument(StrFormat(
              "%s line %d: needs \"context\" and \"answers\"/\"answer\"", data->c_str(), n + 1)),
          kExitUsage);
    }
    std::string prediction = str("prediction");
    double seconds = 0;
    if (!dry) {
      std::string query = tmpl;
      const size_t at = query.find("{input}");
      if (at != std::string::npos) query.replace(at, 7, input);
      auto doc_ids = tok->Encode(context, false);
      auto q_ids = tok->Encode(query, false);
      if (!doc_ids.ok() || !q_ids.ok())
        return Fail(doc_ids.ok() ? q_ids.status() : doc_ids.status(), kExitUsage);
      worker::PipelineInput pin;
      pin.document_ids = std::move(doc_ids).value();
      pin.query_ids = std::move(q_ids).value();
      pin.sieve.mode = *parsed_mode;
      pin.sieve.keep_chunks = static_cast<int>(keep->value_or(3));
      pin.sieve.chunk_tokens = static_cast<int>(chunk->value_or(0));
      pin.generation.max_new_tokens = static_cast<int>(max_new_in->value_or(32));
      const auto t0 = Clock::now();
      auto res = worker::RunPipeline(*model->model, pin);
      if (!res.ok()) return Fail(res.status(), kExitInternal);
      seconds = std::chrono::duration<double>(Clock::now() - t0).count();
      prediction = tok->Decode(res->generated_ids, true);
    }
    std::string used = metric;
    if (used == "auto") {
      bool short_answers = true;
      for (const auto& a : answers) short_answers &= NormalizedWords(a).size() <= 1;
      used = short_answers ? "contains" : "f1";
    }
    double score = 0;
    for (const auto& a : answers) {
      const double s = used == "f1"   ? AnswerF1(prediction, a)
                       : used == "em" ? (AnswerExact(prediction, a) ? 1.0 : 0.0)
                                      : (AnswerContains(prediction, a) ? 1.0 : 0.0);
      score = std::max(score, s);
    }
    total += score;
    by_metric[used].first += score;
    by_metric[used].second += 1;
    ++n;
    std::cout << json::serialize(json::object{{"index", n - 1},
                                              {"metric", used},
                                              {"score", score},
                                              {"prediction", prediction},
                                              {"seconds", seconds}})
              << "\n";
  }
  json::object per_metric;
  for (const auto& [m, v] : by_metric) per_metric[m] = 100.0 * v.first / v.second;
  std::cout << json::serialize(json::object{{"what", "eval"},
                                            {"records", n},
                                            {"score_percent", n ? 100.0 * total / n : 0.0},
                                            {"by_metric", per_metric}})
            << std::endl;
  return kExitOk;
}

}  // namespace sieve::tools
