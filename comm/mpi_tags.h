// MpiTag: every MPI tag the system uses (STYLE rule 9). Raw integer tags are never used; a
// message's tag says what its bytes are, and MpiComm (comm/mpi_comm.h) only accepts an MpiTag.
//
// One request, in tag order (payload: the proto/sieve.proto message, or raw bytes):
//
//   tag             direction                payload
//   kReady          worker -> coordinator    once at startup: device, model loaded (or kError)
//   kPlan           coordinator -> worker    WorkOrder: the worker's chunks and options
//   kChunkScores    worker -> coordinator    WorkerScores: chunk scores, local top-k candidates
//   kKeepDecision   coordinator -> ranks     KeepDecision: global top-k in document order
//   kKvManifest     worker -> decode node    KvManifest: what KV follows (chunk, entries,
//                                            bytes); precedes the NCCL transfer or kKvData
//   kKvData         worker -> decode node    raw KV bytes over MPI (CPU backend transport only)
//   kDecodeRequest  coordinator -> decode    DecodeOrder: query tokens, generation options
//   kTokens         decode -> coordinator    DecodeUpdate with done=false: streamed tokens
//   kResponse       decode -> coordinator    DecodeUpdate with done=true: the final accounting
//   kError          any -> coordinator       Error: a rank failed the request (or to start)
//   kCancel         coordinator -> ranks     StopRequest: abandon a request (client gone, stop
//                                            string matched, deadline passed)
//   kHeartbeat      both ways                liveness ping / pong while idle
//   kShutdown       coordinator -> ranks     leave the serve loop; ranks then finalize MPI
//
// kCollective is reserved for MpiComm's own point-to-point fallbacks inside collectives (Gather
// of more than a piece); nothing else may send on it.
//
// Values are stable (they appear in logs) and far below MPI_TAG_UB's guaranteed 32767.
// Exercised by tests/mpi/mpi_comm_test.cc (TagsRoundTrip).
#pragma once

#include <string_view>

namespace sieve::comm {

enum class MpiTag : int {
  kReady = 1,
  kPlan = 2,
  kChunkScores = 3,
  kKeepDecision = 4,
  kKvManifest = 5,
  kKvData = 6,
  kDecodeRequest = 7,
  kTokens = 8,
  kResponse = 9,
  kError = 10,
  kCancel = 11,
  kHeartbeat = 12,
  kShutdown = 13,
  kCollective = 100,
};

// Every tag, for tests and for validating a probed tag.
inline constexpr MpiTag kAllMpiTags[] = {
    MpiTag::kReady,      MpiTag::kPlan,       MpiTag::kChunkScores,   MpiTag::kKeepDecision,
    MpiTag::kKvManifest, MpiTag::kKvData,     MpiTag::kDecodeRequest, MpiTag::kTokens,
    MpiTag::kResponse,   MpiTag::kError,      MpiTag::kCancel,        MpiTag::kHeartbeat,
    MpiTag::kShutdown,   MpiTag::kCollective,
};

// "kPlan", "kChunkScores", ...; "unknown" for a value outside the enum.
constexpr std::string_view MpiTagName(MpiTag tag) {
  switch (tag) {
    case MpiTag::kReady:
      return "kReady";
    case MpiTag::kPlan:
      return "kPlan";
    case MpiTag::kChunkScores:
      return "kChunkScores";
    case MpiTag::kKeepDecision:
      return "kKeepDecision";
    case MpiTag::kKvManifest:
      return "kKvManifest";
    case MpiTag::kKvData:
      return "kKvData";
    case MpiTag::kDecodeRequest:
      return "kDecodeRequest";
    case MpiTag::kTokens:
      return "kTokens";
    case MpiTag::kResponse:
      return "kResponse";
    case MpiTag::kError:
      return "kError";
    case MpiTag::kCancel:
      return "kCancel";
    case MpiTag::kHeartbeat:
      return "kHeartbeat";
    case MpiTag::kShutdown:
      return "kShutdown";
    case MpiTag::kCollective:
      return "kCollective";
  }
  return "unknown";
}

// True when `value` is one of the enumerators (a probed tag from a well-behaved peer).
constexpr bool IsKnownMpiTag(int value) {
  for (MpiTag tag : kAllMpiTags) {
    if (static_cast<int>(tag) == value) return true;
  }
  return false;
}

}  // namespace sieve::comm
