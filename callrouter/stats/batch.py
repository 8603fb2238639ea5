"""The batch oracle: every statistics report recomputed straight from the case history log.

Slow and plain on purpose: each case's events are replayed in log order into lists of facts,
and a period is answered by filtering those lists. The incremental counters (`counters.py`)
must give exactly these answers for every period; docs/statistics.md states the definitions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from callrouter.stats import figures
from callrouter.stats.figures import Closes, Figures, Peak
from callrouter.stats.history import (
    HistoryEvent,
    counted,
    from_us,
    local_day,
    to_us,
    transition,
)

# A staff attribution that matches every event, for the account-wide figures.
ANYONE = object()
Attribution = object  # a staff id, None (nobody), or ANYONE


@dataclass(slots=True)
class CaseFacts:
    """What one case's history says, as (time µs, attributed staff, ...) tuples."""

    created_at: int  # the time of the case's first logged event
    created: tuple[int, int | None, str | None] | None = None  # (time, assignee, source)
    new_or_reopened: list[tuple[int, int | None]] = field(default_factory=list)  # assignee
    work: list[tuple[int, int | None]] = field(default_factory=list)  # acting staff
    answered: list[tuple[int, int | None]] = field(default_factory=list)  # assignee
    replies: list[tuple[int, int | None, int]] = field(default_factory=list)  # author, message
    closes: list[tuple[int, int | None]] = field(default_factory=list)  # assignee
    conversations: dict[int, int] = field(default_factory=dict)  # message -> message time


def replay(events: Iterable[HistoryEvent]) -> dict[int, CaseFacts]:
    """Each case's facts, from its events in log (id) order; a repeated id counts once and an
    event outside [2000, 2100) UTC not at all (`history.counted`)."""
    by_case: dict[int, dict[int, HistoryEvent]] = defaultdict(dict)
    for ev in events:
        if counted(to_us(ev.at)):
            by_case[ev.case_id].setdefault(ev.id, ev)
    return {
        case_id: _replay_case([evs[i] for i in sorted(evs)]) for case_id, evs in by_case.items()
    }


def _replay_case(events: list[HistoryEvent]) -> CaseFacts:
    facts = CaseFacts(created_at=to_us(events[0].at))
    previous: str | None = None  # the status after the previous event
    call_messages: dict[int, tuple[int, int | None]] = {}  # message -> (time, author)
    for index, ev in enumerate(events):
        t = to_us(ev.at)
        details = ev.details
        if ev.staff_id is not None:
            facts.work.append((t, ev.staff_id))
        change = transition(ev, index == 0, previous)
        if index == 0 and ev.kind == "created":
            facts.created = (t, ev.assignee_id, ev.source)
            facts.new_or_reopened.append((t, ev.assignee_id))
        elif change == "reopen":  # R24
            facts.new_or_reopened.append((t, ev.assignee_id))
        if change == "close":  # R13/R14 created closed: closed_at == created_at
            facts.closes.append((t, ev.assignee_id))
        if ev.kind == "message" and details.get("message_kind") == "call":
            mid = details.get("message_id")
            if mid is not None and int(mid) not in call_messages:
                call_messages[int(mid)] = (t, _opt(details.get("author_staff_id")))
        if ev.conversation:
            raw_mid = details.get("message_id")
            mid = -ev.id if raw_mid is None else int(raw_mid)
            message_time, message_author = call_messages.get(mid, (t, None))
            author = _opt(details.get("author_staff_id"))
            if author is None:
                author = message_author
            facts.answered.append((t, ev.assignee_id))
            if author is not None:
                facts.replies.append((t, author, mid))
            facts.conversations.setdefault(mid, message_time)
        previous = ev.status
    return facts


def _opt(value: Any) -> int | None:
    return None if value is None else int(value)


def _matches(staff: int | None, who: Attribution) -> bool:
    return who is ANYONE or staff == who


def figures_for(
    cases: dict[int, CaseFacts], start: int, end: int, who: Attribution, sla_us: int
) -> Figures:
    """The R25/R30 figures of [start, end) for everyone (`ANYONE`) or one staff member."""

    def within(t: int) -> bool:
        return start <= t < end

    def cases_with(pick: Callable[[CaseFacts], list[tuple[int, int | None]]]) -> int:
        return sum(
            1 for f in cases.values() if any(within(t) and _matches(s, who) for t, s in pick(f))
        )

    new = [
        f.created
        for f in cases.values()
        if f.created is not None and within(f.created[0]) and _matches(f.created[1], who)
    ]
    replies = {
        (case_id, mid)
        for case_id, f in cases.items()
        for t, author, mid in f.replies
        if within(t) and _matches(author, who)
    }
    return Figures(
        new_total=len(new),
        new_from_users=sum(1 for c in new if c[2] == "in"),
        new_and_reopened=cases_with(lambda f: f.new_or_reopened),
        in_work=cases_with(lambda f: f.work),
        answered=cases_with(lambda f: f.answered),
        replies=len(replies),
        closes=_closes(cases, within, who, sla_us),
    )


def _closes(
    cases: dict[int, CaseFacts], within: Callable[[int], bool], who: Attribution, sla_us: int
) -> Closes:
    count = replies = 0
    durations: list[int] = []
    for f in cases.values():
        times = [t for t, s in f.closes if within(t) and _matches(s, who)]
        if not times:
            continue
        latest = max(times)
        # Conversations whose message was written by that close (its recording may come later).
        before = sum(1 for message_time in f.conversations.values() if message_time <= latest)
        if before == 0:
            continue
        count += 1
        replies += before
        if latest != f.created_at:
            durations.append(latest - f.created_at)
    durations.sort()
    middle = None
    if durations:
        n = len(durations)
        middle = (durations[(n - 1) // 2], durations[n // 2])
    return Closes(
        count=count,
        replies=replies,
        timed=len(durations),
        total_us=sum(durations),
        middle_us=middle,
        breached=sum(1 for d in durations if d > sla_us),
    )


def peak_for(cases: dict[int, CaseFacts], start: int, end: int, tz: ZoneInfo) -> Peak:
    """R26: per local hour slot and per local day, the distinct cases, summed by hour/weekday."""

    def spread(
        pick: Callable[[CaseFacts], list[tuple[int, int | None]]],
    ) -> tuple[list[int], list[int]]:
        hours: set[tuple[int, datetime, timedelta | None]] = set()
        days: set[tuple[int, date]] = set()
        for case_id, f in cases.items():
            for t, _ in pick(f):
                if start <= t < end:
                    local = from_us(t).astimezone(tz)
                    # A local hour slot is one piece of time: wall hour plus offset apart the
                    # two 01:00–02:00 of an autumn night.
                    wall = local.replace(minute=0, second=0, microsecond=0, tzinfo=None)
                    hours.add((case_id, wall, local.utcoffset()))
                    days.add((case_id, local_day(t, tz)))
        by_hour = [0] * 24
        for _, wall, _offset in hours:
            by_hour[wall.hour] += 1
        by_weekday = [0] * 7
        for _, day in days:
            by_weekday[day.isoweekday() - 1] += 1
        return by_hour, by_weekday

    hour_nr, day_nr = spread(lambda f: f.new_or_reopened)
    hour_work, day_work = spread(lambda f: f.work)
    return Peak(hour_nr, hour_work, day_nr, day_work)


def compute(
    events: Iterable[HistoryEvent],
    report: str,
    start: datetime,
    end: datetime,
    tz: ZoneInfo,
    close_sla_seconds: int,
) -> dict[str, object]:
    """The API.md body of `report` for the period [start, end), from the whole history."""
    figures.check_report(report)
    cases = replay(events)
    return answer(cases, report, to_us(start), to_us(end), tz, close_sla_seconds)


def answer(
    cases: dict[int, CaseFacts],
    report: str,
    start: int,
    end: int,
    tz: ZoneInfo,
    close_sla_seconds: int,
) -> dict[str, object]:
    """`compute` on already replayed facts (µs period), so tests can ask many periods cheaply."""
    figures.check_report(report)
    sla_us = close_sla_seconds * 1_000_000
    if report == "peak":
        return figures.render_peak(peak_for(cases, start, end, tz))
    if report == "team":
        staff = {
            s
            for f in cases.values()
            for s in (
                [a for _, a in f.new_or_reopened]
                + [a for _, a in f.work]
                + [a for _, a in f.answered]
                + [a for _, a, _ in f.replies]
                + [a for _, a in f.closes]
            )
            if s is not None
        }
        return figures.render_team((s, figures_for(cases, start, end, s, sla_us)) for s in staff)
    f = figures_for(cases, start, end, ANYONE, sla_us)
    render = {
        "load": figures.render_load,
        "channels": figures.render_channels,
        "response": figures.render_response,
        "sla": figures.render_sla,
    }[report]
    return render(f)
