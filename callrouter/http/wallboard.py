"""The live wallboard over HTTP (R31): `GET /api/v1/wallboard` and the
`GET /api/v1/wallboard/events` WebSocket stream of `wallboard` messages.

One feed per frontend long-polls the board actor and pushes each new snapshot to every open
wallboard; while a caller waits it pushes every second, so the longest wait keeps counting.
The same task tells the board which staff have a console open here (free vs offline).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from callrouter.http.keys import CLUSTER, HUB, WALLBOARD_FEED
from callrouter.http.operation import operation
from callrouter.http.schemas import Token, Wallboard

log = logging.getLogger("callrouter.wallboard")
routes = web.RouteTableDef()

TICK_SECONDS = 1.0
PUSH_EVERY = 0.25  # at most this often: R31 asks for a second; a busy line changes constantly
ONLINE_EVERY = 5.0  # the board forgets a frontend's consoles after 15 s without news


class WallboardFeed:
    def __init__(self) -> None:
        self.sockets: set[web.WebSocketResponse] = set()
        self.latest: dict[str, Any] | None = None
        self.frontend = uuid.uuid4().hex

    async def run(self, app: web.Application) -> None:
        seq = -1
        loop = asyncio.get_running_loop()
        online: tuple[list[int], float] = ([], 0.0)
        while True:
            try:
                connected = sorted(app[HUB].connected())
                if connected != online[0] or loop.time() - online[1] >= ONLINE_EVERY:
                    await app[CLUSTER].report_online(self.frontend, connected)
                    online = (connected, loop.time())
                if not self.sockets:  # nobody watches here: no polling the board
                    await asyncio.sleep(TICK_SECONDS)
                    continue
                polled = loop.time()
                snapshot = await app[CLUSTER].wallboard_poll(seq, TICK_SECONDS)
                if snapshot["seq"] != seq or snapshot["ringing"]:
                    seq = snapshot["seq"]
                    self.latest = snapshot
                    await self._broadcast(snapshot)
                await asyncio.sleep(max(0.0, polled + PUSH_EVERY - loop.time()))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("wallboard feed failed")
                await asyncio.sleep(1)

    async def _broadcast(self, snapshot: dict[str, Any]) -> None:
        message = orjson.dumps({"type": "wallboard", **snapshot}).decode()
        for ws in list(self.sockets):
            if not ws.closed:
                await ws.send_str(message)


async def feed_ctx(app: web.Application) -> AsyncIterator[None]:
    feed = WallboardFeed()
    app[WALLBOARD_FEED] = feed
    task = asyncio.create_task(feed.run(app))
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    for ws in list(feed.sockets):
        await ws.close(code=1001, message=b"server shutdown")


@routes.get("/api/v1/wallboard")
@operation(auth="wallboard", tag="wallboard", answer=Wallboard)
async def wallboard(request: web.Request) -> Any:
    """The live wallboard snapshot (R31)"""
    return await request.app[CLUSTER].wallboard()


@routes.get("/api/v1/wallboard/events")
@operation(auth="wallboard", tag="wallboard", query=Token, answer=Wallboard, kind="websocket")
async def wallboard_events(request: web.Request) -> web.WebSocketResponse:
    """WebSocket: `wallboard` messages carrying the snapshot, with a rising `seq`

    A full snapshot on connect, then one per change."""
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    feed = request.app[WALLBOARD_FEED]
    feed.sockets.add(ws)
    try:
        snapshot = await request.app[CLUSTER].wallboard()  # a full snapshot on connect
        await ws.send_str(orjson.dumps({"type": "wallboard", **snapshot}).decode())
        async for msg in ws:
            if msg.type == WSMsgType.ERROR:
                break
    finally:
        feed.sockets.discard(ws)
    return ws
