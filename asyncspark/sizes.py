"""Size estimates of Python objects (L0 helper): ``estimate_size``, shared by the
shuffle's spilling merger/sorter and the block manager's memory store."""

from __future__ import annotations

import sys
from itertools import islice
from typing import Any

__all__ = ["estimate_size"]

_getsizeof = sys.getsizeof
_ATOMIC = frozenset({int, float, str, bytes, bool, type(None), complex})


def estimate_size(obj: Any, depth: int = 3) -> int:
    """Approximate bytes held by ``obj`` and the objects it references, ``depth`` levels
    deep: ``sys.getsizeof`` of the object, of a tuple's/list's/set's/dict's elements (all
    when there are at most 8, else 8 evenly spaced ones scaled to the length) and of an
    instance's ``__dict__``. Objects referenced twice are counted twice.

    >>> estimate_size(1) == sys.getsizeof(1)
    True
    >>> estimate_size(("ab", [1, 2])) > sys.getsizeof(("ab", [1, 2]))
    True
    """
    size = _getsizeof(obj)
    t = type(obj)
    if depth <= 0 or t in _ATOMIC:
        return size
    depth -= 1
    if isinstance(obj, (tuple, list)):
        n = len(obj)
        if n <= 8:
            for x in obj:
                size += estimate_size(x, depth)
            return size
        step = n // 8
        return size + sum(estimate_size(obj[i], depth) for i in range(0, 8 * step, step)) * n // 8
    if isinstance(obj, (set, frozenset)):
        n = len(obj)
        sampled = sum(estimate_size(x, depth) for x in islice(obj, 8))
        return size + sampled * n // min(n, 8) if n else size
    if isinstance(obj, dict):
        n = len(obj)
        sampled = sum(estimate_size(k, depth) + estimate_size(v, depth)
                      for k, v in islice(obj.items(), 8))
        return size + sampled * n // min(n, 8) if n else size
    d = getattr(obj, "__dict__", None)
    if type(d) is dict:
        size += estimate_size(d, depth)
    return size
