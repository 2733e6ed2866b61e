"""Per-partition helpers of narrow transformations: PySpark's sampler and ``pipe``."""

from __future__ import annotations

import math
import os
import random
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

from ..taskcontext import TaskContext

__all__ = ["Sampler", "pipe_partition"]


class Sampler:
    """PySpark's ``RDDSampler``: per-partition ``random.Random(seed ^ split)``."""

    def __init__(self, with_replacement: bool, fraction: float, seed: int) -> None:
        self.with_replacement = with_replacement
        self.fraction = fraction
        self.seed = seed

    def _rng(self, split: int) -> random.Random:
        rng = random.Random(self.seed ^ split)
        for _ in range(10):  # mixing, as PySpark: initial seeds are close to each other
            rng.randint(0, 1)
        return rng

    @staticmethod
    def _poisson(rng: random.Random, mean: float) -> int:
        if mean < 20.0:
            limit = math.exp(-mean)
            p = rng.random()
            k = 0
            while p > limit:
                k += 1
                p *= rng.random()
        else:
            p = rng.expovariate(mean)
            k = 0
            while p < 1.0:
                k += 1
                p += rng.expovariate(mean)
        return k

    def func(self, split: int, iterator: Iterator[Any]) -> Iterator[Any]:
        rng = self._rng(split)
        if self.with_replacement:
            for obj in iterator:
                for _ in range(self._poisson(rng, self.fraction)):
                    yield obj
        else:
            frac = self.fraction
            for obj in iterator:
                if rng.random() < frac:
                    yield obj


def pipe_partition(args: list[str], command: str, extra_env: dict[str, str] | None,
                   check_code: bool, iterator: Iterator[Any]) -> Iterator[str]:
    """Feed ``iterator`` to the command's stdin from a helper thread; yield its stdout lines.

    The helper thread computes the upstream elements, so it runs with this task's
    ``TaskContext``, and an error it meets fails the task (after the output read so far)
    instead of silently ending the command's input early.
    """

    env = {**os.environ, **extra_env} if extra_env else None
    task_ctx = TaskContext.get()
    proc = subprocess.Popen(args, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    errors: list[BaseException] = []

    def feed():
        TaskContext._set(task_ctx)
        try:
            for obj in iterator:
                proc.stdin.write((str(obj).rstrip("\n") + "\n").encode("utf-8"))
        except BrokenPipeError:
            pass  # the command stopped reading: not an error, as in PySpark
        except BaseException as exc:
            errors.append(exc)
        finally:
            try:
                proc.stdin.close()
            except OSError:
                pass

    feeder = threading.Thread(target=feed, daemon=True, name="asyncspark-pipe-feed")
    feeder.start()
    finished = False
    try:
        for line in iter(proc.stdout.readline, b""):
            yield line.rstrip(b"\n").decode("utf-8")
        finished = True
    finally:
        if not finished and proc.poll() is None:
            proc.kill()  # the consumer stopped early (or failed): do not wait for the command
        proc.stdout.close()
        code = proc.wait()
        feeder.join()
    if errors:
        raise errors[0]
    if check_code and code:
        raise RuntimeError(f"Pipe function `{command}' exited with error code {code}")
