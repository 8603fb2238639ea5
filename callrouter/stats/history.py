"""The case history log as the statistics read it (R25–R30), and the time units they count in.

A `HistoryEvent` mirrors one `case_history` row (`storage.models.CaseEvent`): `staff_id` is who
acted (None when the product did it), `assignee_id` and `status` are the case's *after* the
event, `source` is "in"/"out" on `created`, `conversation` marks a recorded staff–user
conversation. Times are kept as integer microseconds since the Unix epoch, so every sum,
comparison and median is exact and the incremental counters can equal the batch oracle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from callrouter.domain.case_status import Effect, effect
from callrouter.domain.wire import wire

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICRO = timedelta(microseconds=1)
SECOND_US = 1_000_000
HOUR_US = 3600 * SECOND_US
CLOSED = "closed"
# The statistics read events in [2000-01-01, 2100-01-01) UTC and nothing else: an event outside
# (a broken PBX clock) is skipped by the oracle and the counters alike, so one stray time can
# neither blow the state up nor make the two disagree.
T_MIN_US = 946_684_800 * SECOND_US
T_MAX_US = 4_102_444_800 * SECOND_US


@wire
@dataclass(frozen=True, slots=True)
class HistoryEvent:
    """One row of the case history log; `id` is the log order."""

    id: int
    case_id: int
    at: datetime
    kind: str
    staff_id: int | None = None
    assignee_id: int | None = None
    status: str = "open"
    source: str | None = None
    conversation: bool = False
    details: Mapping[str, Any] = field(default_factory=dict)


def from_row(row: object) -> HistoryEvent:
    """A `HistoryEvent` from anything shaped like a `CaseEvent` row: an ORM object, a named tuple
    or a mapping. A naive `at` is taken as UTC (SQLite hands those back)."""

    def get(name: str) -> Any:
        return row.get(name) if isinstance(row, Mapping) else getattr(row, name, None)

    at = get("at")
    if not isinstance(at, datetime):
        raise TypeError(f"history row without a datetime `at`: {at!r}")
    at = at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
    details = get("details") or {}
    return HistoryEvent(
        id=int(get("id")),
        case_id=int(get("case_id")),
        at=at,
        kind=str(get("kind")),
        staff_id=_opt_int(get("staff_id")),
        assignee_id=_opt_int(get("assignee_id")),
        status=str(get("status") or "open"),
        source=get("source"),
        conversation=bool(get("conversation")),
        details=dict(details),
    )


def counted(us: int) -> bool:
    """Does the statistics read an event at `us` (inside [2000, 2100) UTC)?"""
    return T_MIN_US <= us < T_MAX_US


def transition(ev: HistoryEvent, opening: bool, previous: str | None) -> Effect | None:
    """What `ev` does to its case's status for the statistics: "close", "reopen" or None, by the
    one table of `domain.case_status.effect`. `opening` is true for the case's first logged
    event (a `created` one is the creation: `effect(None, status)`); a `status` row's "before"
    is `details["from"]`, else `previous` (the status after the case's previous event)."""
    if opening and ev.kind == "created":
        return effect(None, ev.status)
    if ev.kind == "status":
        before = ev.details.get("from", previous)
        return effect(None if before is None else str(before), ev.status)
    return None


def _opt_int(value: Any) -> int | None:
    return None if value is None else int(value)


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (exact, no float on the way)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime given to the statistics")
    return (moment - EPOCH) // MICRO


def from_us(us: int) -> datetime:
    """The aware UTC datetime of `us` microseconds since the epoch."""
    return EPOCH + timedelta(microseconds=us)


def day_start_us(day: date, tz: ZoneInfo) -> int:
    """The first instant of the local `day`: its midnight, or the end of a gap that swallowed it
    (fold=0 maps a missing midnight to the transition instant)."""
    return to_us(datetime.combine(day, time(), tzinfo=tz))


def local_day(us: int, tz: ZoneInfo) -> date:
    """The local day slot holding `us`: the last day whose `day_start_us` is at or before it.
    Equal to the local date except around a clock that falls back across midnight, where the
    local date would make a day that is not one piece of time."""
    day = from_us(us).astimezone(tz).date()
    while us < day_start_us(day, tz):
        day -= timedelta(days=1)
    while us >= day_start_us(day + timedelta(days=1), tz):
        day += timedelta(days=1)
    return day
