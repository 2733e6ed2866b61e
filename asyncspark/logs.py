"""Logging setup: PySpark's ``setLogLevel`` levels on the ``asyncspark`` loggers, the
driver's console handler, and the executors' per-executor log files.

Executors write their records (with their executor id) to
``<application dir>/logs/executor-<id>.log`` at the driver's level (the web UI's
executors page links them) and their warnings to stderr, as before.
"""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["LEVELS", "configure_executor_logging", "parse_level", "set_log_level"]

# PySpark's names (log4j's) -> Python's levels.
LEVELS = {"ALL": 1, "TRACE": 5, "DEBUG": logging.DEBUG, "INFO": logging.INFO,
          "WARN": logging.WARNING, "WARNING": logging.WARNING, "ERROR": logging.ERROR,
          "FATAL": logging.CRITICAL, "OFF": logging.CRITICAL + 10}

LOG_FILE_ENV = "ASYNCSPARK_LOG_FILE"
LOG_LEVEL_ENV = "ASYNCSPARK_LOG_LEVEL"
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_handler: logging.Handler | None = None


def parse_level(level: str | int) -> int:
    if isinstance(level, int) and not isinstance(level, bool):
        return level
    name = str(level).strip().upper()
    if name not in LEVELS:
        raise ValueError(f"unknown log level {level!r}; expected one of "
                         f"{', '.join(n for n in LEVELS if n != 'WARNING')}")
    return LEVELS[name]


def set_log_level(level: str | int) -> int:
    """Set the level of the ``asyncspark`` loggers (``sc.setLogLevel("INFO")``); when the
    application has configured no logging, a stderr handler shows the records."""
    global _handler
    n = parse_level(level)
    root = logging.getLogger("asyncspark")
    root.setLevel(n)
    if _handler is None and not logging.getLogger().handlers and not root.handlers:
        _handler = logging.StreamHandler(sys.stderr)
        _handler.setFormatter(logging.Formatter(_FORMAT, "%y/%m/%d %H:%M:%S"))
        root.addHandler(_handler)
    return n


def effective_level() -> int:
    return logging.getLogger("asyncspark").getEffectiveLevel()


def configure_executor_logging(executor_id: str) -> None:
    """In an executor process: warnings to stderr, and when the driver named a log file
    (``ASYNCSPARK_LOG_FILE``) every record at the driver's level there."""
    fmt = f"%(asctime)s %(levelname)s executor {executor_id} %(name)s: %(message)s"
    logging.basicConfig(level=logging.WARNING, format=fmt)
    path = os.environ.get(LOG_FILE_ENV)
    if not path:
        return
    level = int(os.environ.get(LOG_LEVEL_ENV, logging.INFO))
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError as exc:
        logging.getLogger("asyncspark.executor").warning(
            "cannot write the executor log file %s: %s", path, exc)
        return
    handler.setFormatter(logging.Formatter(fmt))
    handler.setLevel(level)
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(min(level, logging.WARNING))
    for h in logging.getLogger().handlers:
        if h is not handler:
            h.setLevel(logging.WARNING)
