"""Smart routing's storage (issue 11 part 1): its settings, what the in-memory view is loaded
and refreshed from, and the decisions it made.

The view is read from the database in the background only (a load at start, then cheap
deltas): `case_history` ids say which cases changed since the last look, `user_phones` ids
which numbers were added; the calls whose decision the writer announced give who talked.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from callrouter.domain.phones import normalize_phone
from callrouter.domain.routing import (
    ACTIVE_CASE,
    MAX_RETURNED_CODE,
    Affinity,
    RoutingRules,
    staff_phones,
)
from callrouter.storage.directory import InvalidError, _put_setting, _setting
from callrouter.storage.models import (
    Call,
    Case,
    CaseEvent,
    Operator,
    RoutingDecision,
    Staff,
    User,
    UserPhone,
)

ROUTING_KEY = "routing"
CHUNK = 500  # ids per IN (...): far under SQLite's parameter limit
PART = 2000  # rows between two turns of the event loop in a full load


async def load_rules(session: AsyncSession) -> RoutingRules:
    return RoutingRules.from_json(await _setting(session, ROUTING_KEY))


async def save_rules(session: AsyncSession, changes: Mapping[str, Any]) -> dict[str, Any]:
    """`PUT /api/v1/routing`: change some of the rules; the rules after. 422 for a fallback
    branch out of range (the model checks the types)."""
    rules = (await load_rules(session)).json()
    code = changes.get("fallback_code", rules["fallback_code"])
    if not 0 <= code <= MAX_RETURNED_CODE:
        raise InvalidError(
            "invalid_setting", f"Field 'fallback_code' must be from 0 to {MAX_RETURNED_CODE}."
        )
    rules |= {k: v for k, v in changes.items() if k in rules}
    await _put_setting(session, ROUTING_KEY, rules)
    return RoutingRules.from_json(rules).json()


@dataclass(frozen=True, slots=True)
class StaffView:
    active: frozenset[int]
    phones: dict[int, tuple[str, ...]]
    rules: RoutingRules


async def load_staff(session: AsyncSession) -> StaffView:
    """Active staff, each one's routable phones (their operators'), and the rules."""
    active = frozenset(await session.scalars(select(Staff.id).where(Staff.active.is_(True))))
    rows = await session.execute(
        select(Operator.staff_id, Operator.phones)
        .where(Operator.staff_id.is_not(None))
        .order_by(Operator.employee_id)
    )
    pairs = [(staff_id, phones) for staff_id, phones in rows.tuples() if staff_id is not None]
    return StaffView(active, staff_phones(pairs), await load_rules(session))


@dataclass(slots=True)
class Cursors:
    """How far the view has read the append-only tables."""

    history_id: int = 0
    phone_id: int = 0


def _ts(at: datetime | None) -> float:
    return at.timestamp() if at is not None else 0.0


async def load_affinity(session: AsyncSession, since: datetime) -> tuple[Affinity, Cursors]:
    """The whole index: open and waiting cases with their users' numbers, and who last talked
    with each number in calls ended since `since`. The cursors are read first, so a change
    committed while this runs is read again by the next delta rather than missed."""
    cursors = Cursors(
        int(await session.scalar(select(func.max(CaseEvent.id))) or 0),
        int(await session.scalar(select(func.max(UserPhone.id))) or 0),
    )
    affinity = Affinity()
    cases = select(Case.id, Case.user_id, Case.assignee_id, Case.status, Case.updated_at).where(
        Case.status.in_(ACTIVE_CASE), Case.assignee_id.is_not(None), Case.user_id.is_not(None)
    )
    async for case_id, user_id, assignee_id, status, updated in _rows(session, cases):
        affinity.set_case(case_id, user_id, assignee_id, status, _ts(updated))
    await _load_phones(session, affinity, affinity.tracked_users())
    talks = select(Call.phone, Call.talked, Call.ended_at).where(
        Call.finalized.is_(True), Call.ended_at >= since
    )
    async for phone, talked, ended in _rows(session, talks):
        _talk(affinity, phone, talked, ended)
    return affinity, cursors


async def _rows(session: AsyncSession, query: Any) -> AsyncIterator[Any]:
    """The rows of a large read in slices, letting the event loop serve requests between
    them: a full load of 50,000 callers would otherwise hold it for a second or more."""
    result = await session.stream(query.execution_options(yield_per=PART))
    async for part in result.partitions():
        for row in part:
            yield row
        await asyncio.sleep(0)


def _talk(affinity: Affinity, phone: str | None, talked: Any, ended: datetime | None) -> None:
    """The last staff member who talked in a stored call (the list is in talk order)."""
    digits = normalize_phone(phone)
    if digits is not None and talked:
        affinity.talk(digits, int(talked[-1][0]), _ts(ended))


async def _load_phones(session: AsyncSession, affinity: Affinity, users: Iterable[int]) -> None:
    ids = sorted(users)
    for start in range(0, len(ids), CHUNK):
        rows = await session.execute(
            select(UserPhone.user_id, UserPhone.normalized, User.created_at)
            .join(User, User.id == UserPhone.user_id)
            .where(UserPhone.user_id.in_(ids[start : start + CHUNK]))
        )
        for user_id, digits, created in rows.tuples():
            affinity.add_phone(user_id, digits, _ts(created))
        await asyncio.sleep(0)


async def apply_delta(session: AsyncSession, affinity: Affinity, cursors: Cursors) -> int:
    """Read what changed since `cursors` into `affinity` (moving the cursors); how many cases
    and numbers changed. Phones removed from a user are dropped by the next full load."""
    # One statement gives both the cases and how far they reach: a second one could see a
    # row committed in between, and the cursor would move past a case never read.
    latest = (
        await session.execute(
            select(CaseEvent.case_id, func.max(CaseEvent.id))
            .where(CaseEvent.id > cursors.history_id)
            .group_by(CaseEvent.case_id)
        )
    ).tuples()
    reach = dict(latest.all())
    changed = list(reach)
    top = max(reach.values(), default=0)
    before = affinity.tracked_users()
    for start in range(0, len(changed), CHUNK):
        rows = await session.execute(
            select(Case.id, Case.user_id, Case.assignee_id, Case.status, Case.updated_at).where(
                Case.id.in_(changed[start : start + CHUNK])
            )
        )
        for case_id, user_id, assignee_id, status, updated in rows.tuples():
            affinity.set_case(case_id, user_id, assignee_id, status, _ts(updated))
    cursors.history_id = max(cursors.history_id, int(top or 0))
    new_users = affinity.tracked_users() - before
    await _load_phones(session, affinity, new_users)
    phones = await session.execute(
        select(UserPhone.id, UserPhone.user_id, UserPhone.normalized, User.created_at)
        .join(User, User.id == UserPhone.user_id)
        .where(UserPhone.id > cursors.phone_id)
        .order_by(UserPhone.id)
    )
    added = 0
    for phone_id, user_id, digits, created in phones.tuples():
        cursors.phone_id = max(cursors.phone_id, phone_id)
        if user_id in before:  # new users' numbers were read whole above
            affinity.add_phone(user_id, digits, _ts(created))
            added += 1
    return len(changed) + added


async def apply_calls(session: AsyncSession, affinity: Affinity, call_ids: Sequence[int]) -> None:
    """Who talked in these decided calls (the writer's `call.decided` events name them)."""
    for start in range(0, len(call_ids), CHUNK):
        rows = await session.execute(
            select(Call.phone, Call.talked, Call.ended_at).where(
                Call.call_session_id.in_(call_ids[start : start + CHUNK]),
                Call.finalized.is_(True),
            )
        )
        for phone, talked, ended in rows.tuples():
            _talk(affinity, phone, talked, ended)


async def save_decisions(session: AsyncSession, rows: list[dict[str, Any]]) -> int:
    """A unit of work on the writer: store a batch of decisions; how many."""
    if rows:
        await session.execute(insert(RoutingDecision), rows)
    return len(rows)


async def decisions_of(
    session: AsyncSession, call_ids: Iterable[int]
) -> dict[int, list[RoutingDecision]]:
    """The decisions made for these calls, oldest first."""
    ids = sorted(set(call_ids))
    found: dict[int, list[RoutingDecision]] = defaultdict(list)
    for start in range(0, len(ids), CHUNK):
        rows = await session.scalars(
            select(RoutingDecision)
            .where(RoutingDecision.call_session_id.in_(ids[start : start + CHUNK]))
            .order_by(RoutingDecision.id)
        )
        for row in rows:
            assert row.call_session_id is not None
            found[row.call_session_id].append(row)
    return found


def decision_json(row: RoutingDecision, tz: tzinfo) -> dict[str, Any]:
    """A decision as the call's JSON shows it."""
    return {
        "at": row.at.astimezone(tz).isoformat(),
        "reason": row.reason,
        "staff_id": row.staff_id,
        "case_id": row.case_id,
        "phones": list(row.phones or []),
        "returned_code": row.returned_code,
        "skipped": [
            {"staff_id": s, "why": why} for s, why in (row.details or {}).get("skipped", [])
        ],
    }


async def routed_between(
    session: AsyncSession, start: datetime, end: datetime
) -> tuple[list[tuple[int, int]], dict[int, list[int]], dict[str, int]]:
    """The routings made in [start, end) as (call, staff) in order, who talked in each of those
    calls (decided calls only: a live one has not reached anyone yet), and every decision's
    count by reason."""
    rows = (
        await session.execute(
            select(
                RoutingDecision.call_session_id, RoutingDecision.staff_id, RoutingDecision.reason
            )
            .where(RoutingDecision.at >= start, RoutingDecision.at < end)
            .order_by(RoutingDecision.id)
        )
    ).tuples()
    routed: list[tuple[int, int]] = []
    reasons: dict[str, int] = defaultdict(int)
    for call_id, staff_id, reason in rows:
        reasons[reason] += 1
        if call_id is not None and staff_id is not None:
            routed.append((call_id, staff_id))
    talked: dict[int, list[int]] = {}
    ids = sorted({c for c, _ in routed})
    for part in range(0, len(ids), CHUNK):
        calls = await session.execute(
            select(Call.call_session_id, Call.talked).where(
                Call.call_session_id.in_(ids[part : part + CHUNK]), Call.finalized.is_(True)
            )
        )
        for call_id, pairs in calls.tuples():
            talked[call_id] = [int(s) for s, _ in pairs or ()]
    return routed, talked, dict(reasons)


async def routed_today(session: AsyncSession, since: datetime) -> list[tuple[int, int, datetime]]:
    """(call, staff, at) of the routings made since `since` (the wallboard's rebuild)."""
    rows = await session.execute(
        select(RoutingDecision.call_session_id, RoutingDecision.staff_id, RoutingDecision.at)
        .where(
            RoutingDecision.at >= since,
            RoutingDecision.staff_id.is_not(None),
            RoutingDecision.call_session_id.is_not(None),
        )
        .order_by(RoutingDecision.id)
    )
    return [(c, s, at) for c, s, at in rows.tuples() if c is not None and s is not None]
