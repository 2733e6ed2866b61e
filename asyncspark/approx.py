"""Approximate results: PySpark's ``BoundedFloat`` and Spark's evaluators of partial
results (``CountEvaluator``, ``SumEvaluator``, ``MeanEvaluator``) with the quantiles they
need (normal, Student's t, Poisson), in plain Python.

An approximate action (``countApprox``/``sumApprox``/``meanApprox``) waits up to its
timeout; the evaluator turns the partitions finished by then into an estimate with a
confidence interval. With every partition finished the result is exact: confidence 1.0,
``low == high == value``.
"""

from __future__ import annotations

import math
from statistics import NormalDist

__all__ = ["BoundedFloat", "count_bound", "mean_bound", "sum_bound"]


class BoundedFloat(float):
    """A float from an approximate job, with its ``confidence`` and ``low``/``high``
    bounds (PySpark's ``pyspark.rdd.BoundedFloat``).

    >>> b = BoundedFloat(100.0, 0.95, 95.0, 105.0)
    >>> b, b.confidence, b.low, b.high
    (100.0, 0.95, 95.0, 105.0)
    """

    confidence: float
    low: float
    high: float

    def __new__(cls, mean: float, confidence: float, low: float, high: float) -> BoundedFloat:
        obj = float.__new__(cls, mean)
        obj.confidence = confidence
        obj.low = low
        obj.high = high
        return obj

    def __reduce__(self) -> tuple[type[BoundedFloat], tuple[float, float, float, float]]:
        return BoundedFloat, (float(self), self.confidence, self.low, self.high)


def _normal_quantile(q: float) -> float:
    return NormalDist().inv_cdf(q)


def _betacf(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (Lentz's method)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _reg_inc_beta(a: float, b: float, x: float) -> float:
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
          + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(ln) * _betacf(a, b, x) / a
    return 1.0 - math.exp(ln) * _betacf(b, a, 1.0 - x) / b


def _t_cdf(t: float, df: int) -> float:
    tail = 0.5 * _reg_inc_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(q: float, df: int) -> float:
    """The ``q`` quantile of Student's t with ``df`` degrees of freedom (bisection)."""
    lo, hi = -1e3, 1e3
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if _t_cdf(mid, df) < q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2.0


def poisson_quantile(q: float, mean: float) -> int:
    """The smallest ``k`` with ``P(X <= k) >= q`` for ``X ~ Poisson(mean)``."""
    if mean <= 0.0:
        return 0
    k = max(0, int(mean - 12.0 * math.sqrt(mean) - 12))
    log_pmf = -mean + k * math.log(mean) - math.lgamma(k + 1)
    # the probability mass below the start point is negligible (< 1e-30)
    cdf = 0.0
    while True:
        cdf += math.exp(log_pmf)
        if cdf >= q or k > mean + 40.0 * math.sqrt(mean) + 40:
            return k
        k += 1
        log_pmf += math.log(mean) - math.log(k)


def _conf_factor(confidence: float, n: int) -> float:
    q = (1.0 + confidence) / 2.0
    return _normal_quantile(q) if n > 100 else t_quantile(q, n - 1)


def count_bound(confidence: float, total: float, merged: int, outputs: int) -> BoundedFloat:
    """Spark's ``CountEvaluator``: ``total`` elements in ``merged`` of ``outputs``
    partitions; the rest is estimated as ``Poisson(total * (1 - p) / p)``."""
    if merged == outputs:
        return BoundedFloat(float(total), 1.0, float(total), float(total))
    if merged == 0 or total == 0:
        return BoundedFloat(0.0, 0.0, 0.0, math.inf)
    p = merged / outputs
    rest = total * (1 - p) / p
    low = poisson_quantile((1 - confidence) / 2, rest)
    high = poisson_quantile((1 + confidence) / 2, rest)
    return BoundedFloat(total + rest, confidence, float(total + low), float(total + high))


def sum_bound(confidence: float, n: int, mean: float, sample_var: float, merged: int,
              outputs: int) -> BoundedFloat:
    """Spark's ``SumEvaluator`` over the merged ``StatCounter`` (count ``n``, ``mean``,
    ``sample_var``) of ``merged`` of ``outputs`` partitions."""
    if merged == outputs:
        total = mean * n
        return BoundedFloat(total, 1.0, total, total)
    if merged == 0 or n == 0:
        return BoundedFloat(0.0, 0.0, -math.inf, math.inf)
    p = merged / outputs
    count_estimate = (n + 1 - p) / p
    sum_estimate = mean * count_estimate
    if n == 1:
        return BoundedFloat(sum_estimate, confidence, -math.inf, math.inf)
    mean_var = sample_var / n
    count_var = (n + 1) * (1 - p) / (p * p)
    sum_var = mean * mean * count_var + count_estimate * count_estimate * mean_var \
        + mean_var * count_var
    half = _conf_factor(confidence, n) * math.sqrt(sum_var)
    return BoundedFloat(sum_estimate, confidence, sum_estimate - half, sum_estimate + half)


def mean_bound(confidence: float, n: int, mean: float, sample_var: float, merged: int,
               outputs: int) -> BoundedFloat:
    """Spark's ``MeanEvaluator`` (see ``sum_bound`` for the arguments)."""
    if merged == outputs:
        return BoundedFloat(mean, 1.0, mean, mean)
    if merged == 0 or n == 0:
        return BoundedFloat(0.0, 0.0, -math.inf, math.inf)
    if n == 1:
        return BoundedFloat(mean, confidence, -math.inf, math.inf)
    half = _conf_factor(confidence, n) * math.sqrt(sample_var / n)
    return BoundedFloat(mean, confidence, mean - half, mean + half)
