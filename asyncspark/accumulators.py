"""Accumulators: variables tasks add to and only the driver reads (PySpark's API).

::

    errors = sc.accumulator(0)
    await rdd.foreach(lambda line: errors.add(1) if "ERROR" in line else None)
    print(errors.value)

How updates travel: an ``Accumulator`` pickled into a task binary arrives on the
executor as a worker-side copy (its id, a zero value and its ``AccumulatorParam``).
``add`` there accumulates into the running task's own update table (on its
``TaskContext``), starting from ``param.zero(...)``, so the copy in a task binary cached
for a whole stage serves each task separately. A task that finishes sends its table with
its status; a failed or killed attempt sends nothing. The driver's DAGScheduler turns a
successful completion into an ``UpdateAccumulators`` command, for a result stage only
the first completion of each partition (retries and speculative copies count once), for
a shuffle map stage every successful one (a re-run map stage counts again, as in Spark),
and ``AccumulatorRegistry.apply`` merges the values with ``param.addInPlace``.
"""

from __future__ import annotations

import itertools
import logging
import weakref
from typing import Any, Generic, TypeVar

__all__ = [
    "COMPLEX_ACCUMULATOR_PARAM",
    "FLOAT_ACCUMULATOR_PARAM",
    "INT_ACCUMULATOR_PARAM",
    "Accumulator",
    "AccumulatorParam",
    "AccumulatorRegistry",
    "AddingAccumulatorParam",
]

log: logging.Logger = logging.getLogger("asyncspark.accumulators")

T = TypeVar("T")

class AccumulatorParam(Generic[T]):
    """How to add values of one type: subclass it for accumulators of other types.

    ``zero(value)`` is the identity for ``addInPlace`` with the shape of ``value`` (a zero
    vector of the same length); ``addInPlace(value1, value2)`` adds ``value2`` to
    ``value1`` (in place if it likes) and returns the sum.
    """

    def zero(self, value: T) -> T:
        """The identity of ``addInPlace`` for values like ``value``.

        >>> class Longest(AccumulatorParam):
        ...     def zero(self, value): return ""
        ...     def addInPlace(self, a, b): return a if len(a) >= len(b) else b
        >>> Longest().zero("spark")
        ''
        """
        raise TypeError(f"{type(self).__name__} does not define zero(value): an "
                        f"AccumulatorParam subclass defines zero() and addInPlace()")

    def addInPlace(self, value1: T, value2: T) -> T:
        """Add ``value2`` to ``value1`` (it may update ``value1``) and return the sum.

        >>> class Longest(AccumulatorParam):
        ...     def zero(self, value): return ""
        ...     def addInPlace(self, a, b): return a if len(a) >= len(b) else b
        >>> Longest().addInPlace("rdd", "spark")
        'spark'
        """
        raise TypeError(f"{type(self).__name__} does not define addInPlace(value1, value2): "
                        f"an AccumulatorParam subclass defines zero() and addInPlace()")


class AddingAccumulatorParam(AccumulatorParam[T]):
    """``+=`` with a fixed zero: the default for ints, floats and complex numbers."""

    def __init__(self, zero_value: T) -> None:
        self.zero_value = zero_value

    def zero(self, value: T) -> T:
        return self.zero_value

    def addInPlace(self, value1: T, value2: T) -> T:
        value1 += value2  # type: ignore[operator]
        return value1


INT_ACCUMULATOR_PARAM = AddingAccumulatorParam(0)
FLOAT_ACCUMULATOR_PARAM = AddingAccumulatorParam(0.0)
COMPLEX_ACCUMULATOR_PARAM = AddingAccumulatorParam(0.0j)


def default_param(value: Any) -> AccumulatorParam[Any]:
    """PySpark's choice of param when ``sc.accumulator`` is given none."""
    if isinstance(value, bool):  # a bool is an int to isinstance; PySpark refuses it too
        raise TypeError("No default accumulator param for type bool: pass accum_param")
    if isinstance(value, int):
        return INT_ACCUMULATOR_PARAM
    if isinstance(value, float):
        return FLOAT_ACCUMULATOR_PARAM
    if isinstance(value, complex):
        return COMPLEX_ACCUMULATOR_PARAM
    raise TypeError(f"No default accumulator param for type {type(value).__name__}: pass "
                    "accum_param=an AccumulatorParam with zero() and addInPlace()")


class Accumulator(Generic[T]):
    """A shared variable tasks can only add to (``acc.add(x)`` or ``acc += x``) and the
    driver reads (``acc.value``). Create one with ``sc.accumulator(value, accum_param)``.

    Inside a task, reading or setting ``value`` raises ``RuntimeError``, as in PySpark.
    """

    def __init__(self, aid: int, value: T, accum_param: AccumulatorParam[T]) -> None:
        self.aid = aid
        self.accum_param = accum_param
        self._value = value
        self._deserialized = False  # True for the worker-side copy in a task

    def __reduce__(self) -> tuple[Any, ...]:
        if self._deserialized:
            return (_deserialize_accumulator, (self.aid, self._value, self.accum_param))
        return (_deserialize_accumulator,
                (self.aid, self.accum_param.zero(self._value), self.accum_param))

    @property
    def value(self) -> T:
        """The accumulated value; only on the driver."""
        if self._deserialized:
            raise RuntimeError(f"Accumulator.value cannot be accessed inside tasks "
                               f"(accumulator {self.aid}): tasks can only add to it")
        return self._value

    @value.setter
    def value(self, value: T) -> None:
        if self._deserialized:
            raise RuntimeError(f"Accumulator.value cannot be set inside tasks "
                               f"(accumulator {self.aid}): tasks can only add to it")
        self._value = value

    def add(self, term: T) -> None:
        """Add ``term`` (in a task: to that task attempt's update, sent if it succeeds).

        >>> acc = sc.accumulator(0)
        >>> await sc.parallelize(range(5), 2).foreach(lambda x: acc.add(x))
        >>> acc.value
        10
        """
        if not self._deserialized:
            self._value = self.accum_param.addInPlace(self._value, term)
            return
        from .taskcontext import TaskContext

        ctx = TaskContext.get()
        if ctx is None:
            raise RuntimeError(
                f"accumulator {self.aid} was unpickled outside a task: add() to it on the "
                "driver's original or inside a task")
        updates = ctx._accumulators
        if updates is None:
            updates = ctx._accumulators = {}
        current = updates.get(self.aid, _MISSING)
        if current is _MISSING:
            current = self.accum_param.zero(self._value)
        updates[self.aid] = self.accum_param.addInPlace(current, term)

    def __iadd__(self, term: T) -> Accumulator[T]:
        self.add(term)
        return self

    def __str__(self) -> str:
        return str(self._value)

    def __repr__(self) -> str:
        return f"Accumulator<id={self.aid}, value={self._value}>"


_MISSING = object()


def _deserialize_accumulator(aid: int, zero_value: Any, accum_param: AccumulatorParam
                             ) -> Accumulator:
    acc = Accumulator(aid, zero_value, accum_param)
    acc._deserialized = True
    return acc


class AccumulatorRegistry:
    """The driver's accumulators by id (weakly held: a dropped one is forgotten), and
    the merging of task updates into them."""

    def __init__(self) -> None:
        self._ids = itertools.count()
        self._accumulators: weakref.WeakValueDictionary[int, Accumulator] = (
            weakref.WeakValueDictionary())
        self.on_applied: Any = None  # the UI's per-stage accumulator values

    def new(self, value: T, accum_param: AccumulatorParam[T] | None = None) -> Accumulator[T]:
        """A new accumulator starting at ``value`` (``sc.accumulator``)."""
        param = default_param(value) if accum_param is None else accum_param
        if not (callable(getattr(param, "zero", None))
                and callable(getattr(param, "addInPlace", None))):
            raise TypeError(f"accum_param must have zero() and addInPlace() methods, got "
                            f"{type(param).__name__}")
        acc = Accumulator(next(self._ids), value, param)
        self._accumulators[acc.aid] = acc
        return acc

    def apply(self, updates: bytes, stage_id: int = -1) -> None:
        """Merge one successful task's updates (pickled ``[(id, value), ...]``) of stage
        ``stage_id``; ``on_applied(stage_id, [(id, new value), ...])`` is told, when set."""
        from .serializers import loads

        try:
            pairs = loads(updates)
        except Exception:
            log.exception("cannot unpickle a task's accumulator updates; dropped")
            return
        for aid, value in pairs:
            acc = self._accumulators.get(aid)
            if acc is None:
                continue  # garbage-collected on the driver: nobody can read it
            try:
                acc._value = acc.accum_param.addInPlace(acc._value, value)
            except Exception:
                log.exception("cannot add a task's update to accumulator %d", aid)
        if self.on_applied is not None and stage_id >= 0:
            self.on_applied(stage_id, [(aid, self._accumulators[aid]._value)
                                       for aid, _ in pairs if aid in self._accumulators])
