"""The ClusterBackend contract of ``test_cluster_contract.py`` against the backends of real
cluster managers: RayBackend on a one-node token-authenticated Ray cluster (when ray is
installed) and SlurmBackend on a one-node SLURM cluster (when slurm-wlm and munge are
installed), on uvloop only (``tests/conftest.py``: the loop's part is the driver's, which
the fake and local backends cover on both loops)."""

from __future__ import annotations

import pytest
import test_cluster_contract as contract
from test_cluster_contract import ray_cluster, slurm_cluster  # noqa: F401 - the fixtures

# The contract's tests, in its order (a cluster's state carries from test to test).
test_target_launches_distinct_executors_once = contract.test_target_launches_distinct_executors_once
test_kill_is_lost_and_replaced_with_a_new_id = contract.test_kill_is_lost_and_replaced_with_a_new_id
test_crash_is_lost_with_its_exit_code_and_replaced = (
    contract.test_crash_is_lost_with_its_exit_code_and_replaced)
test_lower_target_stops_the_newest = contract.test_lower_target_stops_the_newest
test_failed_starts_are_retried_with_a_growing_backoff = (
    contract.test_failed_starts_are_retried_with_a_growing_backoff)
test_close_is_idempotent_and_leaves_nothing = contract.test_close_is_idempotent_and_leaves_nothing


@pytest.fixture(params=["ray", "slurm"])
def kind(request):
    request.getfixturevalue(f"{request.param}_cluster")
    return request.param
