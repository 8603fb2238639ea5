"""Cross-hour links of every series, shared: the two-dimensional part of a distinct count.

A link joins a point to the next point of its key. For whole hours [lo, hi) the R25 count needs
the links that start in [lo, hi) and end at hour hi or later ("straddlers"). Most links are
short (a case worked again within two days), so:

- `ShortLinks`: links of at most `SHORT` hours, per start hour one sorted `array('I')` of
  (series code, length) for all series together. Only the `SHORT` hours before hi can hold a
  straddler, so a count is at most `SHORT` pairs of bisects, whatever the period.
- `LongLinks`: longer links (and every cross-hour close, with its weights), per block of
  `LONG_BLOCK` hours one sorted `array('q')` of (series code, end hour) with the start hours
  (and weights) beside it: a block inside the period is two bisects, a cut block a short scan.

Nothing is kept for links inside one hour: they can never straddle a whole-hour boundary.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from itertools import repeat
from operator import add, sub
from typing import Any

SHORT = 48  # hours: 99% of links in a year of calls are shorter
LONG_BLOCK = 512  # hours per block of long links
_LAG_BITS = 8
_END_BITS = 32


class ShortLinks:
    """Links of 1..SHORT hours: per start hour, sorted (code << 8 | length) of all series."""

    __slots__ = ("hours",)

    def __init__(self) -> None:
        self.hours: dict[int, array[int]] = {}

    def dump(self) -> list[Any]:
        """Plain data for the snapshot."""
        keys = sorted(self.hours)
        return [array("q", keys), [self.hours[k] for k in keys]]

    @classmethod
    def load(cls, plain: list[Any]) -> ShortLinks:
        """The links `dump` gave."""
        links = cls()
        links.hours = dict(zip(plain[0], plain[1], strict=True))
        return links

    def add(self, code: int, start: int, length: int) -> None:
        """Count in a link of `code` from hour `start`, `length` hours long."""
        value = code << _LAG_BITS | length
        values = self.hours.get(start)
        if values is None:
            self.hours[start] = array("I", (value,))
        elif values[-1] <= value:
            values.append(value)
        else:
            values.insert(bisect_right(values, value), value)

    def remove(self, code: int, start: int, length: int) -> None:
        """Count out a link `add` counted in."""
        values = self.hours[start]
        del values[bisect_left(values, code << _LAG_BITS | length)]
        if not values:
            del self.hours[start]

    def count(self, codes: list[int], lo: int, hi: int) -> list[int]:
        """Per code, the links starting in hours [lo, hi) and ending at hour hi or later."""
        totals = [0] * len(codes)
        if lo >= hi:
            return totals
        tops = [(code + 1) << _LAG_BITS for code in codes]
        get = self.hours.get
        for start in range(max(lo, hi - SHORT), hi):
            values = get(start)
            if values is not None:
                least = [code << _LAG_BITS | (hi - start) for code in codes]
                ends = map(bisect_left, repeat(values), tops)
                firsts = map(bisect_left, repeat(values), least)
                totals = list(map(add, totals, map(sub, ends, firsts)))
        return totals


def _key(code: int, hour: int) -> int:
    return code << _END_BITS | min(max(hour, 0), (1 << _END_BITS) - 1)


class LongLinks:
    """Links by block of start hours: sorted keys (code, end hour), and per key its start hour
    and `width` weights (r, w for closes)."""

    __slots__ = ("blocks", "stride")

    def __init__(self, width: int = 0) -> None:
        self.stride = 1 + width
        self.blocks: dict[int, tuple[array[int], array[int]]] = {}

    def dump(self) -> list[Any]:
        """Plain data for the snapshot."""
        keys = sorted(self.blocks)
        return [self.stride, array("q", keys), [list(self.blocks[k]) for k in keys]]

    @classmethod
    def load(cls, plain: list[Any]) -> LongLinks:
        """The links `dump` gave."""
        links = cls(plain[0] - 1)
        links.blocks = {k: (v[0], v[1]) for k, v in zip(plain[1], plain[2], strict=True)}
        return links

    def add(self, code: int, start: int, end: int, *weights: int) -> None:
        """Count in a link of `code` from hour `start` to hour `end`, with its weights."""
        block = self.blocks.get(start // LONG_BLOCK)
        if block is None:
            block = self.blocks[start // LONG_BLOCK] = (array("q"), array("q"))
        keys, rest = block
        key = _key(code, end)
        i = bisect_right(keys, key)
        keys.insert(i, key)
        s = self.stride
        rest[i * s : i * s] = array("q", (start, *weights))

    def _find(self, code: int, start: int, end: int, weights: tuple[int, ...]) -> int:
        keys, rest = self.blocks[start // LONG_BLOCK]
        key = _key(code, end)
        s = self.stride
        want = array("q", (start, *weights))
        i = bisect_left(keys, key)
        while rest[i * s : i * s + s] != want:
            i += 1
        assert keys[i] == key, "a link that was never counted in"
        return i

    def remove(self, code: int, start: int, end: int, *weights: int) -> None:
        """Count out a link `add` counted in (any one with the same values: they are alike)."""
        keys, rest = self.blocks[start // LONG_BLOCK]
        i = self._find(code, start, end, weights)
        s = self.stride
        del keys[i]
        del rest[i * s : i * s + s]
        if not keys:
            del self.blocks[start // LONG_BLOCK]

    def bump(self, code: int, start: int, end: int, weights: tuple[int, ...], by: int) -> None:
        """Add `by` to the first weight of one link with these values."""
        i = self._find(code, start, end, weights)
        self.blocks[start // LONG_BLOCK][1][i * self.stride + 1] += by

    def _ranges(self, code: int, lo: int, hi: int) -> Iterator[tuple[bool, array[int], int, int]]:
        # Per block holding starts in [lo, hi): (whole block inside?, rest, first, stop) of the
        # keys of `code` ending at hour hi or later.
        b0, b1 = lo // LONG_BLOCK, (hi - 1) // LONG_BLOCK
        blocks = self.blocks
        if b1 - b0 < len(blocks):
            picked = [b for b in range(b0, b1 + 1) if b in blocks]
        else:
            picked = sorted(b for b in blocks if b0 <= b <= b1)
        first_key, stop_key = _key(code, hi), _key(code + 1, 0)
        for b in picked:
            keys, rest = blocks[b]
            i = bisect_left(keys, first_key)
            j = bisect_left(keys, stop_key)
            if i < j:
                yield lo <= b * LONG_BLOCK and (b + 1) * LONG_BLOCK <= hi, rest, i, j

    def count(self, code: int, lo: int, hi: int) -> int:
        """Links of `code` starting in hours [lo, hi) and ending at hour hi or later."""
        if lo >= hi:
            return 0
        s = self.stride
        total = 0
        for whole, rest, i, j in self._ranges(code, lo, hi):
            if whole:
                total += j - i
            else:
                total += sum(1 for k in range(i, j) if lo <= rest[k * s] < hi)
        return total

    def weights(self, code: int, lo: int, hi: int) -> list[tuple[int, int]]:
        """The (r, w) of each link `count` would count (for a width-2 instance)."""
        if lo >= hi:
            return []
        s = self.stride
        out = []
        for _whole, rest, i, j in self._ranges(code, lo, hi):
            for k in range(i * s, j * s, s):
                if lo <= rest[k] < hi:
                    out.append((rest[k + 1], rest[k + 2]))
        return out
