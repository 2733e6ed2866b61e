"""asyncspark: Apache Spark's execution model for asyncio.

The public API; everything else is internal. ``Context`` and ``RDD`` are the async API;
``SparkContext`` is the blocking facade (``asyncspark.sync``), PySpark's names and
behaviour, so a PySpark program's first line becomes
``from asyncspark import SparkContext, SparkConf``.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import (
    AsyncSparkError,
    ConfigError,
    ContextStoppedError,
    ExecutorLostError,
    JobCancelledError,
    JobFailedError,
    JobRejectedError,
    ProtocolError,
    RemoteProtocolError,
    SerializationError,
    TransportError,
)

if TYPE_CHECKING:
    from .accumulators import Accumulator, AccumulatorParam
    from .approx import BoundedFloat
    from .broadcast import Broadcast
    from .conf import SparkConf
    from .context import Context
    from .files import SparkFiles
    from .listener import SparkListener
    from .rdd import RDD
    from .statcounter import StatCounter
    from .storage.level import StorageLevel
    from .sync import SparkContext
    from .taskcontext import TaskContext

# The heavier parts load on first use, so that executors (which import this package)
# and applications that only need part of it start fast.
_LAZY = {
    "Accumulator": ".accumulators",
    "AccumulatorParam": ".accumulators",
    "BoundedFloat": ".approx",
    "Broadcast": ".broadcast",
    "Context": ".context",
    "RDD": ".rdd",
    "SparkConf": ".conf",
    "SparkContext": ".sync",
    "SparkFiles": ".files",
    "SparkListener": ".listener",
    "StatCounter": ".statcounter",
    "StorageLevel": ".storage.level",
    "TaskContext": ".taskcontext",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'asyncspark' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__version__ = "0.1.0"

__all__ = [
    "RDD",
    "Accumulator",
    "AccumulatorParam",
    "AsyncSparkError",
    "BoundedFloat",
    "Broadcast",
    "ConfigError",
    "Context",
    "ContextStoppedError",
    "ExecutorLostError",
    "JobCancelledError",
    "JobFailedError",
    "JobRejectedError",
    "ProtocolError",
    "RemoteProtocolError",
    "SerializationError",
    "SparkConf",
    "SparkContext",
    "SparkFiles",
    "SparkListener",
    "StatCounter",
    "StorageLevel",
    "TaskContext",
    "TransportError",
    "__version__",
    "run",
]

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T], *, debug: bool | None = None) -> T:
    """Run ``main`` to completion on a new event loop: uvloop where installed, else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main, debug=debug)
    return uvloop.run(main, debug=debug)
