"""The storage side of a call: its lock row, its finalization into cases (R11–R24), its
recordings, and the inbox bookkeeping that makes every notification count exactly once (R32)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from callrouter.domain.call import CallFacts
from callrouter.domain.case_rules import (
    AddMessage,
    CallMessage,
    CreateCase,
    Decision,
    Dial,
    Draft,
    FinishMessage,
    SetStatus,
    StaffAction,
    decide,
)
from callrouter.domain.notifications import Notification
from callrouter.domain.phones import normalize_phone
from callrouter.domain.wallboard import finished_call
from callrouter.storage import directory
from callrouter.storage.cases import (
    add_message,
    create_case,
    has_conversation,
    log,
    recordings_of_calls,
    set_status,
)
from callrouter.storage.models import (
    Call,
    CallAction,
    CallDraft,
    Case,
    InboxEntry,
    Message,
    Recording,
)
from callrouter.storage.models import (
    Dial as DialRow,
)


@dataclass(frozen=True, slots=True)
class Finalized:
    call_session_id: int
    outcome: str
    staff_ids: tuple[int, ...]
    case_ids: tuple[int, ...]


async def lock_call(session: AsyncSession, call_session_id: int) -> Call:
    """The call's row, created if missing and locked for this transaction: staff actions and
    the finalization of one call never interleave. Starting with a write also takes SQLite's
    write lock up front, so the transaction cannot fail later on a lock upgrade."""
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    await session.execute(
        insert(Call)
        .values(call_session_id=call_session_id, finalized=False, staff_ids=[])
        .on_conflict_do_nothing(index_elements=["call_session_id"])
    )
    call = await session.scalar(
        select(Call)
        .where(Call.call_session_id == call_session_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert call is not None
    return call


async def lock_caller(session: AsyncSession, phone: str | None) -> None:
    """Serialise the case decisions of one caller across processes (R16) on PostgreSQL; SQLite
    has a single writer already, and within a shard the contact entity orders them."""
    key = normalize_phone(phone)
    if key and session.get_bind().dialect.name == "postgresql":
        await session.execute(
            text("SELECT pg_advisory_xact_lock(:k)"), {"k": zlib.crc32(key.encode())}
        )


async def groupable_missed_case(session: AsyncSession, user_id: int) -> int | None:
    """The user's newest missed-call case that is not closed and after whose creation no
    conversation between the user and staff happened (R16)."""
    case = await session.scalar(
        select(Case)
        .where(
            Case.user_id == user_id,
            Case.channel == "calls",
            Case.call_icon == "missed",
            Case.status != "closed",
        )
        .order_by(Case.created_at.desc(), Case.id.desc())
        .limit(1)
    )
    if case is None:
        return None
    talked = await session.scalar(
        select(
            exists().where(
                Call.user_id == user_id,
                Call.outcome == "answered",
                Call.ended_at >= case.created_at,
            )
        )
    )
    return None if talked else case.id


async def _inputs(
    session: AsyncSession, facts: CallFacts
) -> tuple[dict[int, int], list[StaffAction], dict[int, Draft], Dial | None]:
    cid = facts.call_session_id
    actions = [
        StaffAction(a.staff_id, a.case_id, a.message_id)
        for a in await session.scalars(
            select(CallAction).where(CallAction.call_session_id == cid).order_by(CallAction.id)
        )
    ]
    drafts = {
        d.staff_id: Draft(d.subject, d.summary)
        for d in await session.scalars(select(CallDraft).where(CallDraft.call_session_id == cid))
    }
    dial_row = None
    if facts.external_id:
        dial_row = await session.get(DialRow, facts.external_id)
    if dial_row is None:
        dial_row = await session.scalar(select(DialRow).where(DialRow.call_session_id == cid))
    dial = Dial(dial_row.case_id, dial_row.staff_id) if dial_row else None
    return await directory.operator_map(session), actions, drafts, dial


async def finalize_call(session: AsyncSession, facts: CallFacts) -> Finalized | None:
    """Decide and write the cases of a finished call; None if it was finalized before."""
    await lock_caller(session, facts.phone)
    call = await lock_call(session, facts.call_session_id)
    if call.finalized:  # decided before: its late notifications are handled by that decision
        await mark_done(session, [], facts.call_session_id)
        return None
    staff_of, actions, drafts, dial = await _inputs(session, facts)
    user = await directory.find_user_by_phone(session, facts.phone) if facts.phone else None
    groupable = None
    if user is not None and facts.direction == "in" and not facts.conversations:
        groupable = await groupable_missed_case(session, user.id)
    decision = decide(facts, staff_of, actions, drafts, dial, groupable)
    case_ids = await _apply(session, facts, decision, user.id if user else None)
    answered = [c.answered_at for c in facts.conversations]
    call.direction = facts.direction
    call.phone = facts.phone
    call.user_id = call.user_id or (user.id if user else await _user_of_cases(session, case_ids))
    call.staff_ids = list(decision.staff_ids)
    call.started_at = facts.started_at
    call.answered_at = min(answered) if answered else None
    call.ended_at = facts.ended_at
    call.outcome = decision.outcome
    call.talk_seconds = facts.talk_seconds
    board = finished_call(facts, staff_of)
    call.wait_seconds = board.wait_seconds
    call.offered_staff_ids = list(board.offered)
    call.talked = [list(pair) for pair in board.talked]
    call.finalized = True
    await session.execute(
        update(InboxEntry)
        .where(InboxEntry.call_session_id == facts.call_session_id)
        .values(done=True)
    )
    return Finalized(facts.call_session_id, decision.outcome, decision.staff_ids, tuple(case_ids))


async def _user_of_cases(session: AsyncSession, case_ids: list[int]) -> int | None:
    if not case_ids:
        return None
    return await session.scalar(
        select(Case.user_id).where(Case.id.in_(case_ids), Case.user_id.is_not(None)).limit(1)
    )


async def _apply(
    session: AsyncSession, facts: CallFacts, decision: Decision, user_id: int | None
) -> list[int]:
    at = facts.ended_at
    recordings = await recordings_of_calls(session, [facts.call_session_id])
    touched: list[int] = []

    async def add_call_message(case: Case, m: CallMessage) -> None:
        message = await add_message(
            session,
            case,
            kind="call",
            author_staff_id=m.author_staff_id,
            body=m.body,
            at=at,
            by_staff=m.by_staff,
            call_session_id=facts.call_session_id,
            call_direction=facts.direction,
            call_outcome=m.outcome,
            talk_seconds=m.talk_seconds,
            employee_id=m.employee_id,
        )
        if has_conversation(message, recordings):
            _log_conversation(session, case, message, at)

    for op in decision.ops:
        if isinstance(op, CreateCase):
            if user_id is None and facts.phone:
                user_id = (await directory.create_user_with_phone(session, facts.phone)).id
            case = await create_case(
                session,
                subject=op.subject,
                status=op.status,
                user_id=user_id,
                assignee_id=op.assignee_id,
                icon=op.icon,
                source=op.source,
                at=at,
            )
            await add_call_message(case, op.message)
        elif isinstance(op, AddMessage):
            case = await _case(session, op.case_id)
            await add_call_message(case, op.message)
        elif isinstance(op, FinishMessage):
            message = await session.get(Message, op.message_id)
            assert message is not None
            message.call_outcome = op.outcome
            message.talk_seconds = op.talk_seconds
            message.employee_id = message.employee_id or op.employee_id
            case = await _case(session, message.case_id)
            if has_conversation(message, recordings):
                _log_conversation(session, case, message, at)
        elif isinstance(op, SetStatus):
            case = await _case(session, op.case_id)
            set_status(session, case, op.status, at)
        if case.id not in touched:
            touched.append(case.id)
    return touched


async def _case(session: AsyncSession, case_id: int) -> Case:
    case = await session.get(Case, case_id)
    assert case is not None, f"case {case_id} vanished"
    return case


def _log_conversation(session: AsyncSession, case: Case, message: Message, at: datetime) -> None:
    log(
        session,
        case,
        "recording",
        at,
        conversation=True,
        details={"message_id": message.id, "author_staff_id": message.author_staff_id},
    )


async def store_recording(session: AsyncSession, n: Notification) -> list[int]:
    """Keep a call's recordings (R8, R9, R11) and mark the messages that now hold a recorded
    conversation; an outgoing conversation recorded in a missed-call case turns its icon back
    to normal (R17). Returns the ids of the cases that changed. Idempotent."""
    cid = n.call_session_id
    before = await recordings_of_calls(session, [cid])
    known = {r.url for r in before}
    added = [
        Recording(
            call_session_id=cid,
            employee_id=n.employee_id,
            url=url,
            seconds=n.record_seconds,
            recorded_at=n.time,
        )
        for url in dict.fromkeys(n.record_urls)
        if url not in known
    ]
    if not added:
        return []
    session.add_all(added)
    await session.flush()
    after = before + added
    changed: list[int] = []
    for message in await session.scalars(select(Message).where(Message.call_session_id == cid)):
        if not has_conversation(message, after) or has_conversation(message, before):
            continue
        case = await _case(session, message.case_id)
        _log_conversation(session, case, message, n.time)
        if message.call_direction == "out" and case.call_icon == "missed":
            case.call_icon = "normal"
        case.updated_at = max(case.updated_at, n.time)
        changed.append(case.id)
    return changed


async def mark_done(
    session: AsyncSession, inbox_ids: list[int], call_session_id: int | None = None
) -> None:
    """Mark notifications handled: these ids, and every one of the call when it is given."""
    if inbox_ids:
        await session.execute(
            update(InboxEntry).where(InboxEntry.id.in_(inbox_ids)).values(done=True)
        )
    if call_session_id is not None:
        await session.execute(
            update(InboxEntry)
            .where(InboxEntry.call_session_id == call_session_id)
            .values(done=True)
        )


async def pending_inbox(
    session: AsyncSession, after_id: int = 0, limit: int = 5000
) -> list[InboxEntry]:
    """Acknowledged notifications whose effects are not durable yet, oldest first."""
    rows = await session.scalars(
        select(InboxEntry)
        .where(InboxEntry.done.is_(False), InboxEntry.id > after_id)
        .order_by(InboxEntry.id)
        .limit(limit)
    )
    return list(rows)


async def count_pending(session: AsyncSession) -> int:
    return int(
        await session.scalar(
            select(func.count()).select_from(InboxEntry).where(InboxEntry.done.is_(False))
        )
        or 0
    )
