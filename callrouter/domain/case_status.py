"""Case statuses and how they change (R21–R24), as one table of data.

Every status change of a case names its trigger; the table says which changes each trigger may
make. What a change *means* for the statistics — a close, or a reopen (R24) — is `effect`,
which the case writer logs and the statistics read, instead of each re-deriving it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final, Literal

OPEN: Final = "open"
WAITING: Final = "waiting"
CLOSED: Final = "closed"
STATUSES: Final = (OPEN, WAITING, CLOSED)

Effect = Literal["close", "reopen"]


class Trigger(StrEnum):
    """Why a case's status changes."""

    CREATED = (
        "created"  # a case is made: by a call's decision or by staff from a call (R8, R11–R15)
    )
    CALL_END = (
        "call_end"  # the conversation of a call created or attached to it ended (R21, R23b/c/e)
    )
    ATTACH = "attach"  # staff attach a call to a closed case: it is reopened (R9, R24)
    NEW_CASE = "new_case"  # staff made a new case for the caller: missed-call cases close (R23a/d)
    STAFF = "staff"  # a staff member sets the status by hand (R24)


# trigger → the (before, after) pairs it may produce; `None` before = the case is being created.
TRANSITIONS: Final[dict[Trigger, frozenset[tuple[str | None, str]]]] = {
    Trigger.CREATED: frozenset((None, s) for s in STATUSES),
    Trigger.CALL_END: frozenset({(OPEN, WAITING), (CLOSED, WAITING)}),
    Trigger.ATTACH: frozenset({(CLOSED, OPEN)}),
    Trigger.NEW_CASE: frozenset({(OPEN, CLOSED), (WAITING, CLOSED)}),
    Trigger.STAFF: frozenset((a, b) for a in STATUSES for b in STATUSES if a != b),
}


def allowed(trigger: Trigger, before: str | None, after: str) -> bool:
    """May `trigger` move a case from `before` to `after`?"""
    return (before, after) in TRANSITIONS[trigger]


def effect(before: str | None, after: str) -> Effect | None:
    """What a status change counts as: a case created closed or moved to closed is a close;
    closed → open/waiting is a reopen (R24); anything else is neither."""
    if after == CLOSED and before != CLOSED:
        return "close"
    if before == CLOSED and after != CLOSED:
        return "reopen"
    return None
