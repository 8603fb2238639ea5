"""Hour-bucket counters that stay small wherever their buckets lie.

`Counts` keeps an integer per hour bucket in blocks of `BLOCK` hours, made on first touch and
kept in a dict: a year of buckets is a few blocks, and one event in 2099 adds one block, not a
century of zeros. Each block keeps its total, so a long sum is a handful of dict reads and two
partial slices at C speed.
"""

from __future__ import annotations

from array import array
from typing import Any

BLOCK_BITS = 8
BLOCK = 1 << BLOCK_BITS  # hours per block (about ten days)
_LOW = BLOCK - 1


def zeros(typecode: str, n: int) -> array[int]:
    """An array of n zeros."""
    return array(typecode, bytes(array(typecode).itemsize * n))


class Counts:
    """An integer per hour bucket, in blocks of `BLOCK` hours made on first touch."""

    __slots__ = ("blocks", "sums", "typecode")

    def __init__(self, typecode: str = "i") -> None:
        self.typecode = typecode  # "i" for counts, "q" for sums of microseconds
        self.blocks: dict[int, array[int]] = {}
        self.sums: dict[int, int] = {}

    def dump(self) -> list[Any]:
        """Plain data for the snapshot (blocks in key order, so equal states give equal bytes)."""
        keys = sorted(self.blocks)
        return [self.typecode, array("q", keys), [self.blocks[k] for k in keys]]

    @classmethod
    def load(cls, plain: list[Any]) -> Counts:
        """The counters `dump` gave."""
        counts = cls(plain[0])
        for key, values in zip(plain[1], plain[2], strict=True):
            counts.blocks[key] = values
            counts.sums[key] = sum(values)
        return counts

    def add(self, bucket: int, delta: int) -> None:
        """Add `delta` to `bucket`'s counter."""
        b = bucket >> BLOCK_BITS
        values = self.blocks.get(b)
        if values is None:
            values = self.blocks[b] = zeros(self.typecode, BLOCK)
            self.sums[b] = 0
        values[bucket & _LOW] += delta
        self.sums[b] += delta

    def _part(self, b: int, i: int, j: int) -> int:
        # The sum of block b's buckets [i, j), from the nearer end of the block.
        values = self.blocks.get(b)
        if values is None:
            return 0
        if j - i <= BLOCK // 2:
            return sum(values[i:j])
        return self.sums[b] - sum(values[:i]) - sum(values[j:])

    def total(self, lo: int, hi: int) -> int:
        """The sum over buckets [lo, hi)."""
        if lo >= hi:
            return 0
        b0, i0 = divmod(lo, BLOCK)
        b1, i1 = divmod(hi, BLOCK)
        if b0 == b1:
            return self._part(b0, i0, i1)
        total = self._part(b0, i0, BLOCK) + (self._part(b1, 0, i1) if i1 else 0)
        sums = self.sums
        if b1 - b0 - 1 <= len(sums):
            get = sums.get
            total += sum(get(b, 0) for b in range(b0 + 1, b1))
        else:  # a sparse, very long span: walk the blocks there are
            total += sum(v for b, v in sums.items() if b0 < b < b1)
        return total

    def window(self, lo: int, hi: int) -> array[int]:
        """The counters of buckets [lo, hi) as one contiguous array (zeros where no block)."""
        out = array(self.typecode)
        b = lo // BLOCK
        x = lo
        while x < hi:
            end = min(hi, (b + 1) * BLOCK)
            values = self.blocks.get(b)
            if values is None:
                out.extend(zeros(self.typecode, end - x))
            else:
                out.extend(values[x - b * BLOCK : end - b * BLOCK])
            x = end
            b += 1
        return out
