"""Calls for staff (API.md "Calls"): live and past calls, and what staff do during one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from sqlalchemy import select

from callrouter.http.auth import require_any, require_staff
from callrouter.http.cases import case_view
from callrouter.http.errors import (
    MAX_ID,
    conflict,
    forbidden,
    json_response,
    not_found,
    optional_str,
    paging,
    path_id,
    read_json,
    require_str,
    unprocessable,
)
from callrouter.http.keys import ACCOUNT, CLUSTER, DB, STORE
from callrouter.http.render import iso, page
from callrouter.storage import case_store, directory
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
    async with request.app[DB].sessions() as session:
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
    }


@routes.get("/api/v1/calls")
async def list_calls(request: web.Request) -> web.Response:
    await require_any(request)
    limit, offset = paging(request)
    if request.query.get("active", "").lower() in ("1", "true", "yes"):
        live = sorted(
            await request.app[CLUSTER].active_calls(), key=lambda c: c["started_at"], reverse=True
        )
        items = [await _render(request, c, None) for c in live[offset : offset + limit]]
        return json_response(page(items, len(live)))
    async with request.app[DB].sessions() as session:
        query = (
            select(Call)
            .where(Call.finalized.is_(True))
            .order_by(Call.ended_at.desc(), Call.call_session_id.desc())
        )
        rows, total = await paged(session, query, limit, offset)
    return json_response(page([await _render(request, None, r) for r in rows], total))


@routes.get("/api/v1/calls/{id}")
async def get_call(request: web.Request) -> web.Response:
    await require_any(request)
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
    return json_response(await _render(request, call, row))


@routes.post("/api/v1/calls/{id}/link-user")
async def link_user(request: web.Request) -> web.Response:
    """R7: the calling number joins the user's phones."""
    staff_id = await require_staff(request)
    call = await _live_call(request, staff_id)
    body = await read_json(request)
    user_id = _id_field(body, "user_id")
    view = await request.app[STORE].run(directory.link_phone, user_id, call["phone"])
    return json_response(view)


def _id_field(body: dict[str, Any], key: str) -> int:
    value = body.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_ID:
        raise unprocessable("invalid_field", f"{key} must be a positive integer id.")
    return value


@routes.post("/api/v1/calls/{id}/case")
async def create_case(request: web.Request) -> web.Response:
    """R8: create a case from the call."""
    staff_id = await require_staff(request)
    call = await _live_call(request, staff_id)
    body = await read_json(request)
    subject = require_str(body, "subject", max_len=500)
    summary = optional_str(body, "summary", max_len=20000) or ""
    case_id = await request.app[STORE].run(
        case_store.create_case_from_call, call, staff_id, subject, summary, datetime.now(UTC)
    )
    return json_response(await case_view(request, case_id, with_messages=True), status=201)


@routes.post("/api/v1/calls/{id}/attach")
async def attach(request: web.Request) -> web.Response:
    """R9, R19: attach the call to a case."""
    staff_id = await require_staff(request)
    call = await _live_call(request, staff_id)
    body = await read_json(request)
    case_id = _id_field(body, "case_id")
    summary = optional_str(body, "summary", max_len=20000) or ""
    await request.app[STORE].run(
        case_store.attach_call, call, staff_id, case_id, summary, datetime.now(UTC)
    )
    return json_response(await case_view(request, case_id, with_messages=True))


@routes.put("/api/v1/calls/{id}/draft")
async def draft(request: web.Request) -> web.Response:
    """R10: keep what the staff member typed."""
    staff_id = await require_staff(request)
    call = await _live_call(request, staff_id)
    body = await read_json(request)
    subject = optional_str(body, "subject", max_len=500)
    summary = optional_str(body, "summary", max_len=20000)
    await request.app[STORE].run(
        case_store.save_draft,
        call["call_session_id"],
        staff_id,
        subject,
        summary,
        datetime.now(UTC),
    )
    return web.Response(status=204)
