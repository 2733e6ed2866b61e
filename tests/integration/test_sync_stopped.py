"""The blocking facade after stop(): ContextStoppedError for every call, nothing left
un-awaited (issue 11, item 9)."""

from __future__ import annotations

import gc
import warnings

import pytest

from asyncspark.errors import ContextStoppedError
from asyncspark.sync import SparkContext


def test_every_call_after_stop_raises_context_stopped():
    sc = SparkContext("local[1]")
    rdd = sc.parallelize(range(10), 2)
    assert rdd.sum() == 45
    sc.stop()
    calls = {
        "action": rdd.sum,
        "new rdd action": lambda: sc.parallelize([1]).collect(),
        "runJob": lambda: sc.runJob(rdd, lambda it: it),
        "toLocalIterator": lambda: list(rdd.toLocalIterator()),
        "cancelAllJobs": sc.cancelAllJobs,
        "cancelJob": lambda: sc.cancelJob(0),
        "cancelJobGroup": lambda: sc.cancelJobGroup("g"),
        "addSparkListener": lambda: sc.addSparkListener(object()),
        "broadcast": lambda: sc.broadcast(1),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a never-awaited coroutine would fail here
        for call in calls.values():
            with pytest.raises(ContextStoppedError, match="stopped"):
                call()
        gc.collect()
    sc.stop()  # still idempotent
