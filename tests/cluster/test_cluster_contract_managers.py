"""The ClusterBackend contract of ``test_cluster_contract.py`` against the backends of real
cluster managers: RayBackend on a one-node token-authenticated Ray cluster (when ray is
installed) and SlurmBackend on a one-node SLURM cluster (when slurm-wlm and munge are
installed), on uvloop only (``tests/conftest.py``: the loop's part is the driver's, which
the fake and local backends cover on both loops)."""

from __future__ import annotations

import pytest
from test_cluster_contract import (  # noqa: F401 - the contract's tests and fixtures
    ray_cluster,
    slurm_cluster,
    test_close_is_idempotent_and_leaves_nothing,
    test_crash_is_lost_with_its_exit_code_and_replaced,
    test_failed_starts_are_retried_with_a_growing_backoff,
    test_kill_is_lost_and_replaced_with_a_new_id,
    test_lower_target_stops_the_newest,
    test_target_launches_distinct_executors_once,
)


@pytest.fixture(params=["ray", "slurm"])
def kind(request):
    request.getfixturevalue(f"{request.param}_cluster")
    return request.param
