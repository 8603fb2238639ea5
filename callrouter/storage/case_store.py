"""The only code that writes cases, their messages, their history and what recordings do to
them (R8–R24): the decisions of finished calls in batches, late news of decided calls, and what
staff do with cases.

Every change goes through a `CaseBook` (`domain/case_log.py`), which appends the
`case_history` row of each change; `write_book` writes a book with a few Core statements
(multi-row INSERT … RETURNING, executemany UPDATE) whatever its size. Every function runs
inside its caller's transaction and never commits.
"""

from __future__ import annotations

import traceback
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from callrouter.domain.call import CallFacts
from callrouter.domain.case_log import (
    CallPart,
    CaseBook,
    CaseState,
    MessageKey,
    NewMessage,
    NewUser,
    UserKey,
)
from callrouter.domain.case_rules import (
    CallContext,
    Caller,
    CaseKey,
    LogConversation,
    NewCase,
    SetIcon,
    StoredMessage,
    case_of,
    decide,
    late_talk,
    on_recording,
)
from callrouter.domain.case_status import CLOSED, OPEN, STATUSES, Trigger
from callrouter.domain.notifications import Kind, Notification
from callrouter.domain.phones import known_number, normalize_phone
from callrouter.domain.wallboard import finished_call
from callrouter.stats.history import HistoryEvent
from callrouter.storage import inbox
from callrouter.storage.contexts import (
    FINALIZED,
    RECORDED,
    calls_t,
    cases_t,
    chunks,
    load_cases,
    load_contexts,
    messages_t,
    phones_t,
    recordings_t,
    rows_in,
    users_by_number,
    users_t,
    where_in,
)
from callrouter.storage.directory import ConflictError, InvalidError, NotFoundError
from callrouter.storage.engine import Conn
from callrouter.storage.inbox import Failure
from callrouter.storage.models import CallAction, CallDraft, CaseEvent, InboxEntry, Staff

history_t = cast(Table, CaseEvent.__table__)
inbox_t = cast(Table, InboxEntry.__table__)
actions_t = cast(Table, CallAction.__table__)
drafts_t = cast(Table, CallDraft.__table__)


def _upsert(conn: Conn) -> Any:
    return pg_insert if conn.dialect.name == "postgresql" else sqlite_insert


# -- writing a book ----------------------------------------------------------------------------


@dataclass(slots=True)
class Written:
    """What a book became: ids for its keys, and its history rows for the statistics."""

    cases: dict[CaseKey, int] = field(default_factory=dict)
    messages: dict[MessageKey, int] = field(default_factory=dict)
    users: dict[NewUser, int] = field(default_factory=dict)
    history: list[HistoryEvent] = field(default_factory=list)

    def user(self, key: UserKey) -> int | None:
        """The id of `key`; None for a new user no case needed (an ignored call's caller)."""
        return self.users.get(key) if isinstance(key, NewUser) else key


async def _insert_ids(conn: Conn, table: Any, rows: list[dict[str, Any]]) -> list[int]:
    """Insert rows; their new ids in the rows' order. The ids are taken first — from the
    sequence on PostgreSQL, after the highest on SQLite, whose only writer is the one running
    this — so the rows go in one multi-row statement (an INSERT … RETURNING that must keep
    the rows' order would go one row at a time)."""
    if not rows:
        return []
    if conn.dialect.name == "postgresql":
        sequence = f"{table.name}_id_seq"
        query = text(f"SELECT nextval('{sequence}') FROM generate_series(1, :n)")
        ids = [r[0] for r in (await conn.execute(query, {"n": len(rows)})).all()]
    else:
        top = await conn.scalar(select(func.coalesce(func.max(table.c.id), 0)))
        ids = list(range(int(top or 0) + 1, int(top or 0) + 1 + len(rows)))
    await conn.execute(insert(table), [row | {"id": i} for row, i in zip(rows, ids, strict=True)])
    return ids


async def create_users(conn: Conn, new: Iterable[NewUser], at: datetime) -> dict[NewUser, int]:
    """A user with only the number for each unknown caller (docs/decisions.md #8)."""
    keys = list(dict.fromkeys(new))
    ids = await _insert_ids(
        conn,
        users_t,
        [{"custom_fields": {}, "created_at": at, "updated_at": at} for _ in keys],
    )
    phones = [
        {"user_id": i, "phone": k.phone, "normalized": normalize_phone(k.phone), "position": 0}
        for k, i in zip(keys, ids, strict=True)
    ]
    if phones:
        await conn.execute(insert(phones_t), phones)
    return dict(zip(keys, ids, strict=True))


_CHANGING = ("subject", "status", "assignee_id", "call_icon", "updated_at", "closed_at")


def _case_row(case: CaseState, user: int | None) -> dict[str, Any]:
    return {
        "subject": case.subject,
        "status": case.status,
        "channel": case.channel,
        "user_id": user,
        "assignee_id": case.assignee_id,
        "call_icon": case.icon,
        "created_at": case.created_at,
        "updated_at": case.updated_at,
        "closed_at": case.closed_at,
    }


async def write_book(conn: Conn, book: CaseBook) -> Written:
    """Write everything `book` says, in a few statements."""
    done = Written()
    new = [c for c in book.cases.values() if c.new]
    new_users = {c.user: c.created_at for c in new if isinstance(c.user, NewUser)}
    if new_users:
        done.users = await create_users(conn, new_users, min(new_users.values()))
    ids = await _insert_ids(conn, cases_t, [_case_row(c, done.user(c.user)) for c in new])
    done.cases = {c.key: i for c, i in zip(new, ids, strict=True)}
    changed = [c for c in book.cases.values() if c.changed and not c.new]
    for c in changed:
        assert isinstance(c.key, int)
        done.cases[c.key] = c.key
    if changed:
        stmt = (
            update(cases_t)
            .where(cases_t.c.id == bindparam("_id"))
            .values({k: bindparam(k) for k in _CHANGING})
        )
        rows = [
            {"_id": c.key, **{k: v for k, v in _case_row(c, None).items() if k in _CHANGING}}
            for c in changed
        ]
        await conn.execute(stmt, rows)
    case_id = done.cases.get
    message_rows = [
        {
            "case_id": case_id(m.case, m.case),
            "kind": m.kind,
            "author_staff_id": m.author_staff_id,
            "body": m.body,
            "created_at": m.created_at,
            "call_session_id": m.call.call_session_id if m.call else None,
            "call_direction": m.call.direction if m.call else None,
            "call_outcome": m.outcome,
            "talk_seconds": m.talk_seconds,
            "employee_id": m.employee_id,
        }
        for m in book.messages
    ]
    ids = await _insert_ids(conn, messages_t, message_rows)
    done.messages = {m.key: i for m, i in zip(book.messages, ids, strict=True)}
    if book.finished:
        stmt = (
            update(messages_t)
            .where(messages_t.c.id == bindparam("_id"))
            .values(
                call_outcome=bindparam("call_outcome"),
                talk_seconds=bindparam("talk_seconds"),
                employee_id=bindparam("employee_id"),
            )
        )
        await conn.execute(stmt, [{"_id": m} | v for m, v in book.finished.items()])
    history_rows: list[dict[str, Any]] = []
    for e in book.history:
        details = dict(e.details)
        if e.message is not None:
            details["message_id"] = done.messages.get(e.message, e.message)
        history_rows.append(
            {
                "case_id": case_id(e.case, e.case),
                "at": e.at,
                "kind": e.kind,
                "staff_id": e.staff_id,
                "assignee_id": e.assignee_id,
                "status": e.status,
                "source": e.source,
                "conversation": e.conversation,
                "details": details,
            }
        )
    ids = await _insert_ids(conn, history_t, history_rows)
    done.history = [
        HistoryEvent(
            id=i,
            case_id=row["case_id"],
            at=row["at"],
            kind=row["kind"],
            staff_id=row["staff_id"],
            assignee_id=row["assignee_id"],
            status=row["status"],
            source=row["source"],
            conversation=row["conversation"],
            details=row["details"],
        )
        for row, i in zip(history_rows, ids, strict=True)
    ]
    return done


# -- decisions of finished calls ---------------------------------------------------------------


class CallFailed(Exception):
    """One call of a batch could not be decided: quarantine it, redo the batch without it."""

    def __init__(self, call_session_id: int, stage: str, error: str) -> None:
        super().__init__(f"call {call_session_id} failed in {stage}")
        self.call_session_id = call_session_id
        self.stage = stage
        self.error = error


@dataclass(frozen=True, slots=True)
class Decided:
    """A call's decision as it was written: for live events and the writer's memory."""

    call_session_id: int
    outcome: str
    staff_ids: tuple[int, ...]
    case_ids: tuple[int, ...]
    timed_out: bool


@dataclass(slots=True)
class BatchResult:
    decided: list[Decided] = field(default_factory=list)
    new_numbers: set[str] = field(default_factory=set)  # numbers that got a user now
    history: list[HistoryEvent] = field(default_factory=list)
    updated: dict[int, set[int]] = field(default_factory=lambda: defaultdict(set))  # case → staff


def _caller_key(user: int | None, number: str | None, call_id: int) -> str:
    return f"user:{user}" if user else f"phone:{number}" if number else f"call:{call_id}"


async def decide_calls(conn: Conn, calls: Sequence[CallFacts]) -> BatchResult:
    """Decide `calls` in order and write their cases (R11–R24). Calls decided before are
    skipped; a call whose decision fails raises `CallFailed` (nothing is written then)."""
    result = BatchResult()
    if not calls:
        return result
    ctx = await load_contexts(conn, calls)
    book = CaseBook(cases=dict(ctx.cases))
    callers: dict[str, Caller] = {}
    new_users: dict[str, NewUser] = {}
    plans: list[tuple[CallFacts, Any, UserKey, list[CaseKey], Any]] = []
    for facts in calls:
        call_id = facts.call_session_id
        if call_id in ctx.finalized:  # decided before: only its notifications are left
            result.decided.append(Decided(call_id, "", (), (), facts.timed_out))
            continue
        number = normalize_phone(facts.phone)
        user_id = ctx.users.get(number) if number else None
        key = _caller_key(user_id, number, call_id)
        caller = callers.get(key) or (ctx.callers.get(user_id) if user_id else None) or Caller()
        actions = tuple(ctx.actions.get(call_id, ()))
        dial = ctx.dials.get(call_id)
        named = {a.case_id for a in actions} | ({dial.case_id} if dial else set())
        try:
            decision = decide(
                CallContext(
                    facts=facts,
                    actions=actions,
                    drafts=ctx.drafts.get(call_id, {}),
                    dial=dial,
                    caller=caller,
                    recorded=ctx.recorded.get(call_id, {}),
                    icons={c: book.cases[c].icon for c in named if c in book.cases},
                )
            )
            user: UserKey = user_id
            if user is None and number is not None:
                user = new_users.setdefault(number, NewUser(known_number(facts.phone) or number))
            part = CallPart(call_id, facts.direction)
            touched: list[CaseKey] = []
            for op in decision.ops:
                book.apply(op, at=facts.ended_at, call=part, user=user)
                if (target := case_of(op)) not in touched:
                    touched.append(target)
            board = finished_call(facts, facts.staff())
        except Exception as exc:
            raise CallFailed(call_id, "decide", traceback.format_exc(limit=8)) from exc
        callers[key] = decision.caller
        plans.append((facts, decision, user, touched, board))
    done = await write_book(conn, book)
    result.history = done.history
    result.new_numbers = {n for k in done.users if (n := normalize_phone(k.phone))}
    call_rows = []
    for facts, decision, user, touched, board in plans:
        case_ids = tuple(done.cases[k] for k in touched if k in done.cases)
        answered = [c.answered_at for c in facts.conversations]
        call_rows.append(
            {
                "call_session_id": facts.call_session_id,
                "direction": facts.direction,
                "phone": facts.phone,
                "user_id": done.user(user),
                "staff_ids": list(decision.staff_ids),
                "started_at": facts.started_at,
                "answered_at": min(answered) if answered else None,
                "ended_at": facts.ended_at,
                "outcome": decision.outcome,
                "talk_seconds": facts.talk_seconds,
                "finalized": True,
                "wait_seconds": board.wait_seconds,
                "offered_staff_ids": list(board.offered),
                "talked": [list(pair) for pair in board.talked],
                "timed_out": facts.timed_out,
            }
        )
        result.decided.append(
            Decided(
                facts.call_session_id,
                decision.outcome,
                decision.staff_ids,
                case_ids,
                facts.timed_out,
            )
        )
        for c in case_ids:
            result.updated[c].update(decision.staff_ids)
    await _upsert_calls(conn, call_rows)
    await mark_calls_done(conn, [f.call_session_id for f in calls])
    for c in done.cases.values():
        assignee = book.cases.get(c)
        if assignee is not None and assignee.assignee_id is not None:
            result.updated[c].add(assignee.assignee_id)
    return result


async def _upsert_calls(conn: Conn, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    stmt = _upsert(conn)(calls_t)
    columns = [k for k in rows[0] if k != "call_session_id"]
    stmt = stmt.on_conflict_do_update(
        index_elements=["call_session_id"], set_={k: stmt.excluded[k] for k in columns}
    )
    await conn.execute(stmt, rows)


async def mark_calls_done(conn: Conn, call_ids: Sequence[int]) -> None:
    """Every stored notification of these calls has had its effect (R32)."""
    for part in chunks(call_ids):
        await conn.execute(
            update(inbox_t)
            .where(inbox_t.c.call_session_id.in_(part), inbox_t.c.done.is_(False))
            .values(done=True)
        )


async def mark_done(conn: Conn, inbox_ids: Iterable[int]) -> None:
    for part in chunks(inbox_ids):
        await conn.execute(update(inbox_t).where(inbox_t.c.id.in_(part)).values(done=True))


# -- late news: recordings, and notifications of decided calls ---------------------------------


_CALL_MESSAGES = where_in(
    select(messages_t).where(messages_t.c.kind == "call"), messages_t.c.call_session_id
)
_TIMED_OUT = where_in(
    select(calls_t.c.call_session_id, calls_t.c.timed_out), calls_t.c.call_session_id
)


async def _recorded(conn: Conn, call_ids: Iterable[int]) -> dict[int, dict[Any, Any]]:
    parts: dict[int, dict[Any, Any]] = defaultdict(dict)
    for r in await rows_in(conn, RECORDED, call_ids):
        parts[r[0]][r[1]] = r[2]
    return parts


async def store_recordings(
    conn: Conn, items: Sequence[tuple[int | None, Notification]]
) -> BatchResult:
    """Keep recordings (R8, R9, R11) and, for calls decided already, log the conversations
    they complete and turn R17's icon (`case_rules.on_recording`). Idempotent."""
    result = BatchResult()
    call_ids = list(dict.fromkeys(n.call_session_id for _, n in items))
    before = await _recorded(conn, call_ids)
    rows = [
        {
            "call_session_id": n.call_session_id,
            "employee_id": n.employee_id,
            "url": url,
            "seconds": n.record_seconds,
            "recorded_at": n.time,
        }
        for _, n in items
        for url in dict.fromkeys(n.record_urls)
    ]
    if rows:
        stmt = _upsert(conn)(recordings_t).on_conflict_do_nothing(
            index_elements=["call_session_id", "url"]
        )
        await conn.execute(stmt, rows)
    await mark_done(conn, [i for i, _ in items if i is not None])
    decided = [r[0] for r in await rows_in(conn, FINALIZED, call_ids)]
    if not decided:
        return result
    after = await _recorded(conn, decided)
    by_call: dict[int, list[StoredMessage]] = defaultdict(list)
    for m in await rows_in(conn, _CALL_MESSAGES, decided):
        by_call[m.call_session_id].append(
            StoredMessage(
                m.id, m.case_id, m.call_direction, m.call_outcome, m.employee_id, m.author_staff_id
            )
        )
    cases = {m.case_id for ms in by_call.values() for m in ms}
    book = CaseBook(cases=await load_cases(conn, cases))
    icons = {c: s.icon for c, s in book.cases.items() if isinstance(c, int)}
    for call_id in decided:
        for op in on_recording(by_call[call_id], before.get(call_id, {}), after[call_id], icons):
            if isinstance(op, LogConversation):
                book.conversation(op.case_id, op.message_id, op.author_staff_id, op.at)
            elif isinstance(op, SetIcon):
                book.set_icon(op.case, op.icon)
    done = await write_book(conn, book)
    result.history = done.history
    for c in done.cases.values():
        state = book.cases.get(c)
        if state is not None and state.assignee_id is not None:
            result.updated[c].add(state.assignee_id)
    return result


async def apply_late(conn: Conn, items: Sequence[tuple[int | None, Notification]]) -> None:
    """News of calls decided already (R32: "a decided call stays decided"): a call end after a
    silent-call timeout brings UIS's talk time; the rest is only marked handled."""
    ends = {n.call_session_id: n for _, n in items if n.kind is Kind.CALL_END}
    if ends:
        for r in await rows_in(conn, _TIMED_OUT, ends):
            talk = late_talk(bool(r.timed_out), ends[r.call_session_id].talk_seconds)
            if talk is None:
                continue
            await conn.execute(
                update(calls_t)
                .where(calls_t.c.call_session_id == r.call_session_id)
                .values(talk_seconds=talk)
            )
            answered = (
                await conn.execute(
                    select(messages_t.c.id).where(
                        messages_t.c.call_session_id == r.call_session_id,
                        messages_t.c.call_outcome == "answered",
                    )
                )
            ).all()
            if len(answered) == 1:  # one conversation: UIS's talk time is its own
                await conn.execute(
                    update(messages_t)
                    .where(messages_t.c.id == answered[0][0])
                    .values(talk_seconds=talk)
                )
    await mark_done(conn, [i for i, _ in items if i is not None])


# -- what staff do during a call (R7–R10, R23a/d) and with cases (R24) ----------------------


async def _call_open(conn: Conn, call_session_id: int) -> None:
    finalized = await conn.scalar(
        select(calls_t.c.finalized).where(calls_t.c.call_session_id == call_session_id)
    )
    if finalized:
        raise ConflictError("call_ended", "The call has been decided; its case exists already.")


async def _user_for(conn: Conn, phone: str | None, at: datetime) -> int | None:
    number = normalize_phone(phone)
    if number is None:
        return None
    found = (await users_by_number(conn, [number])).get(number)
    if found is not None:
        return found
    return (await create_users(conn, [NewUser(phone or number)], at))[NewUser(phone or number)]


def _employee(call: dict[str, Any], staff_id: int) -> int | None:
    employee_of: dict[Any, Any] = call.get("employee_of", {})
    return employee_of.get(staff_id, employee_of.get(str(staff_id)))


async def create_case_from_call(
    session: AsyncSession,
    call: dict[str, Any],
    staff_id: int,
    subject: str,
    summary: str,
    at: datetime,
) -> int:
    """R8: a case with the caller (a new user with only the number when unknown), the subject
    and the summary, assigned to the staff member; its first message marks the call in
    progress. R23a/d: the caller's missed-call cases that are not closed are closed."""
    conn = await session.connection()
    call_id = call["call_session_id"]
    await _call_open(conn, call_id)
    user = await _user_for(conn, call.get("phone"), at)
    missed: dict[CaseKey, CaseState] = {}
    if user is not None:
        query = select(cases_t.c.id).where(
            cases_t.c.user_id == user, cases_t.c.call_icon == "missed", cases_t.c.status != CLOSED
        )
        missed = await load_cases(conn, [r[0] for r in (await conn.execute(query)).all()])
    book = CaseBook(cases=dict(missed))
    key = NewCase(call_id, -staff_id)
    book.create(
        key,
        subject=subject,
        status=OPEN,
        user=user,
        assignee_id=staff_id,
        icon="normal",
        source=call["direction"],
        at=at,
        staff_id=staff_id,
    )
    message = _call_in_progress(book, key, call, staff_id, summary, at)
    for old in missed:
        book.set_status(old, CLOSED, Trigger.NEW_CASE, at)
    done = await write_book(conn, book)
    case_id = done.cases[key]
    await _record_action(conn, call_id, staff_id, "created", case_id, done.messages[message], at)
    return case_id


def _call_in_progress(
    book: CaseBook,
    key: CaseKey,
    call: dict[str, Any],
    staff_id: int,
    summary: str,
    at: datetime,
) -> NewMessage:
    """The staff member's message carrying the call still in progress (R8, R9, R19)."""
    return book.add_message(
        key,
        kind="call",
        author_staff_id=staff_id,
        body=summary,
        at=at,
        by_staff=True,
        call=CallPart(call["call_session_id"], call["direction"]),
        outcome="in_progress",
        employee_id=_employee(call, staff_id),
    )


async def _record_action(
    conn: Conn,
    call_id: int,
    staff_id: int,
    action: str,
    case_id: int,
    message_id: int,
    at: datetime,
) -> None:
    """The staff action during a call, which the call's decision reads (R12, R13, R19)."""
    await conn.execute(
        insert(actions_t).values(
            call_session_id=call_id,
            staff_id=staff_id,
            action=action,
            case_id=case_id,
            message_id=message_id,
            at=at,
        )
    )


async def attach_call(
    session: AsyncSession,
    call: dict[str, Any],
    staff_id: int,
    case_id: int,
    summary: str,
    at: datetime,
) -> int:
    """R9, R19: a message from the staff member with the summary, the call in progress; a
    closed case is reopened by the call (R24) and becomes `waiting` when the call ends (R21)."""
    conn = await session.connection()
    call_id = call["call_session_id"]
    await _call_open(conn, call_id)
    cases = await load_cases(conn, [case_id])
    if case_id not in cases:
        raise NotFoundError("case_not_found", f"No case {case_id}.")
    if cases[case_id].channel != "calls":
        raise InvalidError(
            "not_a_call_case", "A call can be attached only to a case of the calls channel."
        )
    existing = await conn.scalar(
        select(actions_t.c.id).where(
            actions_t.c.call_session_id == call_id,
            actions_t.c.staff_id == staff_id,
            actions_t.c.case_id == case_id,
        )
    )
    if existing is not None:
        raise ConflictError("already_attached", "This call is attached to that case already.")
    book = CaseBook(cases=cases)
    book.set_status(case_id, OPEN, Trigger.ATTACH, at, staff_id=staff_id)
    message = _call_in_progress(book, case_id, call, staff_id, summary, at)
    book.attached(case_id, call_id, at, staff_id)
    done = await write_book(conn, book)
    await _record_action(conn, call_id, staff_id, "attached", case_id, done.messages[message], at)
    return case_id


async def save_draft(
    session: AsyncSession,
    call_session_id: int,
    staff_id: int,
    subject: str | None,
    summary: str | None,
    at: datetime,
) -> None:
    """R10: keep what was typed; only the fields given change."""
    conn = await session.connection()
    await _call_open(conn, call_session_id)
    values: dict[str, Any] = {
        "call_session_id": call_session_id,
        "staff_id": staff_id,
        "updated_at": at,
    }
    changes: dict[str, Any] = {"updated_at": at}
    for key, value in (("subject", subject), ("summary", summary)):
        if value is not None:
            values[key] = changes[key] = value
    stmt = _upsert(conn)(drafts_t).values(**values)
    await conn.execute(
        stmt.on_conflict_do_update(index_elements=["call_session_id", "staff_id"], set_=changes)
    )


async def patch_case(
    session: AsyncSession,
    case_id: int,
    changes: dict[str, Any],
    staff_id: int | None,
    at: datetime,
) -> None:
    """Staff change status, assignee or subject; each change is logged with its actor (R24)."""
    conn = await session.connection()
    cases = await load_cases(conn, [case_id])
    if case_id not in cases:
        raise NotFoundError("case_not_found", f"No case {case_id}.")
    book = CaseBook(cases=cases)
    if "status" in changes:
        if changes["status"] not in STATUSES:
            raise InvalidError("invalid_field", f"status must be one of {', '.join(STATUSES)}.")
        book.set_status(case_id, changes["status"], Trigger.STAFF, at, staff_id=staff_id)
    if "assignee_id" in changes:
        assignee = changes["assignee_id"]
        if assignee is not None and await session.get(Staff, assignee) is None:
            raise InvalidError("unknown_staff", f"No staff member {assignee}.")
        book.set_assignee(case_id, assignee, at, staff_id)
    if "subject" in changes:
        book.set_subject(case_id, changes["subject"], at, staff_id)
    await write_book(conn, book)


async def post_message(
    session: AsyncSession, case_id: int, kind: str, body: str, staff_id: int | None, at: datetime
) -> int:
    """A reply or a note on a case; its id."""
    conn = await session.connection()
    cases = await load_cases(conn, [case_id])
    if case_id not in cases:
        raise NotFoundError("case_not_found", f"No case {case_id}.")
    book = CaseBook(cases=cases)
    message = book.add_message(
        case_id,
        kind=kind,
        author_staff_id=staff_id,
        body=body,
        at=at,
        by_staff=staff_id is not None,
    )
    done = await write_book(conn, book)
    return done.messages[message]


# -- one batch of the writer -------------------------------------------------------------------


@dataclass(slots=True)
class Batch:
    """What the writer writes in one transaction."""

    calls: list[CallFacts] = field(default_factory=list)  # finished, in decision order
    records: list[tuple[int | None, Notification]] = field(default_factory=list)
    late: list[tuple[int | None, Notification]] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return (
            len(self.calls)
            + len(self.records)
            + len(self.late)
            + len(self.failures)
            + len(self.rejected)
        )

    def halves(self) -> tuple[Batch, Batch]:
        """Two batches of about half each, in order (to find what fails)."""
        parts = [
            (f, getattr(self, f)) for f in ("calls", "records", "late", "failures", "rejected")
        ]
        first, second = Batch(), Batch()
        for name, items in parts:
            cut = len(items) // 2
            setattr(first, name, items[:cut])
            setattr(second, name, items[cut:])
        if not len(first):  # one item left in one list
            for name, items in parts:
                if items:
                    setattr(first, name, items[:1])
                    setattr(second, name, items[1:])
                    break
        return first, second


async def write_batch(conn: Conn, batch: Batch, now: datetime) -> BatchResult:
    """Keep rejected bodies and failures, store recordings, apply late news, decide the calls
    — in that order, so a call decided in this batch sees the recordings that came with it."""
    for row in batch.rejected:
        await inbox.reject(conn, row)
    if batch.failures:
        await inbox.quarantine(conn, batch.failures, now)
    result = BatchResult()
    if batch.records:
        recorded = await store_recordings(conn, batch.records)
        result.history += recorded.history
        for case_id, staff in recorded.updated.items():
            result.updated[case_id] |= staff
    if batch.late:
        await apply_late(conn, batch.late)
    decided = await decide_calls(conn, batch.calls)
    result.history += decided.history
    result.decided = decided.decided
    result.new_numbers = decided.new_numbers
    for case_id, staff in decided.updated.items():
        result.updated[case_id] |= staff
    result.history.sort(key=lambda h: h.id)
    return result
