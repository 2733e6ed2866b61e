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
        """Add one value."""
        delta = value - self.mu
        self.n += 1
        self.mu += delta / self.n
        self.m2 += delta * (value - self.mu)
        self.maxValue = max(self.maxValue, value)
        self.minValue = min(self.minValue, value)
        return self

    def mergeStats(self, other: StatCounter) -> StatCounter:
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
        c = StatCounter()
        c.n, c.mu, c.m2 = self.n, self.mu, self.m2
        c.maxValue, c.minValue = self.maxValue, self.minValue
        return c

    def count(self) -> int:
        return int(self.n)

    def mean(self) -> float:
        """The mean; 0.0 when there are no values (as PySpark and Spark)."""
        return self.mu

    def sum(self) -> float:
        return self.n * self.mu

    def min(self) -> float:
        return self.minValue

    def max(self) -> float:
        return self.maxValue

    def variance(self) -> float:
        """Population variance (divides by n)."""
        return float("nan") if self.n == 0 else self.m2 / self.n

    def sampleVariance(self) -> float:
        """Sample variance (divides by n - 1)."""
        return float("nan") if self.n <= 1 else self.m2 / (self.n - 1)

    def stdev(self) -> float:
        return math.sqrt(self.variance())

    def sampleStdev(self) -> float:
        return math.sqrt(self.sampleVariance())

    def asDict(self, sample: bool = False) -> dict[str, float]:
        """The members as a dict, exactly as PySpark's ``asDict``.

        Note PySpark's (inverted) flag: by default ``stdev`` and ``variance`` are the
        *sample* statistics (its doctest: ``[1., 2., 3., 4.]`` gives ``'variance':
        1.6666666666666667``); ``sample=True`` gives the population ones.
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
