"""The case writes of a finished call, on SQLite and on PostgreSQL: finalization (R11, R15,
R16), idempotency (R32), recordings (R8, R11, R17) and staff actions under the call's lock
(R8, R10, R23a) — each writing its history rows (R25–R30 read them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from callrouter.domain.call import CallFacts, Conversation
from callrouter.domain.notifications import Kind, Notification
from callrouter.storage import actions, directory
from callrouter.storage.calls import finalize_call, store_recording
from callrouter.storage.directory import ConflictError
from callrouter.storage.engine import Database
from callrouter.storage.models import Call, Case, CaseEvent, InboxEntry, Message

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
PHONE = "79260000077"


async def _staff(db: Database, employee_id: int) -> int:
    async with db.sessions() as session, session.begin():
        member, _ = await directory.create_staff(session, "Анна", f"{employee_id}@example.test")
        await directory.put_operator(session, employee_id, member.id)
        return member.id


def _answered(call_id: int, employee_id: int, at: datetime) -> CallFacts:
    return CallFacts(
        call_id,
        "in",
        PHONE,
        None,
        at,
        at + timedelta(minutes=2),
        (employee_id,),
        (Conversation(employee_id, at + timedelta(seconds=5), at + timedelta(minutes=2), 115),),
        None,
        False,
        115,
        False,
    )


def _missed(call_id: int, employee_id: int, at: datetime) -> CallFacts:
    return CallFacts(
        call_id,
        "in",
        PHONE,
        None,
        at,
        at + timedelta(seconds=30),
        (employee_id,),
        (),
        None,
        False,
        0,
        False,
    )


async def _finalize(db: Database, facts: CallFacts) -> object:
    async with db.sessions() as session, session.begin():
        return await finalize_call(session, facts)


async def _cases(db: Database) -> list[Case]:
    async with db.sessions() as session:
        return list(await session.scalars(select(Case).order_by(Case.id)))


async def test_answered_call_makes_one_case_once(database: Database) -> None:
    """R11 and R32: the case, its message, the call row, the inbox marked done; a second
    finalization changes nothing."""
    staff_id = await _staff(database, 9001)
    async with database.sessions() as session, session.begin():
        session.add(
            InboxEntry(body_hash="h1", call_session_id=501, received_at=T0, body="{}", done=False)
        )
    done = await _finalize(database, _answered(501, 9001, T0))
    assert done is not None and done.outcome == "answered" and done.staff_ids == (staff_id,)
    assert await _finalize(database, _answered(501, 9001, T0)) is None
    [case] = await _cases(database)
    assert (case.subject, case.status, case.assignee_id, case.call_icon) == (
        f"Входящий звонок с {PHONE}",
        "open",
        staff_id,
        "normal",
    )
    async with database.sessions() as session:
        messages = list(await session.scalars(select(Message)))
        call = await session.get(Call, 501)
        undone = await session.scalar(
            select(func.count()).select_from(InboxEntry).where(InboxEntry.done.is_(False))
        )
        kinds = list(await session.scalars(select(CaseEvent.kind).order_by(CaseEvent.id)))
    assert [(m.kind, m.author_staff_id, m.call_outcome, m.talk_seconds) for m in messages] == [
        ("call", staff_id, "answered", 115)
    ]
    assert call is not None and call.finalized and call.outcome == "answered"
    assert undone == 0
    assert kinds == ["created", "message"]


async def test_recording_before_or_after_the_decision_marks_one_conversation(
    database: Database,
) -> None:
    """R11: the recording reaches the message whatever came first; the history logs one
    recorded conversation (R25 `answered`), and a repeated recording changes nothing."""
    await _staff(database, 9002)
    recording = Notification(
        Kind.RECORDING,
        502,
        T0 + timedelta(minutes=3),
        phone=PHONE,
        employee_id=9002,
        record_urls=("https://media.uiscom.ru/502/" + "a" * 32,),
    )
    await _finalize(database, _answered(502, 9002, T0))
    for _ in range(2):
        async with database.sessions() as session, session.begin():
            await store_recording(session, recording)
    async with database.sessions() as session:
        conversations = list(
            await session.scalars(select(CaseEvent).where(CaseEvent.conversation.is_(True)))
        )
    assert [(e.kind, e.at) for e in conversations] == [("recording", recording.time)]


async def test_missed_calls_group_until_a_conversation(database: Database) -> None:
    """R15 and R16: two missed calls → one case with two messages; after an answered call the
    next missed call opens a new case."""
    staff_id = await _staff(database, 9003)
    await _finalize(database, _missed(601, 9003, T0))
    await _finalize(database, _missed(602, 9003, T0 + timedelta(minutes=10)))
    cases = await _cases(database)
    assert [(c.subject, c.call_icon, c.assignee_id) for c in cases] == [
        (f"Пропущенный звонок с {PHONE}", "missed", staff_id)
    ]
    await _finalize(database, _answered(603, 9003, T0 + timedelta(minutes=20)))
    await _finalize(database, _missed(604, 9003, T0 + timedelta(minutes=30)))
    icons = [c.call_icon for c in await _cases(database)]
    assert icons == ["missed", "normal", "missed"]
    async with database.sessions() as session:
        per_case = dict(
            (await session.execute(select(Message.case_id, func.count()).group_by(Message.case_id)))
            .tuples()
            .all()
        )
    assert sorted(per_case.values()) == [1, 1, 2]


async def test_staff_case_during_the_call_then_the_end(database: Database) -> None:
    """R8, R21, R23a: staff create a case during the call (the caller's open missed case is
    closed), the end makes it `waiting`; after the decision, staff actions get 409."""
    staff_id = await _staff(database, 9004)
    await _finalize(database, _missed(701, 9004, T0))
    call = {
        "call_session_id": 702,
        "phone": PHONE,
        "direction": "in",
        "employee_of": {staff_id: 9004},
    }
    async with database.sessions() as session, session.begin():
        case = await actions.create_case_from_call(
            session, call, staff_id, "Замена", "Договорились", T0
        )
        await actions.save_draft(session, 702, staff_id, "черновик", None, T0)
    await _finalize(database, _answered(702, 9004, T0 + timedelta(minutes=5)))
    by_id = {c.id: c for c in await _cases(database)}
    assert by_id[case.id].status == "waiting"
    assert [c.status for c in by_id.values() if c.call_icon == "missed"] == ["closed"]
    assert len(by_id) == 2  # no auto case: staff made one
    with pytest.raises(ConflictError):
        async with database.sessions() as session, session.begin():
            await actions.save_draft(session, 702, staff_id, "late", None, T0)
