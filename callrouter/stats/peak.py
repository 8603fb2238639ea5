"""R26 peak load from series: distinct cases per local hour slot and per local day.

A local hour slot is a piece of time where the wall-clock hour and the UTC offset stay the same;
a local day runs from one `day_start_us` to the next. Days of 24 hours with one offset (nearly
all of them) are read from the series' `Grid` on hours aligned with local midnight, many days
per slice; a clock-change day, or a day cut by the period's edges, is asked slot by slot
(a slot that is one whole grid bucket from the grid, others from the general count).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from callrouter.stats.figures import Peak
from callrouter.stats.grid import GRID_PHASES, Grid
from callrouter.stats.history import HOUR_US, day_start_us, from_us, local_day
from callrouter.stats.points import NEW_OR_REOPENED, PEAK_CODES, WORK
from callrouter.stats.query import Tally

DAY_US = 24 * HOUR_US
WEEK_HOURS = 7 * 24
PIECE_DAYS = 364
_GRID_PHASES = frozenset(GRID_PHASES)


def _offset(us: int, tz: ZoneInfo) -> int:
    delta = from_us(us).astimezone(tz).utcoffset()
    return 0 if delta is None else delta // timedelta(microseconds=1)


def hour_slots(lo: int, hi: int, tz: ZoneInfo) -> list[tuple[int, int, int]]:
    """The local hour slots cut by [lo, hi): (start, end, wall hour)."""
    out = []
    x = lo
    while x < hi:
        local = from_us(x).astimezone(tz)
        into = ((local.minute * 60 + local.second) * 1_000_000) + local.microsecond
        y = x + HOUR_US - into
        offset = _offset(x, tz)
        if _offset(y - 1, tz) != offset:  # the clock changes inside: the slot ends there
            a, b = x, y - 1  # offset(a) == offset, offset(b) != offset
            while b - a > 1:
                mid = (a + b) // 2
                if _offset(mid, tz) == offset:
                    a = mid
                else:
                    b = mid
            y = b
        y = min(y, hi)
        out.append((x, y, local.hour))
        x = y
    return out


class Source(Protocol):
    """What the peak report reads: grids and the general distinct count (`StatsState`)."""

    def grid(self, code: int, phase: int) -> Grid:
        """The grid of a peak series on hours `phase` µs past the UTC hour."""

    def latest(self, codes: list[int], s: int, e: int, times: bool = False) -> Tally:
        """Per series code, the keys with a point in [s, e)."""


Sums = dict[int, tuple[list[int], list[int]]]  # code -> (24 by hour, 7 by weekday)


def peak_counts(source: Source, start: int, end: int, tz: ZoneInfo) -> Peak:
    """R26 over [start, end): per series, 24 by-hour and 7 by-weekday sums."""
    out: Sums = {code: ([0] * 24, [0] * 7) for code in PEAK_CODES}
    if start >= end:
        return _peak(out)
    run: list[int] = []  # [phase, first bucket, days, weekday of the first day]
    day = local_day(start, tz)
    day_start = day_start_us(day, tz)
    while day_start < end:
        nxt = day + timedelta(days=1)
        day_end = day_start_us(nxt, tz)
        lo, hi = max(day_start, start), min(day_end, end)
        # 24 hours from one local midnight to the next: one offset all day (a zone changing
        # its clock twice inside one day would be read wrongly; none does).
        if (lo, hi) == (day_start, day_end) and day_end - day_start == DAY_US:
            phase = day_start % HOUR_US
            bucket = (day_start - phase) // HOUR_US
            if run and run[0] == phase and run[1] + 24 * run[2] == bucket:
                run[2] += 1
            else:
                _flush(source, run, out)
                run = [phase, bucket, 1, day.weekday()]
        elif lo < hi:
            _flush(source, run, out)
            run = []
            _irregular_day(source, day, lo, hi, tz, out)
        day, day_start = nxt, day_end
    _flush(source, run, out)
    return _peak(out)


def _peak(out: Sums) -> Peak:
    (hour_nr, day_nr), (hour_work, day_work) = out[NEW_OR_REOPENED], out[WORK]
    return Peak(hour_nr, hour_work, day_nr, day_work)


def _flush(source: Source, run: list[int], out: Sums) -> None:
    if not run:
        return
    phase, first, days, weekday = run
    # Pieces of 52 weeks: each starts on the run's weekday, and a copy stays small.
    for start in range(0, days, PIECE_DAYS):
        _piece(source, phase, first + 24 * start, min(PIECE_DAYS, days - start), weekday, out)


def _piece(source: Source, phase: int, first: int, days: int, weekday: int, out: Sums) -> None:
    stop = 24 * days
    for code, (by_hour, by_weekday) in out.items():
        grid = source.grid(code, phase)
        # One contiguous copy of the piece's buckets, then strided sums at C speed.
        firsts, *lags = grid.window(first, first + stop)
        for h in range(24):
            by_hour[h] += sum(firsts[h:stop:24])
        for q in range(min(7, days)):
            # The days of one weekday: its hours j, where a link of lag ≤ j started that day.
            hours = [slice(24 * q + j, stop, WEEK_HOURS) for j in range(24)]
            total = sum(map(sum, map(firsts.__getitem__, hours)))
            for lag, counts in enumerate(lags, start=1):
                total -= sum(map(sum, map(counts.__getitem__, hours[lag:])))
            by_weekday[(weekday + q) % 7] += total


def _irregular_day(source: Source, day: date, lo: int, hi: int, tz: ZoneInfo, out: Sums) -> None:
    codes = list(out)
    whole = source.latest(codes, lo, hi).counts
    for code in codes:
        out[code][1][day.weekday()] += whole[code]
    for a, b, hour in hour_slots(lo, hi, tz):
        phase = a % HOUR_US
        if b - a == HOUR_US and phase in _GRID_PHASES:
            for code in codes:
                grid = source.grid(code, phase)
                out[code][0][hour] += grid.firsts(grid.bucket(a))
        else:
            got = source.latest(codes, a, b).counts
            for code in codes:
                out[code][0][hour] += got[code]
