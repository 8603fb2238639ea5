"""The case writes (`storage/case_store.py`), on SQLite and on PostgreSQL: batches of decisions
(R11, R15, R16), idempotency (R32), recordings before or after the decision (R8, R11, R17),
late talk times (R32), hidden callers, staff actions (R8, R10, R23a) — each writing its
history rows (R25–R30 read them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from callrouter.domain.call import CallFacts, Conversation
from callrouter.domain.notifications import Kind, Notification
from callrouter.storage import case_store, dials, directory
from callrouter.storage.case_store import Batch, write_batch
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


def _facts(call_id: int, employee_id: int, staff_id: int, at: datetime, **kw: object) -> CallFacts:
    base: dict[str, object] = {
        "call_session_id": call_id,
        "direction": "in",
        "phone": PHONE,
        "external_id": None,
        "started_at": at,
        "ended_at": at + timedelta(minutes=2),
        "offered": (employee_id,),
        "conversations": (
            Conversation(employee_id, at + timedelta(seconds=5), at + timedelta(minutes=2), 115),
        ),
        "staff_employee_id": None,
        "user_answered": False,
        "talk_seconds": 115,
        "timed_out": False,
        "staff_of": ((employee_id, staff_id),),
    }
    return CallFacts(**(base | kw))  # type: ignore[arg-type]


def _missed(call_id: int, employee_id: int, staff_id: int, at: datetime) -> CallFacts:
    return _facts(
        call_id,
        employee_id,
        staff_id,
        at,
        conversations=(),
        talk_seconds=0,
        ended_at=at + timedelta(seconds=30),
    )


def _outgoing(
    call_id: int, employee_id: int, staff_id: int, at: datetime, **kw: object
) -> CallFacts:
    return _facts(
        call_id,
        employee_id,
        staff_id,
        at,
        direction="out",
        offered=(),
        conversations=(),
        staff_employee_id=employee_id,
        user_answered=True,
        talk_seconds=60,
        **kw,
    )


def _recording(call_id: int, employee_id: int | None, at: datetime) -> Notification:
    return Notification(
        Kind.RECORDING,
        call_id,
        at,
        phone=PHONE,
        employee_id=employee_id,
        record_urls=(f"https://media.uiscom.ru/{call_id}/{'a' * 32}",),
    )


async def _write(db: Database, batch: Batch) -> case_store.BatchResult:
    async with db.writing() as conn:
        return await write_batch(conn, batch, T0)


async def _decide(db: Database, *calls: CallFacts) -> case_store.BatchResult:
    return await _write(db, Batch(calls=list(calls)))


async def _cases(db: Database) -> list[Case]:
    async with db.sessions() as session:
        return list(await session.scalars(select(Case).order_by(Case.id)))


async def test_answered_call_makes_one_case_once(database: Database) -> None:
    """R11 and R32: the case, its message, the call row, the inbox marked done; deciding it
    again changes nothing."""
    staff_id = await _staff(database, 9001)
    async with database.sessions() as session, session.begin():
        session.add(
            InboxEntry(body_hash="h1", call_session_id=501, received_at=T0, body="{}", done=False)
        )
    result = await _decide(database, _facts(501, 9001, staff_id, T0))
    [decided] = result.decided
    assert (decided.outcome, decided.staff_ids, len(decided.case_ids)) == (
        "answered",
        (staff_id,),
        1,
    )
    assert [h.kind for h in result.history] == ["created", "message"]
    again = await _decide(database, _facts(501, 9001, staff_id, T0))
    assert [d.outcome for d in again.decided] == [""] and again.history == []
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
    assert [(m.kind, m.author_staff_id, m.call_outcome, m.talk_seconds) for m in messages] == [
        ("call", staff_id, "answered", 115)
    ]
    assert call is not None and call.finalized and call.outcome == "answered"
    assert undone == 0


@pytest.mark.parametrize("recording_first", [True, False])
async def test_recording_before_or_after_the_decision_logs_one_conversation(
    database: Database, recording_first: bool
) -> None:
    """R11: the recording reaches the message whatever came first; the history logs one
    recorded conversation at the recording's time (R25 `answered`); a repeat changes nothing."""
    staff_id = await _staff(database, 9002)
    recording = _recording(502, 9002, T0 + timedelta(minutes=3))
    steps = [Batch(records=[(None, recording)]), Batch(calls=[_facts(502, 9002, staff_id, T0)])]
    for batch in steps if recording_first else steps[::-1]:
        await _write(database, batch)
    await _write(database, Batch(records=[(None, recording)]))
    async with database.sessions() as session:
        conversations = list(
            await session.scalars(select(CaseEvent).where(CaseEvent.conversation.is_(True)))
        )
    assert [(e.kind, e.at) for e in conversations] == [("recording", recording.time)]


@pytest.mark.parametrize("recording_first", [True, False])
async def test_r17_icon_turns_green_whatever_came_first(
    database: Database, recording_first: bool
) -> None:
    """Issue 7's order bug: a call from a missed-call case, answered and recorded, turns the
    case's icon green (R17) also when its recording arrived before the call was decided."""
    staff_id = await _staff(database, 9005)
    await _decide(database, _missed(801, 9005, staff_id, T0))
    [missed] = await _cases(database)
    async with database.sessions() as session, session.begin():
        await dials.start_dial(session, missed.id, staff_id, "cr-dial-802", T0)
    call = _outgoing(802, 9005, staff_id, T0 + timedelta(hours=1), external_id="cr-dial-802")
    recording = _recording(802, 9005, T0 + timedelta(hours=1, minutes=3))
    steps = [Batch(records=[(None, recording)]), Batch(calls=[call])]
    for batch in steps if recording_first else steps[::-1]:
        await _write(database, batch)
    [case] = await _cases(database)
    assert (case.status, case.call_icon) == ("waiting", "normal")


async def test_missed_calls_group_until_a_conversation_in_one_batch(database: Database) -> None:
    """R15 and R16, decided in one batch: two missed calls → one case with two messages; after
    an answered call the next missed call opens a new case."""
    staff_id = await _staff(database, 9003)
    await _decide(
        database,
        _missed(601, 9003, staff_id, T0),
        _missed(602, 9003, staff_id, T0 + timedelta(minutes=10)),
        _facts(603, 9003, staff_id, T0 + timedelta(minutes=20)),
        _missed(604, 9003, staff_id, T0 + timedelta(minutes=30)),
    )
    cases = await _cases(database)
    assert [(c.call_icon, c.assignee_id) for c in cases] == [
        ("missed", staff_id),
        ("normal", staff_id),
        ("missed", staff_id),
    ]
    async with database.sessions() as session:
        per_case = dict(
            (await session.execute(select(Message.case_id, func.count()).group_by(Message.case_id)))
            .tuples()
            .all()
        )
        users = await session.scalar(select(func.count()).select_from(Case.__table__))
    assert sorted(per_case.values()) == [1, 1, 2]
    assert users == 3 and len({c.user_id for c in cases}) == 1  # one user made for the number


async def test_hidden_callers_are_unknown_and_never_grouped(database: Database) -> None:
    """A caller number without digits is a call from an unknown number: no user, the subject
    says so, and two hidden callers' missed calls are two cases (issue "nothing lost", #3)."""
    staff_id = await _staff(database, 9006)
    await _decide(
        database,
        *(
            _facts(
                900 + i,
                9006,
                staff_id,
                T0 + timedelta(minutes=i),
                phone=phone,
                conversations=(),
                talk_seconds=0,
            )
            for i, phone in enumerate(["anonymous", "+", "sip:operator@pbx", "٧٩٢٦"])
        ),
    )
    cases = await _cases(database)
    assert [(c.subject, c.user_id) for c in cases] == [
        ("Пропущенный звонок с неизвестного номера", None)
    ] * 4


async def test_a_late_call_end_corrects_the_talk_time_of_a_timed_out_call(
    database: Database,
) -> None:
    """R32 (issue "nothing lost" #8): a call decided by the silent-call timeout keeps its
    case; a call end that comes later brings UIS's talk time to the call and its message."""
    staff_id = await _staff(database, 9007)
    await _decide(database, _facts(950, 9007, staff_id, T0, timed_out=True, talk_seconds=0))
    end = Notification(Kind.CALL_END, 950, T0 + timedelta(minutes=5), phone=PHONE, talk_seconds=33)
    await _write(database, Batch(late=[(None, end)]))
    async with database.sessions() as session:
        call = await session.get(Call, 950)
        message = await session.scalar(select(Message))
    assert call is not None and call.talk_seconds == 33
    assert message is not None and message.talk_seconds == 33


async def test_a_call_whose_decision_fails_is_named(database: Database) -> None:
    """STYLE habit 11: the batch raises `CallFailed` for the call at fault, writing nothing,
    so the writer can set that call aside and write the others."""
    staff_id = await _staff(database, 9008)
    good = _facts(960, 9008, staff_id, T0)
    bad = _facts(961, 9008, staff_id, T0, direction=None)  # not a direction any rule knows
    bad = CallFacts(**{**{f: getattr(bad, f) for f in bad.__slots__}, "offered": object()})  # type: ignore[arg-type]
    with pytest.raises(case_store.CallFailed) as failed:
        await _decide(database, good, bad)
    assert failed.value.call_session_id == 961 and failed.value.stage == "decide"
    assert await _cases(database) == []
    await _decide(database, good)
    assert len(await _cases(database)) == 1


async def test_staff_case_during_the_call_then_the_end(database: Database) -> None:
    """R8, R21, R23a: staff create a case during the call (the caller's open missed case is
    closed), the end makes it `waiting`; after the decision, staff actions get 409."""
    staff_id = await _staff(database, 9004)
    await _decide(database, _missed(701, 9004, staff_id, T0))
    call = {
        "call_session_id": 702,
        "phone": PHONE,
        "direction": "in",
        "employee_of": {staff_id: 9004},
    }
    async with database.sessions() as session, session.begin():
        case_id = await case_store.create_case_from_call(
            session, call, staff_id, "Замена", "Договорились", T0
        )
        await case_store.save_draft(session, 702, staff_id, "черновик", None, T0)
    await _decide(database, _facts(702, 9004, staff_id, T0 + timedelta(minutes=5)))
    by_id = {c.id: c for c in await _cases(database)}
    assert by_id[case_id].status == "waiting"
    assert [c.status for c in by_id.values() if c.call_icon == "missed"] == ["closed"]
    assert len(by_id) == 2  # no auto case: staff made one
    with pytest.raises(ConflictError):
        async with database.sessions() as session, session.begin():
            await case_store.save_draft(session, 702, staff_id, "late", None, T0)
    async with database.sessions() as session:
        statuses = list(
            await session.scalars(
                select(CaseEvent.details).where(CaseEvent.kind == "status").order_by(CaseEvent.id)
            )
        )
    assert [(d["from"], d["to"], d["trigger"]) for d in statuses] == [
        ("open", "closed", "new_case"),  # R23a: the missed case
        ("open", "waiting", "call_end"),  # R21
    ]


async def test_r23a_a_missed_call_decided_after_staff_made_a_new_case_is_closed(
    database: Database,
) -> None:
    """The missed call ended before staff made a new case for the caller but is decided after
    (the lateness bound): its case is created and closed, as R23a would have done."""
    staff_id = await _staff(database, 9009)
    call = {"call_session_id": 991, "phone": PHONE, "direction": "in", "employee_of": {}}
    async with database.sessions() as session, session.begin():
        await case_store.create_case_from_call(
            session, call, staff_id, "Новое", "", T0 + timedelta(minutes=1)
        )
    await _decide(database, _missed(990, 9009, staff_id, T0))
    missed = [c for c in await _cases(database) if c.call_icon == "missed"]
    assert [(c.status, c.closed_at) for c in missed] == [("closed", T0 + timedelta(minutes=1))]
