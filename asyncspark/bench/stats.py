"""Numbers for the benchmark harness: percentiles, medians across runs, histograms."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["ascii_histogram", "histogram", "median_across_runs", "percentiles", "rank"]


def rank(sorted_values: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0 < q <= 1) of already sorted values."""
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def percentiles(samples: Iterable[float], scale: float = 1.0, unit: str = "ms"
                ) -> dict[str, float]:
    """``{"p50_<unit>", "p90_<unit>", "p99_<unit>", "max_<unit>"}`` of ``samples`` times
    ``scale`` (nearest-rank percentiles)."""
    s = sorted(samples)
    if not s:
        return {}
    return {f"p50_{unit}": rank(s, 0.50) * scale, f"p90_{unit}": rank(s, 0.90) * scale,
            f"p99_{unit}": rank(s, 0.99) * scale, f"max_{unit}": s[-1] * scale}


def median_across_runs(runs: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """``{scenario: {figure: median}}`` over runs shaped ``{scenario: {figure: value}}``;
    non-numeric figures are left out, a figure missing from some runs is the median of
    the others."""
    out: dict[str, dict[str, Any]] = {}
    for run in runs:
        for scenario, figures in run.items():
            for key in figures:
                out.setdefault(scenario, {}).setdefault(key, None)
    for scenario, figures in out.items():
        for key in figures:
            values = [r[scenario][key] for r in runs
                      if isinstance(r.get(scenario, {}).get(key), (int, float))
                      and not isinstance(r[scenario][key], bool)]
            figures[key] = statistics.median(values) if values else None
    return out


def histogram(samples_ms: Sequence[float], bins: int = 16) -> list[list[float]]:
    """``[[low, high, count], ...]``: equal-width bins from the fastest sample up to the
    p99, then (when it has samples) one bin for the tail up to the slowest."""
    if not samples_ms:
        return []
    s = sorted(samples_ms)
    lo, hi = s[0], rank(s, 0.99)
    if hi <= lo:
        hi = lo + 1e-3
    step = (hi - lo) / bins
    counts = [0] * (bins + 1)
    for v in s:
        counts[bins if v > hi else min(int((v - lo) / step), bins - 1)] += 1
    out = [[lo + i * step, lo + (i + 1) * step, counts[i]] for i in range(bins)]
    if counts[bins]:
        out.append([hi, s[-1], counts[bins]])
    return out


def ascii_histogram(bins: list[list[float]], width: int = 40) -> list[str]:
    """``histogram()``'s bins as text, a line each: ``"0.412-0.431 ms |####   | 123"``."""
    if not bins:
        return ["  (no samples)"]
    top = max(n for _, _, n in bins) or 1
    lines = []
    for lo, hi, n in bins:
        bar = "#" * max(1 if n else 0, round(n / top * width))
        lines.append(f"  {lo:8.3f} - {hi:8.3f} ms |{bar:<{width}}| {n}")
    return lines
