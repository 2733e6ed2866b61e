"""Which reduce partition a key goes to: ``portable_hash``, ``HashPartitioner``,
``RangePartitioner``.

``portable_hash`` gives every key the partition PySpark would give it, in every process
of an application, whatever that process's hash seed:

- ``None`` is 0 and tuples combine their items' portable hashes exactly as PySpark's
  ``pyspark.rdd.portable_hash`` does, so neither depends on ``hash(None)`` (an address in
  CPython 3.11) nor on CPython's tuple hash;
- everything else is ``hash(x)`` as computed under ``PYTHONHASHSEED=0``, the seed
  PySpark's workers and asyncspark's executors run with. In a process started without
  that seed (a driver, typically) the types whose hash depends on the seed are hashed by
  ``hash_seed0``, a pure-Python copy of CPython's algorithms with a zero key: ``str``,
  ``bytes``, ``frozenset``, ``datetime.date``/``datetime``/``time`` (CPython hashes their
  packed bytes), ``enum.Enum`` members (their name) and tuples nested in frozensets.
  Other objects use their own ``__hash__``: a class whose hash is built from strings
  (a frozen dataclass with ``str`` fields, ``pandas.Timestamp``) is only portable when
  the process runs with ``PYTHONHASHSEED=0``.

Unlike PySpark, ``portable_hash`` never raises when ``PYTHONHASHSEED`` is unset.
Whether this process needs the pure-Python path is decided once, from
``sys.flags.hash_randomization`` (the seed the interpreter really started with;
changing ``os.environ`` later does not change ``hash()``).

Partitioners compare equal when they send every key to the same partition; equal
partitioners on two RDDs mean the RDDs are co-partitioned and a join needs no shuffle.
Hot loops need not call ``getPartition``: a ``HashPartitioner`` is
``partitionFunc(k) % numPartitions``; a ``RangePartitioner`` is
``bisect_left(bounds, keyfunc(k))``, mirrored when ``ascending`` is false.
"""

from __future__ import annotations

import struct
import sys
from bisect import bisect_left
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from .functions import identity

__all__ = ["HashPartitioner", "Partitioner", "RangePartitioner", "hash_seed0",
           "portable_hash"]

_M64 = 0xFFFF_FFFF_FFFF_FFFF


# --- CPython's hash() under PYTHONHASHSEED=0, in pure Python -----------------------------

def _sipround(v0: int, v1: int, v2: int, v3: int) -> tuple[int, int, int, int]:
    v0 = (v0 + v1) & _M64
    v2 = (v2 + v3) & _M64
    v1 = (((v1 << 13) | (v1 >> 51)) & _M64) ^ v0
    v3 = (((v3 << 16) | (v3 >> 48)) & _M64) ^ v2
    v0 = ((v0 << 32) | (v0 >> 32)) & _M64
    v2 = (v2 + v1) & _M64
    v0 = (v0 + v3) & _M64
    v1 = (((v1 << 17) | (v1 >> 47)) & _M64) ^ v2
    v3 = (((v3 << 21) | (v3 >> 43)) & _M64) ^ v0
    v2 = ((v2 << 32) | (v2 >> 32)) & _M64
    return v0, v1, v2, v3


def _siphash(data: bytes, c_rounds: int, d_rounds: int) -> int:
    """CPython's ``siphash13``/``siphash24`` (``Python/pyhash.c``) with a zero key, as an
    unsigned 64-bit integer."""
    n = len(data)
    # With k0 = k1 = 0 the key xors vanish from the initial state.
    v0 = 0x736F6D6570736575
    v1 = 0x646F72616E646F6D
    v2 = 0x6C7967656E657261
    v3 = 0x7465646279746573
    tail = n & 7
    words = list(struct.unpack_from(f"<{n >> 3}Q", data))
    words.append(((n << 56) & _M64) | int.from_bytes(data[n - tail:], "little"))
    for m in words:
        v3 ^= m
        for _ in range(c_rounds):
            v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)
        v0 ^= m
    v2 ^= 0xFF
    for _ in range(d_rounds):
        v0, v1, v2, v3 = _sipround(v0, v1, v2, v3)
    return v0 ^ v1 ^ v2 ^ v3


_ROUNDS = {"siphash13": (1, 3), "siphash24": (2, 4)}


def _signed(h: int) -> int:
    """An unsigned 64-bit hash as CPython's ``Py_hash_t``, -1 being reserved."""
    h &= _M64
    if h >= 1 << 63:
        h -= 1 << 64
    return -2 if h == -1 else h


def _bytes_hash0(data: bytes) -> int:
    """``_Py_HashBytes`` with a zero key."""
    if not data:
        return 0
    info = sys.hash_info
    rounds = _ROUNDS.get(info.algorithm)
    if rounds is None or info.width != 64 or info.cutoff != 0:
        raise RuntimeError(
            f"cannot reproduce hash() under PYTHONHASHSEED=0 on this interpreter "
            f"(hash algorithm {info.algorithm}, width {info.width}, cutoff {info.cutoff}): "
            f"run the driver with PYTHONHASHSEED=0")
    return _signed(_siphash(data, *rounds))


def _str_hash0(s: str) -> int:
    # CPython hashes a str's canonical representation: 1, 2 or 4 bytes per code point,
    # by the largest code point (PEP 393). Lone surrogates are stored as they are.
    if not s:
        return 0
    if s.isascii():
        return _bytes_hash0(s.encode("ascii"))
    top = ord(max(s))
    if top < 0x100:
        data = s.encode("latin-1")
    elif top < 0x10000:
        data = s.encode("utf-16-le", "surrogatepass")
    else:
        data = s.encode("utf-32-le", "surrogatepass")
    return _bytes_hash0(data)


def _tuple_hash0(t: tuple) -> int:
    # Objects/tupleobject.c tuplehash (xxHash based), 64-bit.
    acc = 2870177450012600261
    for item in t:
        lane = hash_seed0(item) & _M64
        acc = (acc + lane * 14029467366897019727) & _M64
        acc = ((acc << 31) | (acc >> 33)) & _M64
        acc = (acc * 11400714785074694791) & _M64
    acc = (acc + (len(t) ^ (2870177450012600261 ^ 3527539))) & _M64
    if acc == _M64:
        return 1546275796
    return _signed(acc)


def _shuffle_bits(h: int) -> int:
    return (((h ^ 89869747) ^ (h << 16)) * 3644798167) & _M64


def _frozenset_hash0(s: frozenset) -> int:
    # Objects/setobject.c frozenset_hash: the xor of the shuffled element hashes; empty
    # and dummy table slots cancel out.
    h = 0
    for item in s:
        h ^= _shuffle_bits(hash_seed0(item) & _M64)
    h ^= ((len(s) + 1) * 1927868237) & _M64
    h ^= (h >> 11) ^ (h >> 25)
    h = (h * 69069 + 907133923) & _M64
    if h == _M64:
        return 590923713
    return _signed(h)


def _date_bytes(d: Any) -> bytes:
    return bytes((d.year >> 8, d.year & 0xFF, d.month, d.day))


def _date_hash0(d: Any) -> int:
    return _bytes_hash0(_date_bytes(d))


def _time_bytes(t: Any) -> bytes:
    us = t.microsecond
    return bytes((t.hour, t.minute, t.second, us >> 16, (us >> 8) & 0xFF, us & 0xFF))


def _datetime_hash0(dt: Any) -> int:
    # Modules/_datetimemodule.c datetime_hash: naive ones hash their packed fields, aware
    # ones the (seed-independent) hash of the UTC instant as a timedelta.
    offset = dt.replace(fold=0).utcoffset()
    if offset is None:
        return _bytes_hash0(_date_bytes(dt) + _time_bytes(dt))
    from datetime import timedelta

    seconds = dt.hour * 3600 + dt.minute * 60 + dt.second
    return hash(timedelta(dt.toordinal(), seconds, dt.microsecond) - offset)


def _timeofday_hash0(t: Any) -> int:
    offset = t.replace(fold=0).utcoffset()
    if offset is None:
        return _bytes_hash0(_time_bytes(t))
    from datetime import timedelta

    seconds = t.hour * 3600 + t.minute * 60 + t.second
    return hash(timedelta(0, seconds, t.microsecond) - offset)


def _enum_hash0(member: Any) -> int:
    return _str_hash0(member._name_)


_SEED0_BY_HASH: dict[Any, Callable[[Any], int]] | None = None


def _seed0_table() -> dict[Any, Callable[[Any], int]]:
    """``type(x).__hash__`` -> its seed-0 reimplementation, for the seed-dependent ones.
    Keyed by the hash method, so subclasses that keep their base's hash are covered."""
    global _SEED0_BY_HASH
    if _SEED0_BY_HASH is None:
        import datetime
        import enum

        _SEED0_BY_HASH = {
            str.__hash__: _str_hash0,
            bytes.__hash__: _bytes_hash0,
            tuple.__hash__: _tuple_hash0,
            frozenset.__hash__: _frozenset_hash0,
            datetime.date.__hash__: _date_hash0,
            datetime.datetime.__hash__: _datetime_hash0,
            datetime.time.__hash__: _timeofday_hash0,
            enum.Enum.__hash__: _enum_hash0,
        }
    return _SEED0_BY_HASH


def hash_seed0(x: Hashable) -> int:
    """``hash(x)`` as CPython 3.11 computes it under ``PYTHONHASHSEED=0``, in any process.

    Pure Python for the seed-dependent types listed in the module docstring (slow: meant
    for the odd key hashed on the driver); ``hash(x)`` for everything else.

    >>> hash_seed0("asyncspark") == hash_seed0("asyncspark") and hash_seed0(7) == 7
    True
    """
    t = type(x)
    if t is int or t is float:
        return hash(x)
    fn = _seed0_table().get(t.__hash__)
    return hash(x) if fn is None else fn(x)


# --- portable_hash ---------------------------------------------------------------------

def _portable_tuple_hash(x: tuple) -> int:
    # PySpark's formula (after CPython 2.7's tuple hash), over portable item hashes.
    h = 0x345678
    for i in x:
        h ^= portable_hash(i)
        h *= 1000003
        h &= sys.maxsize
    h ^= len(x)
    if h == -1:  # unreachable after the mask; kept to mirror PySpark
        h = -2
    return int(h)


if not sys.flags.hash_randomization:
    # PYTHONHASHSEED=0, as on executors: hash() is already the portable value.
    def portable_hash(x: Hashable) -> int:
        """PySpark's ``portable_hash``: the same value for the same key in every process.

        >>> portable_hash(None), portable_hash(42), portable_hash((None, 1)) & 0xffffffff
        (0, 42, 219750521)
        """
        t = type(x)
        if t is int or t is str:  # the common keys first
            return hash(x)
        if x is None:
            return 0
        if isinstance(x, tuple):
            return _portable_tuple_hash(x)
        return hash(x)
else:
    def portable_hash(x: Hashable) -> int:
        """PySpark's ``portable_hash``: the same value for the same key in every process.

        >>> portable_hash(None), portable_hash(42), portable_hash((None, 1)) & 0xffffffff
        (0, 42, 219750521)
        """
        t = type(x)
        if t is int or t is float:
            return hash(x)
        if x is None:
            return 0
        if isinstance(x, tuple):
            return _portable_tuple_hash(x)
        return hash_seed0(x)


# --- partitioners ----------------------------------------------------------------------

def _check_num_partitions(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"numPartitions must be an int, not {type(n).__name__}")
    if n < 1:
        raise ValueError(f"numPartitions must be at least 1, got {n}")
    return n


class Partitioner:
    """Maps a key to a partition number in ``range(numPartitions)``.

    Two partitioners are equal when they are of the same class and send every key to the
    same partition (as far as can be told without calling them: functions compare by
    identity). Subclasses define ``getPartition`` and ``_identity``.
    """

    __slots__ = ("numPartitions",)

    def __init__(self, numPartitions: int) -> None:
        self.numPartitions: int = _check_num_partitions(numPartitions)

    def getPartition(self, key: Any) -> int:
        raise NotImplementedError  # abstract: every concrete partitioner overrides it

    def __call__(self, key: Any) -> int:
        return self.getPartition(key)

    def _identity(self) -> tuple:
        raise NotImplementedError  # abstract: what equality and hashing compare

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if type(other) is not type(self):
            return NotImplemented
        return self._identity() == other._identity()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__qualname__, *self._identity()))


class HashPartitioner(Partitioner):
    """``partitionFunc(key) % numPartitions``, as PySpark's ``partitionBy`` places keys.

    Python's ``%`` is never negative for a positive divisor, so negative hashes land in
    range too (``hash(-1)`` is -2 in CPython, hence ``-1`` in partition 2 below).

    >>> p = HashPartitioner(4)
    >>> [p.getPartition(k) for k in (0, 5, -1, None, (1, 2))]
    [0, 1, 2, 0, 1]
    >>> p == HashPartitioner(4) and p != HashPartitioner(5)
    True
    """

    __slots__ = ("partitionFunc",)

    def __init__(self, numPartitions: int,
                 partitionFunc: Callable[[Any], int] = portable_hash) -> None:
        super().__init__(numPartitions)
        if not callable(partitionFunc):
            raise TypeError(f"partitionFunc must be callable, not {type(partitionFunc).__name__}")
        self.partitionFunc: Callable[[Any], int] = partitionFunc

    def getPartition(self, key: Any) -> int:
        return self.partitionFunc(key) % self.numPartitions

    __call__ = getPartition

    def _identity(self) -> tuple:
        return (self.numPartitions, self.partitionFunc)

    def __repr__(self) -> str:
        fn = getattr(self.partitionFunc, "__qualname__", repr(self.partitionFunc))
        return f"HashPartitioner({self.numPartitions}, {fn})"


_identity_key = identity  # sortByKey's default keyfunc


def _first(kw: tuple) -> Any:
    return kw[0]


class RangePartitioner(Partitioner):
    """Sends sorted ranges of keys to consecutive partitions, for ``sortByKey``.

    ``bounds`` holds ``numPartitions - 1`` (or fewer) upper bounds in ``keyfunc`` space,
    sorted ascending; key ``k`` goes to ``p = bisect_left(bounds, keyfunc(k))``, or to
    ``numPartitions - 1 - p`` when ``ascending`` is false, as in PySpark's ``sortByKey``.

    >>> p = RangePartitioner.from_sample(range(100), 4)
    >>> p.bounds, p.getPartition(-5), p.getPartition(25), p.getPartition(26), p(99)
    ([25, 50, 75], 0, 0, 1, 3)
    >>> RangePartitioner.from_sample(range(100), 4, ascending=False)(99)
    0
    """

    __slots__ = ("ascending", "bounds", "keyfunc")

    def __init__(self, numPartitions: int, bounds: Iterable[Any], ascending: bool = True,
                 keyfunc: Callable[[Any], Any] = _identity_key) -> None:
        super().__init__(numPartitions)
        bounds = list(bounds)
        if len(bounds) >= numPartitions:
            raise ValueError(f"a RangePartitioner over {numPartitions} partitions takes at "
                             f"most {numPartitions - 1} bounds, got {len(bounds)}")
        self.bounds: list[Any] = bounds
        self.ascending: bool = bool(ascending)
        self.keyfunc: Callable[[Any], Any] = keyfunc

    @classmethod
    def from_sample(cls, sample_keys: Iterable[Any], numPartitions: int,
                    ascending: bool = True,
                    keyfunc: Callable[[Any], Any] = _identity_key) -> RangePartitioner:
        """Bounds from a sample of the keys, as PySpark's ``sortByKey`` picks them:
        ``numPartitions - 1`` evenly spaced elements of the sample sorted by ``keyfunc``.
        An empty sample gives no bounds (every key in one partition).

        Unlike PySpark, the bounds are kept as ``keyfunc(sample key)``: PySpark keeps the
        raw keys and bisects them with ``keyfunc(k)``, which raises ``TypeError`` when
        ``keyfunc`` changes the type (``keyfunc=str`` over int keys) and can unbalance
        the partitions otherwise. Sorted results are the same either way (with the
        identity ``keyfunc`` so are the partitions).
        """
        _check_num_partitions(numPartitions)
        samples = sorted(map(keyfunc, sample_keys))
        n = len(samples)
        bounds = [samples[int(n * (i + 1) / numPartitions)]
                  for i in range(numPartitions - 1)] if n else []
        return cls(numPartitions, bounds, ascending, keyfunc)

    @classmethod
    def from_weighted_sample(cls, candidates: Iterable[tuple[Any, float]],
                             numPartitions: int, ascending: bool = True,
                             keyfunc: Callable[[Any], Any] = _identity_key
                             ) -> RangePartitioner:
        """Bounds from ``(key, weight)`` candidates, as Spark's
        ``RangePartitioner.determineBounds``: a key's weight is the number of records it
        stands for (its partition's record count over its sample size), and the bounds
        cut the weighted keys, sorted by ``keyfunc``, into ``numPartitions`` equal
        shares. Equal keys give one bound (so possibly fewer than ``numPartitions - 1``).

        >>> RangePartitioner.from_weighted_sample([(k, 1.0) for k in range(8)], 4).bounds
        [1, 3, 5]
        >>> RangePartitioner.from_weighted_sample([(0, 9.0), (5, 1.0), (7, 1.0)], 2).bounds
        [0]
        """
        _check_num_partitions(numPartitions)
        ordered = sorted(((keyfunc(k), w) for k, w in candidates), key=_first)
        step = sum(w for _, w in ordered) / numPartitions
        bounds: list[Any] = []
        cum = 0.0
        target = step
        for key, weight in ordered:
            if len(bounds) >= numPartitions - 1:
                break
            cum += weight
            if cum >= target and (not bounds or key > bounds[-1]):
                bounds.append(key)
                target += step
        return cls(numPartitions, bounds, ascending, keyfunc)

    def getPartition(self, key: Any) -> int:
        p = bisect_left(self.bounds, self.keyfunc(key))
        return p if self.ascending else self.numPartitions - 1 - p

    __call__ = getPartition

    def _identity(self) -> tuple:
        return (self.numPartitions, self.ascending, self.keyfunc, tuple(self.bounds))

    def __hash__(self) -> int:
        # Bounds may be unhashable (lists as keyfunc results); equality still compares them.
        return hash((type(self).__qualname__, self.numPartitions, self.ascending,
                     self.keyfunc, len(self.bounds)))

    def __repr__(self) -> str:
        return (f"RangePartitioner({self.numPartitions}, bounds={self.bounds!r}, "
                f"ascending={self.ascending})")
