"""asyncspark: Apache Spark's execution model for asyncio.

The public API; everything else is internal.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from .conf import SparkConf
from .context import Context
from .errors import (
    AsyncSparkError,
    ConfigError,
    ContextStoppedError,
    ExecutorLostError,
    JobCancelledError,
    JobFailedError,
    ProtocolError,
    RemoteProtocolError,
    SerializationError,
    TransportError,
)
from .listener import SparkListener
from .rdd import RDD
from .statcounter import StatCounter
from .taskcontext import TaskContext

__version__ = "0.1.0"

__all__ = [
    "RDD",
    "AsyncSparkError",
    "ConfigError",
    "Context",
    "ContextStoppedError",
    "ExecutorLostError",
    "JobCancelledError",
    "JobFailedError",
    "ProtocolError",
    "RemoteProtocolError",
    "SerializationError",
    "SparkConf",
    "SparkListener",
    "StatCounter",
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
