"""The live wallboard over HTTP (R31): `GET /api/v1/wallboard` and the
`GET /api/v1/wallboard/events` WebSocket stream of `wallboard` messages.

One feed per frontend long-polls the board actor and pushes each new snapshot to every open
wallboard; while a caller waits it pushes every second, so the longest wait keeps counting.
Each open wallboard has its own sender holding only the newest snapshot: a screen that stops
reading holds back nobody. A second loop tells the board which staff have a console open here
(free vs offline), so a slow board poll never makes them look offline.
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
CALL_TIMEOUT = 5.0  # a board that does not answer (restarting) is asked again, never waited on


class Screen:
    """One open wallboard's sender. Only the newest snapshot waits to be sent, so a screen
    that reads slowly (or not at all) holds back no other screen nor the feed, and costs one
    message of memory."""

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.seq = -1
        self.message: str | None = None
        self.ready = asyncio.Event()
        self.task = asyncio.create_task(self._send())

    def offer(self, seq: int, message: str) -> None:
        """Send this snapshot next, unless a newer one was offered (the snapshot read on
        connect may come after the feed's)."""
        if seq >= self.seq:
            self.seq, self.message = seq, message
            self.ready.set()

    async def _send(self) -> None:
        while not self.ws.closed:
            await self.ready.wait()
            self.ready.clear()
            message, self.message = self.message, None
            if message is not None:
                try:
                    await self.ws.send_str(message)
                except ConnectionError:  # the screen went away; its handler cleans up
                    return


def wire(snapshot: dict[str, Any]) -> str:
    return orjson.dumps({"type": "wallboard", **snapshot}).decode()


class WallboardFeed:
    """This frontend's two loops: who has a console open here, told to the board; and the
    board's snapshots, offered to every open wallboard. Apart, so neither waits on the other."""

    def __init__(self) -> None:
        self.screens: set[Screen] = set()
        self.frontend = uuid.uuid4().hex

    async def run(self, app: web.Application) -> None:
        await asyncio.gather(self._presence(app), self._snapshots(app))

    async def _presence(self, app: web.Application) -> None:
        loop = asyncio.get_running_loop()
        online: tuple[list[int], float] = ([], 0.0)
        while True:
            try:
                connected = sorted(app[HUB].connected())
                if connected != online[0] or loop.time() - online[1] >= ONLINE_EVERY:
                    await asyncio.wait_for(
                        app[CLUSTER].report_online(self.frontend, connected), CALL_TIMEOUT
                    )
                    online = (connected, loop.time())
                await asyncio.sleep(TICK_SECONDS)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reporting the connected consoles failed")
                await asyncio.sleep(1)

    async def _snapshots(self, app: web.Application) -> None:
        seq = -1
        loop = asyncio.get_running_loop()
        while True:
            try:
                if not self.screens:  # nobody watches here: no polling the board
                    await asyncio.sleep(TICK_SECONDS)
                    continue
                polled = loop.time()
                snapshot = await asyncio.wait_for(
                    app[CLUSTER].wallboard_poll(seq, TICK_SECONDS), TICK_SECONDS + CALL_TIMEOUT
                )
                if snapshot["seq"] != seq or snapshot["ringing"]:
                    seq = snapshot["seq"]
                    self.broadcast(snapshot)
                await asyncio.sleep(max(0.0, polled + PUSH_EVERY - loop.time()))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("wallboard feed failed")
                await asyncio.sleep(1)

    def broadcast(self, snapshot: dict[str, Any]) -> None:
        message = wire(snapshot)
        for screen in self.screens:
            screen.offer(snapshot["seq"], message)


async def feed_ctx(app: web.Application) -> AsyncIterator[None]:
    feed = WallboardFeed()
    app[WALLBOARD_FEED] = feed
    task = asyncio.create_task(feed.run(app))
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    for screen in list(feed.screens):
        await screen.ws.close(code=1001, message=b"server shutdown")


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
    screen = Screen(ws)
    feed.screens.add(screen)
    try:
        snapshot = await request.app[CLUSTER].wallboard()  # a full snapshot on connect
        screen.offer(snapshot["seq"], wire(snapshot))
        async for msg in ws:
            if msg.type == WSMsgType.ERROR:
                break
    finally:
        feed.screens.discard(screen)
        screen.task.cancel()
    return ws
