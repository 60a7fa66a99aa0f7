#!/usr/bin/env bash
# Two "hosts" on one machine: runs an MPI job planned by sieve-launch across two network
# namespaces joined by a veth pair, and proves its traffic crossed the link.
#
#   bash tests/mpi/two_host_test.sh <sieve_mpi_tests> <sieve-launch>     (CTest: twohost.mpi)
#
# How it works:
#   1. Namespaces sieve2h-a-<pid> and sieve2h-b-<pid>, a veth pair whose two ends both end up
#      named veth-sv<n> (one per namespace), addresses 10.77.0.1/24 and 10.77.0.2/24 (this test's
#      own private addresses), lo up in both.
#   2. A hostfile with the two addresses (slots=1 each) and an Open MPI rsh agent script: Open
#      MPI calls it as `agent <host> <command...>` to start orted on the remote host, exactly as it
#      would call ssh; the agent runs the command with `sh -c` (as sshd would) inside the
#      namespace that owns <host>, in its own UTS namespace named sieve-host-b, so no sshd is
#      needed and the two "hosts" have different host names (Open MPI's session directories and
#      node names then differ too).
#   3. sieve-launch --hostfile ... --gpus-per-node 1 --iface veth-sv<n> --mca btl tcp,self writes
#      the command (printed with --dry-run), then runs it (execvp mpirun) inside namespace A as
#      host sieve-host-a: 3 ranks, coordinator + worker on A, worker (the decode rank) on B.
#      --iface restricts both the BTL and Open MPI's out-of-band channel to the veth link, and
#      btl tcp,self rules out shared memory, so every byte between A and B crosses the veth.
#   4. The program is sieve_mpi_tests filtered to WorldLayoutMpiTest.* (SIEVE_TEST_EXPECT_NODES=2:
#      MPI_Comm_split_type must see two nodes), MpiCommTest.TagsRoundTrip and
#      MpiCommTest.LargeVectorRoundTrip (8 MiB from rank 0 on A to rank 2 on B and back).
#   5. The veth byte counters on B must have grown by at least 8 MiB in each direction, and the
#      ranks must report the right host names and node numbers.
# Namespaces, the veth pair and the temporary directory are removed on exit (trap).
#
# Exit codes: 0 pass, 1 fail, 77 skipped (not root, or network namespaces / veth not permitted).
set -uo pipefail

SKIP=77
if [[ $# -lt 2 ]]; then
  echo "usage: $0 <sieve_mpi_tests> <sieve-launch>" >&2
  exit 2
fi
tests_bin=$(readlink -f "$1")
launch_bin=$(readlink -f "$2")

skip() {
  echo "SKIP: two_host_test.sh: $*"
  exit "$SKIP"
}
fail() {
  echo "FAIL: two_host_test.sh: $*"
  exit 1
}

[[ $(id -u) -eq 0 ]] || skip "needs root to create network namespaces (run as root, e.g. in CI)"
command -v ip >/dev/null || skip "the ip command (iproute2) is not installed"
command -v unshare >/dev/null || skip "unshare (util-linux) is not installed"
command -v mpirun >/dev/null || skip "mpirun is not installed"
[[ -x "$tests_bin" && -x "$launch_bin" ]] || fail "missing binaries: $tests_bin $launch_bin"

n=$(($$ % 100000))
ns_a="sieve2h-a-$n"
ns_b="sieve2h-b-$n"
veth="veth-sv$n"
addr_a=10.77.0.1
addr_b=10.77.0.2
work=$(mktemp -d /tmp/sieve-two-host.XXXXXX)

cleanup() {
  ip netns del "$ns_a" 2>/dev/null
  ip netns del "$ns_b" 2>/dev/null  # deleting a namespace deletes its veth end (and the peer)
  ip link del "${veth}a" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

if ! ip netns add "$ns_a" 2>"$work/err"; then
  skip "'ip netns add' is not permitted here: $(cat "$work/err")"
fi
ip netns add "$ns_b" || skip "'ip netns add' failed for a second namespace"
if ! ip link add "${veth}a" type veth peer name "${veth}b" 2>"$work/err"; then
  skip "cannot create a veth pair: $(cat "$work/err")"
fi
set -e
ip link set "${veth}a" netns "$ns_a"
ip link set "${veth}b" netns "$ns_b"
ip -n "$ns_a" link set "${veth}a" name "$veth"
ip -n "$ns_b" link set "${veth}b" name "$veth"
ip -n "$ns_a" addr add "$addr_a/24" dev "$veth"
ip -n "$ns_b" addr add "$addr_b/24" dev "$veth"
for ns in "$ns_a" "$ns_b"; do
  ip -n "$ns" link set lo up
  ip -n "$ns" link set "$veth" up
done
set +e

# The hostfile and the rsh agent.
cat >"$work/hostfile" <<EOF
# two namespaces joined by $veth
$addr_a slots=1
$addr_b slots=1
EOF
cat >"$work/agent" <<EOF
#!/usr/bin/env bash
# Open MPI rsh agent: agent <host> <command...>; runs the command like sshd would, inside the
# network namespace that owns <host>, with that host's name.
host=\$1
shift
case "\$host" in
  $addr_a) ns=$ns_a; name=sieve-host-a ;;
  $addr_b) ns=$ns_b; name=sieve-host-b ;;
  *) echo "agent: unknown host '\$host'" >&2; exit 255 ;;
esac
exec ip netns exec "\$ns" unshare --uts sh -c "hostname \$name && exec \$*"
EOF
chmod +x "$work/agent"

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export SIEVE_TEST_EXPECT_NODES=2
counter() {  # counter <namespace> <rx|tx>
  ip netns exec "$1" cat "/sys/class/net/$veth/statistics/${2}_bytes"
}
rx_b_before=$(counter "$ns_b" rx)
tx_b_before=$(counter "$ns_b" tx)

launch_args=(--hostfile "$work/hostfile" --gpus-per-node 1 --iface "$veth"
  --mca btl tcp,self --mca plm_rsh_agent "$work/agent" --mca plm_rsh_no_tree_spawn 1
  --program "$tests_bin" --
  "--gtest_filter=WorldLayoutMpiTest.*:MpiCommTest.TagsRoundTrip:MpiCommTest.LargeVectorRoundTrip"
  --gtest_color=no)
echo "== sieve-launch --dry-run:"
"$launch_bin" --dry-run "${launch_args[@]}" || fail "sieve-launch could not plan the job"

echo "== running it inside $ns_a as sieve-host-a"
timeout 240 ip netns exec "$ns_a" unshare --uts \
  sh -c 'hostname sieve-host-a && exec "$@"' sh "$launch_bin" "${launch_args[@]}" \
  >"$work/out" 2>&1
rc=$?
cat "$work/out"
[[ $rc -eq 0 ]] || fail "the MPI job exited with $rc"

rx=$(($(counter "$ns_b" rx) - rx_b_before))
tx=$(($(counter "$ns_b" tx) - tx_b_before))
echo "== veth $veth on $ns_b: received $rx bytes, sent $tx bytes"
min=$((8 * 1024 * 1024))  # the 8 MiB vector went each way
[[ $rx -ge $min && $tx -ge $min ]] || fail "expected >= $min bytes each way over $veth"
grep -q "host=sieve-host-b rank=2 .*node=1/2" "$work/out" ||
  fail "rank 2 did not report itself on sieve-host-b as node 1 of 2"
grep -q "host=sieve-host-a rank=0 .*node=0/2" "$work/out" ||
  fail "rank 0 did not report itself on sieve-host-a as node 0 of 2"
echo "PASS: two_host_test.sh: 3 ranks on 2 hosts, MPI traffic crossed $veth"
exit 0
