"""Spark's short call site of a job (``"count at app.py:12"``): the name the UI and the
INFO log lines give it."""

from __future__ import annotations

import os
import sys

__all__ = ["call_site"]

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))
_STDLIB_DIR = os.path.dirname(os.__file__)


def call_site(depth: int = 2) -> str:
    """The outermost asyncspark function called and the line of the code outside
    asyncspark calling it, looking from ``depth`` frames above this call."""
    frame = sys._getframe(depth)
    action = "runJob"
    while frame is not None:
        path = frame.f_code.co_filename
        if path.startswith(_STDLIB_DIR) and "-packages" not in path:
            return action  # the engine's own loop thread (asyncspark.sync)
        if not path.startswith(_PKG_DIR):
            return f"{action} at {os.path.basename(path)}:{frame.f_lineno}"
        if not frame.f_code.co_name.startswith("_"):
            action = frame.f_code.co_name
        frame = frame.f_back
    return action
