"""Case writes and reads. Every change writes its `case_history` row in the same transaction,
so the statistics log is exactly what happened (R25–R30)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callrouter.storage.models import Case, CaseEvent, Message, Recording

STATUSES = ("open", "waiting", "closed")


def log(
    session: AsyncSession,
    case: Case,
    kind: str,
    at: datetime,
    *,
    staff_id: int | None = None,
    source: str | None = None,
    conversation: bool = False,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one history row for `case` as it is now."""
    session.add(
        CaseEvent(
            case_id=case.id,
            at=at,
            kind=kind,
            staff_id=staff_id,
            assignee_id=case.assignee_id,
            status=case.status,
            source=source,
            conversation=conversation,
            details=details or {},
        )
    )


async def create_case(
    session: AsyncSession,
    *,
    subject: str,
    status: str,
    user_id: int | None,
    assignee_id: int | None,
    icon: str | None,
    source: str,
    at: datetime,
    staff_id: int | None = None,
) -> Case:
    """Create a `calls` case and log its creation (`staff_id`: who created it, if staff did)."""
    case = Case(
        subject=subject,
        status=status,
        channel="calls",
        user_id=user_id,
        assignee_id=assignee_id,
        call_icon=icon,
        created_at=at,
        updated_at=at,
        closed_at=at if status == "closed" else None,
    )
    session.add(case)
    await session.flush()
    log(session, case, "created", at, staff_id=staff_id, source=source)
    return case


async def add_message(
    session: AsyncSession,
    case: Case,
    *,
    kind: str,
    author_staff_id: int | None,
    body: str,
    at: datetime,
    by_staff: bool,
    call_session_id: int | None = None,
    call_direction: str | None = None,
    call_outcome: str | None = None,
    talk_seconds: int | None = None,
    employee_id: int | None = None,
) -> Message:
    """Add a message; `by_staff` says a staff member wrote it (a staff action for stats)."""
    message = Message(
        case_id=case.id,
        kind=kind,
        author_staff_id=author_staff_id,
        body=body,
        created_at=at,
        call_session_id=call_session_id,
        call_direction=call_direction,
        call_outcome=call_outcome,
        talk_seconds=talk_seconds,
        employee_id=employee_id,
    )
    session.add(message)
    await session.flush()
    case.updated_at = max(case.updated_at, at)
    log(
        session,
        case,
        "message",
        at,
        staff_id=author_staff_id if by_staff else None,
        details={
            "message_id": message.id,
            "message_kind": kind,
            "author_staff_id": author_staff_id,
        },
    )
    return message


def set_status(
    session: AsyncSession, case: Case, status: str, at: datetime, staff_id: int | None = None
) -> bool:
    """Change the status (logging it; closed → open/waiting is a reopen, R24). False if unchanged."""
    if case.status == status:
        return False
    before = case.status
    case.status = status
    case.updated_at = max(case.updated_at, at)
    case.closed_at = at if status == "closed" else None
    log(session, case, "status", at, staff_id=staff_id, details={"from": before, "to": status})
    return True


def recordings_for(message: Message, recordings: Sequence[Recording]) -> list[Recording]:
    """The recordings of the message's part of the call: a transfer's parts are recorded per
    operator (R13); a recording without an operator belongs to every message of the call."""
    return [
        r
        for r in recordings
        if r.call_session_id == message.call_session_id
        and (
            r.employee_id is None
            or message.employee_id is None
            or r.employee_id == message.employee_id
        )
    ]


def has_conversation(message: Message, recordings: Sequence[Recording]) -> bool:
    """A recorded staff–user conversation: an answered call message with its recording."""
    return message.call_outcome == "answered" and bool(recordings_for(message, recordings))


async def recordings_of_calls(session: AsyncSession, call_ids: Sequence[int]) -> list[Recording]:
    if not call_ids:
        return []
    rows = await session.scalars(
        select(Recording).where(Recording.call_session_id.in_(set(call_ids))).order_by(Recording.id)
    )
    return list(rows)
