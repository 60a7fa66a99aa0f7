// MpiComm: an owned MPI communicator with typed tags, protobuf messages and size-safe payloads
// (STYLE rules 7 and 9); MpiRuntime: MPI_Init_thread / MPI_Finalize as RAII.
//
// Every send names an MpiTag (comm/mpi_tags.h), never an integer. Payloads of any size travel
// as one "frame" (the wire format, identical for bytes, protobuf messages and vectors):
//
//   message 1   FrameHeader {uint32 magic 'SVF1', uint32 inline_bytes, uint64 total_bytes}
//               (kFrameHeaderBytes = 16 bytes), followed by the whole payload when it is small
//               (total_bytes <= min(kInlineBytes, piece_bytes): one MPI message, one copy), else
//               by nothing;
//   messages 2+ the payload, when not inline, in pieces of at most piece_bytes (default 1 GiB,
//               always below INT32_MAX), sent straight from the caller's memory.
//
// All messages of a frame share the source, the tag and the communicator, so MPI's
// non-overtaking rule keeps them in order. A receiver matches the first message (with
// MPI_Mprobe, so concurrent receivers cannot steal each other's header), learns the total size
// and the sender, then receives the pieces from that sender. The receiver never needs to know
// the sender's piece size. Bad frames (a foreign message on a tag, a size that does not fit) are
// Status DataLoss naming the sender, the tag and what was expected; the rest of the frame is
// drained so the channel stays usable.
//
// Blocking: Send* block like MPI_Send (until the payload is buffered or matched), Recv* until
// the whole payload has arrived, collectives (Barrier, Bcast, Gather, Split) until every rank of
// the communicator has called them. Isend* return at once; the returned MpiSendRequest must
// outlive nothing but the caller's buffer, and waits in its destructor. RecvWithDeadline /
// ProbeWithDeadline poll (MPI_Improbe with a backoff from 20 us to 1 ms) and give up with
// DeadlineExceeded: that is how a coordinator notices a dead or stuck rank instead of hanging.
//
// Errors: MPI failures are fatal (SIEVE_MPI_CHECK, comm/mpi_check.h); malformed or unexpected
// data and timeouts are Status values whose messages carry this process's host and rank.
//
// Threads: with MPI_THREAD_MULTIPLE (MpiRuntime requests it and reports what it got), every
// method may be called from several threads, except that two threads must not receive frames
// with the same (source, tag) at the same time, nor run collectives on the same communicator.
//
// Tested by tests/mpi/mpi_comm_test.cc (run with np = 2 and 4 by launch/run_mpi_test.sh).
#pragma once

#include <mpi.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "comm/mpi_tags.h"
#include "comm/status.h"

namespace google::protobuf {
class Message;
}  // namespace google::protobuf

namespace sieve::comm {

class WorldLayout;

// Default largest MPI message of a frame's payload, in bytes (1 GiB).
inline constexpr size_t kDefaultPieceBytes = size_t{1} << 30;
// Largest accepted piece size: a piece's byte count must fit MPI's int count.
inline constexpr size_t kMaxPieceBytes = (size_t{1} << 31) - 4096;
// Payloads up to this many bytes (and not over the piece size) ride in the header message.
inline constexpr size_t kInlineBytes = size_t{64} << 10;
// Size of the header message of a frame when the payload does not ride inline.
inline constexpr size_t kFrameHeaderBytes = 16;

// How many MPI messages carry a payload of `bytes` with pieces of `piece_bytes` (header
// included): 1 when inline, else 1 + ceil(bytes / piece_bytes). Pure; exposed for tests.
int64_t FrameMessageCount(size_t bytes, size_t piece_bytes);

// What MpiComm::Probe found: the sender and the tag of the next frame.
struct ProbeResult {
  int source = -1;
  MpiTag tag = MpiTag::kReady;
};

// A pending non-blocking frame send. Move-only. Owns the header (and, for IsendMessage, the
// serialized payload); the caller's buffer for IsendBytes must stay valid until Wait() returns or
// Test() says true. The destructor waits (it blocks until the receiver has matched the frame).
class MpiSendRequest {
 public:
  MpiSendRequest() = default;
  ~MpiSendRequest();
  MpiSendRequest(MpiSendRequest&& other) noexcept;
  MpiSendRequest& operator=(MpiSendRequest&& other) noexcept;
  MpiSendRequest(const MpiSendRequest&) = delete;
  MpiSendRequest& operator=(const MpiSendRequest&) = delete;

  // Blocks until every message of the frame has been sent. Idempotent.
  void Wait();
  // Non-blocking: true once every message of the frame has been sent.
  bool Test();
  // True when nothing is pending (after Wait/Test succeeded, or a default-built request).
  bool Done() const { return requests_.empty(); }

 private:
  friend class MpiComm;
  std::vector<MPI_Request> requests_;
  std::vector<std::byte> first_message_;        // heap storage: stable when the request moves
  std::unique_ptr<std::string> owned_payload_;  // IsendMessage's serialized bytes
};

// An owned communicator. Move-only (copying a communicator handle would double-free it). World()
// and Borrow() wrap without owning; Adopt() and the Split*/Dup results free theirs with
// MPI_Comm_free on destruction (skipped once MPI is finalized). Rank() and Size() are cached.
class MpiComm {
 public:
  static constexpr int kAnySource = MPI_ANY_SOURCE;

  // A null communicator (IsNull() true): what Split returns to ranks left out.
  MpiComm() = default;
  ~MpiComm();
  MpiComm(MpiComm&& other) noexcept;
  MpiComm& operator=(MpiComm&& other) noexcept;
  MpiComm(const MpiComm&) = delete;
  MpiComm& operator=(const MpiComm&) = delete;

  // MPI_COMM_WORLD, not owned. MPI must be initialized (MpiRuntime).
  static MpiComm World();
  // Wraps `comm` without owning it.
  static MpiComm Borrow(MPI_Comm comm);
  // Takes ownership of `comm` (MPI_Comm_free on destruction). MPI_COMM_WORLD / MPI_COMM_SELF /
  // MPI_COMM_NULL are never freed.
  static MpiComm Adopt(MPI_Comm comm);

  MPI_Comm Handle() const { return comm_; }
  bool IsNull() const { return comm_ == MPI_COMM_NULL; }
  int Rank() const { return rank_; }
  int Size() const { return size_; }

  // Collective. Ranks with the same color form a new communicator, ordered by key then by rank
  // here. color < 0 leaves this rank out (it gets a null communicator).
  MpiComm Split(int color, int key) const;
  // Collective. The ranks of this node (MPI_COMM_TYPE_SHARED), ordered by rank here.
  MpiComm SplitShared() const;
  // Collective. A duplicate with its own message space (for a library that must not see ours).
  MpiComm Dup() const;

  // Collective; blocks until every rank has entered.
  void Barrier() const;

  // ---- frames of bytes -------------------------------------------------------------------------

  // Sends `bytes` to `dest` as one frame (see the wire format above). Blocking like MPI_Send.
  // piece_bytes in [1, kMaxPieceBytes] (larger values are clamped; 0 is a programmer error).
  void SendBytes(std::span<const std::byte> bytes, int dest, MpiTag tag,
                 size_t piece_bytes = kDefaultPieceBytes) const;
  void SendBytes(std::string_view bytes, int dest, MpiTag tag,
                 size_t piece_bytes = kDefaultPieceBytes) const {
    SendBytes(std::as_bytes(std::span(bytes.data(), bytes.size())), dest, tag, piece_bytes);
  }
  // Non-blocking SendBytes. `bytes` must stay valid and unchanged until the request completes.
  [[nodiscard]] MpiSendRequest IsendBytes(std::span<const std::byte> bytes, int dest, MpiTag tag,
                                          size_t piece_bytes = kDefaultPieceBytes) const;

  // Receives one frame from `source` (or kAnySource) with `tag` into *out (resized). Returns the
  // sender's rank. Blocks until the whole payload has arrived.
  StatusOr<int> RecvBytes(std::string* out, int source, MpiTag tag) const;
  // Receives one frame into caller memory whose size must equal the payload's exactly (else
  // DataLoss naming both sizes; the frame is drained). For preallocated buffers (KV payloads).
  StatusOr<int> RecvInto(std::span<std::byte> out, int source, MpiTag tag) const;
  // Same as RecvBytes, but gives up with DeadlineExceeded after `timeout` (naming the expected
  // source and tag) if the frame has not fully arrived.
  StatusOr<int> RecvBytesWithDeadline(std::string* out, int source, MpiTag tag,
                                      std::chrono::milliseconds timeout) const;

  // Blocks until a frame from `source` (or kAnySource) with `tag` (or any tag when nullopt) can
  // be received; does not receive it. Then call Recv*(…, result.source, result.tag).
  ProbeResult Probe(int source, std::optional<MpiTag> tag) const;
  // Non-blocking Probe: nullopt when nothing matching has arrived.
  std::optional<ProbeResult> Iprobe(int source, std::optional<MpiTag> tag) const;
  // Probe that gives up with DeadlineExceeded after `timeout`.
  StatusOr<ProbeResult> ProbeWithDeadline(int source, std::optional<MpiTag> tag,
                                          std::chrono::milliseconds timeout) const;

  // ---- protobuf messages -----------------------------------------------------------------------

  // Serializes `message` and sends it as one frame. InvalidArgument if it cannot be serialized
  // (over protobuf's 2 GiB limit). Blocking like SendBytes.
  Status Send(const google::protobuf::Message& message, int dest, MpiTag tag) const;
  // Non-blocking Send: the request owns the serialized copy, so `message` may change at once.
  // A serialization failure is reported through `status` (the request is then empty).
  [[nodiscard]] MpiSendRequest IsendMessage(const google::protobuf::Message& message, int dest,
                                            MpiTag tag, Status* status) const;
  // Receives one frame and parses it into *message (cleared first). Returns the sender's rank;
  // DataLoss names the message type, the sender, the tag and the size when parsing fails.
  StatusOr<int> Recv(google::protobuf::Message* message, int source, MpiTag tag) const;
  // Recv that gives up with DeadlineExceeded ("no kChunkScores frame from rank 3 within
  // 500 ms") when nothing complete arrives in time; *message is then unchanged. If the deadline
  // passes after the header was taken (a sender stalled mid-frame), the rest of that frame may
  // still arrive later: treat that sender as failed rather than receiving from it again.
  StatusOr<int> RecvWithDeadline(google::protobuf::Message* message, int source, MpiTag tag,
                                 std::chrono::milliseconds timeout) const;
  // Collective: the root's *message replaces every other rank's. DataLoss on a parse failure.
  Status Bcast(google::protobuf::Message* message, int root) const;

  // ---- vectors of trivially copyable values ----------------------------------------------------

  // Sends values.size() elements as one frame (the byte length travels first, in the header).
  template <typename T>
  requires std::is_trivially_copyable_v<T>
  void Send(std::span<const T> values, int dest, MpiTag tag,
            size_t piece_bytes = kDefaultPieceBytes) const {
    SendBytes(std::as_bytes(values), dest, tag, piece_bytes);
  }
  template <typename T>
  requires std::is_trivially_copyable_v<T>
  void Send(const std::vector<T>& values, int dest, MpiTag tag,
            size_t piece_bytes = kDefaultPieceBytes) const {
    Send(std::span<const T>(values), dest, tag, piece_bytes);
  }
  // Receives one frame into *values (resized). DataLoss if the byte length is not a multiple of
  // sizeof(T). Returns the sender's rank.
  template <typename T>
  requires std::is_trivially_copyable_v<T> StatusOr<int> Recv(std::vector<T>* values, int source,
                                                              MpiTag tag)
  const {
    return RecvFrame(
        [values](uint64_t total) -> StatusOr<std::byte*> {
          if (total % sizeof(T) != 0) {
            return Status::DataLoss(
                StrFormat("%llu bytes is not a whole number of %zu-byte elements",
                          static_cast<unsigned long long>(total), sizeof(T)));
          }
          values->resize(total / sizeof(T));
          return reinterpret_cast<std::byte*>(values->data());
        },
        source, tag, std::nullopt);
  }

  // Collective: the root's *values replace every other rank's (resized). The root's length and
  // piece size are broadcast first, then the payload in pieces of at most piece_bytes.
  template <typename T>
  requires std::is_trivially_copyable_v<T>
  void Bcast(std::vector<T>* values, int root, size_t piece_bytes = kDefaultPieceBytes) const {
    const uint64_t count = BcastLength(values->size(), root);
    if (rank_ != root) values->resize(count);
    BcastPayload(values->data(), count * sizeof(T), root, piece_bytes);
  }
  void Bcast(std::string* bytes, int root, size_t piece_bytes = kDefaultPieceBytes) const;

  // ---- gather ---------------------------------------------------------------------------------

  // Collective: every rank contributes `mine` (any length, ranks may differ); the root gets all
  // contributions in rank order, every other rank an empty vector. Small totals (<= piece_bytes)
  // use one MPI_Gatherv; larger ones a frame per rank on MpiTag::kCollective.
  std::vector<std::string> Gather(std::string_view mine, int root,
                                  size_t piece_bytes = kDefaultPieceBytes) const;

 private:
  // Given a frame's total payload size, returns where to write it (or an error: the frame is
  // then drained and the error returned).
  using FrameSink = std::function<StatusOr<std::byte*>(uint64_t total_bytes)>;

  MpiComm(MPI_Comm comm, bool owned);
  void Reset();
  StatusOr<int> RecvFrame(const FrameSink& sink, int source, MpiTag tag,
                          std::optional<std::chrono::milliseconds> timeout) const;
  uint64_t BcastLength(uint64_t length, int root) const;
  void BcastPayload(void* data, size_t bytes, int root, size_t piece_bytes) const;
  // "kPlan frame from rank 3" / "any-tag frame from any rank".
  std::string Describe(int source, std::optional<MpiTag> tag) const;
  // "[host=h rank=0 device=? comm_rank=0/5]": who is reporting.
  std::string Context() const;

  MPI_Comm comm_ = MPI_COMM_NULL;
  bool owned_ = false;
  int rank_ = -1;
  int size_ = 0;
};

// Collective over `world`: the communicator of GPU ranks (every rank but the coordinator; with
// -np 1 the single rank), ordered so that its rank equals layout.GpuRank(). The coordinator of a
// multi-rank job gets a null communicator. NCCL is bootstrapped over it (comm/nccl_comm.h).
MpiComm MakeGpuComm(const MpiComm& world, const WorldLayout& layout);

// MPI_Init_thread / MPI_Finalize as RAII. Requests MPI_THREAD_MULTIPLE and reports what was
// provided; installs MPI_ERRORS_RETURN on MPI_COMM_WORLD (so SIEVE_MPI_CHECK reports errors with
// host and rank before aborting); calls sieve::SetProcessContext(world rank, -1). If MPI was
// already initialized, it only does the last two and leaves finalizing to whoever initialized.
// Not copyable or movable: create one in main() before anything touches MPI.
class MpiRuntime {
 public:
  MpiRuntime(int* argc, char*** argv);
  ~MpiRuntime();
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;

  // The thread level MPI provided (MPI_THREAD_SINGLE .. MPI_THREAD_MULTIPLE).
  int ProvidedThreadLevel() const { return provided_; }
  bool ThreadMultiple() const { return provided_ >= MPI_THREAD_MULTIPLE; }
  // True when this object called MPI_Init_thread (and will call MPI_Finalize).
  bool OwnsMpi() const { return owns_; }

  // "MPI_THREAD_MULTIPLE", ...
  static std::string_view ThreadLevelName(int level);

 private:
  bool owns_ = false;
  int provided_ = MPI_THREAD_SINGLE;
};

}  // namespace sieve::comm
