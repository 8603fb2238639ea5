"""Exact distinct counts over any period: one `Series` per statistic and attribution.

A series holds points (key, time): a key is a case (or a message, for `replies`) and a point is
an event that makes it count. "How many keys have a point in [s, e)" is the R25 kind of
question; asked over a year it must not touch a year of points. Each point is *linked* to the
previous point of its key, and

    keys with a point in [s, e) = points in [s, e) − links with both ends in [s, e)

because a key with k points in the period has k − 1 links inside it. With hour buckets, points
and links (by the bucket of their start) are per-bucket counters summed at C speed; the only
two-dimensional part is the links that start inside the period and end after it ("straddlers"),
read from a tree of sorted end times in a few bisects. A period edge inside an hour is answered
from that hour's own points, which keep their previous and next times.

`CloseSeries` adds weights for closes: the R28/R29 figures take each case at its *latest* close
in the period, which is the same count with the weight on the point whose link leaves the
period (the last one), so the same sums work with weights, and medians run on sorted values.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

from callrouter.stats.buckets import Counts, Node, Tree, count_at_least
from callrouter.stats.history import HOUR_US

NO_PREV = -(1 << 62)  # "no previous point": before any period start
NO_NEXT = 1 << 62  # "no next point": after any period end
T, PREV, NEXT, KEY, R, W = range(6)  # fields of a point record in a raw hour
SMALL_NODE = 256  # sorted arrays shorter than this are merged before a median search
GRID_LAG = 24  # the longest link a local day (of 24 hours) can hold inside it


class Grid:
    """Per-hour counters on hour buckets that start `phase` µs past the UTC hour, for R26.

    A local hour slot is one bucket, a local day 24 buckets from local midnight; a point is
    first in its slot unless its link (from the previous point of its key) lies inside the
    slot: `same` counts links within one bucket, `lags[j]` the links of exactly j buckets, by
    the bucket where they end."""

    __slots__ = ("lags", "phase", "points", "same")

    def __init__(self, phase: int) -> None:
        self.phase = phase
        self.points = Counts()
        self.same = Counts()
        self.lags = [Counts() for _ in range(GRID_LAG)]  # [0] unused

    def dump(self) -> list[Any]:
        """Plain data for the snapshot."""
        return [self.phase, self.points.dump(), self.same.dump(), [c.dump() for c in self.lags]]

    @classmethod
    def load(cls, plain: list[Any]) -> Grid:
        """The grid `dump` gave."""
        grid = cls(plain[0])
        grid.points, grid.same = Counts.load(plain[1]), Counts.load(plain[2])
        grid.lags = [Counts.load(c) for c in plain[3]]
        return grid

    def bucket(self, t: int) -> int:
        """The bucket of time t on this grid."""
        return (t - self.phase) // HOUR_US

    def point(self, sign: int, t: int) -> None:
        """Count a point in or out."""
        self.points.add(self.bucket(t), sign)

    def link(self, sign: int, a: int, b: int) -> None:
        """Count a link from time a to time b in or out."""
        ba, bb = self.bucket(a), self.bucket(b)
        lag = bb - ba
        if lag == 0:
            self.same.add(bb, sign)
        elif lag < GRID_LAG:
            self.lags[lag].add(bb, sign)

    def slot_firsts(self, lo: int, hi: int, step: int) -> int:
        """Points first in their one-bucket slot, over buckets lo, lo+step, … below hi."""
        return self.points.stride_total(lo, hi, step) - self.same.stride_total(lo, hi, step)

    def day_firsts(self, day0: int, hi: int, step: int) -> int:
        """Points first in their 24-bucket day, over the days starting at day0, day0+step, …"""
        total = 0
        for j in range(24):  # the hour of the day
            total += self.slot_firsts(day0 + j, hi, step)
            for lag in range(1, j + 1):  # links from earlier hours of the same day
                total -= self.lags[lag].stride_total(day0 + j, hi, step)
        return total


class Series:
    """Points (key, time µs) answering "how many keys have a point in [s, e)" exactly.

    The caller knows each key's points and passes the neighbours of a new point; a key has at
    most one point at a given time (a second one could never change a count)."""

    stride = 4

    def __init__(self, peak: bool = False) -> None:
        self.raw: dict[int, array[int]] = {}  # hour -> point records (T, PREV, NEXT, KEY…) by T
        self.points = Counts()
        self.links = Counts()  # by the hour of their start
        self.straddle = Tree(levels=4, stride=self.stride - 3)  # cross-hour links: end times
        self.grids: dict[int, Grid] | None = {0: Grid(0)} if peak else None

    def dump(self) -> dict[str, Any]:
        """Plain data for the snapshot."""
        return {
            "raw": self.raw,
            "points": self.points.dump(),
            "links": self.links.dump(),
            "straddle": self.straddle.dump(),
            "grids": None if self.grids is None else {p: g.dump() for p, g in self.grids.items()},
        }

    def load(self, plain: dict[str, Any]) -> None:
        """Take the state `dump` gave."""
        self.raw = plain["raw"]
        self.points, self.links = Counts.load(plain["points"]), Counts.load(plain["links"])
        self.straddle = Tree.load(plain["straddle"])
        grids = plain["grids"]
        self.grids = None if grids is None else {p: Grid.load(g) for p, g in grids.items()}

    # -- changes ---------------------------------------------------------------------------

    def insert(
        self, key: int, t: int, prev: int | None, nxt: int | None, r: int = 0, w: int = 0
    ) -> None:
        """Add the point (key, t) between its key's points at `prev` and `nxt` (None: none)."""
        if prev is not None and nxt is not None:
            pr, pw = self._weights(key, prev)
            self._link(-1, key, prev, nxt, pr, pw)
        self._raw_put(
            key, t, NO_PREV if prev is None else prev, NO_NEXT if nxt is None else nxt, r, w
        )
        self._point(+1, t, r, w)
        if prev is not None:
            pr, pw = self._raw_set(key, prev, NEXT, t)
            self._link(+1, key, prev, t, pr, pw)
        if nxt is not None:
            self._raw_set(key, nxt, PREV, t)
            self._link(+1, key, t, nxt, r, w)

    def remove(self, key: int, t: int) -> tuple[int | None, int | None]:
        """Take out the point (key, t); returns its previous and next times."""
        rec = self._raw_pop(key, t)
        prev, nxt, r, w = rec[PREV], rec[NEXT], self._r(rec), self._w(rec)
        self._point(-1, t, r, w)
        pr = pw = 0
        if prev != NO_PREV:
            pr, pw = self._raw_set(key, prev, NEXT, nxt)
            self._link(-1, key, prev, t, pr, pw)
        if nxt != NO_NEXT:
            self._raw_set(key, nxt, PREV, prev)
            self._link(-1, key, t, nxt, r, w)
        if prev != NO_PREV and nxt != NO_NEXT:
            self._link(+1, key, prev, nxt, pr, pw)
        return (None if prev == NO_PREV else prev), (None if nxt == NO_NEXT else nxt)

    def reweight(self, key: int, t: int, r: int, w: int) -> None:
        """Change the weights of the point (key, t)."""
        prev, nxt = self.remove(key, t)
        self.insert(key, t, prev, nxt, r, w)

    def _point(self, sign: int, t: int, r: int, w: int) -> None:
        self.points.add(t // HOUR_US, sign)
        if self.grids:
            for grid in self.grids.values():
                grid.point(sign, t)

    def _link(self, sign: int, key: int, a: int, b: int, r: int, w: int) -> None:
        ba, bb = a // HOUR_US, b // HOUR_US
        self.links.add(ba, sign)
        if ba < bb:
            if sign > 0:
                self.straddle.insert(ba, b, self._payload(key, r, w))
            else:
                self.straddle.remove(ba, b, key)
        if self.grids:
            for grid in self.grids.values():
                grid.link(sign, a, b)

    def _payload(self, key: int, r: int, w: int) -> tuple[int, ...]:
        return (key,)

    def _r(self, rec: array[int]) -> int:
        return 0

    def _w(self, rec: array[int]) -> int:
        return 0

    def _weights(self, key: int, t: int) -> tuple[int, int]:
        arr, i = self._find(key, t)
        return self._r(arr[i : i + self.stride]), self._w(arr[i : i + self.stride])

    # -- raw hours: records sorted by time, `stride` ints each ------------------------------

    def _raw_put(self, key: int, t: int, prev: int, nxt: int, r: int, w: int) -> None:
        rec = (t, prev, nxt, key, r, w)[: self.stride]
        arr = self.raw.get(t // HOUR_US)
        if arr is None:
            self.raw[t // HOUR_US] = array("q", rec)
        elif arr[-self.stride] <= t:
            arr.extend(rec)
        else:
            i = self._lower(arr, t)
            while i < len(arr) and arr[i] == t:  # equal times keep arrival order
                i += self.stride
            arr[i:i] = array("q", rec)

    def _lower(self, arr: array[int], t: int) -> int:
        """Offset of the first record with time ≥ t."""
        s = self.stride
        lo, hi = 0, len(arr) // s
        while lo < hi:
            mid = (lo + hi) // 2
            if arr[mid * s] < t:
                lo = mid + 1
            else:
                hi = mid
        return lo * s

    def _find(self, key: int, t: int) -> tuple[array[int], int]:
        arr = self.raw[t // HOUR_US]
        i = self._lower(arr, t)
        while arr[i + KEY] != key:
            i += self.stride
        return arr, i

    def _raw_set(self, key: int, t: int, what: int, value: int) -> tuple[int, int]:
        arr, i = self._find(key, t)
        arr[i + what] = value
        rec = arr[i : i + self.stride]
        return self._r(rec), self._w(rec)

    def _raw_pop(self, key: int, t: int) -> array[int]:
        arr, i = self._find(key, t)
        rec = arr[i : i + self.stride]
        del arr[i : i + self.stride]
        if not arr:
            del self.raw[t // HOUR_US]
        return rec

    def _records(self, hour: int, lo: int, hi: int) -> list[array[int]]:
        """The records of one raw hour with lo ≤ time < hi."""
        arr = self.raw.get(hour)
        if arr is None:
            return []
        s = self.stride
        a, b = self._lower(arr, lo), self._lower(arr, hi)
        return [arr[i : i + s] for i in range(a, b, s)]

    # -- questions -------------------------------------------------------------------------

    def first(self, s: int, e: int) -> int:
        """How many keys have a point in [s, e)."""
        if s >= e:
            return 0
        lo, hi = -(-s // HOUR_US), e // HOUR_US  # the whole hours inside
        if lo > hi:  # both ends inside one hour
            return sum(1 for rec in self._records(hi, s, e) if rec[PREV] < s)
        total = 0
        if lo < hi:
            total = (
                self.points.total(lo, hi)
                - self.links.total(lo, hi)
                + count_at_least(self.straddle.cover(lo, hi), hi * HOUR_US)
            )
        if s < lo * HOUR_US:  # the partial hour before: its firsts, and whose link enters
            for rec in self._records(lo - 1, s, lo * HOUR_US):
                total += rec[PREV] < s
                total -= lo * HOUR_US <= rec[NEXT] < hi * HOUR_US
        if e > hi * HOUR_US:  # the partial hour after
            total += sum(1 for rec in self._records(hi, hi * HOUR_US, e) if rec[PREV] < s)
        return total

    def grid(self, phase: int) -> Grid:
        """The R26 grid on hours starting `phase` µs past the UTC hour, built on first use."""
        assert self.grids is not None, "not a peak series"
        grid = self.grids.get(phase)
        if grid is None:
            grid = self.grids[phase] = Grid(phase)
            s = self.stride
            for arr in self.raw.values():
                for i in range(0, len(arr), s):
                    grid.point(+1, arr[i])
                    if arr[i + PREV] != NO_PREV:
                        grid.link(+1, arr[i + PREV], arr[i])
        return grid


@dataclass(slots=True)
class Selection:
    """Weighted points chosen for a period: counts and sums, and the close-time multiset as
    sorted arrays to add (`plus_nodes`, `plus`) and take away (`minus_nodes`, `minus`)."""

    count: int = 0
    r: int = 0
    z: int = 0  # points with w != 0
    w: int = 0
    plus_nodes: list[Node] = field(default_factory=list)
    minus_nodes: list[Node] = field(default_factory=list)
    plus: list[int] = field(default_factory=list)
    minus: list[int] = field(default_factory=list)
    _pos: list[Any] | None = None  # what `count_le` bisects, once the choice is final
    _neg: list[Any] = field(default_factory=list)

    def add(self, sign: int, r: int, w: int) -> None:
        """Choose (sign +1) or unchoose (-1) one point with weights r, w."""
        self.count += sign
        self.r += sign * r
        if w:
            self.z += sign
            self.w += sign * w
            (self.plus if sign > 0 else self.minus).append(w)

    def count_le(self, v: int) -> int:
        """How many chosen non-zero w are ≤ v."""
        self._prepare()
        pos: list[Any] = self._pos or []
        below = sum(map(bisect_right, pos, repeat(v)))
        return int(below - sum(map(bisect_right, self._neg, repeat(v))))

    def _prepare(self) -> None:
        # Many nodes of a cover are small (edge hours): one sorted list of all of those makes
        # each count a bisect over a handful of arrays, at C speed through `map`.
        if self._pos is not None:
            return
        self._pos, self._neg = [], []
        for arrays, small, out in (
            ([v for v, _ in self.plus_nodes], list(self.plus), self._pos),
            ([v for v, _ in self.minus_nodes], list(self.minus), self._neg),
        ):
            for values in arrays:
                if len(values) >= SMALL_NODE:
                    out.append(values)
                else:
                    small.extend(values)
            small.sort()
            out.append(small)

    def kth(self, k: int) -> int:
        """The k-th smallest (0-based) chosen non-zero w: the smallest v with more than k chosen
        values ≤ v. Each sorted array, the largest first, narrows [lo, hi] to between two of its
        neighbouring values; at the end no value is left inside but hi, which is the answer."""
        self._prepare()
        pos = sorted((values for values in self._pos or [] if values), key=len, reverse=True)
        lo, hi = min(values[0] for values in pos), max(values[-1] for values in pos)
        for values in pos:
            first, stop = bisect_left(values, lo), bisect_right(values, hi)
            left, right = first, stop
            while left < right:
                mid = (left + right) // 2
                if self.count_le(values[mid]) > k:
                    right = mid
                else:
                    left = mid + 1
            if left < stop:
                hi = values[left]
            if left > first:
                lo = values[left - 1] + 1
        return int(hi)

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


class CloseSeries(Series):
    """Closes: points weighted by r (conversation messages by then) and w (close time µs, 0 when
    the case closed as it was created). A case counts at its latest close in the period."""

    stride = 6

    def __init__(self) -> None:
        super().__init__()
        self.sums = [Counts() for _ in range(3)]  # points: r, w != 0, w
        self.link_sums = [Counts() for _ in range(3)]  # links by their start: the same of it
        self.values = Tree(levels=4, stride=0)  # points' w != 0
        self.link_values = Tree(levels=4, stride=0)

    def dump(self) -> dict[str, Any]:
        plain = super().dump()
        plain["sums"] = [c.dump() for c in self.sums]
        plain["link_sums"] = [c.dump() for c in self.link_sums]
        plain["values"] = self.values.dump()
        plain["link_values"] = self.link_values.dump()
        return plain

    def load(self, plain: dict[str, Any]) -> None:
        super().load(plain)
        self.sums = [Counts.load(c) for c in plain["sums"]]
        self.link_sums = [Counts.load(c) for c in plain["link_sums"]]
        self.values = Tree.load(plain["values"])
        self.link_values = Tree.load(plain["link_values"])

    def _payload(self, key: int, r: int, w: int) -> tuple[int, ...]:
        return (key, r, w)

    def _r(self, rec: array[int]) -> int:
        return rec[R]

    def _w(self, rec: array[int]) -> int:
        return rec[W]

    def _point(self, sign: int, t: int, r: int, w: int) -> None:
        super()._point(sign, t, r, w)
        self._weigh(self.sums, self.values, sign, t // HOUR_US, r, w)

    def _link(self, sign: int, key: int, a: int, b: int, r: int, w: int) -> None:
        super()._link(sign, key, a, b, r, w)
        self._weigh(self.link_sums, self.link_values, sign, a // HOUR_US, r, w)

    @staticmethod
    def _weigh(sums: list[Counts], values: Tree, sign: int, hour: int, r: int, w: int) -> None:
        sums[0].add(hour, sign * r)
        if w:
            sums[1].add(hour, sign)
            sums[2].add(hour, sign * w)
            if sign > 0:
                values.insert(hour, w)
            else:
                values.remove(hour, w)

    def latest(self, s: int, e: int) -> Selection:
        """The keys with a point in [s, e), each weighted by its latest point there."""
        sel = Selection()
        if s >= e:
            return sel
        lo, hi = -(-s // HOUR_US), e // HOUR_US
        if lo > hi:
            for rec in self._records(hi, s, e):
                if rec[NEXT] >= e:
                    sel.add(+1, rec[R], rec[W])
            return sel
        if lo < hi:
            sel.count = self.points.total(lo, hi) - self.links.total(lo, hi)
            sel.r = self.sums[0].total(lo, hi) - self.link_sums[0].total(lo, hi)
            sel.z = self.sums[1].total(lo, hi) - self.link_sums[1].total(lo, hi)
            sel.w = self.sums[2].total(lo, hi) - self.link_sums[2].total(lo, hi)
            sel.plus_nodes = self.values.cover(lo, hi)
            sel.minus_nodes = self.link_values.cover(lo, hi)
            # Links leaving the whole hours: their start is the latest point after all.
            for ends, pay in self.straddle.cover(lo, hi):
                for i in range(bisect_left(ends, hi * HOUR_US), len(ends)):
                    sel.add(+1, pay[3 * i + 1], pay[3 * i + 2])
        if s < lo * HOUR_US:
            for rec in self._records(lo - 1, s, lo * HOUR_US):
                if rec[NEXT] >= e:
                    sel.add(+1, rec[R], rec[W])
        if e > hi * HOUR_US:
            for rec in self._records(hi, hi * HOUR_US, e):
                if rec[NEXT] >= e:
                    sel.add(+1, rec[R], rec[W])
                if lo * HOUR_US <= rec[PREV] < hi * HOUR_US:  # its previous one is not latest
                    sel.add(-1, *self._weights(rec[KEY], rec[PREV]))
        return sel
