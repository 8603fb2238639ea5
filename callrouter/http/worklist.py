"""The staff console's worklists (issue 9): the missed-call call-back list and my call log.

`GET /api/v1/cases` lists cases newest first without their calls; these two answer what the
console shows in one read each: open missed-call cases oldest first with the number of missed
calls grouped in each (R15, R16), and the calls a staff member took part in with their cases.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import tzinfo
from typing import Any

from aiohttp import web
from sqlalchemy import ColumnElement, cast, exists, func, literal, select, union
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from callrouter.http.auth import Principal
from callrouter.http.errors import forbidden
from callrouter.http.keys import ACCOUNT, DB
from callrouter.http.operation import operation
from callrouter.http.render import iso, page
from callrouter.http.schemas import LoggedCall, MissedCase, MissedQuery, Page, Paging
from callrouter.storage.directory import paged, phones_of
from callrouter.storage.models import Call, CallAction, Case, Message, User
from callrouter.storage.routing import decision_json, decisions_of

routes = web.RouteTableDef()


@routes.get("/api/v1/worklist/missed")
@operation(auth="any", tag="cases", query=MissedQuery, answer=Page[MissedCase], errors=(403,))
async def missed(request: web.Request, principal: Principal, query: MissedQuery) -> Any:
    """Open missed-call cases to call back, oldest first

    A case is on the list while it is `open` with the missed-call icon (R15): a call-back the
    user does not answer leaves it there (R20, R22), one they answer takes it off (R17).
    `missed_calls` counts the missed calls grouped in the case (R16), `attempts` the
    unanswered call-backs. `mine=true` keeps the acting staff member's cases (staff only)."""
    select_ = select(Case).where(
        Case.status == "open", Case.call_icon == "missed", Case.channel == "calls"
    )
    if query.mine:
        if principal.staff_id is None:
            raise forbidden("forbidden", "'mine' needs a staff member: the admin has no cases.")
        select_ = select_.where(Case.assignee_id == principal.staff_id)
    tz = request.app[ACCOUNT].value.tz
    async with request.app[DB].snapshot() as session:
        rows, total = await paged(
            session, select_.order_by(Case.created_at, Case.id), query.limit, query.offset
        )
        counts = await _call_counts(session, [c.id for c in rows])
        users = await _users(session, {c.user_id for c in rows if c.user_id is not None})
        phones = await phones_of(session, users)
    items = []
    for case in rows:
        count = counts.get(case.id, _Counts())
        user = users.get(case.user_id) if case.user_id is not None else None
        numbers = phones.get(case.user_id, []) if case.user_id is not None else []
        items.append(
            {
                "case_id": case.id,
                "subject": case.subject,
                "assignee_id": case.assignee_id,
                "user_id": case.user_id,
                "user_name": user.full_name if user else None,
                "phone": numbers[0] if numbers else None,
                "missed_calls": count.missed,
                "attempts": count.attempts,
                "first_missed_at": iso(count.first, tz),
                "last_missed_at": iso(count.last, tz),
                "created_at": iso(case.created_at, tz),
            }
        )
    return page(items, total)


@routes.get("/api/v1/worklist/calls")
@operation(auth="staff", tag="calls", query=Paging, answer=Page[LoggedCall], errors=(403,))
async def my_calls(request: web.Request, staff_id: int, query: Paging) -> Any:
    """My ended calls, newest first, with the cases they are recorded in

    The calls the acting staff member took part in: answered or made by them, or offered to
    them and missed (the call's `staff_ids`)."""
    tz = request.app[ACCOUNT].value.tz
    async with request.app[DB].snapshot() as session:
        select_ = (
            select(Call)
            .where(Call.finalized.is_(True), _took_part(session, staff_id))
            .order_by(Call.ended_at.desc(), Call.call_session_id.desc())
        )
        rows, total = await paged(session, select_, query.limit, query.offset)
        cases = await _cases_of_calls(session, [c.call_session_id for c in rows])
        users = await _users(session, {c.user_id for c in rows if c.user_id is not None})
        routed = await decisions_of(session, [c.call_session_id for c in rows])
    items = [
        _logged(call, cases, users, tz)
        | {"routing": [decision_json(d, tz) for d in routed.get(call.call_session_id, [])]}
        for call in rows
    ]
    return page(items, total)


class _Counts:
    __slots__ = ("attempts", "first", "last", "missed")

    def __init__(self) -> None:
        self.missed = 0
        self.attempts = 0
        self.first: Any = None
        self.last: Any = None


async def _call_counts(session: AsyncSession, case_ids: list[int]) -> dict[int, _Counts]:
    """Per case: its missed calls (count, first, last) and its unanswered call-backs."""
    counts: dict[int, _Counts] = defaultdict(_Counts)
    if not case_ids:
        return counts
    rows = await session.execute(
        select(
            Message.case_id,
            Message.call_outcome,
            func.count(),
            func.min(Message.created_at),
            func.max(Message.created_at),
        )
        .where(Message.case_id.in_(case_ids), Message.call_outcome.in_(("missed", "attempt")))
        .group_by(Message.case_id, Message.call_outcome)
    )
    for case_id, outcome, n, first, last in rows.tuples():
        count = counts[case_id]
        if outcome == "missed":
            count.missed, count.first, count.last = int(n), first, last
        else:
            count.attempts = int(n)
    return counts


async def _users(session: AsyncSession, ids: set[int]) -> dict[int, User]:
    if not ids:
        return {}
    return {u.id: u for u in await session.scalars(select(User).where(User.id.in_(ids)))}


def _took_part(session: AsyncSession, staff_id: int) -> ColumnElement[bool]:
    """`staff_id` is among the call's `staff_ids` (a JSON list)."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(Call.staff_ids, JSONB).contains(cast(literal(f"[{staff_id}]"), JSONB))
    each = func.json_each(Call.staff_ids).table_valued("value")
    return exists(select(1).select_from(each).where(each.c.value == staff_id))


async def _cases_of_calls(session: AsyncSession, call_ids: list[int]) -> dict[int, list[Case]]:
    """The cases each call is recorded in (its messages) or was acted on in (R8, R9)."""
    if not call_ids:
        return {}
    pairs = union(
        select(Message.call_session_id, Message.case_id).where(
            Message.call_session_id.in_(call_ids)
        ),
        select(CallAction.call_session_id, CallAction.case_id).where(
            CallAction.call_session_id.in_(call_ids)
        ),
    ).subquery()
    rows = await session.execute(
        select(pairs.c.call_session_id, Case)
        .join(Case, Case.id == pairs.c.case_id)
        .order_by(Case.id)
    )
    found: dict[int, list[Case]] = defaultdict(list)
    for call_id, case in rows.tuples():
        found[call_id].append(case)
    return found


def _logged(
    call: Call, cases: dict[int, list[Case]], users: dict[int, User], tz: tzinfo
) -> dict[str, Any]:
    user = users.get(call.user_id) if call.user_id is not None else None
    return {
        "call_session_id": call.call_session_id,
        "direction": call.direction,
        "outcome": call.outcome,
        "phone": call.phone,
        "user_id": call.user_id,
        "user_name": user.full_name if user else None,
        "started_at": iso(call.started_at, tz),
        "answered_at": iso(call.answered_at, tz),
        "ended_at": iso(call.ended_at, tz),
        "talk_seconds": call.talk_seconds,
        "cases": [
            {"id": c.id, "subject": c.subject, "status": c.status, "call_icon": c.call_icon}
            for c in cases.get(call.call_session_id, [])
        ],
    }
