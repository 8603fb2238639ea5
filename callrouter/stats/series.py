"""Exact distinct counts over whole hours: one `Series` per statistic and attribution.

A series holds points (key, time): a key is a case (or a message, for `replies`) and a point is
an event that makes it count. Each point is *linked* to the next point of its key, and the keys
with a point in [s, e) are counted once each, at their latest point there:

    keys with a point in [s, e) = points p in [s, e) whose next point is at e or later.

For whole hours [lo, hi) those are the points with no next point ("finals", counted per hour
in `finals`) plus the links that start in [lo, hi) and end at hour hi or later (straddlers,
`links.py`). A link inside one hour never straddles, so it is not stored at all. The points
themselves live in the case store (`cases.py`); a period edge inside an hour reads them there.

`CloseSeries` adds weights for closes (conversations by then r, close time w): a case counts at
its latest close in the period, which is the same point, so the same sums work with weights;
medians run on the close times of the finals (`closetimes.py`) and of the straddlers.
"""

from __future__ import annotations

from typing import Any

from callrouter.stats.buckets import Counts
from callrouter.stats.closetimes import CloseTimes, Selection
from callrouter.stats.grid import GRID_PHASES, Grid
from callrouter.stats.history import HOUR_US
from callrouter.stats.links import SHORT, LongLinks, ShortLinks


class Links:
    """The cross-hour links of all series: short ones, long ones, and closes' with weights."""

    __slots__ = ("closes", "long", "short")

    def __init__(self) -> None:
        self.short = ShortLinks()
        self.long = LongLinks()
        self.closes = LongLinks(width=2)

    def dump(self) -> list[Any]:
        """Plain data for the snapshot."""
        return [self.short.dump(), self.long.dump(), self.closes.dump()]

    @classmethod
    def load(cls, plain: list[Any]) -> Links:
        """The links `dump` gave."""
        links = cls()
        links.short = ShortLinks.load(plain[0])
        links.long = LongLinks.load(plain[1])
        links.closes = LongLinks.load(plain[2])
        return links


class Series:
    """Whole-hour counters of one statistic: finals per hour, and grids for the R26 ones."""

    __slots__ = ("code", "finals", "grids")

    def __init__(self, code: int, peak: bool = False) -> None:
        self.code = code
        self.finals = Counts()  # points with no next point, by hour
        self.grids: dict[int, Grid] | None = {p: Grid(p) for p in GRID_PHASES} if peak else None

    def dump(self) -> list[Any]:
        """Plain data for the snapshot (the grids kept up to date; others are rebuilt)."""
        grids = None if self.grids is None else [self.grids[p].dump() for p in GRID_PHASES]
        return [self.finals.dump(), grids]

    def load(self, plain: list[Any]) -> None:
        """Take the state `dump` gave."""
        self.finals = Counts.load(plain[0])
        if plain[1] is not None:
            self.grids = {g.phase: g for g in map(Grid.load, plain[1])}

    def insert(
        self,
        links: Links,
        t: int,
        prev: int | None,
        nxt: int | None,
        weights: tuple[int, int] = (0, 0),
        prev_weights: tuple[int, int] = (0, 0),
    ) -> None:
        """Add the point at t between its key's points at `prev` and `nxt` (None: none), with
        its weights and the previous point's (closes)."""
        if nxt is None:  # the usual case: a new latest point
            hour = t // HOUR_US
            if prev is None:
                self.finals.add(hour, 1)
            else:
                before = prev // HOUR_US
                if before != hour:  # else the hour's final just moves inside it
                    self.finals.add(hour, 1)
                    self.finals.add(before, -1)
                    if hour - before <= SHORT:
                        links.short.add(self.code, before, hour - before)
                    else:
                        links.long.add(self.code, before, hour)
        else:
            self._insert(links, t, prev, nxt, weights, prev_weights)
        if self.grids:
            for grid in self.grids.values():
                grid.insert(t, prev, nxt)

    def _insert(
        self,
        links: Links,
        t: int,
        prev: int | None,
        nxt: int | None,
        weights: tuple[int, int],
        prev_weights: tuple[int, int],
    ) -> None:
        if prev is not None and nxt is not None:
            self._link(links, -1, prev, nxt, prev_weights)
        if nxt is None:
            self._final(+1, t, weights)
        else:
            self._link(links, +1, t, nxt, weights)
        if prev is not None:
            if nxt is None:
                self._final(-1, prev, prev_weights)
            self._link(links, +1, prev, t, prev_weights)

    def _final(self, sign: int, t: int, weights: tuple[int, int]) -> None:
        self.finals.add(t // HOUR_US, sign)

    def _link(self, links: Links, sign: int, a: int, b: int, weights: tuple[int, int]) -> None:
        ha, hb = a // HOUR_US, b // HOUR_US
        if ha == hb:
            return
        if hb - ha <= SHORT:
            if sign > 0:
                links.short.add(self.code, ha, hb - ha)
            else:
                links.short.remove(self.code, ha, hb - ha)
        elif sign > 0:
            links.long.add(self.code, ha, hb)
        else:
            links.long.remove(self.code, ha, hb)

    def whole(self, links: Links, lo: int, hi: int) -> int:
        """Keys with a point in the whole hours [lo, hi), but for the short links that
        straddle hi (`ShortLinks.count`, asked for many series at once)."""
        if lo >= hi:
            return 0
        return self.finals.total(lo, hi) + links.long.count(self.code, lo, hi)


class CloseSeries(Series):
    """Closes: points weighted by r (conversation messages by then) and w (close time µs, 0 when
    the case closed as it was created). A case counts at its latest close in the period."""

    __slots__ = ("sums", "times")

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.sums = (Counts("q"), Counts("q"), Counts("q"))  # finals: r, w != 0, w
        self.times = CloseTimes()  # finals' w != 0

    def dump(self) -> list[Any]:
        return [*super().dump(), [c.dump() for c in self.sums], self.times.dump()]

    def load(self, plain: list[Any]) -> None:
        super().load(plain)
        r, z, w = (Counts.load(c) for c in plain[2])
        self.sums = (r, z, w)
        self.times = CloseTimes.load(plain[3])

    def insert(
        self,
        links: Links,
        t: int,
        prev: int | None,
        nxt: int | None,
        weights: tuple[int, int] = (0, 0),
        prev_weights: tuple[int, int] = (0, 0),
    ) -> None:
        self._insert(links, t, prev, nxt, weights, prev_weights)

    def _final(self, sign: int, t: int, weights: tuple[int, int]) -> None:
        hour = t // HOUR_US
        self.finals.add(hour, sign)
        r, w = weights
        sums = self.sums
        sums[0].add(hour, sign * r)
        if w:
            sums[1].add(hour, sign)
            sums[2].add(hour, sign * w)
            if sign > 0:
                self.times.add(hour, w)
            else:
                self.times.remove(hour, w)

    def _link(self, links: Links, sign: int, a: int, b: int, weights: tuple[int, int]) -> None:
        ha, hb = a // HOUR_US, b // HOUR_US
        if ha == hb:
            return
        if sign > 0:
            links.closes.add(self.code, ha, hb, *weights)
        else:
            links.closes.remove(self.code, ha, hb, *weights)

    def reweight(self, links: Links, t: int, nxt: int | None, weights: tuple[int, int]) -> None:
        """One more conversation by the close at t (weights before it; w never changes)."""
        r, w = weights
        hour = t // HOUR_US
        if nxt is None:
            self.sums[0].add(hour, 1)
        elif nxt // HOUR_US != hour:
            links.closes.bump(self.code, hour, nxt // HOUR_US, (r, w), 1)

    def whole_selection(self, links: Links, lo: int, hi: int, sel: Selection, times: bool) -> None:
        """Add the latest closes in the whole hours [lo, hi) to `sel` (with their close times
        when `times`: medians and breaches)."""
        if lo >= hi:
            return
        sel.count += self.finals.total(lo, hi)
        sel.r += self.sums[0].total(lo, hi)
        sel.z += self.sums[1].total(lo, hi)
        sel.w += self.sums[2].total(lo, hi)
        if times:
            self.times.cover(lo, hi, sel)
        for r, w in links.closes.weights(self.code, lo, hi):
            sel.add(+1, r, w)
