"""Service endpoints: health and the system's state."""

from __future__ import annotations

from aiohttp import web

from callrouter.http.auth import require_admin
from callrouter.http.errors import json_response
from callrouter.http.keys import CLUSTER, DB
from callrouter.storage.inbox import count_pending

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """200 once the service can take notifications (the writer and shards are up)."""
    return json_response({"ok": True, "queued": request.app[CLUSTER].depth})


@routes.get("/api/v1/system")
async def system(request: web.Request) -> web.Response:
    """Admin: the inbox backlog (acknowledged, effects not durable yet), the writer's queues
    and event clock, the shards' load."""
    await require_admin(request)
    async with request.app[DB].sessions() as session:
        pending = await count_pending(session)
    cluster = request.app[CLUSTER]
    state = await cluster.stats()
    return json_response(
        {
            "inbox_pending": pending,
            "ingest_queue": cluster.depth + state["writer"]["ingest_queue"],
            **state,
        }
    )
