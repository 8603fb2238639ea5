"""Service endpoints: health and the system's state."""

from __future__ import annotations

from aiohttp import web

from callrouter.http.keys import CLUSTER, DB
from callrouter.http.operation import operation
from callrouter.http.schemas import Health, System
from callrouter.storage.inbox import count_pending

routes = web.RouteTableDef()


@routes.get("/healthz")
@operation(auth="none", tag="service", answer=Health)
async def healthz(request: web.Request) -> dict[str, object]:
    """200 once the service can take notifications (the writer and shards are up)"""
    return {"ok": True, "queued": request.app[CLUSTER].depth}


@routes.get("/api/v1/system")
@operation(auth="admin", tag="service", answer=System)
async def system(request: web.Request) -> dict[str, object]:
    """The system's state

    The inbox backlog (acknowledged, effects not durable yet), the writer's queues and event
    clock, the shards' load."""
    async with request.app[DB].sessions() as session:
        pending = await count_pending(session)
    cluster = request.app[CLUSTER]
    state = await cluster.stats()
    return {
        "inbox_pending": pending,
        "ingest_queue": cluster.depth + state["writer"]["ingest_queue"],
        **state,
    }
