"""Cases for staff (API.md "Cases"): reads, changes by staff (R24), messages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from sqlalchemy import select

from callrouter.domain.case_status import STATUSES
from callrouter.http.auth import require_any
from callrouter.http.errors import (
    json_response,
    not_found,
    optional_int,
    paging,
    path_id,
    read_json,
    reject_unknown,
    require_str,
    unprocessable,
)
from callrouter.http.keys import ACCOUNT, DB, STORE
from callrouter.http.render import iso, page
from callrouter.storage import case_store
from callrouter.storage.cases import recordings_for, recordings_of_calls
from callrouter.storage.directory import paged
from callrouter.storage.models import Case, Message

routes = web.RouteTableDef()


def case_json(case: Case, tz: Any) -> dict[str, Any]:
    return {
        "id": case.id,
        "subject": case.subject,
        "status": case.status,
        "channel": case.channel,
        "user_id": case.user_id,
        "assignee_id": case.assignee_id,
        "call_icon": case.call_icon,
        "created_at": iso(case.created_at, tz),
        "updated_at": iso(case.updated_at, tz),
        "closed_at": iso(case.closed_at, tz),
    }


def message_json(message: Message, recordings: list[Any], tz: Any) -> dict[str, Any]:
    call = None
    if message.call_session_id is not None:
        call = {
            "call_session_id": message.call_session_id,
            "direction": message.call_direction,
            "outcome": message.call_outcome,
            "talk_seconds": message.talk_seconds,
            "recording_urls": [r.url for r in recordings_for(message, recordings)],
        }
    return {
        "id": message.id,
        "kind": message.kind,
        "author_staff_id": message.author_staff_id,
        "body": message.body,
        "created_at": iso(message.created_at, tz),
        "call": call,
    }


async def case_view(request: web.Request, case_id: int, *, with_messages: bool) -> dict[str, Any]:
    tz = request.app[ACCOUNT].value.tz
    async with request.app[DB].sessions() as session:
        case = await session.get(Case, case_id)
        if case is None:
            raise not_found("case_not_found", f"No case {case_id}.")
        view = case_json(case, tz)
        if with_messages:
            messages = list(
                await session.scalars(
                    select(Message)
                    .where(Message.case_id == case_id)
                    .order_by(Message.created_at, Message.id)
                )
            )
            recordings = await recordings_of_calls(
                session, [m.call_session_id for m in messages if m.call_session_id]
            )
            view["messages"] = [message_json(m, recordings, tz) for m in messages]
    return view


@routes.get("/api/v1/cases")
async def list_cases(request: web.Request) -> web.Response:
    await require_any(request)
    limit, offset = paging(request)
    query = select(Case)
    if "user_id" in request.query:
        try:
            query = query.where(Case.user_id == int(request.query["user_id"]))
        except ValueError:
            raise unprocessable("invalid_field", "user_id must be an integer.") from None
    if "status" in request.query:
        query = query.where(Case.status == request.query["status"])
    if "channel" in request.query:
        query = query.where(Case.channel == request.query["channel"])
    tz = request.app[ACCOUNT].value.tz
    async with request.app[DB].sessions() as session:
        rows, total = await paged(
            session, query.order_by(Case.created_at.desc(), Case.id.desc()), limit, offset
        )
        items = [case_json(c, tz) for c in rows]
    return json_response(page(items, int(total or 0)))


@routes.get("/api/v1/cases/{id}")
async def get_case(request: web.Request) -> web.Response:
    await require_any(request)
    return json_response(await case_view(request, path_id(request, "id"), with_messages=True))


@routes.patch("/api/v1/cases/{id}")
async def patch_case(request: web.Request) -> web.Response:
    """Staff change status, assignee or subject; each change is logged with its actor (R24)."""
    principal = await require_any(request)
    case_id = path_id(request, "id")
    body = await read_json(request)
    reject_unknown(body, {"status", "assignee_id", "subject"})
    changes: dict[str, Any] = {}
    if "status" in body:
        if body["status"] not in STATUSES:
            raise unprocessable("invalid_field", f"status must be one of {', '.join(STATUSES)}.")
        changes["status"] = body["status"]
    if "assignee_id" in body:
        changes["assignee_id"] = optional_int(body, "assignee_id")
    if "subject" in body:
        changes["subject"] = require_str(body, "subject", max_len=500)
    await request.app[STORE].run(
        case_store.patch_case, case_id, changes, principal.staff_id, datetime.now(UTC)
    )
    return json_response(await case_view(request, case_id, with_messages=False))


@routes.post("/api/v1/cases/{id}/messages")
async def post_message(request: web.Request) -> web.Response:
    principal = await require_any(request)
    case_id = path_id(request, "id")
    body = await read_json(request)
    text = require_str(body, "body", max_len=100_000)
    kind = body.get("kind", "reply")
    if kind not in ("reply", "note"):
        raise unprocessable("invalid_field", "kind must be reply or note.")
    message_id = await request.app[STORE].run(
        case_store.post_message, case_id, kind, text, principal.staff_id, datetime.now(UTC)
    )
    tz = request.app[ACCOUNT].value.tz
    async with request.app[DB].sessions() as session:
        message = await session.get(Message, message_id)
        assert message is not None
        view = message_json(message, [], tz)
    return json_response(view, status=201)
