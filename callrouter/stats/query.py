"""A period [s, e) as whole hours plus at most two edge scans, and the scans themselves.

Every figure is "the points p in [s, e) whose next point is at e or later" (`series.py`),
weighted for closes. Whole hours come from the series' counters; an edge inside an hour moves
to an hour boundary, either way, with a correction read from the records between the edge and
that boundary (whichever side holds fewer):

    start:  Latest(s, e) = Latest(S, e) ± {p between s and S: next(p) ≥ e}
    end:    Latest(S, e) = Latest(S, E) − {p in [S, E): next(p) in [E, e)} + {p in [E, e): next ≥ e}
            (E the hour start before e), or with E the hour end after e:
            Latest(S, e) = Latest(S, E) − {p in [e, E): next ≥ E} + {p in [S, e): next in [e, E)}

A point whose next lies in the scanned piece is found from that next point (its `prev`).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass

from callrouter.stats.cases import FLAG_LIMIT, HEAD, CaseStore, conversation_times, records
from callrouter.stats.closetimes import Selection
from callrouter.stats.history import HOUR_US
from callrouter.stats.points import CLOSE, KINDS, memberships

NEVER = 1 << 62  # a time after any period


@dataclass(slots=True)
class Tally:
    """Per series code, the keys with a point in a period: counts, and for closes the
    Selection of their latest closes there."""

    counts: dict[int, int]
    closes: dict[int, Selection]


@dataclass(frozen=True, slots=True)
class Scan:
    """Read the points in [a, b) of one hour: add `sign` × p when next(p) ≥ `after`, and
    `prev_sign` × prev(p) when prev(p) lies in [`prev_lo`, `prev_hi`)."""

    a: int
    b: int
    after: int
    sign: int
    prev_lo: int = 0
    prev_hi: int = 0
    prev_sign: int = 0


def plan(store: CaseStore, s: int, e: int) -> tuple[int, int, list[Scan]]:
    """The whole hours [lo, hi) and the scans that together give Latest(s, e), s < e."""
    hs, he = s // HOUR_US, e // HOUR_US
    if hs == he:  # both ends inside one hour
        return 0, 0, [Scan(s, e, e, +1)]
    scans = []
    lo = hs
    if s != hs * HOUR_US:
        up = (hs + 1) * HOUR_US
        if store.weight(s, up) <= store.weight(hs * HOUR_US, s):
            scans.append(Scan(s, up, e, +1))
            lo = hs + 1
        else:
            scans.append(Scan(hs * HOUR_US, s, e, -1))
    hi = he
    start = lo * HOUR_US
    if e != he * HOUR_US:
        down, up = he * HOUR_US, (he + 1) * HOUR_US
        if store.weight(down, e) <= store.weight(e, up):
            scans.append(Scan(down, e, e, +1, start, down, -1))
        else:
            scans.append(Scan(e, up, up, -1, start, e, +1))
            hi = he + 1
    return lo, hi, scans


class Scanner:
    """Reads the points of the cases with records in a scanned piece, for the series `wanted`,
    keeping each case it read for the rest of one report."""

    def __init__(self, store: CaseStore, wanted: set[int]) -> None:
        self.store = store
        self.wanted = wanted
        self.staff = any(code >= KINDS for code in wanted)
        # Without staff series a record's series follow from its flags alone.
        self.table: dict[int, list[int]] = {}
        # slot -> (creation time, conversation message times, (code, key) -> point times)
        self.cache: dict[int, tuple[int, list[int], dict[tuple[int, int], list[int]]]] = {}

    def _case(self, slot: int) -> tuple[int, list[int], dict[tuple[int, int], list[int]]]:
        got = self.cache.get(slot)
        if got is None:
            words = self.store.read(slot)
            points: dict[tuple[int, int], list[int]] = {}
            start = HEAD + 3 * (words[1] >> 16)
            if self.staff:
                wanted = self.wanted
                for t, info in records(words):
                    for series in memberships(info):
                        if series[0] in wanted:
                            points.setdefault(series, []).append(t)
            else:
                table = self.table
                for i in range(start, len(words), 2):
                    flags = words[i + 1] & (FLAG_LIMIT - 1)
                    codes = table.get(flags)
                    if codes is None:
                        codes = table[flags] = [
                            code for code, _ in memberships(flags, False) if code in self.wanted
                        ]
                    for code in codes:
                        points.setdefault((code, 0), []).append(words[i])
            got = self.cache[slot] = (words[0], conversation_times(words), points)
        return got

    def scan(self, scan: Scan, tally: Tally) -> None:
        """Add what `scan` reads to `tally`."""
        a, b = scan.a, scan.b
        for slot in self.store.slots_between(a, b):
            first, conversations, points = self._case(slot)
            for (code, _key), times in points.items():
                i = bisect_left(times, a)
                n = len(times)
                while i < n and times[i] < b:
                    nxt = times[i + 1] if i + 1 < n else NEVER
                    if nxt >= scan.after:
                        _add(tally, code, scan.sign, times[i], first, conversations)
                    if i and scan.prev_lo <= times[i - 1] < scan.prev_hi:
                        _add(tally, code, scan.prev_sign, times[i - 1], first, conversations)
                    i += 1


def _add(tally: Tally, code: int, sign: int, t: int, first: int, convs: list[int]) -> None:
    if code % KINDS == CLOSE:
        tally.closes[code].add(sign, bisect_right(convs, t), t - first)
    else:
        tally.counts[code] += sign
