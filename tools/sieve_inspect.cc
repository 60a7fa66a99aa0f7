// sieve-inspect: check Sieve's tokenizer and forward pass against your own reference.
//
//   sieve-inspect tokenize   --model DIR [--bos]           UTF-8 text on stdin -> {"ids": [...]}
//   sieve-inspect detokenize --model DIR --ids 1,2,3      -> {"text": "..."}
//   sieve-inspect forward    --model DIR --ids 128000,791,... [--positions 0,1,...]
//       -> {"logprobs": [T-1 floats: log p(ids[t+1] | ids[<=t])],
//           "last_logits_top": [[id, logit], ... the 10 best],
//           "hidden_last": [the final-normed hidden state of the last position]}
//   forward options: --device auto|cpu|cuda, --random-weights SEED,
//       --rope-inv-freq checkpoint|f32 (default checkpoint: the RoPE inverse frequencies rounded
//       to the checkpoint's torch_dtype, as a Hugging Face model built and cast with
//       .to(dtype) holds them; f32: as from_pretrained(..., dtype=...) holds them).
// JSON on stdout; errors on stderr with a non-zero exit code (2 usage, 3 model, 1 internal).
#include <algorithm>
#include <iostream>
#include <numeric>

#include <boost/json.hpp>

#include "coordinator/tokenizer.h"
#include "tools/cli.h"
#include "worker/model_loader.h"
#include "worker/sequence_forward.h"

namespace sieve::tools {
namespace {
namespace json = boost::json;

constexpr const char* kUsage =
    "usage: sieve-inspect tokenize   --model DIR [--bos]            (text on stdin)\n"
    "       sieve-inspect detokenize --model DIR --ids 1,2,3 [--skip-special]\n"
    "       sieve-inspect forward    --model DIR --ids 128000,791,... [--positions 0,1,...]\n"
    "                                [--device auto|cpu|cuda] [--random-weights SEED]\n"
    "                                [--rope-inv-freq checkpoint|f32]\n";

int Fail(const Status& status, int code) {
  std::cerr << "sieve-inspect: " << status.ToString() << std::endl;
  return code;
}

int Tokenize(const Args& args, const coordinator::Tokenizer& tok) {
  auto text = ReadInput("-");
  if (!text.ok()) return Fail(text.status(), kExitUsage);
  auto ids = tok.Encode(*text, args.Has("bos"));
  if (!ids.ok()) return Fail(ids.status(), kExitUsage);
  json::array out(ids->begin(), ids->end());
  std::cout << json::serialize(json::object{{"ids", std::move(out)}}) << std::endl;
  return kExitOk;
}

int Detokenize(const Args& args, const coordinator::Tokenizer& tok) {
  auto ids = args.GetIntList("ids");
  if (!ids.ok()) return Fail(ids.status(), kExitUsage);
  if (!*ids) return Fail(Status::InvalidArgument("--ids is required"), kExitUsage);
  for (int32_t id : **ids) {
    if (id < 0 || id >= tok.vocab_size()) {
      return Fail(Status::InvalidArgument(StrFormat("--ids: %d is outside the vocabulary [0, %d)",
                                                    id, tok.vocab_size())),
                  kExitUsage);
    }
  }
  const std::string text = tok.Decode(**ids, args.Has("skip-special"));
  std::cout << json::serialize(json::object{{"text", text}}) << std::endl;
  return kExitOk;
}

int Forward(const Args& args, const std::string& model_dir) {
  auto ids = args.GetIntList("ids");
  auto positions = args.GetIntList("positions");
  auto seed = args.GetUint("random-weights");
  if (!ids.ok()) return Fail(ids.status(), kExitUsage);
  if (!positions.ok()) return Fail(positions.status(), kExitUsage);
  if (!seed.ok()) return Fail(seed.status(), kExitUsage);
  if (!*ids || (*ids)->empty())
    return Fail(Status::InvalidArgument("--ids is required"), kExitUsage);
  std::vector<int32_t> pos;
  if (*positions) {
    pos = **positions;
  } else {
    pos.resize((*ids)->size());
    std::iota(pos.begin(), pos.end(), 0);
  }
  if (pos.size() != (*ids)->size()) {
    return Fail(Status::InvalidArgument(
                    StrFormat("--positions: %zu values for %zu ids", pos.size(), (*ids)->size())),
                kExitUsage);
  }
  const std::string rope = args.GetOr("rope-inv-freq", "checkpoint");
  if (rope != "checkpoint" && rope != "f32") {
    return Fail(Status::InvalidArgument("--rope-inv-freq: expected checkpoint or f32"), kExitUsage);
  }
  auto config = worker::ModelConfig::FromJsonFile(model_dir + "/config.json");
  if (!config.ok()) return Fail(config.status(), kExitModel);
  worker::LoadModelOptions load{
      .model_dir = model_dir, .device = args.GetOr("device", "auto"), .random_seed = *seed};
  if (rope == "checkpoint" && config->dtype) load.transformer.rope_inv_freq_dtype = *config->dtype;
  auto model = worker::LoadModel(load);
  if (!model.ok()) return Fail(model.status(), kExitModel);
  auto result = worker::ForwardSequence(
      *model->model, **ids, pos,
      {.want_hidden = true, .want_logprobs = true, .want_last_logits = true});
  if (!result.ok()) return Fail(result.status(), ExitCodeFor(result.status()));
  std::vector<int32_t> order(result->last_logits.size());
  std::iota(order.begin(), order.end(), 0);
  const size_t k = std::min<size_t>(10, order.size());
  std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) {
    const float x = result->last_logits[a], y = result->last_logits[b];
    return x > y || (x == y && a < b);
  });
  json::array top;
  for (size_t i = 0; i < k; ++i)
    top.emplace_back(json::array{order[i], result->last_logits[order[i]]});
  const int64_t hidden = model->config.hidden_size;
  json::array hidden_last(result->hidden.end() - hidden, result->hidden.end());
  json::object out{{"logprobs", json::array(result->logprobs.begin(), result->logprobs.end())},
                   {"last_logits_top", std::move(top)},
                   {"hidden_last", std::move(hidden_last)}};
  std::cout << json::serialize(out) << std::endl;
  return kExitOk;
}

int Main(int argc, char** argv) {
  auto args = Args::Parse(argc, argv, {"bos", "skip-special", "help"});
  if (!args.ok()) return Fail(args.status(), kExitUsage);
  if (args->Has("help") || args->positional().size() != 1) {
    std::cerr << kUsage;
    return args->Has("help") ? kExitOk : kExitUsage;
  }
  if (Status s = args->CheckKnown({"model", "bos", "ids", "positions", "device", "random-weights",
                                   "rope-inv-freq", "skip-special", "log-level", "help"});
      !s.ok()) {
    return Fail(s, kExitUsage);
  }
  if (Status s = ApplyLogLevel(*args); !s.ok()) return Fail(s, kExitUsage);
  const auto model_dir = args->Get("model");
  if (!model_dir) return Fail(Status::InvalidArgument("--model is required"), kExitUsage);
  const std::string& command = args->positional()[0];
  if (command == "forward") return Forward(*args, *model_dir);
  if (command != "tokenize" && command != "detokenize") {
    std::cerr << kUsage;
    return Fail(Status::InvalidArgument("unknown command '" + command + "'"), kExitUsage);
  }
  auto tok = coordinator::Tokenizer::FromFile(*model_dir + "/tokenizer.json");
  if (!tok.ok()) return Fail(tok.status(), kExitModel);
  return command == "tokenize" ? Tokenize(*args, *tok) : Detokenize(*args, *tok);
}

}  // namespace
}  // namespace sieve::tools

int main(int argc, char** argv) { return sieve::tools::Main(argc, argv); }
