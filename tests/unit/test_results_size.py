"""Pure parts of scheduler/results.py: result size accounting against
spark.driver.maxResultSize, the direct-result limit, result files and their references."""

from __future__ import annotations

import os

import pytest

from asyncspark.conf import Config
from asyncspark.errors import ConfigError, ResultTooLargeError, TaskResultLostError
from asyncspark.scheduler.results import (
    ResultSizeTracker,
    direct_limit,
    format_size,
    read_result_file,
    too_large_for_executor,
    write_result_file,
)
from asyncspark.transport.messages.tasks import decode_ref


def test_the_tracker_fails_the_result_that_passes_the_limit_and_names_everything():
    tracker = ResultSizeTracker(1000)
    assert tracker.add("ts", 400, "job 3 (stage 5.1)") is None
    assert tracker.add("ts", 600, "job 3 (stage 5.1)") is None  # exactly the limit is fine
    error = tracker.add("ts", 1, "job 3 (stage 5.1)")
    assert isinstance(error, ResultTooLargeError)
    message = str(error)
    assert "3 tasks of job 3 (stage 5.1)" in message
    assert "1001 bytes" in message
    assert "1000 B fetched before this one" in message
    assert "spark.driver.maxResultSize (1000 B, 1000 bytes)" in message
    assert tracker.total("ts") == 1000  # the refused result is not counted


def test_task_sets_are_counted_apart_and_forgotten():
    tracker = ResultSizeTracker(100)
    assert tracker.add("a", 90, "a") is None
    assert tracker.add("b", 90, "b") is None
    tracker.forget("a")
    assert tracker.total("a") == 0
    assert tracker.add("a", 90, "a") is None
    assert tracker.add("b", 11, "b") is not None


def test_zero_means_unlimited():
    tracker = ResultSizeTracker(0)
    assert tracker.add("ts", 1 << 50, "x") is None


def test_the_direct_limit_stays_below_a_frame():
    assert direct_limit(1 << 20, 256 << 20) == 1 << 20
    assert direct_limit(1 << 20, 256 << 10) < 256 << 10
    assert direct_limit(1 << 20, 1024) == 0  # tiny frames: every result goes as a file


def test_sizes_read_well():
    assert format_size(12) == "12 B"
    assert format_size(1536) == "1.5 KiB"
    assert format_size(3 << 30) == "3.0 GiB"
    assert "bigger than spark.driver.maxResultSize (1.0 MiB)" in str(
        too_large_for_executor(7, 2 << 20, 1 << 20))


def test_a_result_file_round_trips_and_is_deleted(tmp_path):
    ref = write_result_file(str(tmp_path), 42, b"x" * 5000)
    path, size = decode_ref(ref)
    assert size == 5000
    assert os.path.dirname(path) == str(tmp_path / "results")
    assert os.listdir(tmp_path / "results") == ["task-42.result"]  # no temp file left
    assert read_result_file(path, size) == b"x" * 5000
    assert not os.path.exists(path)


def test_a_missing_or_short_result_file_is_named(tmp_path):
    path, size = decode_ref(write_result_file(str(tmp_path), 1, b"abc"))
    with open(path, "wb") as f:
        f.write(b"ab")
    with pytest.raises(TaskResultLostError, match=r"holds 2 bytes, 3 expected"):
        read_result_file(path, size)
    assert not os.path.exists(path)
    with pytest.raises(TaskResultLostError, match=r"cannot read the task result file .*task-1"):
        read_result_file(path, size)
    with pytest.raises(TaskResultLostError, match="undecodable"):
        decode_ref(b"\xc1")


def test_the_new_keys_parse_and_are_validated():
    conf = Config.from_items([("asyncspark.task.maxDirectResultSize", "64k"),
                              ("spark.network.timeout", "10s"),
                              ("asyncspark.shuffle.connectTimeout", "500ms"),
                              ("spark.driver.maxResultSize", "0")])
    assert (conf.max_direct_result_size, conf.network_timeout,
            conf.shuffle_connect_timeout, conf.max_result_size) == (64 << 10, 10.0, 0.5, 0)
    defaults = Config()
    assert (defaults.max_direct_result_size, defaults.network_timeout,
            defaults.shuffle_connect_timeout) == (1 << 20, 120.0, 30.0)
    with pytest.raises(ConfigError, match=r"spark.network.timeout must be greater than 0"):
        Config.from_items([("spark.network.timeout", "0s")])


def test_executors_bound_block_fetches_with_the_configured_timeouts():
    from asyncspark.executor.executor import new_client_pool
    from asyncspark.runtime import ExecutorEnv, ExecutorSettings

    settings = ExecutorSettings.from_wire({"network_timeout": 7.0,
                                           "shuffle_connect_timeout": 2.0})
    env = ExecutorEnv("0", "127.0.0.1", "/nonexistent", settings, secret="s",
                      new_client_pool=new_client_pool)
    pool = env.client_pool()
    assert (pool.connect_timeout, pool.io_timeout) == (2.0, 7.0)
    assert env.client_pool() is pool
