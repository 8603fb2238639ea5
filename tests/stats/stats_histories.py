"""Random but well-formed case histories for the statistics tests (R25–R30).

Each case lives through what the product writes: created (by staff or automatically, maybe
already closed, R13/R14), status changes with reopens (R24), assignee and subject changes, staff
replies and notes, call messages that get a recorded conversation later or at once, attached
calls. Times jitter, repeat and sometimes go backwards in log order, as late notifications do.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from callrouter.stats.history import HistoryEvent

STAFF = (1, 2, 3, 4)
# Starts near clock changes, so periods cross them: EU and US spring/autumn, Lord Howe (30 min).
BASES = (
    datetime(2024, 3, 30, 20, tzinfo=UTC),
    datetime(2024, 10, 26, 20, tzinfo=UTC),
    datetime(2024, 3, 9, 22, tzinfo=UTC),
    datetime(2024, 4, 6, 10, tzinfo=UTC),
    datetime(2025, 6, 1, 0, tzinfo=UTC),
)
TIMEZONES = (
    "UTC",
    "Europe/Moscow",
    "Europe/Berlin",
    "America/New_York",
    "Asia/Kolkata",
    "Asia/Kathmandu",
    "Australia/Lord_Howe",
    "America/Havana",
)


def history(seed: int, cases: int, span_hours: float = 96.0) -> list[HistoryEvent]:
    """A history of `cases` cases over about `span_hours`, ids in log order."""
    rnd = random.Random(seed)
    base = rnd.choice(BASES)
    message_ids = iter(range(1, 10**9))
    logged: list[tuple[float, int, int, dict[str, object]]] = []
    for case_id in range(1, cases + 1):
        t = base + timedelta(seconds=rnd.uniform(0, span_hours * 3600))
        if rnd.random() < 0.2:
            t = t.replace(microsecond=0)
        written = float("-inf")
        for seq, row in enumerate(_case_rows(rnd, case_id, t, message_ids)):
            at = row["at"]
            assert isinstance(at, datetime)
            # The log follows time, a few rows are written late (R32), and a case's rows stay
            # in their write order.
            delay = rnd.uniform(0, 7200) if rnd.random() < 0.1 else 0.0
            written = max(written, at.timestamp() + delay)
            logged.append((written, case_id, seq, row))
    logged.sort(key=lambda item: item[:3])
    return [
        HistoryEvent(id=i, **row)  # type: ignore[arg-type]
        for i, (_, _, _, row) in enumerate(logged, start=1)
    ]


def _case_rows(
    rnd: random.Random, case_id: int, t: datetime, message_ids: object
) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    ids = message_ids
    assert hasattr(ids, "__next__")
    staff_made = rnd.random() < 0.4
    assignee = rnd.choice((*STAFF, None))
    status = rnd.choice(("open", "waiting", "closed", "closed")) if not staff_made else "open"
    source = rnd.choice(("in", "in", "out"))
    calls: list[tuple[int, int | None]] = []

    def add(kind: str, staff: int | None, conversation: bool = False, **details: object) -> None:
        rows.append(
            {
                "case_id": case_id,
                "at": t,
                "kind": kind,
                "staff_id": staff,
                "assignee_id": assignee,
                "status": status,
                "source": source if kind == "created" else None,
                "conversation": conversation,
                "details": details,
            }
        )

    add("created", assignee if staff_made and assignee else None)
    first_call = next(ids)  # type: ignore[call-overload]
    author = assignee if rnd.random() < 0.8 else None
    add(
        "message",
        author if staff_made else None,
        message_id=first_call,
        message_kind="call",
        author_staff_id=author,
    )
    calls.append((first_call, author))
    for _ in range(rnd.randrange(0, 9)):
        t = _later(rnd, t)
        step = rnd.random()
        actor = rnd.choice((*STAFF, None))
        if step < 0.3:
            new = rnd.choice(("open", "waiting", "closed", "closed"))
            if new != status:
                old, status = status, new
                add("status", actor, **{"from": old, "to": new})
        elif step < 0.4:
            old_assignee, assignee = assignee, rnd.choice((*STAFF, None))
            add("assignee", actor, **{"from": old_assignee, "to": assignee})
        elif step < 0.45:
            add("subject", actor if actor else 1, **{"from": "a", "to": "b"})
        elif step < 0.65:
            kind = rnd.choice(("reply", "note", "call"))
            mid = next(ids)  # type: ignore[call-overload]
            writer = actor if kind != "call" or rnd.random() < 0.7 else None
            by_staff = writer is not None and rnd.random() < 0.9
            add(
                "message",
                writer if by_staff else None,
                message_id=mid,
                message_kind=kind,
                author_staff_id=writer,
            )
            if kind == "call":
                calls.append((mid, writer))
        elif step < 0.9 and calls:
            mid, writer = rnd.choice(calls)
            details: dict[str, object] = {"message_id": mid}
            if rnd.random() < 0.8:
                details["author_staff_id"] = writer
            add("recording", None, conversation=True, **details)
        elif step < 0.95:
            add("attached", actor if actor else 2)
        else:
            add("recording", None, conversation=True)  # a conversation without a message id
    return rows


def _later(rnd: random.Random, t: datetime) -> datetime:
    roll = rnd.random()
    if roll < 0.15:
        return t  # the same instant: one transaction writes several rows
    if roll < 0.2:
        return t - timedelta(seconds=rnd.uniform(0, 5400))  # a late row with an earlier time
    if roll < 0.8:
        return t + timedelta(seconds=rnd.uniform(0, 3 * 3600))
    return t + timedelta(hours=rnd.uniform(3, 60))
