"""R26 grids: per local hour slot and per local day, the keys first there, as strided sums.

A `Grid` has hour buckets starting `phase` µs past the UTC hour (every zone's offset since 2000
is a whole number of quarter hours, so four grids serve every zone). A local hour slot is one
bucket, a regular local day 24 buckets from local midnight. Per bucket it keeps 24 ints: [0]
the points first of their key in the bucket (points minus links inside it) and [j] the links of
exactly j buckets ending there, which a day subtracts when both ends are inside it. The ints
of 256 buckets share one array, so counting a point in is one dict read and two additions.
"""

from __future__ import annotations

from array import array
from typing import Any

from callrouter.stats.buckets import zeros
from callrouter.stats.history import HOUR_US

GRID_LAG = 24  # the longest link a local day (of 24 hours) can hold inside it
GRID_PHASES = tuple(m * 60_000_000 for m in (0, 15, 30, 45))
_BITS = 8  # log2 of the buckets per block
_LOW = (1 << _BITS) - 1
_SIZE = GRID_LAG << _BITS


class Grid:
    """Firsts and short links per bucket, on buckets starting `phase` µs past the UTC hour."""

    __slots__ = ("blocks", "phase")

    def __init__(self, phase: int) -> None:
        self.phase = phase
        self.blocks: dict[int, array[int]] = {}

    def dump(self) -> list[Any]:
        """Plain data for the snapshot."""
        keys = sorted(self.blocks)
        return [self.phase, array("q", keys), [self.blocks[k] for k in keys]]

    @classmethod
    def load(cls, plain: list[Any]) -> Grid:
        """The grid `dump` gave."""
        grid = cls(plain[0])
        grid.blocks = dict(zip(plain[1], plain[2], strict=True))
        return grid

    def bucket(self, t: int) -> int:
        """The bucket of time t on this grid."""
        return (t - self.phase) // HOUR_US

    def _block(self, bucket: int) -> array[int]:
        block = self.blocks.get(bucket >> _BITS)
        if block is None:
            block = self.blocks[bucket >> _BITS] = zeros("i", _SIZE)
        return block

    def _link(self, end: int, lag: int, sign: int) -> None:
        if lag < GRID_LAG:  # lag 0: inside one bucket, the later point is not first there
            self._block(end)[(end & _LOW) * GRID_LAG + lag] += -sign if lag == 0 else sign

    def insert(self, t: int, prev: int | None, nxt: int | None) -> None:
        """Count in the point at t between its key's points at `prev` and `nxt` (None: none)."""
        phase = self.phase
        bt = (t - phase) // HOUR_US
        if nxt is None and prev is not None:  # the usual case: a new latest point
            lag = bt - (prev - phase) // HOUR_US
            if lag == 0:
                return  # first in the bucket already: nothing changes
            block = self._block(bt)
            i = (bt & _LOW) * GRID_LAG
            block[i] += 1
            if lag < GRID_LAG:
                block[i + lag] += 1
            return
        self._block(bt)[(bt & _LOW) * GRID_LAG] += 1
        if prev is not None:
            bp = (prev - phase) // HOUR_US
            if nxt is not None:
                bn = (nxt - phase) // HOUR_US
                self._link(bn, bn - bp, -1)
            self._link(bt, bt - bp, 1)
        if nxt is not None:
            bn = (nxt - phase) // HOUR_US
            self._link(bn, bn - bt, 1)

    def firsts(self, bucket: int) -> int:
        """Points first of their key in the bucket."""
        block = self.blocks.get(bucket >> _BITS)
        return 0 if block is None else block[(bucket & _LOW) * GRID_LAG]

    def window(self, lo: int, hi: int) -> list[array[int]]:
        """Buckets [lo, hi) as GRID_LAG contiguous arrays: firsts, then links of 1..23."""
        out = [array("i") for _ in range(GRID_LAG)]
        b = lo >> _BITS
        x = lo
        while x < hi:
            end = min(hi, (b + 1) << _BITS)
            block = self.blocks.get(b)
            i, j = (x & _LOW) * GRID_LAG, ((end - 1) & _LOW) * GRID_LAG + GRID_LAG
            for lag, values in enumerate(out):
                if block is None:
                    values.extend(zeros("i", end - x))
                else:
                    values.extend(block[i + lag : j : GRID_LAG])
            x = end
            b += 1
        return out
