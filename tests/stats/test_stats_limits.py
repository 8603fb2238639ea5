"""The statistics' limits: any event time in [2000, 2100) UTC is absorbed in bounded memory,
times outside are skipped by both sides, and closes and reopens come from the one status table
(`domain.case_status.effect`), whatever a status row says or leaves out."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stats_histories import history
from test_stats_incremental import assert_same, periods

from callrouter.stats import batch
from callrouter.stats.counters import StatsState
from callrouter.stats.figures import REPORTS
from callrouter.stats.history import HistoryEvent, to_us

MSK = ZoneInfo("Europe/Moscow")
FIRST = datetime(2000, 1, 1, tzinfo=UTC)
LAST = datetime(2099, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)


def extremes(events: list[HistoryEvent]) -> list[HistoryEvent]:
    """Two events at the ends of the range: a new case created (closed, with a conversation)
    at the first instant, and a reopen by staff of the history's first case at the last."""
    n = events[-1].id
    old = events[0].case_id
    return [
        HistoryEvent(n + 1, 10**6, FIRST, "created", 1, 2, "closed", "in"),
        HistoryEvent(n + 2, 10**6, FIRST, "recording", None, 2, "closed", None, True),
        HistoryEvent(
            n + 3, old, LAST, "status", 3, 3, "open", None, False, {"from": "closed", "to": "open"}
        ),
        HistoryEvent(n + 4, old, LAST, "message", 3, 3, "open", None, False, {"message_id": 7}),
    ]


def test_events_at_the_ends_of_the_range_stay_small_and_exact() -> None:
    """One event in 2000 and one in 2099 add little to the state (not a century of hour
    buckets), and every report still equals the oracle, over normal periods and the century."""
    events = history(3, 40, 240.0)
    normal = StatsState()
    normal.apply_all(events)
    both = events + extremes(events)
    state = StatsState()
    assert state.apply_all(both) == len(both)
    grown = len(state.to_bytes()) - len(normal.to_bytes())
    assert grown < 2**20, f"two extreme events grew the snapshot by {grown} bytes"
    assert_same(state, both, periods(events, random.Random(3), 6))
    facts = batch.replay(both)
    for start, end in (
        (FIRST, FIRST + timedelta(days=1)),
        (LAST - timedelta(days=2), LAST + timedelta(microseconds=1)),
        (FIRST, LAST + timedelta(microseconds=1)),
        (FIRST - timedelta(days=3), FIRST + timedelta(days=400)),
    ):
        for report in REPORTS:
            if report == "peak" and end - start > timedelta(days=800):
                continue  # peak walks the days: the HTTP layer never asks a century
            want = batch.answer(facts, report, to_us(start), to_us(end), MSK, 3600)
            assert state.report(report, start, end, MSK, 3600) == want, (report, start, end)
    again = StatsState.from_bytes(state.to_bytes())
    assert again.to_bytes() == state.to_bytes()


def test_events_outside_the_range_are_skipped_by_both_sides() -> None:
    """A broken clock's 1970 or 2150 row moves `max_id` and counts nowhere, in the oracle too."""
    events = history(5, 20, 30.0)
    n = events[-1].id
    stray = [
        HistoryEvent(n + 1, 999, datetime(1970, 1, 1, tzinfo=UTC), "created", 1, 1, "open", "in"),
        replace(events[0], id=n + 2, at=datetime(2150, 1, 1, tzinfo=UTC), kind="attached"),
        HistoryEvent(n + 3, 999, events[0].at, "message", 2, 1, "open"),
    ]
    state = StatsState()
    assert state.apply_all(events + stray) == len(events) + 3
    assert state.max_id == n + 3
    assert_same(state, events + stray, periods(events, random.Random(5), 6))
    # Case 999's first counted event is a message, not its creation: it is never new.
    assert batch.replay(events + stray)[999].created is None


def _retold(events: list[HistoryEvent], rnd: random.Random) -> list[HistoryEvent]:
    """The same history where some status rows lose `from` (the previous status is used) and
    some claim another one (the row is believed: a claimed `closed` before makes a reopen)."""
    out = []
    for ev in events:
        if ev.kind == "status" and "from" in ev.details:
            roll = rnd.random()
            details = dict(ev.details)
            if roll < 0.3:
                del details["from"]
            elif roll < 0.5:
                details["from"] = rnd.choice(("open", "waiting", "closed"))
            ev = replace(ev, details=details)
        out.append(ev)
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1), st.integers(1, 30), st.sampled_from((2.0, 30.0, 240.0)))
def test_status_rows_with_or_without_from_match_the_oracle(
    seed: int, cases: int, span: float
) -> None:
    """Closes and reopens follow `effect(before, after)` with "before" from the row or, without
    one, from the case's previous event: the incremental side agrees with the oracle."""
    events = _retold(history(seed, cases, span), random.Random(seed))
    state = StatsState()
    state.apply_all(events)
    assert_same(state, events, periods(events, random.Random(seed), 6))


def test_a_status_row_is_read_through_the_status_table() -> None:
    """waiting -> closed is a close, closed -> waiting a reopen, open -> waiting neither; a row
    without `from` uses the status after the previous event."""
    t0 = datetime(2026, 11, 2, 6, tzinfo=UTC)

    def ev(i: int, minutes: int, kind: str, status: str, **details: object) -> HistoryEvent:
        return HistoryEvent(
            i, 1, t0 + timedelta(minutes=minutes), kind, 1, 1, status, "in", False, details
        )

    events = [
        ev(1, 0, "created", "open"),
        ev(2, 1, "recording", "open", message_id=5),
        ev(3, 2, "status", "waiting", **{"from": "open", "to": "waiting"}),
        ev(4, 3, "status", "closed"),  # no `from`: waiting before, so a close
        ev(5, 4, "status", "waiting", **{"from": "closed", "to": "waiting"}),  # a reopen
        ev(6, 5, "status", "closed", **{"from": "waiting", "to": "closed"}),
    ]
    events[1] = replace(events[1], conversation=True, staff_id=None)
    state = StatsState()
    state.apply_all(events)
    day = (t0 - timedelta(hours=1), t0 + timedelta(hours=1))
    for report in REPORTS:
        assert state.report(report, *day, MSK, 60) == batch.compute(events, report, *day, MSK, 60)
    load = state.report("load", t0 + timedelta(minutes=3), t0 + timedelta(minutes=4), MSK, 60)
    assert load["closed"] == 1 and load["reopened"] == 0
    load = state.report("load", t0 + timedelta(minutes=4), t0 + timedelta(minutes=5), MSK, 60)
    assert load["reopened"] == 1 and load["closed"] == 0


def test_a_damaged_or_old_snapshot_is_refused_with_value_error() -> None:
    """The actor rebuilds from the log on ValueError: any other bytes must give exactly that."""
    state = StatsState()
    state.apply_all(history(7, 10, 30.0))
    data = state.to_bytes()
    for bad in (
        b"",
        b"CRSTATS1" + data[8:],  # the previous format
        data[: len(data) // 2],
        data[:-1],
        data + b"\0",
        data[:40] + bytes(200) + data[240:],
    ):
        try:
            StatsState.from_bytes(bad)
        except ValueError:
            continue
        raise AssertionError("a damaged snapshot was accepted")


def _chaos(seed: int, n: int) -> list[HistoryEvent]:
    """Events no product would write but a log could hold: any kind with any flags, a
    conversation on a call message or a status row, unknown statuses, repeated instants."""
    rnd = random.Random(seed)
    base = datetime(2024, 10, 26, 20, tzinfo=UTC)
    times = [base + timedelta(minutes=rnd.randrange(0, 4 * 24 * 60)) for _ in range(n // 3 + 1)]
    out = []
    for i in range(1, n + 1):
        details: dict[str, object] = {}
        if rnd.random() < 0.6:
            details["message_id"] = rnd.randrange(1, 6)
        if rnd.random() < 0.5:
            details["message_kind"] = rnd.choice(("call", "call", "reply"))
        if rnd.random() < 0.5:
            details["author_staff_id"] = rnd.choice((1, 2, 3, None))
        if rnd.random() < 0.5:
            details["from"] = rnd.choice(("open", "waiting", "closed", "odd"))
        out.append(
            HistoryEvent(
                id=i,
                case_id=rnd.randrange(1, 7),
                at=rnd.choice(times),
                kind=rnd.choice(("created", "status", "message", "recording", "attached")),
                staff_id=rnd.choice((1, 2, 3, None, None)),
                assignee_id=rnd.choice((1, 2, 3, None)),
                status=rnd.choice(("open", "waiting", "closed", "closed", "odd")),
                source=rnd.choice(("in", "out", None)),
                conversation=rnd.random() < 0.3,
                details=details,
            )
        )
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1), st.integers(1, 120))
def test_arbitrary_event_mixes_match_the_oracle(seed: int, n: int) -> None:
    """Whatever the rows say, the incremental side reads them as the oracle does, and a
    snapshot taken anywhere resumes to the same state."""
    events = _chaos(seed, n)
    state = StatsState()
    state.apply_all(events)
    assert_same(state, events, periods(events, random.Random(seed), 5))
    cut = random.Random(seed).randrange(len(events) + 1)
    part = StatsState()
    part.apply_all(events[:cut])
    again = StatsState.from_bytes(part.to_bytes())
    again.apply_all(events[cut:])
    assert again.to_bytes() == state.to_bytes()
