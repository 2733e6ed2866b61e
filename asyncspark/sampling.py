"""The RDD's sampling and approximate actions (a mixin of ``RDD``, as
``AggregateRDDFunctions`` is): ``takeSample``, ``randomSplit``, ``sampleByKey``,
``countApprox``, ``sumApprox``, ``meanApprox``.

Samplers are PySpark's (``pyspark.rddsampler``): per partition a ``random.Random(seed ^
split)``, so a seed gives the same sample in both. Approximate actions wait up to their
timeout (milliseconds, as PySpark) and estimate from the partitions finished by then with
Spark's evaluators (``approx.py``); the unfinished tasks are cancelled. PySpark itself
always waits for the final value; asyncspark returns the exact value too whenever the job
finishes within the timeout (confidence 1.0, ``low == high``).
"""

from __future__ import annotations

import itertools
import math
import random
import sys
from collections.abc import Sequence
from functools import reduce as _reduce
from typing import TYPE_CHECKING, Any, TypeVar

from .approx import BoundedFloat, count_bound, mean_bound, sum_bound
from .statcounter import StatCounter

if TYPE_CHECKING:
    from .rdd import RDD

__all__ = ["SamplingRDDFunctions", "fraction_for_sample_size"]

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")

_NUM_STDEV = 10.0
MAX_SAMPLE_SIZE = sys.maxsize - int(_NUM_STDEV * math.sqrt(sys.maxsize))


def fraction_for_sample_size(lower_bound: int, total: int, with_replacement: bool) -> float:
    """The sampling fraction that yields at least ``lower_bound`` of ``total`` elements
    with probability over 99.99 % (Spark's ``SamplingUtils.computeFractionForSampleSize``)."""
    fraction = float(lower_bound) / total
    if with_replacement:
        num_stdev = 9 if lower_bound < 12 else 5
        return fraction + num_stdev * math.sqrt(fraction / total)
    delta = 0.00005
    gamma = -math.log(delta) / total
    return min(1, fraction + gamma + math.sqrt(gamma * gamma + 2 * gamma * fraction))


class _RangeSampler:
    """PySpark's ``RDDRangeSampler``: keeps elements whose uniform draw is in
    ``[lower, upper)``; splits with one seed partition the data exactly."""

    def __init__(self, lower: float, upper: float, seed: int) -> None:
        self.lower, self.upper, self.seed = lower, upper, seed

    def func(self, split: int, iterator):
        from .rdds.partition_funcs import Sampler

        rng = Sampler(False, 0.0, self.seed)._rng(split)
        lower, upper = self.lower, self.upper
        for obj in iterator:
            if lower <= rng.random() < upper:
                yield obj


class _StratifiedSampler:
    """PySpark's ``RDDStratifiedSampler``: ``sample`` with a fraction per key."""

    def __init__(self, with_replacement: bool, fractions: dict, seed: int) -> None:
        self.with_replacement, self.fractions, self.seed = with_replacement, fractions, seed

    def func(self, split: int, iterator):
        from .rdds.partition_funcs import Sampler

        rng = Sampler(False, 0.0, self.seed)._rng(split)
        fractions = self.fractions
        for kv in iterator:
            key = kv[0]
            if key not in fractions:
                raise KeyError(f"sampleByKey: no fraction for key {key!r}")
            if self.with_replacement:
                for _ in range(Sampler._poisson(rng, fractions[key])):
                    yield kv
            elif rng.random() < fractions[key]:
                yield kv


def _check_timeout(timeout: Any, confidence: Any) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
        raise ValueError(f"timeout must be a nonnegative number of milliseconds, got "
                         f"{timeout!r}")
    if not 0.0 <= confidence <= 1.0:
        raise ValueError(f"confidence must be within [0, 1], got {confidence!r}")
    return timeout / 1000.0


def _stat_counter(it) -> StatCounter:
    return StatCounter(float(x) for x in it)


class SamplingRDDFunctions:
    """Sampling and approximate actions of ``RDD`` (mixed into it; ``self`` is an RDD)."""

    __slots__ = ()

    async def takeSample(self: RDD[T], withReplacement: bool, num: int,
                         seed: int | None = None) -> list[T]:
        """A sample of exactly ``num`` elements (fewer only without replacement from a
        smaller RDD), in random order; as PySpark, the same ``seed`` gives the same sample.

        Raises ``ValueError`` for a negative ``num`` or one over ``sys.maxsize - 10 *
        sqrt(sys.maxsize)``.

        >>> rdd = sc.parallelize(range(100), 4)
        >>> len(await rdd.takeSample(True, 120, 7)), len(await rdd.takeSample(False, 120, 7))
        (120, 100)
        >>> await rdd.takeSample(False, 5, 7) == await rdd.takeSample(False, 5, 7)
        True
        """
        if num < 0:
            raise ValueError("Sample size cannot be negative.")
        if num > MAX_SAMPLE_SIZE:
            raise ValueError(f"Sample size cannot be greater than {MAX_SAMPLE_SIZE}.")
        if num == 0 or self.getNumPartitions() == 0:
            return []
        initial = await self.count()
        if initial == 0:
            return []
        rand = random.Random(seed)
        if not withReplacement and num >= initial:
            samples = await self.collect()
            rand.shuffle(samples)
            return samples
        fraction = fraction_for_sample_size(num, initial, withReplacement)
        samples = await self.sample(withReplacement, fraction, seed).collect()
        while len(samples) < num:  # rare: the fraction allows for 10 standard deviations
            seed = rand.randint(0, sys.maxsize)
            samples = await self.sample(withReplacement, fraction, seed).collect()
        rand.shuffle(samples)
        return samples[0:num]

    def randomSplit(self: RDD[T], weights: Sequence[int | float],
                    seed: int | None = None) -> list[RDD[T]]:
        """RDDs splitting this one at random by ``weights`` (normalised to sum to 1):
        each element lands in exactly one of them (given a deterministic lineage).

        >>> a, b = sc.parallelize(range(500), 2).randomSplit([2, 3], seed=17)
        >>> await a.count() + await b.count()
        500
        >>> sorted(await a.union(b).collect()) == list(range(500))
        True
        """
        if not all(w >= 0 for w in weights):
            raise ValueError("Weights must be nonnegative")
        s = float(sum(weights))
        if not s > 0:
            raise ValueError("Sum of weights must be positive")
        bounds = [0.0]
        for w in weights:
            bounds.append(bounds[-1] + w / s)
        if seed is None:
            seed = random.randint(0, 2**32 - 1)
        return [self.mapPartitionsWithIndex(_RangeSampler(lb, ub, seed).func, True)
                for lb, ub in itertools.pairwise(bounds)]

    def sampleByKey(self: RDD[tuple[K, V]], withReplacement: bool, fractions: dict[K, float],
                    seed: int | None = None) -> RDD[tuple[K, V]]:
        """A sample of a pair RDD with ``fractions[key]`` per key (every key must have
        one).

        >>> pairs = sc.parallelize([(k, i) for k in "ab" for i in range(100)], 2)
        >>> sample = await pairs.sampleByKey(False, {"a": 1.0, "b": 0.0}, seed=3).collect()
        >>> len(sample), {k for k, _ in sample}
        (100, {'a'})
        """
        for fraction in fractions.values():
            if fraction < 0.0:
                raise ValueError(f"Negative fraction value: {fraction}")
        if seed is None:
            seed = random.randint(0, sys.maxsize)
        return self.mapPartitionsWithIndex(
            _StratifiedSampler(withReplacement, dict(fractions), seed).func, True)

    async def countApprox(self: RDD[Any], timeout: int, confidence: float = 0.95) -> int:  # noqa: ASYNC109
        """``count()``, or within ``timeout`` milliseconds an estimate from the
        partitions counted by then (Spark's ``CountEvaluator``).

        >>> await sc.parallelize(range(1000), 10).countApprox(timeout=60_000)
        1000
        """
        seconds = _check_timeout(timeout, confidence)
        parts, done = await self.context.run_approximate_job(
            self, lambda it: sum(1 for _ in it), seconds)
        total = sum(p for p in parts if p is not None)
        return int(count_bound(confidence, total, done, len(parts)))

    async def sumApprox(self: RDD[Any], timeout: int,  # noqa: ASYNC109
                        confidence: float = 0.95) -> BoundedFloat:
        """The sum as a ``BoundedFloat``: exact if the job finishes within ``timeout``
        milliseconds, else estimated (Spark's ``SumEvaluator`` over partition sums).

        >>> r = await sc.parallelize(range(1000), 10).sumApprox(60_000)
        >>> r, r.confidence, r.low, r.high
        (499500.0, 1.0, 499500.0, 499500.0)
        """
        seconds = _check_timeout(timeout, confidence)
        parts, done = await self.context.run_approximate_job(
            self, lambda it: StatCounter([float(sum(it))]), seconds)
        stats = _reduce(StatCounter.mergeStats, [p for p in parts if p is not None],
                        StatCounter())
        return sum_bound(confidence, stats.count(), stats.mean() if stats.count() else 0.0,
                         _sample_var(stats), done, len(parts))

    async def meanApprox(self: RDD[Any], timeout: int,  # noqa: ASYNC109
                         confidence: float = 0.95) -> BoundedFloat:
        """The mean as a ``BoundedFloat``: exact if the job finishes within ``timeout``
        milliseconds, else estimated (Spark's ``MeanEvaluator``).

        >>> await sc.parallelize(range(1000), 10).meanApprox(60_000, confidence=0.9)
        499.5
        """
        seconds = _check_timeout(timeout, confidence)
        parts, done = await self.context.run_approximate_job(self, _stat_counter, seconds)
        stats = _reduce(StatCounter.mergeStats, [p for p in parts if p is not None],
                        StatCounter())
        n = stats.count()
        if done == len(parts) and n == 0:
            return BoundedFloat(math.nan, 1.0, math.nan, math.nan)
        return mean_bound(confidence, n, stats.mean() if n else 0.0, _sample_var(stats),
                          done, len(parts))


def _sample_var(stats: StatCounter) -> float:
    return stats.sampleVariance() if stats.count() > 1 else math.nan
