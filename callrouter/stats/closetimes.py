"""Close times kept sorted by hour ranges, and the weighted selection the R28/R29 figures read.

`CloseTimes` holds the close time (µs) of every close that is the latest of its case so far,
twice: per block of 64 hours sorted by value with the hour inside the block in the low bits (a
whole block is one bisect; a cut one is filtered), and plain sorted per 512 hours. Any range of
whole hours is then at most two filtered blocks plus about fifty sorted arrays, and "how many
≤ v" is a bisect in each.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

_FINE, _COARSE = 6, 9  # log2 of the hours per block: 64 and 512
_RATIO = 1 << (_COARSE - _FINE)
_LOW = (1 << _FINE) - 1
_BIAS = 1 << 52  # |close time| < 100 years < 2**52 µs, so value + _BIAS fits in 53 bits
_FEW = 64  # values left between the bounds of a median search to read out directly


def fine_key(value: int) -> int:
    """The key that counts a 64-hour block's values ≤ `value` with one bisect_right."""
    return (value + _BIAS) << _FINE | _LOW


class CloseTimes:
    """Close times by hour, for counts and medians over any range of whole hours."""

    __slots__ = ("coarse", "fine")

    def __init__(self) -> None:
        self.fine: dict[int, array[int]] = {}  # 64-hour block -> sorted (time, hour in block)
        self.coarse: dict[int, array[int]] = {}  # 512-hour block -> sorted times

    def dump(self) -> list[Any]:
        """Plain data for the snapshot: the fine blocks (the coarse ones follow from them)."""
        keys = sorted(self.fine)
        return [array("q", keys), [self.fine[k] for k in keys]]

    @classmethod
    def load(cls, plain: list[Any]) -> CloseTimes:
        """The close times `dump` gave."""
        times = cls()
        coarse: dict[int, list[int]] = {}
        for key, fine in zip(plain[0], plain[1], strict=True):
            times.fine[key] = fine
            coarse.setdefault(key // _RATIO, []).extend([(x >> _FINE) - _BIAS for x in fine])
        times.coarse = {k: array("q", sorted(v)) for k, v in coarse.items()}
        return times

    def add(self, hour: int, value: int) -> None:
        """Put a close time at `hour`."""
        for store, key, v in (
            (self.fine, hour >> _FINE, (value + _BIAS) << _FINE | (hour & _LOW)),
            (self.coarse, hour >> _COARSE, value),
        ):
            values = store.get(key)
            if values is None:
                store[key] = array("q", (v,))
            else:
                insort(values, v)

    def remove(self, hour: int, value: int) -> None:
        """Take one close time `add` put."""
        for store, key, v in (
            (self.fine, hour >> _FINE, (value + _BIAS) << _FINE | (hour & _LOW)),
            (self.coarse, hour >> _COARSE, value),
        ):
            values = store[key]
            del values[bisect_left(values, v)]
            if not values:
                del store[key]

    def _cut(self, lo: int, hi: int, out: list[int]) -> None:
        # Hours [lo, hi) inside one 64-hour block.
        fine = self.fine.get(lo >> _FINE)
        if fine is not None:
            a, b = lo & _LOW, ((hi - 1) & _LOW) + 1
            out.extend([(x >> _FINE) - _BIAS for x in fine if a <= x & _LOW < b])

    def cover(self, lo: int, hi: int, sel: Selection) -> None:
        """Add the close times of hours [lo, hi) to `sel`'s multiset."""
        if lo >= hi:
            return
        step = 1 << _FINE
        if lo >> _FINE == (hi - 1) >> _FINE and (lo % step or hi % step):
            self._cut(lo, hi, sel.plus)
            return
        if lo % step:
            self._cut(lo, lo - lo % step + step, sel.plus)
            lo += step - lo % step
        if hi % step:
            self._cut(hi - hi % step, hi, sel.plus)
            hi -= hi % step
        a, b = lo >> _FINE, hi >> _FINE
        while a < b and a % _RATIO:
            if a in self.fine:
                sel.fine_arrays.append(self.fine[a])
            a += 1
        while a < b and b % _RATIO:
            b -= 1
            if b in self.fine:
                sel.fine_arrays.append(self.fine[b])
        a, b = a // _RATIO, b // _RATIO
        if b - a <= len(self.coarse):
            sel.plus_arrays.extend(self.coarse[c] for c in range(a, b) if c in self.coarse)
        else:
            sel.plus_arrays.extend(v for c, v in self.coarse.items() if a <= c < b)


@dataclass(slots=True)
class Selection:
    """Weighted points chosen for a period: counts and sums, and the multiset of non-zero close
    times as sorted arrays plus loose values (`plus`) minus loose values (`minus`)."""

    count: int = 0
    r: int = 0
    z: int = 0  # points with w != 0
    w: int = 0
    plus_arrays: list[array[int]] = field(default_factory=list)
    fine_arrays: list[array[int]] = field(default_factory=list)  # keyed by `fine_key`
    plus: list[int] = field(default_factory=list)
    minus: list[int] = field(default_factory=list)
    _sorted: list[Any] | None = None

    def add(self, sign: int, r: int, w: int) -> None:
        """Choose (sign +1) or unchoose (-1) one point with weights r, w."""
        self.count += sign
        self.r += sign * r
        if w:
            self.z += sign
            self.w += sign * w
            (self.plus if sign > 0 else self.minus).append(w)

    def _arrays(self) -> list[Any]:
        if self._sorted is None:
            big = [a for a in self.plus_arrays if len(a) >= 64]
            small = sorted(self.plus + [v for a in self.plus_arrays if len(a) < 64 for v in a])
            self._sorted = [*big, small] if small else big
            self.minus.sort()
        return self._sorted

    def count_le(self, v: int) -> int:
        """How many chosen non-zero w are ≤ v."""
        pos = sum(map(bisect_right, self._arrays(), repeat(v)))
        if self.fine_arrays:
            pos += sum(map(bisect_right, self.fine_arrays, repeat(fine_key(v))))
        return pos - bisect_right(self.minus, v)

    def kth(self, k: int) -> int:
        """The k-th smallest (0-based) chosen non-zero w, 0 ≤ k < z.

        Keeps lo ≤ answer ≤ hi with below = count_le(lo - 1) ≤ k < upto = count_le(hi),
        narrowing by interpolation (halving when that stalls) until few values lie between,
        which are then read out of the arrays and picked directly."""
        arrays = [a for a in self._arrays() if a]
        fine = [a for a in self.fine_arrays if a]
        ends: list[int] = [x for a in arrays for x in (a[0], a[-1])]
        ends += [(x >> _FINE) - _BIAS for a in fine for x in (a[0], a[-1])]
        lo, hi = min(ends), max(ends)
        below, upto = 0, self.z
        halve = False
        while upto - below > _FEW and lo < hi:
            if halve:
                pivot = (lo + hi) // 2
            else:  # where k would fall if the values between were spread evenly
                pivot = lo + (hi - lo) * (2 * (k - below) + 1) // (2 * (upto - below))
                pivot = min(max(pivot, lo), hi - 1)
            n = self.count_le(pivot)
            before = upto - below
            if n > k:
                hi, upto = pivot, n
            else:
                lo, below = pivot + 1, n
            # An interpolation that did not halve what is left is followed by a halving.
            halve = not halve and 2 * (upto - below) > before
        if lo == hi:
            return lo
        # Few values left in [lo, hi]: the chosen ones there, in order, minus the taken ones.
        values: list[int] = []
        for a in arrays:
            values.extend(a[bisect_left(a, lo) : bisect_right(a, hi)])
        for a in fine:
            keys = a[bisect_left(a, fine_key(lo - 1) + 1) : bisect_right(a, fine_key(hi))]
            values.extend((x >> _FINE) - _BIAS for x in keys)
        values.sort()
        for v in self.minus[bisect_left(self.minus, lo) : bisect_right(self.minus, hi)]:
            del values[bisect_left(values, v)]
        return values[k - below]

    def middle(self) -> tuple[int, int] | None:
        """The two middle non-zero w (the same one twice for an odd count), None if none."""
        if self.z <= 0:
            return None
        low = self.kth((self.z - 1) // 2)
        if self.z % 2 or self.count_le(low) > self.z // 2:
            return low, low
        return low, self.kth(self.z // 2)

    def above(self, limit: int) -> int:
        """How many chosen non-zero w are > limit."""
        return self.z - self.count_le(limit)
