"""Service endpoints: health and the OpenAPI document."""

from __future__ import annotations

from aiohttp import web

from callrouter.http.errors import json_response
from callrouter.http.keys import INBOX

routes = web.RouteTableDef()


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """200 once the service can take notifications (the inbox writer and shards are up)."""
    return json_response({"ok": True, "queued": request.app[INBOX].depth})
