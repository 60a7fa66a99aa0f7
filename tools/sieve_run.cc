// sieve-run: one request through the whole Sieve pipeline in one process.
//
//   sieve-run --model DIR --request FILE|- [--device auto|cpu|cuda] [--random-weights SEED]
//             [--stream] [--log-level LEVEL]
//
// Prints the response JSON (coordinator/response_json.h) on stdout; with --stream the text is
// also written to stderr as it is generated. A bad request prints {"error": {...}} on stdout and
// exits 2; a model that cannot be loaded exits 3. See README.md "The request".
#include <cstdio>
#include <iostream>

#include "coordinator/request_parser.h"
#include "coordinator/response_json.h"
#include "coordinator/tokenizer.h"
#include "tools/cli.h"
#include "tools/local_runner.h"

namespace sieve::tools {
namespace {

constexpr const char* kUsage =
    "usage: sieve-run --model DIR --request FILE|- [--device auto|cpu|cuda] [--device-index N]\n"
    "                 [--random-weights SEED] [--stream] [--log-level debug|info|warn|error]\n";

int Fail(const Status& status, int code) {
  std::cout << coordinator::ErrorToJson(status) << std::endl;
  return code;
}

int Main(int argc, char** argv) {
  auto args = Args::Parse(argc, argv, {"stream", "help"});
  if (!args.ok()) return Fail(args.status(), kExitUsage);
  if (args->Has("help")) {
    std::cerr << kUsage;
    return kExitOk;
  }
  if (Status s = args->CheckKnown({"model", "request", "device", "device-index", "random-weights",
                                   "stream", "log-level", "help"});
      !s.ok()) {
    std::cerr << kUsage;
    return Fail(s, kExitUsage);
  }
  if (Status s = ApplyLogLevel(*args); !s.ok()) return Fail(s, kExitUsage);
  const auto model_dir = args->Get("model");
  const auto request_path = args->Get("request");
  if (!model_dir || !request_path) {
    std::cerr << kUsage;
    return Fail(Status::InvalidArgument("--model and --request are required"), kExitUsage);
  }
  auto seed = args->GetUint("random-weights");
  auto device_index = args->GetInt("device-index");
  if (!seed.ok()) return Fail(seed.status(), kExitUsage);
  if (!device_index.ok()) return Fail(device_index.status(), kExitUsage);

  // The request first: a bad request should not wait for a model to load.
  auto body = ReadInput(*request_path);
  if (!body.ok()) return Fail(body.status().WithContext("--request"), kExitUsage);
  auto request = coordinator::ParseGenerateRequest(*body);
  if (!request.ok()) return Fail(request.status(), ExitCodeFor(request.status()));

  auto tokenizer = coordinator::Tokenizer::FromFile(*model_dir + "/tokenizer.json");
  if (!tokenizer.ok()) return Fail(tokenizer.status(), kExitModel);
  worker::LoadModelOptions load{.model_dir = *model_dir,
                                .device = args->GetOr("device", "auto"),
                                .device_index = static_cast<int>(device_index->value_or(0)),
                                .random_seed = *seed};
  auto model = worker::LoadModel(load);
  if (!model.ok()) return Fail(model.status(), kExitModel);

  std::string name = *model_dir;
  while (name.size() > 1 && name.back() == '/') name.pop_back();
  name = name.substr(name.find_last_of('/') + 1);
  LocalRunner runner(*model, *tokenizer, name);
  const bool stream = args->Has("stream");
  auto response = runner.Run(*request, [&](const std::string& piece) {
    if (stream) {
      std::fwrite(piece.data(), 1, piece.size(), stderr);
      std::fflush(stderr);
    }
  });
  if (stream) std::fputc('\n', stderr);
  if (!response.ok()) return Fail(response.status(), ExitCodeFor(response.status()));
  std::cout << coordinator::ResponseToJson(*response) << std::endl;
  return kExitOk;
}

}  // namespace
}  // namespace sieve::tools

int main(int argc, char** argv) { return sieve::tools::Main(argc, argv); }
