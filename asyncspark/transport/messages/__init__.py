"""The wire catalogue, split by subsystem: ``control`` (driver <-> executor control),
``tasks`` (launches, statuses and the task-level formats) and ``blocks`` (shuffle and
cached block transport, block manager master). Importing this package (or any module
in it) registers every message, so a codec can decode whatever a peer sends.
"""

from . import blocks, control, tasks

__all__ = ["blocks", "control", "tasks"]
