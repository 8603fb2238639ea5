"""What staff do with a live call (R7–R10, R23a/d), each in one transaction that holds the
call's lock row, so it never interleaves with the call's finalization."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from callrouter.storage import directory
from callrouter.storage.calls import lock_call
from callrouter.storage.cases import add_message, create_case, log, set_status
from callrouter.storage.directory import ConflictError, InvalidError, NotFoundError
from callrouter.storage.models import Call, CallAction, CallDraft, Case, Message


async def _open_call(session: AsyncSession, call_session_id: int) -> Call:
    call = await lock_call(session, call_session_id)
    if call.finalized:
        raise ConflictError("call_ended", "The call has ended; its case was created already.")
    return call


async def create_case_from_call(
    session: AsyncSession,
    call: dict[str, Any],
    staff_id: int,
    subject: str,
    summary: str,
    at: datetime,
) -> Case:
    """R8: a case with the caller (a new user with only the phone if unknown), the subject and
    the summary, assigned to the staff member; its first message marks the call in progress.
    R23a/d: the caller's open missed-call cases are closed — the new case carries on."""
    await _open_call(session, call["call_session_id"])
    user = await directory.find_user_by_phone(session, call["phone"])
    if user is None and call["phone"]:
        user = await directory.create_user_with_phone(session, call["phone"])
    direction = call["direction"]
    case = await create_case(
        session,
        subject=subject,
        status="open",
        user_id=user.id if user else None,
        assignee_id=staff_id,
        icon="normal",
        source=direction,
        at=at,
        staff_id=staff_id,
    )
    message = await _call_message(session, case, call, staff_id, summary, at)
    session.add(
        CallAction(
            call_session_id=call["call_session_id"],
            staff_id=staff_id,
            action="created",
            case_id=case.id,
            message_id=message.id,
            at=at,
        )
    )
    if user is not None:
        missed = await session.scalars(
            select(Case).where(
                Case.user_id == user.id,
                Case.call_icon == "missed",
                Case.status != "closed",
                Case.id != case.id,
            )
        )
        for old in missed:
            set_status(session, old, "closed", at)
    return case


async def attach_call(
    session: AsyncSession,
    call: dict[str, Any],
    staff_id: int,
    case_id: int,
    summary: str,
    at: datetime,
) -> Case:
    """R9, R19: a message from the staff member with the summary, the call in progress; a
    closed case is reopened by the call (R24) and becomes `waiting` when the call ends (R21)."""
    await _open_call(session, call["call_session_id"])
    case = await session.get(Case, case_id)
    if case is None:
        raise NotFoundError("case_not_found", f"No case {case_id}.")
    if case.channel != "calls":
        raise InvalidError(
            "not_a_call_case", "A call can be attached only to a case of the calls channel."
        )
    existing = await session.scalar(
        select(CallAction).where(
            CallAction.call_session_id == call["call_session_id"],
            CallAction.staff_id == staff_id,
            CallAction.case_id == case_id,
        )
    )
    if existing is not None:
        raise ConflictError("already_attached", "This call is attached to that case already.")
    if case.status == "closed":
        set_status(session, case, "open", at, staff_id=staff_id)
    message = await _call_message(session, case, call, staff_id, summary, at)
    log(
        session,
        case,
        "attached",
        at,
        staff_id=staff_id,
        details={"call_session_id": call["call_session_id"]},
    )
    session.add(
        CallAction(
            call_session_id=call["call_session_id"],
            staff_id=staff_id,
            action="attached",
            case_id=case.id,
            message_id=message.id,
            at=at,
        )
    )
    return case


async def _call_message(
    session: AsyncSession,
    case: Case,
    call: dict[str, Any],
    staff_id: int,
    summary: str,
    at: datetime,
) -> Message:
    employee = call.get("employee_of", {}).get(staff_id)
    return await add_message(
        session,
        case,
        kind="call",
        author_staff_id=staff_id,
        body=summary,
        at=at,
        by_staff=True,
        call_session_id=call["call_session_id"],
        call_direction=call["direction"],
        call_outcome="in_progress",
        talk_seconds=None,
        employee_id=employee,
    )


async def save_draft(
    session: AsyncSession,
    call_session_id: int,
    staff_id: int,
    subject: str | None,
    summary: str | None,
    at: datetime,
) -> None:
    """R10: keep what was typed; only the fields given change."""
    await _open_call(session, call_session_id)
    values: dict[str, Any] = {
        "call_session_id": call_session_id,
        "staff_id": staff_id,
        "updated_at": at,
    }
    changes: dict[str, Any] = {"updated_at": at}
    for key, value in (("subject", subject), ("summary", summary)):
        if value is not None:
            values[key] = changes[key] = value
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    await session.execute(
        insert(CallDraft)
        .values(**values)
        .on_conflict_do_update(index_elements=["call_session_id", "staff_id"], set_=changes)
    )
