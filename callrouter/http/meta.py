"""Service endpoints: health and the OpenAPI document."""

from __future__ import annotations

from aiohttp import web

from callrouter.http.auth import require_admin
from callrouter.http.errors import json_response
from callrouter.http.keys import CLUSTER, DB, INBOX
from callrouter.storage.calls import count_pending

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """200 once the service can take notifications (the inbox writer and shards are up)."""
    return json_response({"ok": True, "queued": request.app[INBOX].depth})


@routes.get("/api/v1/system")
async def system(request: web.Request) -> web.Response:
    """Admin: the inbox backlog (acknowledged, effects not durable yet) and the shards' load."""
    await require_admin(request)
    async with request.app[DB].sessions() as session:
        pending = await count_pending(session)
    return json_response(
        {
            "inbox_pending": pending,
            "ingest_queue": request.app[INBOX].depth,
            "shards": await request.app[CLUSTER].stats(),
        }
    )
