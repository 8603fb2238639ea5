"""`GET /api/v1/quarantine`, `POST /api/v1/quarantine/{id}/retry` (admin): the calls and bodies
whose processing failed, with their error, and sending them through again after a fix (STYLE
habit 11; every open entry is also retried when the service starts)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import select

from callrouter.http.errors import not_found, path_id
from callrouter.http.keys import ACCOUNT, CLUSTER, DB
from callrouter.http.operation import operation
from callrouter.http.render import iso, page
from callrouter.http.schemas import Page, QuarantineEntry, QuarantineQuery, Retried
from callrouter.storage.directory import paged
from callrouter.storage.models import Quarantine

routes = web.RouteTableDef()


@routes.get("/api/v1/quarantine")
@operation(auth="admin", tag="admin", query=QuarantineQuery, answer=Page[QuarantineEntry])
async def list_quarantine(request: web.Request, query: QuarantineQuery) -> dict[str, Any]:
    """Calls and bodies whose processing failed, newest first

    `?status=open` or `retried`; every entry without it."""
    select_ = select(Quarantine).order_by(Quarantine.id.desc())
    if query.status is not None:
        select_ = select_.where(Quarantine.status == query.status)
    tz = request.app[ACCOUNT].value.tz
    async with request.app[DB].sessions() as session:
        rows, total = await paged(session, select_, query.limit, query.offset)
    items = [
        {
            "id": q.id,
            "call_session_id": q.call_session_id,
            "stage": q.stage,
            "error": q.error,
            "inbox_ids": q.inbox_ids,
            "body": q.body,
            "status": q.status,
            "created_at": iso(q.created_at, tz),
            "updated_at": iso(q.updated_at, tz),
        }
        for q in rows
    ]
    return page(items, total)


@routes.post("/api/v1/quarantine/{id}/retry")
@operation(auth="admin", tag="admin", answer=Retried, status=202, errors=(404,))
async def retry(request: web.Request) -> dict[str, int]:
    """Send an open entry through again; 404 when there is no open entry with this id"""
    entry_id = path_id(request, "id")
    if await request.app[CLUSTER].retry(entry_id) == 0:
        raise not_found("quarantine_not_found", f"No open quarantine entry {entry_id}.")
    return {"retried": entry_id}
