"""The Ray cluster tests again with the worker nodes in network namespaces (netns.py):
the head node and the driver on a bridge in this namespace (10.213.X.1, X random), each
worker node in a namespace of its own behind a veth pair (10.213.X.11, .12). An executor
can reach the driver, and another executor's block server, only at its node's bridge
address: a loopback address leaking into what executors advertise fails these tests (on
one loopback interface it would go unnoticed).

The same test functions as test_ray_cluster.py (imported; they take every address from
the ``cluster`` fixture), a subset to bound the module's time: placement on different
nodes, word count and join across nodes, a node killed mid-shuffle, nothing left after
``stop()``, no fixed port. Skipped, saying why, only where ``ip netns add`` fails (not
root, or no iproute2: ``.ci/run`` installs it).
"""

from __future__ import annotations

import netns
import pytest
import raycluster  # first: sets Ray's auth environment before ray is imported

pytest.importorskip("ray", reason="ray is not installed (pip install 'asyncspark[ray]'; "
                                  ".ci/run does)")
_why = netns.available()
if _why is not None:
    pytest.skip(f"network namespaces cannot be made here: {_why}", allow_module_level=True)

import test_ray_cluster as shared  # noqa: E402


async def test_worker_nodes_are_in_their_namespaces(cluster):
    """Each worker node's processes run in a network namespace other than this one."""
    import os

    mine = os.readlink("/proc/self/ns/net")
    for ip in cluster.worker_ips:
        members = raycluster.group_members(cluster.nodes[ip].pid)
        assert members
        spaces = set()
        for pid in members:
            try:
                spaces.add(os.readlink(f"/proc/{pid}/ns/net"))
            except OSError:
                continue
        assert spaces
        assert mine not in spaces, ip


# The shared tests, in test_ray_cluster.py's order, and the context they use.
sc = shared.sc
test_executors_run_on_different_nodes = shared.test_executors_run_on_different_nodes
test_word_count_and_join_exact_with_cross_node_fetches = \
    shared.test_word_count_and_join_exact_with_cross_node_fetches
test_node_killed_mid_shuffle_is_lost_fast_and_recomputed = \
    shared.test_node_killed_mid_shuffle_is_lost_fast_and_recomputed
test_stop_leaves_no_actor_process_or_directory = \
    shared.test_stop_leaves_no_actor_process_or_directory
test_cluster_listens_on_no_fixed_port = shared.test_cluster_listens_on_no_fixed_port

pytestmark = pytest.mark.asyncio(loop_scope="module", loop_factories=["asyncio"])


@pytest.fixture(scope="module")
def cluster():
    spaces = netns.Netns().make(2)
    c = raycluster.RayCluster(
        spaces.bridge_ip, list(spaces.ips), head_cpus=1,
        prefix=lambda ip: spaces.exec_prefix(ip) if ip in spaces.ips else [])
    try:
        c.start()
        yield c
    finally:
        try:
            c.stop()
        finally:
            spaces.remove()
