// MpiComm, MpiSendRequest and MpiRuntime; the frame wire format is documented in mpi_comm.h.
// Built only with SIEVE_ENABLE_MPI. Tested by tests/mpi/mpi_comm_test.cc.
#include "comm/mpi_comm.h"

#include <google/protobuf/message.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>
#include <thread>
#include <utility>

#include "comm/log.h"
#include "comm/mpi_check.h"
#include "comm/world_layout.h"

namespace sieve {
namespace internal {

void FatalMpiError(int code, const char* stmt, const char* file, int line, const char* func) {
  char text[MPI_MAX_ERROR_STRING + 64] = "unknown MPI error";
  int length = 0;
  int error_class = -1;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) {
    std::snprintf(text, sizeof(text), "MPI error code %d", code);
  }
  MPI_Error_class(code, &error_class);
  char message[MPI_MAX_ERROR_STRING + 96];
  std::snprintf(message, sizeof(message), "%s (error code %d, class %d)", text, code, error_class);
  FatalApiError("MPI", stmt, message, file, line, func);
}

}  // namespace internal

namespace comm {
namespace {

constexpr uint32_t kFrameMagic = 0x31465653;  // "SVF1" little-endian

struct FrameHeader {
  uint32_t magic = kFrameMagic;
  uint32_t inline_bytes = 0;
  uint64_t total_bytes = 0;
};
static_assert(sizeof(FrameHeader) == kFrameHeaderBytes);

bool MpiFinalized() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  return finalized != 0;
}

size_t ClampPiece(size_t piece_bytes) {
  SIEVE_CHECK(piece_bytes > 0, "piece_bytes must be positive");
  return std::min(piece_bytes, kMaxPieceBytes);
}

int TagValue(MpiTag tag) { return static_cast<int>(tag); }

// Builds a frame's first message: the header, plus the payload when it rides inline.
std::vector<std::byte> FirstMessage(std::span<const std::byte> bytes, size_t piece_bytes) {
  FrameHeader header;
  header.total_bytes = bytes.size();
  const bool inline_payload = bytes.size() <= std::min(kInlineBytes, piece_bytes);
  if (inline_payload) header.inline_bytes = static_cast<uint32_t>(bytes.size());
  std::vector<std::byte> message(sizeof(header) + header.inline_bytes);
  std::memcpy(message.data(), &header, sizeof(header));
  if (header.inline_bytes > 0) {
    std::memcpy(message.data() + sizeof(header), bytes.data(), header.inline_bytes);
  }
  return message;
}

// Sleeps between polls: 20 us doubling to 1 ms.
class Backoff {
 public:
  void Wait() {
    std::this_thread::sleep_for(delay_);
    delay_ = std::min(delay_ * 2, std::chrono::microseconds(1000));
  }

 private:
  std::chrono::microseconds delay_{20};
};

}  // namespace

int64_t FrameMessageCount(size_t bytes, size_t piece_bytes) {
  piece_bytes = ClampPiece(piece_bytes);
  if (bytes <= std::min(kInlineBytes, piece_bytes)) return 1;
  return 1 + static_cast<int64_t>((bytes + piece_bytes - 1) / piece_bytes);
}

// ---- MpiSendRequest -----------------------------------------------------------------------------

MpiSendRequest::~MpiSendRequest() { Wait(); }

MpiSendRequest::MpiSendRequest(MpiSendRequest&& other) noexcept
    : requests_(std::move(other.requests_)),
      first_message_(std::move(other.first_message_)),
      owned_payload_(std::move(other.owned_payload_)) {
  other.requests_.clear();
}

MpiSendRequest& MpiSendRequest::operator=(MpiSendRequest&& other) noexcept {
  if (this != &other) {
    Wait();
    requests_ = std::move(other.requests_);
    first_message_ = std::move(other.first_message_);
    owned_payload_ = std::move(other.owned_payload_);
    other.requests_.clear();
  }
  return *this;
}

void MpiSendRequest::Wait() {
  if (requests_.empty()) return;
  SIEVE_MPI_CHECK(
      MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE));
  requests_.clear();
  first_message_.clear();
  owned_payload_.reset();
}

bool MpiSendRequest::Test() {
  if (requests_.empty()) return true;
  int done = 0;
  SIEVE_MPI_CHECK(MPI_Testall(static_cast<int>(requests_.size()), requests_.data(), &done,
                              MPI_STATUSES_IGNORE));
  if (done) {
    requests_.clear();
    first_message_.clear();
    owned_payload_.reset();
  }
  return done != 0;
}

// ---- MpiComm: lifetime --------------------------------------------------------------------------

MpiComm::MpiComm(MPI_Comm comm, bool owned) : comm_(comm), owned_(owned) {
  if (comm_ == MPI_COMM_WORLD || comm_ == MPI_COMM_SELF) owned_ = false;
  if (comm_ != MPI_COMM_NULL) {
    SIEVE_MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
    SIEVE_MPI_CHECK(MPI_Comm_size(comm_, &size_));
  } else {
    owned_ = false;
  }
}

MpiComm::~MpiComm() { Reset(); }

void MpiComm::Reset() {
  if (owned_ && comm_ != MPI_COMM_NULL && !MpiFinalized()) {
    SIEVE_MPI_CHECK(MPI_Comm_free(&comm_));
  }
  comm_ = MPI_COMM_NULL;
  owned_ = false;
  rank_ = -1;
  size_ = 0;
}

MpiComm::MpiComm(MpiComm&& other) noexcept
    : comm_(std::exchange(other.comm_, MPI_COMM_NULL)),
      owned_(std::exchange(other.owned_, false)),
      rank_(std::exchange(other.rank_, -1)),
      size_(std::exchange(other.size_, 0)) {}

MpiComm& MpiComm::operator=(MpiComm&& other) noexcept {
  if (this != &other) {
    Reset();
    comm_ = std::exchange(other.comm_, MPI_COMM_NULL);
    owned_ = std::exchange(other.owned_, false);
    rank_ = std::exchange(other.rank_, -1);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

MpiComm MpiComm::World() { return MpiComm(MPI_COMM_WORLD, false); }
MpiComm MpiComm::Borrow(MPI_Comm comm) { return MpiComm(comm, false); }
MpiComm MpiComm::Adopt(MPI_Comm comm) { return MpiComm(comm, true); }

MpiComm MpiComm::Split(int color, int key) const {
  MPI_Comm out = MPI_COMM_NULL;
  SIEVE_MPI_CHECK(MPI_Comm_split(comm_, color < 0 ? MPI_UNDEFINED : color, key, &out));
  return MpiComm(out, true);
}

MpiComm MpiComm::SplitShared() const {
  MPI_Comm out = MPI_COMM_NULL;
  SIEVE_MPI_CHECK(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &out));
  return MpiComm(out, true);
}

MpiComm MpiComm::Dup() const {
  MPI_Comm out = MPI_COMM_NULL;
  SIEVE_MPI_CHECK(MPI_Comm_dup(comm_, &out));
  return MpiComm(out, true);
}

void MpiComm::Barrier() const { SIEVE_MPI_CHECK(MPI_Barrier(comm_)); }

std::string MpiComm::Describe(int source, std::optional<MpiTag> tag) const {
  const std::string from =
      source == kAnySource ? std::string("any rank") : StrFormat("rank %d", source);
  const std::string tag_text = tag ? std::string(MpiTagName(*tag)) : std::string("any-tag");
  return StrFormat("%s frame from %s", tag_text.c_str(), from.c_str());
}

std::string MpiComm::Context() const {
  return StrFormat("[%s comm_rank=%d/%d]", ProcessContextString(), rank_, size_);
}

// ---- frames: send ------------------------------------------------------------------------------

void MpiComm::SendBytes(std::span<const std::byte> bytes, int dest, MpiTag tag,
                        size_t piece_bytes) const {
  piece_bytes = ClampPiece(piece_bytes);
  const std::vector<std::byte> first = FirstMessage(bytes, piece_bytes);
  SIEVE_MPI_CHECK(
      MPI_Send(first.data(), static_cast<int>(first.size()), MPI_BYTE, dest, TagValue(tag), comm_));
  if (first.size() > sizeof(FrameHeader) || bytes.empty()) return;  // inline
  for (size_t offset = 0; offset < bytes.size(); offset += piece_bytes) {
    const size_t n = std::min(piece_bytes, bytes.size() - offset);
    SIEVE_MPI_CHECK(
        MPI_Send(bytes.data() + offset, static_cast<int>(n), MPI_BYTE, dest, TagValue(tag), comm_));
  }
}

MpiSendRequest MpiComm::IsendBytes(std::span<const std::byte> bytes, int dest, MpiTag tag,
                                   size_t piece_bytes) const {
  piece_bytes = ClampPiece(piece_bytes);
  MpiSendRequest request;
  request.first_message_ = FirstMessage(bytes, piece_bytes);
  const bool inline_payload = request.first_message_.size() > sizeof(FrameHeader) || bytes.empty();
  request.requests_.reserve(inline_payload ? 1
                                           : 1 + (bytes.size() + piece_bytes - 1) / piece_bytes);
  MPI_Request r;
  SIEVE_MPI_CHECK(MPI_Isend(request.first_message_.data(),
                            static_cast<int>(request.first_message_.size()), MPI_BYTE, dest,
                            TagValue(tag), comm_, &r));
  request.requests_.push_back(r);
  if (!inline_payload) {
    for (size_t offset = 0; offset < bytes.size(); offset += piece_bytes) {
      const size_t n = std::min(piece_bytes, bytes.size() - offset);
      SIEVE_MPI_CHECK(MPI_Isend(bytes.data() + offset, static_cast<int>(n), MPI_BYTE, dest,
                                TagValue(tag), comm_, &r));
      request.requests_.push_back(r);
    }
  }
  return request;
}

// ---- frames: receive ---------------------------------------------------------------------------

StatusOr<int> MpiComm::RecvFrame(const FrameSink& sink, int source, MpiTag tag,
                                 std::optional<std::chrono::milliseconds> timeout) const {
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = timeout ? start + *timeout : std::chrono::steady_clock::time_point::max();
  auto timed_out = [&] { return timeout && std::chrono::steady_clock::now() >= deadline; };
  const int tag_value = TagValue(tag);

  // 1. Match the first message (header) with a matched probe.
  MPI_Message handle = MPI_MESSAGE_NULL;
  MPI_Status status;
  if (!timeout) {
    SIEVE_MPI_CHECK(MPI_Mprobe(source, tag_value, comm_, &handle, &status));
  } else {
    Backoff backoff;
    for (;;) {
      int found = 0;
      SIEVE_MPI_CHECK(MPI_Improbe(source, tag_value, comm_, &found, &handle, &status));
      if (found) break;
      if (timed_out()) {
        return Status::DeadlineExceeded(StrFormat("%s no %s within %lld ms", Context().c_str(),
                                                  Describe(source, tag).c_str(),
                                                  static_cast<long long>(timeout->count())));
      }
      backoff.Wait();
    }
  }
  const int sender = status.MPI_SOURCE;
  int first_count = 0;
  SIEVE_MPI_CHECK(MPI_Get_count(&status, MPI_BYTE, &first_count));
  std::vector<std::byte> first(static_cast<size_t>(std::max(first_count, 0)));
  SIEVE_MPI_CHECK(MPI_Mrecv(first.data(), first_count, MPI_BYTE, &handle, MPI_STATUS_IGNORE));

  FrameHeader header;
  if (first.size() < sizeof(header)) {
    return Status::DataLoss(StrFormat(
        "%s %s: got a %d-byte message, expected a frame header of %zu bytes or more (was it sent "
        "with MpiComm?)",
        Context().c_str(), Describe(sender, tag).c_str(), first_count, sizeof(header)));
  }
  std::memcpy(&header, first.data(), sizeof(header));
  if (header.magic != kFrameMagic || header.inline_bytes != first.size() - sizeof(header) ||
      header.inline_bytes > header.total_bytes ||
      (header.inline_bytes > 0 && header.inline_bytes != header.total_bytes)) {
    return Status::DataLoss(StrFormat(
        "%s %s: malformed frame header (magic=0x%08x inline=%u total=%llu, message of %d bytes); "
        "expected magic 0x%08x",
        Context().c_str(), Describe(sender, tag).c_str(), header.magic, header.inline_bytes,
        static_cast<unsigned long long>(header.total_bytes), first_count, kFrameMagic));
  }

  // 2. Ask the sink where the payload goes; on error, drain into scratch memory instead.
  Status sink_error;
  std::byte* dest = nullptr;
  std::vector<std::byte> scratch;
  {
    StatusOr<std::byte*> where = sink(header.total_bytes);
    if (where.ok()) {
      dest = *where;
    } else {
      sink_error = where.status().WithContext(Context() + " " + Describe(sender, tag));
    }
  }
  const bool draining = !sink_error.ok();
  if (header.inline_bytes > 0) {
    if (!draining) std::memcpy(dest, first.data() + sizeof(header), header.inline_bytes);
    return draining ? StatusOr<int>(sink_error) : StatusOr<int>(sender);
  }

  // 3. The pieces, straight into place (or into a bounded scratch buffer when draining).
  uint64_t received = 0;
  while (received < header.total_bytes) {
    const uint64_t remaining = header.total_bytes - received;
    size_t want = static_cast<size_t>(std::min<uint64_t>(remaining, kMaxPieceBytes));
    std::byte* into = nullptr;
    if (draining) {
      scratch.resize(std::min(want, size_t{64} << 20));
      want = scratch.size();
      into = scratch.data();
    } else {
      into = dest + received;
    }
    MPI_Status piece_status;
    if (!timeout) {
      SIEVE_MPI_CHECK(MPI_Recv(into, static_cast<int>(want), MPI_BYTE, sender, tag_value, comm_,
                               &piece_status));
    } else {
      MPI_Request request;
      SIEVE_MPI_CHECK(
          MPI_Irecv(into, static_cast<int>(want), MPI_BYTE, sender, tag_value, comm_, &request));
      Backoff backoff;
      for (;;) {
        int done = 0;
        SIEVE_MPI_CHECK(MPI_Test(&request, &done, &piece_status));
        if (done) break;
        if (timed_out()) {
          SIEVE_MPI_CHECK(MPI_Cancel(&request));
          SIEVE_MPI_CHECK(MPI_Wait(&request, MPI_STATUS_IGNORE));
          return Status::DeadlineExceeded(
              StrFormat("%s %s: stalled after %llu of %llu bytes; no further piece within %lld ms",
                        Context().c_str(), Describe(sender, tag).c_str(),
                        static_cast<unsigned long long>(received),
                        static_cast<unsigned long long>(header.total_bytes),
                        static_cast<long long>(timeout->count())));
        }
        backoff.Wait();
      }
    }
    int count = 0;
    SIEVE_MPI_CHECK(MPI_Get_count(&piece_status, MPI_BYTE, &count));
    if (count <= 0 || static_cast<uint64_t>(count) > remaining) {
      return Status::DataLoss(
          StrFormat("%s %s: a piece of %d bytes after %llu of %llu bytes (expected 1..%llu)",
                    Context().c_str(), Describe(sender, tag).c_str(), count,
                    static_cast<unsigned long long>(received),
                    static_cast<unsigned long long>(header.total_bytes),
                    static_cast<unsigned long long>(remaining)));
    }
    received += static_cast<uint64_t>(count);
  }
  if (draining) return sink_error;
  return sender;
}

StatusOr<int> MpiComm::RecvBytes(std::string* out, int source, MpiTag tag) const {
  return RecvFrame(
      [out](uint64_t total) -> StatusOr<std::byte*> {
        out->resize(total);
        return reinterpret_cast<std::byte*>(out->data());
      },
      source, tag, std::nullopt);
}

StatusOr<int> MpiComm::RecvBytesWithDeadline(std::string* out, int source, MpiTag tag,
                                             std::chrono::milliseconds timeout) const {
  return RecvFrame(
      [out](uint64_t total) -> StatusOr<std::byte*> {
        out->resize(total);
        return reinterpret_cast<std::byte*>(out->data());
      },
      source, tag, timeout);
}

StatusOr<int> MpiComm::RecvInto(std::span<std::byte> out, int source, MpiTag tag) const {
  return RecvFrame(
      [out](uint64_t total) -> StatusOr<std::byte*> {
        if (total != out.size()) {
          return Status::DataLoss(StrFormat("payload of %llu bytes, expected exactly %zu",
                                            static_cast<unsigned long long>(total), out.size()));
        }
        return out.data();
      },
      source, tag, std::nullopt);
}

ProbeResult MpiComm::Probe(int source, std::optional<MpiTag> tag) const {
  MPI_Status status;
  SIEVE_MPI_CHECK(MPI_Probe(source, tag ? TagValue(*tag) : MPI_ANY_TAG, comm_, &status));
  return ProbeResult{status.MPI_SOURCE, static_cast<MpiTag>(status.MPI_TAG)};
}

std::optional<ProbeResult> MpiComm::Iprobe(int source, std::optional<MpiTag> tag) const {
  MPI_Status status;
  int found = 0;
  SIEVE_MPI_CHECK(MPI_Iprobe(source, tag ? TagValue(*tag) : MPI_ANY_TAG, comm_, &found, &status));
  if (!found) return std::nullopt;
  return ProbeResult{status.MPI_SOURCE, static_cast<MpiTag>(status.MPI_TAG)};
}

StatusOr<ProbeResult> MpiComm::ProbeWithDeadline(int source, std::optional<MpiTag> tag,
                                                 std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  Backoff backoff;
  for (;;) {
    if (std::optional<ProbeResult> found = Iprobe(source, tag)) return *found;
    if (std::chrono::steady_clock::now() >= deadline) {
      return Status::DeadlineExceeded(StrFormat("%s no %s within %lld ms", Context().c_str(),
                                                Describe(source, tag).c_str(),
                                                static_cast<long long>(timeout.count())));
    }
    backoff.Wait();
  }
}

// ---- protobuf ----------------------------------------------------------------------------------

namespace {

Status Serialize(const google::protobuf::Message& message, std::string* out) {
  const size_t size = message.ByteSizeLong();
  if (size > static_cast<size_t>(INT_MAX) || !message.SerializeToString(out)) {
    return Status::InvalidArgument(
        StrFormat("[%s] cannot serialize %s of %zu bytes (protobuf's "
                  "limit is 2 GiB; send bulk data as a vector)",
                  ProcessContextString(), std::string(message.GetTypeName()).c_str(), size));
  }
  return Status::Ok();
}

Status ParseFrom(const std::string& bytes, google::protobuf::Message* message, const char* what,
                 int sender) {
  if (!message->ParseFromString(bytes)) {
    return Status::DataLoss(
        StrFormat("[%s] cannot parse %s from rank %d (%s, %zu bytes)", ProcessContextString(),
                  std::string(message->GetTypeName()).c_str(), sender, what, bytes.size()));
  }
  return Status::Ok();
}

}  // namespace

Status MpiComm::Send(const google::protobuf::Message& message, int dest, MpiTag tag) const {
  std::string bytes;
  SIEVE_RETURN_IF_ERROR(Serialize(message, &bytes));
  SendBytes(std::string_view(bytes), dest, tag);
  return Status::Ok();
}

MpiSendRequest MpiComm::IsendMessage(const google::protobuf::Message& message, int dest, MpiTag tag,
                                     Status* status) const {
  auto bytes = std::make_unique<std::string>();
  *status = Serialize(message, bytes.get());
  if (!status->ok()) return MpiSendRequest();
  MpiSendRequest request =
      IsendBytes(std::as_bytes(std::span(bytes->data(), bytes->size())), dest, tag);
  request.owned_payload_ = std::move(bytes);
  return request;
}

StatusOr<int> MpiComm::Recv(google::protobuf::Message* message, int source, MpiTag tag) const {
  std::string bytes;
  SIEVE_ASSIGN_OR_RETURN(const int sender, RecvBytes(&bytes, source, tag));
  message->Clear();
  SIEVE_RETURN_IF_ERROR(ParseFrom(bytes, message, std::string(MpiTagName(tag)).c_str(), sender));
  return sender;
}

StatusOr<int> MpiComm::RecvWithDeadline(google::protobuf::Message* message, int source, MpiTag tag,
                                        std::chrono::milliseconds timeout) const {
  std::string bytes;
  SIEVE_ASSIGN_OR_RETURN(const int sender, RecvBytesWithDeadline(&bytes, source, tag, timeout));
  message->Clear();
  SIEVE_RETURN_IF_ERROR(ParseFrom(bytes, message, std::string(MpiTagName(tag)).c_str(), sender));
  return sender;
}

Status MpiComm::Bcast(google::protobuf::Message* message, int root) const {
  std::string bytes;
  if (rank_ == root) {
    // A root that cannot serialize still takes part (with an empty payload), so no rank hangs.
    Status serialized = Serialize(*message, &bytes);
    const uint64_t ok = serialized.ok() ? 1 : 0;
    BcastLength(ok, root);
    if (!serialized.ok()) return serialized;
  } else if (BcastLength(0, root) == 0) {
    return Status::Internal(StrFormat("[%s] the root (rank %d) failed to serialize %s for Bcast",
                                      ProcessContextString(), root,
                                      std::string(message->GetTypeName()).c_str()));
  }
  Bcast(&bytes, root);
  if (rank_ == root) return Status::Ok();
  message->Clear();
  return ParseFrom(bytes, message, "Bcast", root);
}

// ---- collectives -------------------------------------------------------------------------------

uint64_t MpiComm::BcastLength(uint64_t length, int root) const {
  SIEVE_MPI_CHECK(MPI_Bcast(&length, 1, MPI_UINT64_T, root, comm_));
  return length;
}

void MpiComm::BcastPayload(void* data, size_t bytes, int root, size_t piece_bytes) const {
  // Every rank must use the same piece size: take the root's.
  uint64_t piece = ClampPiece(piece_bytes);
  SIEVE_MPI_CHECK(MPI_Bcast(&piece, 1, MPI_UINT64_T, root, comm_));
  auto* base = static_cast<std::byte*>(data);
  for (size_t offset = 0; offset < bytes; offset += piece) {
    const size_t n = std::min<size_t>(piece, bytes - offset);
    SIEVE_MPI_CHECK(MPI_Bcast(base + offset, static_cast<int>(n), MPI_BYTE, root, comm_));
  }
}

void MpiComm::Bcast(std::string* bytes, int root, size_t piece_bytes) const {
  const uint64_t length = BcastLength(bytes->size(), root);
  if (rank_ != root) bytes->resize(length);
  BcastPayload(bytes->data(), length, root, piece_bytes);
}

std::vector<std::string> MpiComm::Gather(std::string_view mine, int root,
                                         size_t piece_bytes) const {
  piece_bytes = ClampPiece(piece_bytes);
  // Everyone learns every length, so every rank picks the same path.
  std::vector<uint64_t> lengths(size_);
  const uint64_t my_length = mine.size();
  SIEVE_MPI_CHECK(
      MPI_Allgather(&my_length, 1, MPI_UINT64_T, lengths.data(), 1, MPI_UINT64_T, comm_));
  uint64_t total = 0;
  for (uint64_t n : lengths) total += n;

  std::vector<std::string> out;
  if (rank_ == root) out.resize(size_);
  if (total <= piece_bytes) {
    std::vector<int> counts(size_), displs(size_);
    int offset = 0;
    for (int r = 0; r < size_; ++r) {
      counts[r] = static_cast<int>(lengths[r]);
      displs[r] = offset;
      offset += counts[r];
    }
    std::string all(rank_ == root ? total : 0, '\0');
    SIEVE_MPI_CHECK(MPI_Gatherv(mine.data(), static_cast<int>(mine.size()), MPI_BYTE, all.data(),
                                counts.data(), displs.data(), MPI_BYTE, root, comm_));
    if (rank_ == root) {
      for (int r = 0; r < size_; ++r) out[r] = all.substr(displs[r], counts[r]);
    }
    return out;
  }
  // Large: one frame per rank, received in rank order on the reserved tag.
  if (rank_ != root) {
    SendBytes(mine, root, MpiTag::kCollective, piece_bytes);
    return out;
  }
  out[root] = std::string(mine);
  for (int r = 0; r < size_; ++r) {
    if (r == root) continue;
    StatusOr<int> got = RecvBytes(&out[r], r, MpiTag::kCollective);
    SIEVE_CHECK(got.ok(), "Gather: %s", got.status().ToString().c_str());
    SIEVE_CHECK(out[r].size() == lengths[r], "Gather: rank %d sent %zu bytes, announced %llu", r,
                out[r].size(), static_cast<unsigned long long>(lengths[r]));
  }
  return out;
}

MpiComm MakeGpuComm(const MpiComm& world, const WorldLayout& layout) {
  SIEVE_CHECK(world.Size() == layout.NumRanks() && world.Rank() == layout.Rank(),
              "MakeGpuComm: communicator rank %d/%d does not match the layout's %d/%d",
              world.Rank(), world.Size(), layout.Rank(), layout.NumRanks());
  return world.Split(layout.IsWorker() ? 0 : -1, layout.GpuRank());
}

// ---- MpiRuntime --------------------------------------------------------------------------------

MpiRuntime::MpiRuntime(int* argc, char*** argv) {
  int initialized = 0;
  SIEVE_MPI_CHECK(MPI_Initialized(&initialized));
  if (!initialized) {
    SIEVE_MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided_));
    owns_ = true;
  } else {
    SIEVE_MPI_CHECK(MPI_Query_thread(&provided_));
  }
  SIEVE_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  int rank = -1;
  SIEVE_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
  SetProcessContext(rank, -1);
  if (provided_ < MPI_THREAD_MULTIPLE) {
    SIEVE_LOG_WARN("MPI does not provide MPI_THREAD_MULTIPLE", "provided=%s",
                   std::string(ThreadLevelName(provided_)).c_str());
  } else {
    SIEVE_LOG_DEBUG("MPI initialized", "provided=%s",
                    std::string(ThreadLevelName(provided_)).c_str());
  }
}

MpiRuntime::~MpiRuntime() {
  if (owns_ && !MpiFinalized()) MPI_Finalize();
}

std::string_view MpiRuntime::ThreadLevelName(int level) {
  switch (level) {
    case MPI_THREAD_SINGLE:
      return "MPI_THREAD_SINGLE";
    case MPI_THREAD_FUNNELED:
      return "MPI_THREAD_FUNNELED";
    case MPI_THREAD_SERIALIZED:
      return "MPI_THREAD_SERIALIZED";
    case MPI_THREAD_MULTIPLE:
      return "MPI_THREAD_MULTIPLE";
  }
  return "unknown";
}

}  // namespace comm
}  // namespace sieve
