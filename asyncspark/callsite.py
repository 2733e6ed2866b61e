"""Spark's short call site of a job (``"count at app.py:12"``): the name the UI and the
INFO log lines give it."""

from __future__ import annotations

import os
import sys
from types import CodeType

__all__ = ["call_site"]

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))
_STDLIB_DIR = os.path.dirname(os.__file__)

# What a frame of a code object is to the walk (each job's name walks its stack; the
# paths are looked at once per code object): (_STDLIB, None), (_USER, "file name"), or
# (_OURS, the function's name if public else None); the code object rides along, so
# that its id (the key: a code object's hash is computed anew each time) stays its own.
_STDLIB, _USER, _OURS = 0, 1, 2
_KINDS: dict[int, tuple[int, str | None, CodeType]] = {}


def _kind(code: CodeType) -> tuple[int, str | None, CodeType]:
    path = code.co_filename
    if path.startswith(_STDLIB_DIR) and "-packages" not in path:
        kind: tuple[int, str | None, CodeType] = (_STDLIB, None, code)
    elif not path.startswith(_PKG_DIR):
        kind = (_USER, os.path.basename(path), code)
    else:
        kind = (_OURS, None if code.co_name.startswith("_") else code.co_name, code)
    if len(_KINDS) < 100_000:
        _KINDS[id(code)] = kind
    return kind


def call_site(depth: int = 2) -> str:
    """The outermost asyncspark function called and the line of the code outside
    asyncspark calling it, looking from ``depth`` frames above this call."""
    frame = sys._getframe(depth)
    action = "runJob"
    kinds = _KINDS
    while frame is not None:
        code = frame.f_code
        kind = kinds.get(id(code)) or _kind(code)
        if kind[0] == _OURS:
            if kind[1] is not None:
                action = kind[1]
        elif kind[0] == _USER:
            return f"{action} at {kind[1]}:{frame.f_lineno}"
        else:
            return action  # the engine's own loop thread (asyncspark.sync)
        frame = frame.f_back
    return action
