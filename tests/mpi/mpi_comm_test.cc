// MpiComm under mpirun (np = 2 and 4): typed tags, protobuf frames, multi-piece vectors and the
// wire format, exact-size receives with draining, Gather (both paths), Bcast, Isend/Probe, and
// RecvWithDeadline timing out. Data is verifiable (rank-dependent small integers); wrong values
// are counted per rank and summed over the job (STYLE rule 20).
//
// Run: launch/run_mpi_test.sh build-comm/tests/sieve_mpi_tests 4 --gtest_filter='MpiComm*'
#include "comm/mpi_comm.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "comm/world_layout.h"
#include "proto/sieve.pb.h"
#include "tests/mpi/mpi_test_util.h"

namespace sieve::testing {
namespace {

using comm::MpiComm;
using comm::MpiSendRequest;
using comm::MpiTag;

// Small integers in [-125, 125]: exact in every type the system moves.
int32_t Value(int rank, int64_t i) { return static_cast<int32_t>((rank * 7 + i * 13) % 251) - 125; }

class MpiCommTest : public MpiTest {};

TEST_F(MpiCommTest, FrameMessageCount) {
  EXPECT_EQ(comm::FrameMessageCount(0, 1024), 1);
  EXPECT_EQ(comm::FrameMessageCount(100, 1024), 1);
  EXPECT_EQ(comm::FrameMessageCount(1024, 1024), 1);
  EXPECT_EQ(comm::FrameMessageCount(1025, 1024), 3);
  EXPECT_EQ(comm::FrameMessageCount(5000, 1024), 6);
  EXPECT_EQ(comm::FrameMessageCount(comm::kInlineBytes + 1, comm::kDefaultPieceBytes), 2);
  EXPECT_EQ(comm::FrameMessageCount(size_t{5} << 30, comm::kDefaultPieceBytes), 6)
      << "5 GiB moves as 5 pieces of 1 GiB (each below INT32_MAX)";
}

TEST_F(MpiCommTest, TagsRoundTrip) {
  // Rank 0 sends every tag to every other rank; receivers take them in reverse tag order, so
  // each receive must match by tag, not by arrival.
  long long wrong = 0;
  std::vector<MpiTag> tags;
  for (MpiTag tag : comm::kAllMpiTags) {
    if (tag != MpiTag::kCollective) tags.push_back(tag);
  }
  if (rank_ == 0) {
    std::vector<std::string> payloads;
    payloads.reserve(tags.size() * size_);
    std::vector<MpiSendRequest> requests;
    for (int dest = 1; dest < size_; ++dest) {
      for (MpiTag tag : tags) {
        payloads.push_back(std::string(comm::MpiTagName(tag)) + "->" + std::to_string(dest));
        const std::string& p = payloads.back();
        requests.push_back(
            world_.IsendBytes(std::as_bytes(std::span(p.data(), p.size())), dest, tag));
      }
    }
    for (MpiSendRequest& r : requests) r.Wait();
  } else {
    for (auto it = tags.rbegin(); it != tags.rend(); ++it) {
      std::string got;
      StatusOr<int> source = world_.RecvBytes(&got, 0, *it);
      const std::string want = std::string(comm::MpiTagName(*it)) + "->" + std::to_string(rank_);
      if (!source.ok() || *source != 0 || got != want) {
        ++wrong;
        ADD_FAILURE() << "tag " << comm::MpiTagName(*it) << ": got '" << got << "' want '" << want
                      << "'";
      }
    }
    EXPECT_FALSE(world_.Iprobe(MpiComm::kAnySource, std::nullopt).has_value())
        << "nothing may be left over";
  }
  // Many to one with kAnySource: each worker sends its rank on kHeartbeat.
  if (rank_ == 0) {
    std::vector<int> seen(size_, 0);
    for (int i = 1; i < size_; ++i) {
      std::vector<int32_t> v;
      StatusOr<int> source = world_.Recv(&v, MpiComm::kAnySource, MpiTag::kHeartbeat);
      if (!source.ok() || v.size() != 1 || v[0] != *source) {
        ++wrong;
      } else {
        ++seen[*source];
      }
    }
    for (int r = 1; r < size_; ++r) wrong += seen[r] != 1;
  } else {
    world_.Send(std::vector<int32_t>{rank_}, 0, MpiTag::kHeartbeat);
  }
  EXPECT_EQ(AllreduceSum(wrong), 0);
  for (MpiTag tag : comm::kAllMpiTags) {
    EXPECT_TRUE(comm::IsKnownMpiTag(static_cast<int>(tag)));
    EXPECT_NE(comm::MpiTagName(tag), "unknown");
  }
  EXPECT_FALSE(comm::IsKnownMpiTag(0));
}

TEST_F(MpiCommTest, ProtobufSendRecv) {
  // Workers send a request to rank 0 (any source); rank 0 answers each with a response.
  long long wrong = 0;
  if (rank_ == 0) {
    for (int i = 1; i < size_; ++i) {
      proto::GenerateRequest request;
      StatusOr<int> source = world_.Recv(&request, MpiComm::kAnySource, MpiTag::kPlan);
      ASSERT_TRUE(source.ok()) << source.status().ToString();
      const int r = *source;
      wrong += request.request_id() != "req-" + std::to_string(r);
      wrong += request.document_ids().ids_size() != 100 + r;
      for (int k = 0; k < request.document_ids().ids_size(); ++k) {
        wrong += request.document_ids().ids(k) != Value(r, k);
      }
      proto::GenerateResponse response;
      response.set_request_id(request.request_id());
      response.set_text("answer for " + std::to_string(r));
      response.mutable_accounting()->set_workers(r);
      Status sent = world_.Send(response, r, MpiTag::kResponse);
      EXPECT_TRUE(sent.ok()) << sent.ToString();
    }
  } else {
    proto::GenerateRequest request;
    request.set_request_id("req-" + std::to_string(rank_));
    for (int k = 0; k < 100 + rank_; ++k) request.mutable_document_ids()->add_ids(Value(rank_, k));
    Status sent = world_.Send(request, 0, MpiTag::kPlan);
    EXPECT_TRUE(sent.ok()) << sent.ToString();
    proto::GenerateResponse response;
    StatusOr<int> source = world_.Recv(&response, 0, MpiTag::kResponse);
    ASSERT_TRUE(source.ok()) << source.status().ToString();
    wrong += response.text() != "answer for " + std::to_string(rank_);
    wrong += response.accounting().workers() != rank_;
  }
  EXPECT_EQ(AllreduceSum(wrong), 0);
}

TEST_F(MpiCommTest, ParseFailureIsDataLossNamingTypeAndSender) {
  if (rank_ == 1) {
    // An over-long varint: no protobuf message parses from it.
    const std::string garbage(12, '\xff');
    world_.SendBytes(garbage, 0, MpiTag::kError);
  } else if (rank_ == 0) {
    proto::Error error;
    StatusOr<int> source = world_.Recv(&error, 1, MpiTag::kError);
    ASSERT_FALSE(source.ok());
    EXPECT_EQ(source.status().code(), StatusCode::kDataLoss);
    const std::string m = source.status().message();
    EXPECT_NE(m.find("sieve.proto.Error"), std::string::npos) << m;
    EXPECT_NE(m.find("from rank 1"), std::string::npos) << m;
    EXPECT_NE(m.find("kError"), std::string::npos) << m;
  }
}

TEST_F(MpiCommTest, ForeignMessageIsDataLoss) {
  // A message that is not a frame (3 raw bytes) on a typed tag.
  if (rank_ == 1) {
    const char raw[3] = {1, 2, 3};
    MPI_Send(raw, 3, MPI_BYTE, 0, static_cast<int>(MpiTag::kCancel), MPI_COMM_WORLD);
  } else if (rank_ == 0) {
    std::string out;
    StatusOr<int> source = world_.RecvBytes(&out, 1, MpiTag::kCancel);
    ASSERT_FALSE(source.ok());
    EXPECT_EQ(source.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(source.status().message().find("kCancel frame from rank 1"), std::string::npos)
        << source.status().message();
    EXPECT_NE(source.status().message().find("frame header"), std::string::npos);
  }
}

TEST_F(MpiCommTest, VectorSendRecvManyPieces) {
  // Ring: rank r sends 10007 int32 (40028 bytes) to r+1 in pieces of 1000 bytes (41 pieces,
  // splitting elements across pieces), and a vector of doubles in pieces of 24 bytes.
  constexpr int64_t kCount = 10007;
  constexpr size_t kPiece = 1000;
  const int next = (rank_ + 1) % size_;
  const int prev = (rank_ + size_ - 1) % size_;
  std::vector<int32_t> mine(kCount);
  for (int64_t i = 0; i < kCount; ++i) mine[i] = Value(rank_, i);
  std::vector<double> doubles = {rank_ + 0.5, -1.0 * rank_, 3.0, 4.0, 5.0, 6.0, 7.0};

  const auto start = std::chrono::steady_clock::now();
  std::vector<int32_t> got;
  std::vector<double> got_doubles;
  auto send = [&] {
    world_.Send(mine, next, MpiTag::kKvData, kPiece);
    world_.Send(doubles, next, MpiTag::kKvManifest, 24);
  };
  auto recv = [&] {
    StatusOr<int> a = world_.Recv(&got, prev, MpiTag::kKvData);
    StatusOr<int> b = world_.Recv(&got_doubles, prev, MpiTag::kKvManifest);
    EXPECT_TRUE(a.ok() && b.ok()) << a.status().ToString() << b.status().ToString();
  };
  if (rank_ % 2 == 0) {
    send();
    recv();
  } else {
    recv();
    send();
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  long long wrong = 0;
  if (got.size() != static_cast<size_t>(kCount)) wrong += kCount;
  for (size_t i = 0; i < got.size(); ++i) wrong += got[i] != Value(prev, static_cast<int64_t>(i));
  const std::vector<double> want_doubles = {prev + 0.5, -1.0 * prev, 3.0, 4.0, 5.0, 6.0, 7.0};
  wrong += got_doubles != want_doubles;
  const long long total_wrong = AllreduceSum(wrong);
  if (rank_ == 0) {
    std::printf("vector ring: %lld bytes/rank in %lld messages, %.3f ms, %.1f MB/s, #wrong %lld\n",
                static_cast<long long>(kCount * sizeof(int32_t)),
                static_cast<long long>(comm::FrameMessageCount(kCount * sizeof(int32_t), kPiece)),
                seconds * 1e3, kCount * sizeof(int32_t) / seconds / 1e6, total_wrong);
  }
  EXPECT_EQ(total_wrong, 0);
}

TEST_F(MpiCommTest, WireFormatHeaderThenPieces) {
  // Rank 1 receives a 5000-byte frame (pieces of 1024) message by message with raw MPI: a
  // 16-byte header, then 1024, 1024, 1024, 1024, 904.
  constexpr size_t kBytes = 5000;
  constexpr size_t kPiece = 1024;
  const int tag = static_cast<int>(MpiTag::kTokens);
  if (rank_ == 0) {
    std::vector<uint8_t> data(kBytes);
    for (size_t i = 0; i < kBytes; ++i) data[i] = static_cast<uint8_t>(i % 251);
    world_.Send(data, 1, MpiTag::kTokens, kPiece);
  } else if (rank_ == 1) {
    std::vector<int> counts;
    std::vector<uint8_t> payload;
    MPI_Status status;
    int count = 0;
    uint8_t header[64];
    MPI_Recv(header, sizeof(header), MPI_BYTE, 0, tag, MPI_COMM_WORLD, &status);
    MPI_Get_count(&status, MPI_BYTE, &count);
    counts.push_back(count);
    uint64_t total = 0;
    std::memcpy(&total, header + 8, sizeof(total));
    EXPECT_EQ(total, kBytes);
    while (payload.size() < total) {
      std::vector<uint8_t> piece(kPiece * 2);
      MPI_Recv(piece.data(), static_cast<int>(piece.size()), MPI_BYTE, 0, tag, MPI_COMM_WORLD,
               &status);
      MPI_Get_count(&status, MPI_BYTE, &count);
      counts.push_back(count);
      payload.insert(payload.end(), piece.begin(), piece.begin() + count);
    }
    EXPECT_EQ(counts, std::vector<int>({16, 1024, 1024, 1024, 1024, 904}));
    long long wrong = 0;
    for (size_t i = 0; i < payload.size(); ++i) wrong += payload[i] != i % 251;
    EXPECT_EQ(wrong, 0);
  }
}

TEST_F(MpiCommTest, RecvIntoChecksSizeAndDrains) {
  // A 100-byte frame into a 50-byte buffer fails and is drained; the next frame on the same tag
  // then arrives intact, and an exact-size buffer is filled in place.
  if (rank_ == 1) {
    std::vector<uint8_t> big(100, 7);
    world_.Send(big, 0, MpiTag::kKvData, /*piece_bytes=*/16);
    std::vector<uint8_t> exact(64);
    for (size_t i = 0; i < exact.size(); ++i) exact[i] = static_cast<uint8_t>(i);
    world_.Send(exact, 0, MpiTag::kKvData, /*piece_bytes=*/16);
  } else if (rank_ == 0) {
    std::vector<std::byte> small(50);
    StatusOr<int> bad = world_.RecvInto(small, 1, MpiTag::kKvData);
    ASSERT_FALSE(bad.ok());
    EXPECT_EQ(bad.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(bad.status().message().find("payload of 100 bytes, expected exactly 50"),
              std::string::npos)
        << bad.status().message();
    std::vector<std::byte> exact(64);
    StatusOr<int> good = world_.RecvInto(exact, 1, MpiTag::kKvData);
    ASSERT_TRUE(good.ok()) << good.status().ToString();
    long long wrong = 0;
    for (size_t i = 0; i < exact.size(); ++i) wrong += exact[i] != static_cast<std::byte>(i);
    EXPECT_EQ(wrong, 0);
  }
}

TEST_F(MpiCommTest, GatherBothPaths) {
  // Rank r contributes r*37+1 bytes of ('a'+r); root is the last rank. Piece size 1 GiB takes
  // the MPI_Gatherv path, 64 bytes the frame-per-rank path.
  const int root = size_ - 1;
  const std::string mine(rank_ * 37 + 1, static_cast<char>('a' + rank_));
  for (size_t piece : {comm::kDefaultPieceBytes, size_t{64}}) {
    const std::vector<std::string> all = world_.Gather(mine, root, piece);
    long long wrong = 0;
    if (rank_ == root) {
      if (all.size() != static_cast<size_t>(size_)) wrong += size_;
      for (int r = 0; r < static_cast<int>(all.size()); ++r) {
        wrong += all[r] != std::string(r * 37 + 1, static_cast<char>('a' + r));
      }
    } else {
      wrong += !all.empty();
    }
    EXPECT_EQ(AllreduceSum(wrong), 0) << "piece_bytes=" << piece;
  }
  // Empty contributions are fine too.
  const std::vector<std::string> empty = world_.Gather("", 0);
  if (rank_ == 0) {
    ASSERT_EQ(empty.size(), static_cast<size_t>(size_));
    for (const std::string& s : empty) EXPECT_TRUE(s.empty());
  }
}

TEST_F(MpiCommTest, BcastVectorStringAndMessage) {
  const int root = 1;
  std::vector<int16_t> v;
  if (rank_ == root) {
    for (int i = 0; i < 3001; ++i) v.push_back(static_cast<int16_t>(Value(root, i)));
  } else {
    v.assign(5, 99);  // replaced, whatever its size
  }
  world_.Bcast(&v, root, /*piece_bytes=*/100);  // 61 pieces
  long long wrong = v.size() != 3001u;
  for (size_t i = 0; i < v.size(); ++i) wrong += v[i] != Value(root, static_cast<int64_t>(i));

  std::string text = rank_ == 0 ? std::string("plan for everyone") : std::string();
  world_.Bcast(&text, 0);
  wrong += text != "plan for everyone";

  proto::GenerateRequest request;
  if (rank_ == 0) {
    request.set_request_id("bcast");
    request.set_query_text("what?");
    request.mutable_sieve()->set_keep_chunks(3);
  }
  Status status = world_.Bcast(&request, 0);
  EXPECT_TRUE(status.ok()) << status.ToString();
  wrong += request.request_id() != "bcast" || request.query_text() != "what?" ||
           request.sieve().keep_chunks() != 3;
  EXPECT_EQ(AllreduceSum(wrong), 0);
}

TEST_F(MpiCommTest, IsendMessageAndProbeAnyTag) {
  // Workers post a message without blocking; rank 0 dispatches on the probed tag.
  if (rank_ == 0) {
    int errors = 0;
    int heartbeats = 0;
    for (int i = 0; i < 2 * (size_ - 1); ++i) {
      comm::ProbeResult probe = world_.Probe(MpiComm::kAnySource, std::nullopt);
      if (probe.tag == MpiTag::kError) {
        proto::Error error;
        StatusOr<int> source = world_.Recv(&error, probe.source, probe.tag);
        ASSERT_TRUE(source.ok()) << source.status().ToString();
        EXPECT_EQ(error.message(), "worker " + std::to_string(*source) + " failed");
        ++errors;
      } else {
        ASSERT_EQ(probe.tag, MpiTag::kHeartbeat);
        std::string bytes;
        ASSERT_TRUE(world_.RecvBytes(&bytes, probe.source, probe.tag).ok());
        EXPECT_EQ(bytes, "alive");
        ++heartbeats;
      }
    }
    EXPECT_EQ(errors, size_ - 1);
    EXPECT_EQ(heartbeats, size_ - 1);
  } else {
    proto::Error error;
    error.set_code(proto::INTERNAL);
    error.set_message("worker " + std::to_string(rank_) + " failed");
    Status status;
    MpiSendRequest request = world_.IsendMessage(error, 0, MpiTag::kError, &status);
    ASSERT_TRUE(status.ok()) << status.ToString();
    error.set_message("changed after Isend: must not be what arrives");
    const std::string alive = "alive";
    MpiSendRequest heartbeat = world_.IsendBytes(
        std::as_bytes(std::span(alive.data(), alive.size())), 0, MpiTag::kHeartbeat);
    MpiSendRequest moved = std::move(request);  // in flight requests move safely
    EXPECT_TRUE(request.Done());
    moved.Wait();
    heartbeat.Wait();
    EXPECT_TRUE(moved.Done() && heartbeat.Test());
  }
}

TEST_F(MpiCommTest, RecvWithDeadlineTimesOutNamingRankAndTag) {
  using std::chrono::milliseconds;
  if (rank_ == 0) {
    proto::Error scores;
    const auto start = std::chrono::steady_clock::now();
    StatusOr<int> r = world_.RecvWithDeadline(&scores, 1, MpiTag::kChunkScores, milliseconds(200));
    const auto waited = std::chrono::steady_clock::now() - start;
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kDeadlineExceeded);
    const std::string m = r.status().message();
    EXPECT_NE(m.find("no kChunkScores frame from rank 1 within 200 ms"), std::string::npos) << m;
    EXPECT_NE(m.find("rank=0"), std::string::npos) << "names who waited: " << m;
    EXPECT_GE(waited, milliseconds(200));
    EXPECT_LT(waited, milliseconds(5000));

    StatusOr<comm::ProbeResult> p =
        world_.ProbeWithDeadline(MpiComm::kAnySource, std::nullopt, milliseconds(50));
    ASSERT_FALSE(p.ok());
    EXPECT_NE(p.status().message().find("no any-tag frame from any rank within 50 ms"),
              std::string::npos)
        << p.status().message();
  }
  world_.Barrier();
  // Now rank 1 does send, and the same call succeeds well within its deadline.
  if (rank_ == 1) {
    proto::Error scores;
    scores.set_message("late but alive");
    ASSERT_TRUE(world_.Send(scores, 0, MpiTag::kChunkScores).ok());
  } else if (rank_ == 0) {
    proto::Error scores;
    StatusOr<int> r =
        world_.RecvWithDeadline(&scores, 1, MpiTag::kChunkScores, milliseconds(30000));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(*r, 1);
    EXPECT_EQ(scores.message(), "late but alive");
  }
}

TEST_F(MpiCommTest, LargeVectorRoundTrip) {
  // 8 MiB from rank 0 to the last rank and back (default piece size; used by the two-host test
  // to show traffic on the veth link).
  constexpr size_t kCount = size_t{2} << 20;  // int32 -> 8 MiB
  const int last = size_ - 1;
  long long wrong = 0;
  if (rank_ == 0) {
    std::vector<int32_t> out(kCount);
    for (size_t i = 0; i < kCount; ++i) out[i] = Value(0, static_cast<int64_t>(i));
    const auto start = std::chrono::steady_clock::now();
    world_.Send(out, last, MpiTag::kKvData);
    std::vector<int32_t> back;
    ASSERT_TRUE(world_.Recv(&back, last, MpiTag::kKvData).ok());
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    wrong += back != out;
    std::printf("8 MiB round trip 0 <-> %d: %.2f ms, %.1f MB/s\n", last, seconds * 1e3,
                2.0 * kCount * sizeof(int32_t) / seconds / 1e6);
  } else if (rank_ == last) {
    std::vector<int32_t> in;
    ASSERT_TRUE(world_.Recv(&in, 0, MpiTag::kKvData).ok());
    for (size_t i = 0; i < in.size(); ++i) wrong += in[i] != Value(0, static_cast<int64_t>(i));
    world_.Send(in, 0, MpiTag::kKvData);
  }
  EXPECT_EQ(AllreduceSum(wrong), 0);
}

TEST_F(MpiCommTest, SplitDupAndMove) {
  MpiComm halves = world_.Split(rank_ % 2, rank_);
  EXPECT_EQ(halves.Size(), (size_ + 1 - rank_ % 2) / 2);
  EXPECT_EQ(halves.Rank(), rank_ / 2);
  MpiComm left_out = world_.Split(rank_ == 0 ? -1 : 0, rank_);
  EXPECT_EQ(left_out.IsNull(), rank_ == 0);
  MpiComm dup = world_.Dup();
  EXPECT_EQ(dup.Rank(), rank_);
  MpiComm moved = std::move(dup);
  EXPECT_TRUE(dup.IsNull());
  EXPECT_EQ(moved.Size(), size_);
  moved.Barrier();
  MpiComm node = world_.SplitShared();
  EXPECT_GE(node.Size(), 1);
}

}  // namespace
}  // namespace sieve::testing
