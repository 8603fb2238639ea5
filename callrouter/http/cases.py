"""Cases for staff (API.md "Cases"): reads, changes by staff (R24), messages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from sqlalchemy import select

from callrouter.http.auth import Principal
from callrouter.http.errors import not_found, path_id
from callrouter.http.keys import ACCOUNT, DB, STORE
from callrouter.http.operation import operation
from callrouter.http.render import iso, page
from callrouter.http.schemas import (
    CaseChange,
    CaseOut,
    CasesQuery,
    CaseWithMessages,
    MessageIn,
    MessageOut,
    Page,
)
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
    async with request.app[DB].snapshot() as session:
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
@operation(auth="any", tag="cases", query=CasesQuery, answer=Page[CaseOut])
async def list_cases(request: web.Request, query: CasesQuery) -> dict[str, Any]:
    """Cases without their messages, newest first, filtered by user, status or channel"""
    select_ = select(Case)
    if query.user_id is not None:
        select_ = select_.where(Case.user_id == query.user_id)
    if query.status is not None:
        select_ = select_.where(Case.status == query.status)
    if query.channel is not None:
        select_ = select_.where(Case.channel == query.channel)
    tz = request.app[ACCOUNT].value.tz
    async with request.app[DB].snapshot() as session:
        rows, total = await paged(
            session,
            select_.order_by(Case.created_at.desc(), Case.id.desc()),
            query.limit,
            query.offset,
        )
        items = [case_json(c, tz) for c in rows]
    return page(items, int(total or 0))


@routes.get("/api/v1/cases/{id}")
@operation(auth="any", tag="cases", answer=CaseWithMessages, errors=(404,))
async def get_case(request: web.Request) -> dict[str, Any]:
    """One case with its messages, oldest first"""
    return await case_view(request, path_id(request, "id"), with_messages=True)


@routes.patch("/api/v1/cases/{id}")
@operation(auth="any", tag="cases", body=CaseChange, answer=CaseOut, errors=(404, 409, 422))
async def patch_case(request: web.Request, principal: Principal, body: CaseChange) -> Any:
    """Change status, assignee or subject

    Each change is logged with its actor (R24)."""
    case_id = path_id(request, "id")
    changes = body.model_dump(exclude_unset=True)
    await request.app[STORE].run(
        case_store.patch_case, case_id, changes, principal.staff_id, datetime.now(UTC)
    )
    return await case_view(request, case_id, with_messages=False)


@routes.post("/api/v1/cases/{id}/messages")
@operation(
    auth="any", tag="cases", body=MessageIn, answer=MessageOut, status=201, errors=(404, 422)
)
async def post_message(request: web.Request, principal: Principal, body: MessageIn) -> Any:
    """A reply or an internal note on a case"""
    case_id = path_id(request, "id")
    message_id = await request.app[STORE].run(
        case_store.post_message, case_id, body.kind, body.body, principal.staff_id,
        datetime.now(UTC),
    )
    tz = request.app[ACCOUNT].value.tz
    async with request.app[DB].sessions() as session:
        message = await session.get(Message, message_id)
        assert message is not None
        return message_json(message, [], tz)
