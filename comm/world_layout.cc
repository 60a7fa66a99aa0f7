// WorldLayout: validation and the rank arithmetic. See world_layout.h.
// Tested by tests/unit/comm/world_layout_test.cc.
#include "comm/world_layout.h"

#include <algorithm>
#include <charconv>
#include <map>

namespace sieve::comm {

StatusOr<WorldLayout> WorldLayout::Create(int rank, std::vector<int> node_of_rank,
                                          std::vector<int> decode_ranks, int devices_per_node) {
  const int num_ranks = static_cast<int>(node_of_rank.size());
  if (num_ranks == 0) {
    return Status::InvalidArgument(
        "world layout: node_of_rank is empty (expected one entry per rank)");
  }
  if (rank < 0 || rank >= num_ranks) {
    return Status::InvalidArgument(
        StrFormat("world layout: rank=%d outside [0, %d) (the job has %d ranks)", rank, num_ranks,
                  num_ranks));
  }
  if (devices_per_node < 0) {
    return Status::InvalidArgument(StrFormat(
        "world layout: devices_per_node=%d (expected >= 0; 0 = CPU backend)", devices_per_node));
  }

  WorldLayout layout;
  layout.rank_ = rank;
  layout.devices_per_node_ = devices_per_node;

  // Normalize node identifiers to 0.. in order of each node's lowest rank.
  std::map<int, int> index_of_id;
  layout.node_index_.resize(num_ranks);
  for (int r = 0; r < num_ranks; ++r) {
    if (node_of_rank[r] < 0) {
      return Status::InvalidArgument(
          StrFormat("world layout: node_of_rank[%d]=%d (expected a non-negative node id)", r,
                    node_of_rank[r]));
    }
    auto [it, inserted] =
        index_of_id.emplace(node_of_rank[r], static_cast<int>(index_of_id.size()));
    layout.node_index_[r] = it->second;
  }
  layout.num_nodes_ = static_cast<int>(index_of_id.size());

  // Local ranks (coordinator included) and the local index among GPU ranks.
  std::vector<int> ranks_on_node(layout.num_nodes_, 0);
  std::vector<int> gpu_ranks_on_node(layout.num_nodes_, 0);
  layout.gpu_local_.assign(num_ranks, -1);
  for (int r = 0; r < num_ranks; ++r) {
    const int node = layout.node_index_[r];
    if (r == rank) layout.local_rank_ = ranks_on_node[node];
    ++ranks_on_node[node];
    const bool is_gpu_rank = r > 0 || num_ranks == 1;
    if (is_gpu_rank) layout.gpu_local_[r] = gpu_ranks_on_node[node]++;
  }
  layout.local_size_ = ranks_on_node[layout.node_index_[rank]];

  // Decode ranks: default the last worker.
  if (decode_ranks.empty()) decode_ranks.push_back(num_ranks - 1);
  std::sort(decode_ranks.begin(), decode_ranks.end());
  for (size_t i = 0; i < decode_ranks.size(); ++i) {
    const int d = decode_ranks[i];
    if (i > 0 && decode_ranks[i - 1] == d) {
      return Status::InvalidArgument(
          StrFormat("world layout: decode rank %d given twice (expected distinct ranks)", d));
    }
    if (num_ranks == 1) {
      if (d != 0) {
        return Status::InvalidArgument(StrFormat(
            "world layout: decode rank %d, but the job has 1 rank (expected 0 or none)", d));
      }
      continue;
    }
    if (d == 0) {
      return Status::InvalidArgument(
          "world layout: decode rank 0 is the coordinator (expected a worker rank in [1, " +
          std::to_string(num_ranks - 1) + "])");
    }
    if (d < 0 || d >= num_ranks) {
      return Status::InvalidArgument(
          StrFormat("world layout: decode rank %d outside the workers [1, %d] of a %d-rank job", d,
                    num_ranks - 1, num_ranks));
    }
  }
  layout.decode_ranks_ = std::move(decode_ranks);
  return layout;
}

bool WorldLayout::IsDecodeRank(int r) const {
  return std::binary_search(decode_ranks_.begin(), decode_ranks_.end(), r);
}

int WorldLayout::DeviceOf(int r) const {
  if (devices_per_node_ == 0 || r < 0 || r >= NumRanks()) return -1;
  const int local = gpu_local_[r];
  return local < 0 ? -1 : local % devices_per_node_;
}

std::string WorldLayout::ToString() const {
  std::string text = StrFormat("rank=%d/%d node=%d/%d local=%d/%d", rank_, NumRanks(), NodeIndex(),
                               num_nodes_, local_rank_, local_size_);
  if (IsCoordinator()) text += " coordinator";
  if (IsWorker()) {
    text += StrFormat(" worker=%d/%d gpu_rank=%d device=%d", WorkerIndex(), NumWorkers(), GpuRank(),
                      Device());
  }
  text += IsDecodeNode() ? " decode=yes" : " decode=no";
  return text;
}

StatusOr<std::vector<int>> ParseRankList(std::string_view text) {
  std::vector<int> ranks;
  if (text.empty()) return ranks;
  size_t begin = 0;
  while (begin <= text.size()) {
    size_t end = text.find(',', begin);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view item = text.substr(begin, end - begin);
    int value = -1;
    const auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), value);
    if (item.empty() || ec != std::errc() || ptr != item.data() + item.size() || value < 0) {
      return Status::InvalidArgument("rank list '" + std::string(text) + "': item '" +
                                     std::string(item) +
                                     "' is not a non-negative integer (expected e.g. \"3\" or "
                                     "\"7,8\")");
    }
    ranks.push_back(value);
    begin = end + 1;
  }
  return ranks;
}

}  // namespace sieve::comm
