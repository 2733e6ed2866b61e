"""HyperLogLog cardinality estimation, for ``countApproxDistinct``."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from .partitioner import portable_hash

__all__ = ["MAX_PRECISION", "HyperLogLog"]

MAX_PRECISION = 18  # 2**18 registers: a relative standard error of 0.2%

_MASK64 = (1 << 64) - 1


def _mix64(x: int) -> int:
    """splitmix64's finalizer: spreads any 64-bit hash over all bits."""
    x &= _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


class HyperLogLog:
    """``2**p`` registers; relative error about ``1.04 / sqrt(2**p)``."""

    def __init__(self, p: int) -> None:
        if not 4 <= p <= MAX_PRECISION:
            raise ValueError(f"precision must be within 4..{MAX_PRECISION}, got {p}")
        self.p = p
        self.m: int = 1 << p
        self.registers: bytearray = bytearray(self.m)

    def add_all(self, items: Iterable[Any]) -> HyperLogLog:
        """Add every item of ``items`` (by its portable hash)."""
        regs = self.registers
        rest = 64 - self.p
        mask = (1 << rest) - 1
        top = rest + 1
        m64 = _MASK64
        hash_ = portable_hash
        for item in items:
            # _mix64, inlined: this loop is the whole cost of countApproxDistinct
            x = hash_(item) & m64
            x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & m64
            x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & m64
            x ^= x >> 31
            idx = x >> rest
            rank = top - (x & mask).bit_length()
            if rank > regs[idx]:
                regs[idx] = rank
        return self

    def merge_registers(self, other: bytes | bytearray) -> None:
        if len(other) != self.m:
            raise ValueError(f"cannot merge {len(other)} registers into {self.m}")
        self.registers = bytearray(map(max, self.registers, other))

    def estimate(self) -> int:
        """Ertl's improved raw estimator ("New cardinality estimation algorithms for
        HyperLogLog sketches", 2017): unbiased from 0 to 2**64 without the empirical
        bias tables of HyperLogLog++ or a switch to linear counting."""
        m = self.m
        q = 64 - self.p
        counts = [0] * (q + 2)
        for r in self.registers:
            counts[r] += 1
        z = m * _tau(1.0 - counts[q + 1] / m)
        for k in range(q, 0, -1):
            z = 0.5 * (z + counts[k])
        z += m * _sigma(counts[0] / m)
        return round(m * m / (2.0 * math.log(2.0)) / z)


def _sigma(x: float) -> float:
    if x == 1.0:
        return math.inf
    y = 1.0
    z = x
    while True:
        x *= x
        z_old = z
        z += x * y
        y += y
        if z == z_old:
            return z


def _tau(x: float) -> float:
    if x == 0.0 or x == 1.0:
        return 0.0
    y = 1.0
    z = 1.0 - x
    while True:
        x = math.sqrt(x)
        z_old = z
        y *= 0.5
        z -= (1.0 - x) ** 2 * y
        if z == z_old:
            return z / 3.0
