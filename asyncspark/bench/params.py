"""What one ``asyncspark bench`` invocation measures, and how much of it."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["PEERS", "SCENARIOS", "Params", "parse_conf_items"]

SCENARIOS = ("latency", "throughput", "loop-lag", "startup")
PEERS = ("multiprocessing", "pyspark", "dask")


@dataclass(frozen=True)
class Params:
    scenarios: tuple[str, ...] = SCENARIOS
    peers: tuple[str, ...] = ()
    runs: int = 5
    warmup: int = 50
    trivial: int = 500  # timed trivial jobs per run
    tasks: int = 10_000  # empty tasks of the throughput job
    jobs: int = 8  # concurrent jobs (throughput) and submitting coroutines (loop-lag)
    lag_jobs: int = 100  # trivial jobs each loop-lag submitter runs
    executors: int = 2
    loop: str = "uvloop"
    breakdown: bool = False
    conf: dict[str, str] = field(default_factory=dict)

    @property
    def master(self) -> str:
        return f"local[{self.executors}]"


def parse_conf_items(items: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings as a dict, validated as a ``Context`` would validate them.

    Raises ``ValueError`` for a malformed item and ``ConfigError`` for a bad setting.
    """
    from ..conf import Config

    conf: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--conf expects KEY=VALUE, got {item!r}")
        conf[key.strip()] = value.strip()
    Config.from_items(conf.items())
    return conf
