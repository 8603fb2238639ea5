"""Calls for staff (API.md "Calls"): live and past calls, and what staff do during one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from sqlalchemy import select

from callrouter.http.cases import case_view
from callrouter.http.errors import conflict, forbidden, not_found, path_id
from callrouter.http.keys import ACCOUNT, CLUSTER, DB, STORE
from callrouter.http.operation import operation
from callrouter.http.render import iso, page
from callrouter.http.schemas import (
    Attach,
    CallOut,
    CallsQuery,
    CaseFromCall,
    CaseWithMessages,
    Draft,
    LinkUser,
    Page,
    UserOut,
)
from callrouter.storage import case_store, directory
from callrouter.storage import routing as routing_store
from callrouter.storage.directory import paged
from callrouter.storage.models import Call, CallAction, Message

routes = web.RouteTableDef()


async def _live_call(request: web.Request, staff_id: int) -> dict[str, Any]:
    """The live call of the path, which the acting staff member must be part of."""
    call_id = path_id(request, "id")
    call = await request.app[CLUSTER].call(call_id)
    if call is None:
        async with request.app[DB].sessions() as session:
            row = await session.get(Call, call_id)
        if row is not None and row.finalized:
            raise conflict("call_ended", f"Call {call_id} has ended.")
        raise not_found("call_not_found", f"No live call {call_id}.")
    if staff_id not in call["staff_ids"]:
        raise forbidden("not_your_call", "Only staff taking part in this call can act on it.")
    return call


async def _render(
    request: web.Request, call: dict[str, Any] | None, row: Call | None
) -> dict[str, Any]:
    tz = request.app[ACCOUNT].value.tz
    call_id = call["call_session_id"] if call else row.call_session_id  # type: ignore[union-attr]
    async with request.app[DB].snapshot() as session:
        case_ids = set(
            await session.scalars(select(Message.case_id).where(Message.call_session_id == call_id))
        )
        case_ids |= set(
            await session.scalars(
                select(CallAction.case_id).where(CallAction.call_session_id == call_id)
            )
        )
        phone = call["phone"] if call else row.phone  # type: ignore[union-attr]
        user = await directory.find_user_by_phone(session, phone) if phone else None
        decisions = await routing_store.decisions_of(session, [call_id])
    routing = [routing_store.decision_json(d, tz) for d in decisions.get(call_id, [])]
    if call is not None:
        return {
            "call_session_id": call_id,
            "direction": call["direction"],
            "state": call["state"],
            "phone": phone,
            "user_id": user.id if user else None,
            "staff_ids": call["staff_ids"],
            "case_ids": sorted(case_ids),
            "started_at": iso(call["started_at"], tz),
            "answered_at": iso(call["answered_at"], tz),
            "ended_at": iso(call["ended_at"], tz),
            "routing": routing,
        }
    assert row is not None
    return {
        "call_session_id": call_id,
        "direction": row.direction,
        "state": "ended",
        "phone": phone,
        "user_id": row.user_id or (user.id if user else None),
        "staff_ids": list(row.staff_ids or []),
        "case_ids": sorted(case_ids),
        "started_at": iso(row.started_at, tz),
        "answered_at": iso(row.answered_at, tz),
        "ended_at": iso(row.ended_at, tz),
        "outcome": row.outcome,
        "talk_seconds": row.talk_seconds,
        "routing": routing,
    }


@routes.get("/api/v1/calls")
@operation(auth="any", tag="calls", query=CallsQuery, answer=Page[CallOut])
async def list_calls(request: web.Request, query: CallsQuery) -> dict[str, Any]:
    """Live calls (`active=true`) or ended ones, newest first"""
    limit, offset = query.limit, query.offset
    if query.active:
        live = sorted(
            await request.app[CLUSTER].active_calls(), key=lambda c: c["started_at"], reverse=True
        )
        items = [await _render(request, c, None) for c in live[offset : offset + limit]]
        return page(items, len(live))
    async with request.app[DB].snapshot() as session:
        select_ = (
            select(Call)
            .where(Call.finalized.is_(True))
            .order_by(Call.ended_at.desc(), Call.call_session_id.desc())
        )
        rows, total = await paged(session, select_, limit, offset)
    return page([await _render(request, None, r) for r in rows], total)


@routes.get("/api/v1/calls/{id}")
@operation(auth="any", tag="calls", answer=CallOut, errors=(404,))
async def get_call(request: web.Request) -> dict[str, Any]:
    """One call, live or ended"""
    call_id = path_id(request, "id")
    call = await request.app[CLUSTER].call(call_id)
    row = None
    if call is None or call["state"] == "ended":
        async with request.app[DB].sessions() as session:
            row = await session.get(Call, call_id)
        if row is not None and row.finalized:
            call = None
        elif call is None:
            raise not_found("call_not_found", f"No call {call_id}.")
    return await _render(request, call, row)


@routes.post("/api/v1/calls/{id}/link-user")
@operation(
    auth="staff", tag="calls", body=LinkUser, answer=UserOut, errors=(403, 404, 409, 422)
)
async def link_user(request: web.Request, staff_id: int, body: LinkUser) -> Any:
    """Link the caller to a user: the calling number joins the user's phones (R7)"""
    call = await _live_call(request, staff_id)
    return await request.app[STORE].run(directory.link_phone, body.user_id, call["phone"])


@routes.post("/api/v1/calls/{id}/case")
@operation(
    auth="staff",
    tag="calls",
    body=CaseFromCall,
    answer=CaseWithMessages,
    status=201,
    errors=(403, 404, 409, 422),
)
async def create_case(request: web.Request, staff_id: int, body: CaseFromCall) -> dict[str, Any]:
    """Create a case from the call (R8)"""
    call = await _live_call(request, staff_id)
    case_id = await request.app[STORE].run(
        case_store.create_case_from_call,
        call,
        staff_id,
        body.subject,
        body.summary,
        datetime.now(UTC),
    )
    return await case_view(request, case_id, with_messages=True)


@routes.post("/api/v1/calls/{id}/attach")
@operation(
    auth="staff", tag="calls", body=Attach, answer=CaseWithMessages, errors=(403, 404, 409, 422)
)
async def attach(request: web.Request, staff_id: int, body: Attach) -> dict[str, Any]:
    """Attach the call to a case (R9, R19)"""
    call = await _live_call(request, staff_id)
    await request.app[STORE].run(
        case_store.attach_call, call, staff_id, body.case_id, body.summary, datetime.now(UTC)
    )
    return await case_view(request, body.case_id, with_messages=True)


@routes.put("/api/v1/calls/{id}/draft")
@operation(auth="staff", tag="calls", body=Draft, status=204, errors=(403, 404, 409, 422))
async def draft(request: web.Request, staff_id: int, body: Draft) -> web.Response:
    """Keep what the staff member typed during the call (R10)"""
    call = await _live_call(request, staff_id)
    await request.app[STORE].run(
        case_store.save_draft,
        call["call_session_id"],
        staff_id,
        body.subject,
        body.summary,
        datetime.now(UTC),
    )
    return web.Response(status=204)
