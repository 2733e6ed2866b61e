"""What the real-cluster tests (Ray, SLURM, network namespaces) share: where a context's
executors run, a bounded wait, and the word-count input they check results with."""

from __future__ import annotations

import asyncio
import random
import time

WORDS = [f"w{i}" for i in range(300)]


def hosts(sc) -> dict[str, str]:
    """Executor id -> the host it registered with."""
    return {eid: e.host for eid, e in sc._task_scheduler.executors.items()}


async def wait_for(cond, within: float, what: str) -> float:
    """Poll ``cond`` until it holds (the seconds it took), or fail after ``within``."""
    start = time.monotonic()
    while not cond():
        if time.monotonic() - start > within:
            raise AssertionError(f"not within {within}s: {what}")
        await asyncio.sleep(0.05)
    return time.monotonic() - start


def text(seed: int, lines: int) -> list[str]:
    """``lines`` lines of 20 words drawn from WORDS, reproducible by ``seed``."""
    rnd = random.Random(seed)
    return [" ".join(rnd.choice(WORDS) for _ in range(20)) for _ in range(lines)]
