"""`GET /api/v1/quarantine`, `POST /api/v1/quarantine/{id}/retry` (admin): the calls and bodies
whose processing failed, with their error, and sending them through again after a fix (STYLE
habit 11; every open entry is also retried when the service starts)."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy import select

from callrouter.http.auth import require_admin
from callrouter.http.errors import json_response, not_found, paging, path_id
from callrouter.http.keys import ACCOUNT, CLUSTER, DB
from callrouter.http.render import iso, page
from callrouter.storage.directory import paged
from callrouter.storage.models import Quarantine

routes = web.RouteTableDef()


@routes.get("/api/v1/quarantine")
async def list_quarantine(request: web.Request) -> web.Response:
    """Entries newest first; `?status=open` (default: every entry) or `retried`."""
    await require_admin(request)
    limit, offset = paging(request)
    query = select(Quarantine).order_by(Quarantine.id.desc())
    if "status" in request.query:
        query = query.where(Quarantine.status == request.query["status"])
    tz = request.app[ACCOUNT].value.tz
    async with request.app[DB].sessions() as session:
        rows, total = await paged(session, query, limit, offset)
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
    return json_response(page(items, total))


@routes.post("/api/v1/quarantine/{id}/retry")
async def retry(request: web.Request) -> web.Response:
    """Send an open entry through again; 404 when there is no open entry with this id."""
    await require_admin(request)
    entry_id = path_id(request, "id")
    if await request.app[CLUSTER].retry(entry_id) == 0:
        raise not_found("quarantine_not_found", f"No open quarantine entry {entry_id}.")
    return json_response({"retried": entry_id}, status=202)
