"""``StatCounter``: count, mean and variance in one pass (Welford), mergeable; PySpark's API."""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = ["StatCounter"]


class StatCounter:
    """Count, mean, variance, min and max of numbers, mergeable (PySpark's
    ``pyspark.statcounter.StatCounter``).

    >>> StatCounter([1.0, 2.0, 3.0]).mean()
    2.0
    """

    def __init__(self, values: Iterable[float] | None = None) -> None:
        self.n: int = 0
        self.mu: float = 0.0
        self.m2: float = 0.0
        self.maxValue: float = float("-inf")
        self.minValue: float = float("inf")
        for v in values or ():
            self.merge(v)

    def merge(self, value: float) -> StatCounter:
        """Add one value.

        >>> StatCounter([1, 2]).merge(6).mean()
        3.0
        """
        delta = value - self.mu
        self.n += 1
        self.mu += delta / self.n
        self.m2 += delta * (value - self.mu)
        self.maxValue = max(self.maxValue, value)
        self.minValue = min(self.minValue, value)
        return self

    def mergeStats(self, other: StatCounter) -> StatCounter:
        """Merge another counter's values into this one.

        >>> StatCounter([1, 2]).mergeStats(StatCounter([3, 4])).count()
        4
        """
        if not isinstance(other, StatCounter):
            raise TypeError(f"Can only merge StatCounter but got {type(other)}")
        if other is self:
            return self.mergeStats(other.copy())
        if self.n == 0:
            self.mu, self.m2, self.n = other.mu, other.m2, other.n
            self.maxValue, self.minValue = other.maxValue, other.minValue
        elif other.n != 0:
            delta = other.mu - self.mu
            if other.n * 10 < self.n:
                self.mu = self.mu + (delta * other.n) / (self.n + other.n)
            elif self.n * 10 < other.n:
                self.mu = other.mu - (delta * self.n) / (self.n + other.n)
            else:
                self.mu = (self.mu * self.n + other.mu * other.n) / (self.n + other.n)
            self.maxValue = max(self.maxValue, other.maxValue)
            self.minValue = min(self.minValue, other.minValue)
            self.m2 += other.m2 + (delta * delta * self.n * other.n) / (self.n + other.n)
            self.n += other.n
        return self

    def copy(self) -> StatCounter:
        """An independent copy.

        >>> s = StatCounter([1.0]); c = s.copy().merge(3.0)
        >>> s.count(), c.count()
        (1, 2)
        """
        c = StatCounter()
        c.n, c.mu, c.m2 = self.n, self.mu, self.m2
        c.maxValue, c.minValue = self.maxValue, self.minValue
        return c

    def count(self) -> int:
        """How many values.

        >>> StatCounter([5, 6, 7]).count()
        3
        """
        return int(self.n)

    def mean(self) -> float:
        """The mean; 0.0 when there are no values (as PySpark and Spark).

        >>> StatCounter([1, 2, 6]).mean()
        3.0
        """
        return self.mu

    def sum(self) -> float:
        """The sum of the values.

        >>> StatCounter([1, 2, 6]).sum()
        9.0
        """
        return self.n * self.mu

    def min(self) -> float:
        """The smallest value.

        >>> StatCounter([4, 1, 6]).min()
        1
        """
        return self.minValue

    def max(self) -> float:
        """The largest value.

        >>> StatCounter([4, 1, 6]).max()
        6
        """
        return self.maxValue

    def variance(self) -> float:
        """Population variance (divides by n).

        >>> StatCounter([1, 2, 3, 4]).variance()
        1.25
        """
        return float("nan") if self.n == 0 else self.m2 / self.n

    def sampleVariance(self) -> float:
        """Sample variance (divides by n - 1).

        >>> round(StatCounter([1, 2, 3, 4]).sampleVariance(), 4)
        1.6667
        """
        return float("nan") if self.n <= 1 else self.m2 / (self.n - 1)

    def stdev(self) -> float:
        """Population standard deviation.

        >>> StatCounter([2, 4, 4, 4, 5, 5, 7, 9]).stdev()
        2.0
        """
        return math.sqrt(self.variance())

    def sampleStdev(self) -> float:
        """Sample standard deviation (divides by n - 1).

        >>> round(StatCounter([1, 2, 3, 4]).sampleStdev(), 4)
        1.291
        """
        return math.sqrt(self.sampleVariance())

    def asDict(self, sample: bool = False) -> dict[str, float]:
        """The members as a dict, exactly as PySpark's ``asDict``.

        Note PySpark's (inverted) flag: by default ``stdev`` and ``variance`` are the
        *sample* statistics (its doctest: ``[1., 2., 3., 4.]`` gives ``'variance':
        1.6666666666666667``); ``sample=True`` gives the population ones.

        >>> StatCounter([1, 3]).asDict()['mean']
        2.0
        """
        return {
            "count": self.count(), "mean": self.mean(), "sum": self.sum(),
            "min": self.min(), "max": self.max(),
            "stdev": self.stdev() if sample else self.sampleStdev(),
            "variance": self.variance() if sample else self.sampleVariance(),
        }

    def __repr__(self) -> str:
        return (f"(count: {self.count()}, mean: {self.mean()}, stdev: {self.stdev()}, "
                f"max: {self.max()}, min: {self.min()})")
