"""What the case decisions of a batch of finished calls read, loaded in a few queries whatever
the batch's size (a handful of `IN (...)` selects, never one round trip per call).

Pure reads: `case_store` threads the results through `case_rules.decide` call after call.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, func, select

from callrouter.domain.call import CallFacts
from callrouter.domain.case_log import CaseState
from callrouter.domain.case_rules import Caller, CaseKey, Dial, Draft, MissedCase, StaffAction
from callrouter.domain.case_status import CLOSED
from callrouter.domain.phones import normalize_phone
from callrouter.storage.engine import Conn
from callrouter.storage.models import (
    Call,
    CallAction,
    CallDraft,
    Case,
    Message,
    Recording,
    User,
    UserPhone,
)
from callrouter.storage.models import Dial as DialRow

CHUNK = 500  # ids per IN (...): far below every driver's parameter limit

calls_t = cast(Table, Call.__table__)
actions_t = cast(Table, CallAction.__table__)
drafts_t = cast(Table, CallDraft.__table__)
dials_t = cast(Table, DialRow.__table__)
recordings_t = cast(Table, Recording.__table__)
cases_t = cast(Table, Case.__table__)
messages_t = cast(Table, Message.__table__)
users_t = cast(Table, User.__table__)
phones_t = cast(Table, UserPhone.__table__)


def chunks(values: Iterable[Any]) -> list[list[Any]]:
    items = list(dict.fromkeys(values))
    return [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]


IDS: Any = bindparam("ids", expanding=True)


def where_in(query: Any, column: Any) -> Any:
    """`query` for `column IN :ids`: built once, so running it compiles and keys nothing."""
    return query.where(column.in_(IDS))


async def rows_in(
    conn: Conn, stmt: Any, values: Iterable[Any], params: dict[str, Any] | None = None
) -> list[Any]:
    """The rows of `stmt` (from `where_in`) for `values`, chunked."""
    out: list[Any] = []
    for part in chunks(values):
        out += (await conn.execute(stmt, {**(params or {}), "ids": part})).all()
    return out


@dataclass(slots=True)
class Contexts:
    """The inputs of a batch's decisions (per call, per caller) and the cases they name."""

    finalized: set[int] = field(default_factory=set)
    actions: dict[int, list[StaffAction]] = field(default_factory=lambda: defaultdict(list))
    drafts: dict[int, dict[int, Draft]] = field(default_factory=lambda: defaultdict(dict))
    dials: dict[int, Dial] = field(default_factory=dict)  # by call
    recorded: dict[int, dict[int | None, datetime]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    users: dict[str, int] = field(default_factory=dict)  # normalized number → user
    callers: dict[int, Caller] = field(default_factory=dict)  # by user
    cases: dict[CaseKey, CaseState] = field(default_factory=dict)


def case_state(row: Any) -> CaseState:
    return CaseState(
        key=row.id,
        subject=row.subject,
        status=row.status,
        user=row.user_id,
        assignee_id=row.assignee_id,
        icon=row.call_icon,
        created_at=row.created_at,
        updated_at=row.updated_at,
        closed_at=row.closed_at,
        channel=row.channel,
    )


_CASES = where_in(select(cases_t), cases_t.c.id)
FINALIZED = where_in(
    select(calls_t.c.call_session_id).where(calls_t.c.finalized.is_(True)),
    calls_t.c.call_session_id,
)
_ACTIONS = where_in(
    select(
        actions_t.c.call_session_id,
        actions_t.c.staff_id,
        actions_t.c.case_id,
        actions_t.c.message_id,
        messages_t.c.employee_id,
    )
    .join(messages_t, messages_t.c.id == actions_t.c.message_id)
    .order_by(actions_t.c.id),
    actions_t.c.call_session_id,
)
_DRAFTS = where_in(select(drafts_t), drafts_t.c.call_session_id)
RECORDED = where_in(
    select(
        recordings_t.c.call_session_id,
        recordings_t.c.employee_id,
        func.min(recordings_t.c.recorded_at),
    ).group_by(recordings_t.c.call_session_id, recordings_t.c.employee_id),
    recordings_t.c.call_session_id,
)
_DIALS_BY_EXTERNAL = where_in(select(dials_t), dials_t.c.external_id)
_DIALS_BY_CALL = where_in(select(dials_t), dials_t.c.call_session_id)
_USERS_BY_NUMBER = where_in(
    select(phones_t.c.normalized, users_t.c.id)
    .join(users_t, users_t.c.id == phones_t.c.user_id)
    .order_by(users_t.c.created_at.desc(), users_t.c.id.desc()),
    phones_t.c.normalized,
)
_MISSED = where_in(
    select(cases_t.c.id, cases_t.c.user_id, cases_t.c.created_at)
    .where(
        cases_t.c.channel == "calls",
        cases_t.c.call_icon == "missed",
        cases_t.c.status != CLOSED,
    )
    .order_by(cases_t.c.created_at, cases_t.c.id),
    cases_t.c.user_id,
)
_TALKS = where_in(
    select(calls_t.c.user_id, calls_t.c.ended_at).where(
        and_(calls_t.c.outcome == "answered", calls_t.c.ended_at >= bindparam("since"))
    ),
    calls_t.c.user_id,
)
USERS = where_in(select(users_t), users_t.c.id)
PHONES = where_in(
    select(phones_t.c.user_id, phones_t.c.phone).order_by(phones_t.c.position), phones_t.c.user_id
)
_STAFF_CASES = where_in(
    select(cases_t.c.user_id, func.max(actions_t.c.at))
    .join(cases_t, cases_t.c.id == actions_t.c.case_id)
    .where(actions_t.c.action == "created")
    .group_by(cases_t.c.user_id),
    cases_t.c.user_id,
)


async def load_cases(conn: Conn, ids: Iterable[int]) -> dict[CaseKey, CaseState]:
    """The cases with these ids, as the case book holds them."""
    return {r.id: case_state(r) for r in await rows_in(conn, _CASES, ids)}


async def load_contexts(conn: Conn, calls: Sequence[CallFacts]) -> Contexts:
    """Everything `decide` needs for `calls`, and the cases it may touch."""
    ctx = Contexts()
    ids = [f.call_session_id for f in calls]
    ctx.finalized = {r[0] for r in await rows_in(conn, FINALIZED, ids)}
    for r in await rows_in(conn, _ACTIONS, ids):
        ctx.actions[r[0]].append(StaffAction(r[1], r[2], r[3], r[4]))
    for r in await rows_in(conn, _DRAFTS, ids):
        ctx.drafts[r.call_session_id][r.staff_id] = Draft(r.subject, r.summary)
    await _load_dials(conn, calls, ctx)
    for r in await rows_in(conn, RECORDED, ids):
        ctx.recorded[r[0]][r[1]] = r[2]
    numbers = [n for f in calls if (n := normalize_phone(f.phone))]
    ctx.users = await users_by_number(conn, numbers)
    ctx.callers, missed = await _load_callers(conn, set(ctx.users.values()))
    named = {a.case_id for acts in ctx.actions.values() for a in acts}
    named |= {d.case_id for d in ctx.dials.values()} | missed
    ctx.cases = await load_cases(conn, named)
    return ctx


async def _load_dials(conn: Conn, calls: Sequence[CallFacts], ctx: Contexts) -> None:
    by_external = {f.external_id: f.call_session_id for f in calls if f.external_id}
    ids = [f.call_session_id for f in calls]
    found = await rows_in(conn, _DIALS_BY_EXTERNAL, by_external)
    found += await rows_in(conn, _DIALS_BY_CALL, ids)
    for r in found:
        # Our external_id names the dial even before UIS's answer gave us the session id.
        call_id = by_external.get(r.external_id) or r.call_session_id
        if call_id is not None:
            ctx.dials.setdefault(call_id, Dial(r.case_id, r.staff_id))


async def users_by_number(conn: Conn, numbers: Iterable[str]) -> dict[str, int]:
    """Normalized number → the user having it (the oldest one when several do)."""
    # Oldest last, so it wins.
    return {r[0]: r[1] for r in await rows_in(conn, _USERS_BY_NUMBER, numbers)}


async def _load_callers(conn: Conn, user_ids: set[int]) -> tuple[dict[int, Caller], set[int]]:
    """Per user: the newest missed-call case not closed, the conversations since it was created
    (R16), when staff last made a new case for them (R23a); and the missed cases' ids."""
    if not user_ids:
        return {}, set()
    missed: dict[int, MissedCase] = {}
    for r in await rows_in(conn, _MISSED, user_ids):
        missed[r.user_id] = MissedCase(r.id, r.created_at)  # the newest wins
    talks: dict[int, list[datetime]] = defaultdict(list)
    if missed:
        since = min(m.created_at for m in missed.values())
        for r in await rows_in(conn, _TALKS, missed, {"since": since}):
            if r.ended_at >= missed[r.user_id].created_at:
                talks[r.user_id].append(r.ended_at)
    staff_cases = {r[0]: r[1] for r in await rows_in(conn, _STAFF_CASES, user_ids)}
    callers = {
        u: Caller(missed.get(u), tuple(sorted(talks.get(u, ()))), staff_cases.get(u))
        for u in user_ids
    }
    return callers, {m.case for m in missed.values() if isinstance(m.case, int)}
