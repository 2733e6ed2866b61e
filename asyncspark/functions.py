"""Small shared functions of the shuffle (L0 helper): ``identity``, groupByKey's
combiner functions and ``Aggregator`` (how values of one key combine). Shared objects, so
the merger can recognise them and default partitioners compare equal after pickling."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Aggregator", "append_to", "extend_with", "identity", "to_list"]


def identity(x: Any) -> Any:
    """The identity function, shared: ``reduceByKey``'s ``createCombiner`` (the merger
    recognises it and skips the call) and the default ``keyfunc`` of sorts (one function,
    so that default range partitioners compare equal, also after pickling)."""
    return x


def to_list(x: Any) -> list[Any]:
    """groupByKey's ``createCombiner`` (shared, so the merger recognises it)."""
    return [x]


def append_to(xs: list[Any], x: Any) -> list[Any]:
    """groupByKey's ``mergeValue``."""
    xs.append(x)
    return xs


def extend_with(xs: list[Any], ys: list[Any]) -> list[Any]:
    """groupByKey's ``mergeCombiners``."""
    xs.extend(ys)
    return xs


@dataclass(frozen=True, slots=True)
class Aggregator:
    """How values of one key combine: Spark's ``createCombiner``, ``mergeValue``,
    ``mergeCombiners``."""

    createCombiner: Callable[[Any], Any]
    mergeValue: Callable[[Any, Any], Any]
    mergeCombiners: Callable[[Any, Any], Any]
