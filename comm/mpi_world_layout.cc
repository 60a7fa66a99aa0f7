// WorldLayout::FromMpi: node membership from MPI_Comm_split_type(MPI_COMM_TYPE_SHARED).
// Built only with SIEVE_ENABLE_MPI. Tested by tests/mpi/world_layout_mpi_test.cc.
#include <mpi.h>

#include <vector>

#include "comm/mpi_check.h"
#include "comm/world_layout.h"

namespace sieve::comm {

StatusOr<WorldLayout> WorldLayout::FromMpi(MPI_Comm comm, std::vector<int> decode_ranks,
                                           int devices_per_node) {
  int rank = 0;
  int size = 0;
  SIEVE_MPI_CHECK(MPI_Comm_rank(comm, &rank));
  SIEVE_MPI_CHECK(MPI_Comm_size(comm, &size));

  // Ranks sharing memory share a node. The node's id is the lowest rank on it (the local
  // communicator is ordered by rank, so that is its local rank 0): every rank agrees on it.
  MPI_Comm node_comm = MPI_COMM_NULL;
  SIEVE_MPI_CHECK(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node_comm));
  int node_leader = rank;
  SIEVE_MPI_CHECK(MPI_Bcast(&node_leader, 1, MPI_INT, 0, node_comm));
  SIEVE_MPI_CHECK(MPI_Comm_free(&node_comm));

  std::vector<int> node_of_rank(size);
  SIEVE_MPI_CHECK(MPI_Allgather(&node_leader, 1, MPI_INT, node_of_rank.data(), 1, MPI_INT, comm));
  StatusOr<WorldLayout> layout =
      Create(rank, std::move(node_of_rank), std::move(decode_ranks), devices_per_node);
  if (!layout.ok()) return layout.status().WithContext(ProcessContextString());
  return layout;
}

}  // namespace sieve::comm
