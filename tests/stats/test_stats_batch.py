"""The batch oracle on hand-built histories: one test per statistics definition (R25–R30).

Each test also asks the incremental `StatsState` the same question, so the definitions written
here hold for both (the property tests compare the two on random histories).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from callrouter.stats import batch
from callrouter.stats.counters import StatsState
from callrouter.stats.history import HistoryEvent, from_row

MSK = ZoneInfo("Europe/Moscow")
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=MSK)  # a Monday, 09:00 in Moscow
DAY = timedelta(days=1)
SLA = 3600


class Log:
    """A history written in order: `add(case, minutes after T0, kind, ...)`."""

    def __init__(self) -> None:
        self.events: list[HistoryEvent] = []

    def add(
        self,
        case: int,
        minutes: float,
        kind: str,
        *,
        staff: int | None = None,
        assignee: int | None = None,
        status: str = "open",
        source: str | None = None,
        conversation: bool = False,
        **details: Any,
    ) -> None:
        self.events.append(
            HistoryEvent(
                id=len(self.events) + 1,
                case_id=case,
                at=T0 + timedelta(minutes=minutes),
                kind=kind,
                staff_id=staff,
                assignee_id=assignee,
                status=status,
                source=source,
                conversation=conversation,
                details=details,
            )
        )

    def created(
        self,
        case: int,
        minutes: float,
        *,
        source: str = "in",
        status: str = "open",
        staff: int | None = None,
        assignee: int | None = None,
    ) -> None:
        self.add(
            case, minutes, "created", staff=staff, assignee=assignee, status=status, source=source
        )

    def status(
        self,
        case: int,
        minutes: float,
        before: str,
        after: str,
        *,
        staff: int | None = None,
        assignee: int | None = None,
    ) -> None:
        self.add(
            case,
            minutes,
            "status",
            staff=staff,
            assignee=assignee,
            status=after,
            **{"from": before, "to": after},
        )

    def call(
        self,
        case: int,
        minutes: float,
        mid: int,
        author: int | None,
        *,
        by_staff: bool = False,
        assignee: int | None = None,
        status: str = "open",
    ) -> None:
        self.add(
            case,
            minutes,
            "message",
            staff=author if by_staff else None,
            assignee=assignee,
            status=status,
            message_id=mid,
            message_kind="call",
            author_staff_id=author,
        )

    def recording(
        self,
        case: int,
        minutes: float,
        mid: int,
        author: int | None,
        *,
        assignee: int | None = None,
        status: str = "open",
    ) -> None:
        self.add(
            case,
            minutes,
            "recording",
            assignee=assignee,
            status=status,
            conversation=True,
            message_id=mid,
            author_staff_id=author,
        )

    def ask(self, report: str, start: datetime = T0, end: datetime = T0 + DAY) -> dict[str, Any]:
        """The oracle's answer, checked equal to the incremental one."""
        want = batch.compute(self.events, report, start, end, MSK, SLA)
        state = StatsState()
        state.apply_all(self.events)
        assert state.report(report, start, end, MSK, SLA) == want
        return want


def test_new_cases_count_by_creation_time_and_source() -> None:
    """R25 new_total / new_from_users: created in [from, to), incoming and outgoing."""
    log = Log()
    log.created(1, -10)  # before the period
    log.created(2, 0, source="in")
    log.created(3, 30, source="out")
    log.created(4, 24 * 60, source="in")  # `to` is exclusive
    load = log.ask("load")
    assert (load["new_total"], load["new_from_users"]) == (2, 1)


def test_reopened_counts_cases_created_earlier() -> None:
    """R25 reopened (R24 reopen: closed -> open/waiting), created before the period; a case both
    created and reopened in the period is new, and new_and_reopened counts it once (R27)."""
    log = Log()
    log.created(1, -3 * 24 * 60)
    log.status(1, -2 * 24 * 60, "open", "closed", staff=1)
    log.status(1, 60, "closed", "waiting")  # reopened by an attached call
    log.status(1, 70, "waiting", "closed", staff=1)
    log.status(1, 80, "closed", "open", staff=1)  # reopened again: still one case
    log.created(2, 10)
    log.status(2, 20, "open", "closed", staff=2)
    log.status(2, 30, "closed", "open", staff=2)
    load = log.ask("load")
    assert (load["new_total"], load["reopened"]) == (1, 1)
    assert log.ask("channels")["calls"]["new_and_reopened"] == 2


def test_in_work_counts_cases_where_staff_acted() -> None:
    """R25 in_work: any event with an acting staff member (created from a call, a reply, a note,
    a status/assignee/subject change, an attached call); what the product did alone is not."""
    log = Log()
    log.created(1, 0)  # auto-created
    log.call(1, 0, 11, author=1)  # the product's call message (author set, nobody acted)
    log.recording(1, 1, 11, author=1)
    log.status(1, 2, "open", "waiting")  # the product's R21 status
    log.created(2, 5, staff=1, assignee=1)  # R8: created by staff from the call
    log.add(3, 10, "created", source="in")
    log.add(3, 20, "message", staff=2, message_id=31, message_kind="note", author_staff_id=2)
    log.add(3, 25, "message", staff=2, message_id=32, message_kind="reply", author_staff_id=2)
    log.add(4, -60, "created", source="out")
    log.add(4, 40, "subject", staff=3, **{"from": "a", "to": "b"})
    log.add(5, -60, "created", source="in")
    log.add(5, 50, "attached", staff=4)
    log.add(6, -60, "created", source="in")
    log.add(6, 55, "assignee", staff=4, assignee=2, **{"from": None, "to": 2})
    assert log.ask("load")["in_work"] == 5  # cases 2-6; case 3 once


def test_answered_counts_recorded_conversations_in_the_period() -> None:
    """R25 answered: a recorded staff–user conversation in the period, not just a call."""
    log = Log()
    log.created(1, 0)
    log.call(1, 0, 11, author=1)
    log.recording(1, 5, 11, author=1)
    log.created(2, 0)
    log.call(2, 0, 21, author=None)  # missed: no conversation
    log.created(3, -2 * 24 * 60)
    log.call(3, -2 * 24 * 60, 31, author=1)
    log.recording(3, -2 * 24 * 60 + 5, 31, author=1)  # before the period
    assert log.ask("load")["answered"] == 1


def test_closed_needs_a_conversation_by_the_close() -> None:
    """R25 closed: closed in the period and with a recorded conversation; R13/R14 cases created
    closed count although their recording is logged after; a case closed twice counts once."""
    log = Log()
    log.created(1, 0)  # a missed call, closed by R23a: never talked
    log.call(1, 0, 11, author=None)
    log.status(1, 30, "open", "closed")
    log.created(2, 0, status="closed", source="out")  # R14 softphone call, created closed
    log.call(2, 0, 21, author=1, status="closed")
    log.recording(2, 1, 21, author=1, status="closed")
    log.created(3, 0)
    log.call(3, 0, 31, author=2)
    log.recording(3, 3, 31, author=2)
    log.status(3, 60, "open", "closed", staff=2)
    log.status(3, 70, "closed", "open", staff=2)
    log.status(3, 80, "open", "closed", staff=2)
    log.created(4, 0)  # talked only after the close: that close does not count
    log.call(4, 0, 41, author=None)
    log.status(4, 10, "open", "closed", staff=3)
    log.status(4, 20, "closed", "open", staff=3)
    log.call(4, 25, 42, author=3, by_staff=True)
    log.recording(4, 30, 42, author=3)
    assert log.ask("load")["closed"] == 2
    assert log.ask("load", end=T0 + timedelta(minutes=15))["closed"] == 1  # case 2 only


def test_close_time_and_replies_to_close() -> None:
    """R28: replies_to_close is the mean of conversation messages up to the (latest) close;
    close_time the mean and median of closed_at − created_at, skipping cases closed at creation;
    the median of an even count is the mean of the two middle values."""
    log = Log()
    for case, minutes, talks in ((1, 10, 1), (2, 20, 2), (3, 40, 1), (4, 100, 1)):
        log.created(case, 0)
        for k in range(talks):
            log.call(case, k, case * 10 + k, author=1)
            log.recording(case, k + 1, case * 10 + k, author=1)
        log.status(case, minutes, "open", "closed", staff=1)
    log.created(5, 0, status="closed")  # closed at creation: counted, not timed
    log.call(5, 0, 51, author=1, status="closed")
    log.recording(5, 1, 51, author=1, status="closed")
    response = log.ask("response")
    assert response["first_response"] is None and response["any_response"] is None
    assert response["reply_writing"] is None
    assert response["replies_to_close"] == pytest.approx(6 / 5)
    assert response["close_time"] == {"mean_seconds": 42.5 * 60, "median_seconds": 30 * 60}
    empty = log.ask("response", T0 + DAY, T0 + 2 * DAY)
    assert (empty["replies_to_close"], empty["close_time"]) == (None, None)


def test_close_time_takes_the_latest_close_in_the_period() -> None:
    """A case closed, reopened and closed again in the period counts once, at its latest close."""
    log = Log()
    log.created(1, 0)
    log.call(1, 0, 11, author=1)
    log.recording(1, 1, 11, author=1)
    log.status(1, 10, "open", "closed", staff=1)
    log.status(1, 20, "closed", "open", staff=1)
    log.status(1, 50, "open", "closed", staff=1)
    assert log.ask("response")["close_time"] == {"mean_seconds": 3000.0, "median_seconds": 3000.0}
    first_only = log.ask("response", T0, T0 + timedelta(minutes=15))
    assert first_only["close_time"] == {"mean_seconds": 600.0, "median_seconds": 600.0}


def test_close_sla_breached() -> None:
    """R29: cases closed in the period, created_at != closed_at, closed later than the SLA."""
    log = Log()
    for case, minutes in ((1, 30), (2, 60), (3, 61), (4, 300)):
        log.created(case, 0)
        log.call(case, 0, case, author=1)
        log.recording(case, 1, case, author=1)
        log.status(case, minutes, "open", "closed", staff=1)
    sla = log.ask("sla")
    assert sla == {
        "first_response_breached": None,
        "any_response_breached": None,
        "close_sla_breached": 2,
    }


def test_team_attributes_to_assignee_author_and_acting_staff() -> None:
    """R30: new/reopened/answered/closed to the case assignee at that event, in_work to the staff
    who acted, replies to the conversation's author; staff with nothing are left out."""
    log = Log()
    log.created(1, 0, staff=1, assignee=1)  # staff 1 creates it from the call (R8)
    log.call(1, 0, 11, author=1, by_staff=True, assignee=1)
    log.recording(1, 5, 11, author=1, assignee=1)
    log.add(1, 6, "assignee", staff=1, assignee=2, **{"from": 1, "to": 2})
    log.status(1, 60, "open", "closed", staff=3, assignee=2)  # staff 3 closes staff 2's case
    log.created(2, 0, source="out", assignee=4)
    log.add(2, 1, "subject", staff=9, assignee=4, **{"from": "a", "to": "b"})
    log.created(3, -5 * 24 * 60, assignee=5)  # staff 5: nothing in the period
    items = {item["staff_id"]: item for item in log.ask("team")["items"]}
    assert sorted(items) == [1, 2, 3, 4, 9]
    assert (items[1]["new_total"], items[1]["new_from_users"], items[1]["in_work"]) == (1, 1, 1)
    assert (items[1]["answered"], items[1]["replies"], items[1]["closed"]) == (1, 1, 0)
    assert (items[2]["closed"], items[2]["replies_to_close"], items[2]["in_work"]) == (1, 1.0, 0)
    assert items[2]["close_time"] == {"mean_seconds": 3600.0, "median_seconds": 3600.0}
    assert items[2]["close_sla_breached"] == 0
    assert (items[3]["in_work"], items[3]["closed"]) == (1, 0)
    assert (items[4]["new_total"], items[4]["new_from_users"], items[4]["in_work"]) == (1, 0, 0)
    assert items[9]["in_work"] == 1
    assert list(items[1]) == [
        "staff_id",
        "new_total",
        "new_from_users",
        "reopened",
        "in_work",
        "answered",
        "replies",
        "replies_to_close",
        "closed",
        "close_time",
        "close_sla_breached",
    ]


def test_peak_counts_distinct_cases_per_local_hour_and_day() -> None:
    """R26: per local hour slot and per local day, distinct cases; a case counts once in an hour
    however often it is touched there, and again in another hour or day."""
    log = Log()
    log.created(1, 5, staff=1)  # Monday 09:05 Moscow: new, in work
    log.add(1, 10, "message", staff=1, message_id=1, message_kind="note", author_staff_id=1)
    log.add(1, 70, "message", staff=1, message_id=2, message_kind="note", author_staff_id=1)
    log.status(1, 80, "open", "closed", staff=1)
    log.status(1, 24 * 60 + 15, "closed", "open", staff=2)  # Tuesday 09:15: reopened
    peak = log.ask("peak", T0, T0 + 7 * DAY)
    hours = {row["hour"]: (row["new_and_reopened"], row["in_work"]) for row in peak["by_hour"]}
    assert hours[9] == (2, 2) and hours[10] == (0, 1) and sum(sum(v) for v in hours.values()) == 5
    days = {row["weekday"]: (row["new_and_reopened"], row["in_work"]) for row in peak["by_weekday"]}
    assert days == {1: (1, 1), 2: (1, 1), 3: (0, 0), 4: (0, 0), 5: (0, 0), 6: (0, 0), 7: (0, 0)}
    assert [row["hour"] for row in peak["by_hour"]] == list(range(24))


def test_report_shapes_follow_the_api() -> None:
    """API.md "Statistics": fixed field names for every report; unknown reports are refused."""
    log = Log()
    log.created(1, 0)
    assert list(log.ask("load")) == [
        "new_total",
        "new_from_users",
        "reopened",
        "in_work",
        "answered",
        "closed",
    ]
    assert list(log.ask("channels")) == ["calls"]
    assert list(log.ask("channels")["calls"]) == ["new_and_reopened", "in_work", "closed"]
    assert list(log.ask("response")) == [
        "first_response",
        "any_response",
        "reply_writing",
        "replies_to_close",
        "close_time",
    ]
    assert list(log.ask("sla")) == [
        "first_response_breached",
        "any_response_breached",
        "close_sla_breached",
    ]
    assert log.ask("team") == {"items": []}
    with pytest.raises(ValueError):
        batch.compute(log.events, "speed", T0, T0 + DAY, MSK, SLA)
    with pytest.raises(ValueError):
        StatsState().report("speed", T0, T0 + DAY, MSK, SLA)


def test_from_row_reads_orm_like_rows_and_mappings() -> None:
    """The adapter takes CaseEvent-shaped objects or mappings; SQLite's naive times are UTC."""

    class Row:
        id, case_id, kind, staff_id, assignee_id = 7, 3, "status", 2, None
        at = datetime(2026, 11, 2, 6, 0)
        status, source, conversation, details = (
            "closed",
            None,
            False,
            {"from": "open", "to": "closed"},
        )

    ev = from_row(Row())
    assert ev.at == datetime(2026, 11, 2, 6, 0, tzinfo=UTC) and ev.status == "closed"
    assert ev.details == {"from": "open", "to": "closed"}
    as_map = from_row(
        {
            **{
                k: getattr(Row, k)
                for k in (
                    "id",
                    "case_id",
                    "kind",
                    "staff_id",
                    "assignee_id",
                    "status",
                    "source",
                    "conversation",
                    "details",
                )
            },
            "at": datetime(2026, 11, 2, 9, 0, tzinfo=MSK),
        }
    )
    assert as_map == ev
