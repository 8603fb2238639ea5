"""R26 peak load from series: distinct cases per local hour slot and per local day.

A local hour slot is a piece of time where the wall-clock hour and the UTC offset stay the same;
a local day runs from one `day_start_us` to the next. Days of 24 hours with one offset (nearly
all of them) are read from the series' `Grid` on hours aligned with local midnight, many days
per slice; a clock-change day, or a day cut by the period's edges, is asked slot by slot.
"""

from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

from callrouter.stats.history import HOUR_US, day_start_us, from_us, local_day
from callrouter.stats.series import Series

DAY_US = 24 * HOUR_US
WEEK_HOURS = 7 * 24


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


def peak_counts(
    series: list[Series], start: int, end: int, tz: ZoneInfo
) -> list[tuple[list[int], list[int]]]:
    """For each series: (24 by-hour sums, 7 by-weekday sums) over [start, end)."""
    out = [([0] * 24, [0] * 7) for _ in series]
    if start >= end:
        return out
    run: list[int] = []  # [phase, first bucket, days, weekday of the first day]
    day = local_day(start, tz)
    day_start = day_start_us(day, tz)
    while day_start < end:
        nxt = day + timedelta(days=1)
        day_end = day_start_us(nxt, tz)
        lo, hi = max(day_start, start), min(day_end, end)
        regular = (
            (lo, hi) == (day_start, day_end)
            and day_end - day_start == DAY_US
            and _offset(day_start, tz) == _offset(day_end - 1, tz)
        )
        if regular:
            phase = day_start % HOUR_US
            bucket = (day_start - phase) // HOUR_US
            if run and run[0] == phase and run[1] + 24 * run[2] == bucket:
                run[2] += 1
            else:
                _flush(series, run, out)
                run = [phase, bucket, 1, day.weekday()]
        elif lo < hi:
            _flush(series, run, out)
            run = []
            _irregular_day(series, day, lo, hi, tz, out)
        day, day_start = nxt, day_end
    _flush(series, run, out)
    return out


def _flush(series: list[Series], run: list[int], out: list[tuple[list[int], list[int]]]) -> None:
    if not run:
        return
    phase, first, days, weekday = run
    stop = first + 24 * days
    for s, (by_hour, by_weekday) in zip(series, out, strict=True):
        grid = s.grid(phase)
        for h in range(24):
            by_hour[h] += grid.slot_firsts(first + h, stop, 24)
        for q in range(min(7, days)):
            by_weekday[(weekday + q) % 7] += grid.day_firsts(first + 24 * q, stop, WEEK_HOURS)


def _irregular_day(
    series: list[Series],
    day: date,
    lo: int,
    hi: int,
    tz: ZoneInfo,
    out: list[tuple[list[int], list[int]]],
) -> None:
    slots = hour_slots(lo, hi, tz)
    for s, (by_hour, by_weekday) in zip(series, out, strict=True):
        by_weekday[day.weekday()] += s.first(lo, hi)
        for a, b, hour in slots:
            by_hour[hour] += s.first(a, b)
