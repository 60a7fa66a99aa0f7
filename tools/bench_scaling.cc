// sieve-bench scaling and nccl: how prefill speeds up as GPUs are added (tools/bench_scaling.h).
#include "tools/bench_scaling.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <sstream>

#include <boost/json.hpp>

#include "tools/plot.h"

#if SIEVE_WITH_MPI && SIEVE_WITH_CUDA
#include <cuda_runtime_api.h>

#include "comm/mpi_comm.h"
#include "comm/nccl_comm.h"
#endif

namespace sieve::tools {
namespace json = boost::json;
namespace {

int Fail(const Status& s, int code) {
  std::cerr << "sieve-bench: " << s.ToString() << std::endl;
  return code;
}

int64_t IntOr(const Args& args, const std::string& name, int64_t fallback) {
  auto v = args.GetInt(name);
  return v.ok() && v->has_value() ? **v : fallback;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

std::string Quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs a command, returns its stdout (stderr goes to `log`).
StatusOr<std::string> Capture(const std::string& command, const std::string& log) {
  const std::string full = command + " 2>>" + Quote(log);
  FILE* pipe = popen(full.c_str(), "r");
  if (!pipe) return Status::Internal("cannot run: " + command);
  std::string out;
  std::array<char, 65536> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  const int rc = pclose(pipe);
  if (rc != 0) {
    return Status::Internal(
        StrFormat("exit %d from: %s (see %s)", rc, command.c_str(), log.c_str()));
  }
  return out;
}

json::object Request(int64_t tokens, uint64_t seed, const std::string& mode, int chunk_tokens,
                     int keep, int64_t vocab) {
  std::mt19937_64 rng(seed);
  json::array doc, query;
  for (int64_t i = 0; i < tokens; ++i) doc.emplace_back(static_cast<int64_t>(rng() % vocab));
  for (int i = 0; i < 16; ++i) query.emplace_back(static_cast<int64_t>(rng() % vocab));
  json::object sieve{{"mode", mode}, {"keep_chunks", keep}};
  if (chunk_tokens > 0) sieve["chunk_tokens"] = chunk_tokens;
  return json::object{
      {"document_ids", std::move(doc)},
      {"query_ids", std::move(query)},
      {"max_new_tokens", 1},
      {"request_id", StrFormat("n%lld-s%llu", (long long)tokens, (unsigned long long)seed)},
      {"sieve", std::move(sieve)}};
}

struct Point {
  double ttft = 0, prefill = 0, exchange = 0, kv_s = 0, kv_gbps = 0, query = 0;
  int64_t kv_bytes = 0;
};

StatusOr<std::map<int64_t, Point>> RunJob(const Args& args, int gpus,
                                          const std::vector<int64_t>& lengths,
                                          const std::string& mode, int reps,
                                          const std::string& dir) {
  const std::string model = *args.Get("model");
  const int chunk = static_cast<int>(IntOr(args, "chunk-tokens", 8192));
  const int keep = static_cast<int>(IntOr(args, "keep-chunks", 3));
  const int64_t vocab = 128000;
  const std::string requests =
      StrFormat("%s/requests_%s_%d.jsonl", dir.c_str(), mode.c_str(), gpus);
  {
    std::ofstream f(requests);
    // The first request warms up every rank (cuBLAS heuristics, NCCL channels, the allocator).
    f << json::serialize(Request(lengths.front(), 1, mode, chunk, keep, vocab)) << "\n";
    for (int64_t n : lengths) {
      for (int r = 0; r < reps; ++r)
        f << json::serialize(Request(n, 100 + r, mode, chunk, keep, vocab)) << "\n";
    }
  }
  const std::string node = args.GetOr("node", "sieve-node");
  const std::string cmd = StrFormat(
      "%s -np %d --oversubscribe --allow-run-as-root -x NCCL_NVLS_ENABLE=0 -x LD_LIBRARY_PATH %s "
      "--model %s "
      "--random-weights %s --device cuda --max-in-flight 1 --request %s",
      args.GetOr("mpirun", "mpirun").c_str(), gpus + 1, Quote(node).c_str(), Quote(model).c_str(),
      args.GetOr("random-weights", "0").c_str(), Quote(requests).c_str());
  std::cerr << "+ " << cmd << std::endl;
  SIEVE_ASSIGN_OR_RETURN(std::string out, Capture(cmd, dir + "/scaling_stderr.log"));
  std::map<int64_t, std::vector<Point>> samples;
  std::stringstream ss(out);
  std::string line;
  int index = 0;
  while (std::getline(ss, line)) {
    if (line.empty()) continue;
    json::value v = json::parse(line);
    if (v.as_object().contains("error")) return Status::Internal("request failed: " + line);
    if (index++ == 0) continue;  // warm-up
    const json::object& acc = v.at("accounting").as_object();
    const json::object& t = acc.at("timing").as_object();
    Point p;
    // Requests run one at a time; the time a request waited for the previous one is not its own.
    const json::value* queue = t.if_contains("queue_s");
    p.ttft = t.at("ttft_s").to_number<double>() - (queue ? queue->to_number<double>() : 0.0);
    p.prefill = t.at("prefill_s").to_number<double>();
    p.exchange = t.at("score_exchange_s").to_number<double>();
    p.kv_s = t.at("kv_transfer_s").to_number<double>();
    p.kv_gbps = t.at("kv_transfer_gbps").to_number<double>();
    p.query = t.at("query_prefill_s").to_number<double>();
    p.kv_bytes = acc.at("kv").at("bytes_moved").to_number<int64_t>();
    samples[acc.at("document_tokens").to_number<int64_t>()].push_back(p);
  }
  std::map<int64_t, Point> medians;
  for (auto& [n, v] : samples) {
    auto med = [&](auto field) {
      std::vector<double> x;
      for (const Point& p : v) x.push_back(field(p));
      return Median(x);
    };
    Point m;
    m.ttft = med([](const Point& p) { return p.ttft; });
    m.prefill = med([](const Point& p) { return p.prefill; });
    m.exchange = med([](const Point& p) { return p.exchange; });
    m.kv_s = med([](const Point& p) { return p.kv_s; });
    m.kv_gbps = med([](const Point& p) { return p.kv_gbps; });
    m.query = med([](const Point& p) { return p.query; });
    m.kv_bytes = v.front().kv_bytes;
    medians[n] = m;
  }
  return medians;
}

Status Plot(const std::string& path, const std::vector<int>& gpus,
            const std::vector<int64_t>& lengths,
            const std::map<int, std::map<int64_t, Point>>& results) {
  const int w = 640, h = 440, left = 70, right = 160, top = 50, bottom = 60;
  Canvas c(w, h);
  const Rgb ink{30, 30, 30}, grid{225, 225, 225};
  const double max_g = *std::max_element(gpus.begin(), gpus.end());
  auto x_of = [&](double g) {
    return left + static_cast<int>((g - 1) / std::max(1.0, max_g - 1) * (w - left - right));
  };
  auto y_of = [&](double s) {
    return h - bottom - static_cast<int>((s - 1) / std::max(1.0, max_g - 1) * (h - top - bottom));
  };
  c.Text(left, 16, "TTFT SPEEDUP VS GPUS", ink, 2);
  for (int g : gpus) {
    c.Line(x_of(g), top, x_of(g), h - bottom, grid);
    c.Text(x_of(g) - 3, h - bottom + 8, std::to_string(g), ink);
    c.Line(left, y_of(g), w - right, y_of(g), grid);
    c.Text(left - 24, y_of(g) - 3, StrFormat("%dX", g), ink);
  }
  c.Text((w - right + left) / 2 - 20, h - 24, "GPUS", ink);
  c.DashedLine(x_of(1), y_of(1), x_of(max_g), y_of(max_g), {120, 120, 120});
  c.Text(w - right + 10, top, "-- IDEAL", {120, 120, 120});
  const Rgb colors[] = {
      {31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40}, {148, 103, 189}};
  for (size_t i = 0; i < lengths.size(); ++i) {
    const Rgb col = colors[i % std::size(colors)];
    const double base = results.at(gpus.front()).at(lengths[i]).ttft;
    int px = -1, py = -1;
    for (int g : gpus) {
      auto it = results.at(g).find(lengths[i]);
      if (it == results.at(g).end()) continue;
      const double s = base / it->second.ttft * gpus.front();
      const int x = x_of(g), y = y_of(s);
      if (px >= 0) c.Line(px, py, x, y, col, 2);
      c.FillRect(x - 3, y - 3, x + 4, y + 4, col);
      px = x;
      py = y;
    }
    c.FillRect(w - right + 10, top + 20 + 16 * int(i), w - right + 24, top + 30 + 16 * int(i), col);
    c.Text(w - right + 30, top + 21 + 16 * int(i),
           StrFormat("%lldK", (long long)(lengths[i] / 1024)), ink);
  }
  return c.WritePng(path);
}

}  // namespace

int ScalingMain(const Args& args) {
  if (!args.Get("model")) return Fail(Status::InvalidArgument("--model is required"), kExitUsage);
  auto gpus_in = args.GetIntList("gpus");
  auto tokens_in = args.GetIntList("tokens");
  auto reps_in = args.GetInt("reps");
  if (!gpus_in.ok() || !tokens_in.ok() || !reps_in.ok())
    return Fail(Status::InvalidArgument("bad lists"), kExitUsage);
  std::vector<int> gpus;
  for (int g : gpus_in->value_or(std::vector<int32_t>{1, 2, 4})) gpus.push_back(g);
  std::vector<int64_t> lengths;
  for (int n : tokens_in->value_or(std::vector<int32_t>{32768, 65536, 131072}))
    lengths.push_back(n);
  const int reps = static_cast<int>(reps_in->value_or(2));
  const std::string dir = args.GetOr("work-dir", "/tmp");
  const std::string mode = args.GetOr("mode", "parallelcomp");
  std::map<int, std::map<int64_t, Point>> results;
  for (int g : gpus) {
    auto r = RunJob(args, g, lengths, mode, reps, dir);
    if (!r.ok()) return Fail(r.status(), kExitInternal);
    results[g] = std::move(r).value();
  }
  std::map<int64_t, Point> full;
  if (!args.Has("no-baseline")) {
    auto r = RunJob(args, 1, lengths, "full", 1, dir);
    if (!r.ok()) return Fail(r.status(), kExitInternal);
    full = std::move(r).value();
  }
  json::array rows;
  std::cout << StrFormat("%6s %8s %9s %9s %9s %9s %10s %9s %9s %9s\n", "gpus", "tokens", "ttft_s",
                         "prefill_s", "exch_s", "kv_s", "kv_GB", "kv_GB/s", "query_s", "speedup");
  for (int g : gpus) {
    for (int64_t n : lengths) {
      auto it = results[g].find(n);
      if (it == results[g].end()) continue;
      const Point& p = it->second;
      const double speedup = results[gpus.front()][n].ttft / p.ttft * gpus.front();
      std::cout << StrFormat("%6d %8lld %9.3f %9.3f %9.4f %9.4f %10.3f %9.1f %9.3f %8.2fx\n", g,
                             (long long)n, p.ttft, p.prefill, p.exchange, p.kv_s, p.kv_bytes / 1e9,
                             p.kv_gbps, p.query, speedup);
      json::object row{{"gpus", g},
                       {"tokens", n},
                       {"ttft_s", p.ttft},
                       {"prefill_s", p.prefill},
                       {"score_exchange_s", p.exchange},
                       {"kv_transfer_s", p.kv_s},
                       {"kv_bytes", p.kv_bytes},
                       {"kv_gbps", p.kv_gbps},
                       {"query_prefill_s", p.query},
                       {"speedup_vs_1", speedup}};
      if (full.count(n)) row["speedup_vs_full_1gpu"] = full[n].ttft / p.ttft;
      rows.emplace_back(std::move(row));
    }
  }
  for (const auto& [n, p] : full) {
    std::cout << StrFormat("full attention, 1 GPU, %lld tokens: ttft %.3f s\n", (long long)n,
                           p.ttft);
  }
  json::object baseline;
  for (const auto& [n, p] : full) baseline[std::to_string(n)] = p.ttft;
  if (auto out = args.Get("out")) {
    std::ofstream(*out) << json::serialize(json::object{{"mode", mode},
                                                        {"rows", rows},
                                                        {"full_attention_1gpu_ttft_s", baseline}})
                        << "\n";
  }
  if (auto png = args.Get("png")) {
    if (Status s = Plot(*png, gpus, lengths, results); !s.ok()) return Fail(s, kExitInternal);
  }
  return kExitOk;
}

int NcclMain(int argc, char** argv, const Args& args) {
#if SIEVE_WITH_MPI && SIEVE_WITH_CUDA
  comm::MpiRuntime mpi(&argc, &argv);
  const comm::MpiComm world = comm::MpiComm::World();
  if (world.Size() != 2) return Fail(Status::InvalidArgument("run under mpirun -np 2"), kExitUsage);
  int devices = 0;
  cudaGetDeviceCount(&devices);
  const int device = world.Rank() % std::max(1, devices);
  cudaSetDevice(device);
  auto nccl = comm::NcclComm::Create(world, device);
  if (!nccl.ok()) return Fail(nccl.status(), kExitInternal);
  const size_t bytes = static_cast<size_t>(IntOr(args, "bytes", int64_t{1} << 30));
  void* buf = nullptr;
  cudaMalloc(&buf, bytes);
  cudaMemset(buf, 1, bytes);
  cudaStream_t stream;
  cudaStreamCreate(&stream);
  std::vector<double> gbps;
  for (int rep = 0; rep < 6; ++rep) {
    world.Barrier();
    const auto t0 = std::chrono::steady_clock::now();
    const comm::NcclComm::Transfer t = world.Rank() == 0
                                           ? comm::NcclComm::Transfer::ToPeer(1, buf, bytes)
                                           : comm::NcclComm::Transfer::FromPeer(0, buf, bytes);
    Status s = world.Rank() == 0 ? nccl->SendRecvGroup({&t, 1}, {}, stream)
                                 : nccl->SendRecvGroup({}, {&t, 1}, stream);
    if (!s.ok()) return Fail(s, kExitInternal);
    cudaStreamSynchronize(stream);
    world.Barrier();
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (rep > 0) gbps.push_back(bytes / secs / 1e9);
  }
  if (world.Rank() == 0) {
    std::cout << json::serialize(
                     json::object{{"what", "nccl_p2p"}, {"bytes", bytes}, {"gbps", Median(gbps)}})
              << std::endl;
  }
  cudaFree(buf);
  return kExitOk;
#else
  return Fail(Status::Unavailable("sieve-bench nccl needs MPI and CUDA"), kExitUsage);
#endif
}

}  // namespace sieve::tools
