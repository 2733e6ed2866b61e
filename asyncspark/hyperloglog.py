"""HyperLogLog cardinality estimation, for ``countApproxDistinct``."""

from __future__ import annotations

import math
from collections.abc import Iterable

from .partitioner import portable_hash

__all__ = ["HyperLogLog"]

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
        if not 4 <= p <= 18:
            raise ValueError(f"precision must be within 4..18, got {p}")
        self.p = p
        self.m = 1 << p
        self.registers = bytearray(self.m)

    def add_all(self, items: Iterable) -> HyperLogLog:
        regs = self.registers
        p = self.p
        rest = 64 - p
        mask = (1 << rest) - 1
        for item in items:
            h = _mix64(portable_hash(item))
            idx = h >> rest
            w = h & mask
            rank = rest - w.bit_length() + 1
            if rank > regs[idx]:
                regs[idx] = rank
        return self

    def merge_registers(self, other: bytes | bytearray) -> None:
        regs = self.registers
        for i, r in enumerate(other):
            if r > regs[i]:
                regs[i] = r

    def estimate(self) -> int:
        m = self.m
        alpha = {16: 0.673, 32: 0.697, 64: 0.709}.get(m, 0.7213 / (1 + 1.079 / m))
        total = math.fsum(2.0 ** -r for r in self.registers)
        e = alpha * m * m / total
        zeros = self.registers.count(0)
        if e <= 2.5 * m and zeros:
            e = m * math.log(m / zeros)  # linear counting for small cardinalities
        return round(e)
