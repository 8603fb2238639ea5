"""The numbers of one period and how they become the API.md "Statistics" bodies.

Both the batch oracle and the incremental counters compute `Figures` and render them here, so
the two can only differ in the numbers, never in shape or rounding.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from callrouter.stats.history import SECOND_US

REPORTS = ("load", "peak", "channels", "response", "sla", "team")


@dataclass(frozen=True, slots=True)
class Closes:
    """The cases closed in a period (R25 `closed`, R28, R29), each at its latest close there."""

    count: int  # closed cases that had a recorded conversation by that close
    replies: int  # their conversation messages up to that close, summed
    timed: int  # of them, those with closed_at != created_at
    total_us: int  # their close times, summed
    middle_us: tuple[int, int] | None  # the two middle close times (equal for an odd count)
    breached: int | None  # close time over the close SLA; None when not asked for


@dataclass(frozen=True, slots=True)
class Figures:
    """R25/R30 figures for the whole account or for one staff member."""

    new_total: int
    new_from_users: int
    new_and_reopened: int
    in_work: int
    answered: int
    replies: int
    closes: Closes

    @property
    def reopened(self) -> int:
        # New and reopened cases are counted once each, so the reopened ones are the rest.
        return self.new_and_reopened - self.new_total


@dataclass(frozen=True, slots=True)
class Peak:
    """R26: distinct cases per local hour slot and per local day, summed by hour and weekday."""

    hour_new_and_reopened: Sequence[int]  # 24
    hour_in_work: Sequence[int]
    weekday_new_and_reopened: Sequence[int]  # 7, Monday first
    weekday_in_work: Sequence[int]


def replies_to_close(closes: Closes) -> float | None:
    """Mean conversation messages per closed case (R28), None without closed cases."""
    return None if closes.count == 0 else closes.replies / closes.count


def close_time(closes: Closes) -> dict[str, float] | None:
    """`{"mean_seconds", "median_seconds"}` over the timed closed cases (R28), or None."""
    if closes.timed == 0 or closes.middle_us is None:
        return None
    low, high = closes.middle_us
    return {
        "mean_seconds": closes.total_us / closes.timed / SECOND_US,
        "median_seconds": (low + high) / 2 / SECOND_US,
    }


def render_load(f: Figures) -> dict[str, object]:
    """The `load` body (R25)."""
    return {
        "new_total": f.new_total,
        "new_from_users": f.new_from_users,
        "reopened": f.reopened,
        "in_work": f.in_work,
        "answered": f.answered,
        "closed": f.closes.count,
    }


def render_channels(f: Figures) -> dict[str, object]:
    """The `channels` body (R27): every case is a `calls` case."""
    return {
        "calls": {
            "new_and_reopened": f.new_and_reopened,
            "in_work": f.in_work,
            "closed": f.closes.count,
        }
    }


def render_response(f: Figures) -> dict[str, object]:
    """The `response` body (R28): response and writing speeds do not apply to calls."""
    return {
        "first_response": None,
        "any_response": None,
        "reply_writing": None,
        "replies_to_close": replies_to_close(f.closes),
        "close_time": close_time(f.closes),
    }


def render_sla(f: Figures) -> dict[str, object]:
    """The `sla` body (R29)."""
    return {
        "first_response_breached": None,
        "any_response_breached": None,
        "close_sla_breached": f.closes.breached,
    }


def render_peak(p: Peak) -> dict[str, object]:
    """The `peak` body (R26)."""
    return {
        "by_hour": [
            {
                "hour": h,
                "new_and_reopened": p.hour_new_and_reopened[h],
                "in_work": p.hour_in_work[h],
            }
            for h in range(24)
        ],
        "by_weekday": [
            {
                "weekday": d + 1,
                "new_and_reopened": p.weekday_new_and_reopened[d],
                "in_work": p.weekday_in_work[d],
            }
            for d in range(7)
        ],
    }


def render_team(items: Iterable[tuple[int, Figures]]) -> dict[str, object]:
    """The `team` body (R30): one item per staff member with anything to show, by staff id."""
    out: list[dict[str, object]] = []
    for staff_id, f in sorted(items, key=lambda item: item[0]):
        counts = (f.new_total, f.new_and_reopened, f.in_work, f.answered, f.replies, f.closes.count)
        if not any(counts):
            continue
        out.append(
            {
                "staff_id": staff_id,
                "new_total": f.new_total,
                "new_from_users": f.new_from_users,
                "reopened": f.reopened,
                "in_work": f.in_work,
                "answered": f.answered,
                "replies": f.replies,
                "replies_to_close": replies_to_close(f.closes),
                "closed": f.closes.count,
                "close_time": close_time(f.closes),
                "close_sla_breached": f.closes.breached,
            }
        )
    return {"items": out}


def check_report(report: str) -> None:
    """Raise ValueError for a report name API.md does not list."""
    if report not in REPORTS:
        raise ValueError(f"unknown statistics report {report!r}; one of {', '.join(REPORTS)}")
