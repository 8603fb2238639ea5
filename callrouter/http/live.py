"""Live events to staff consoles: `GET /api/v1/events?token=` (API.md "Live events").

Each connection subscribes to its own staff member's events only (R34); a fresh connection is
first sent the state of the member's current calls again."""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from typing import Any

import orjson
from aiohttp import WSMsgType, web

from callrouter.http.keys import CLUSTER, DB, HUB
from callrouter.http.operation import operation
from callrouter.http.schemas import Token
from callrouter.storage.live import Profiles

log = logging.getLogger("callrouter.live")
routes = web.RouteTableDef()

QUEUE_LIMIT = 1000


class Hub:
    """In-process fan-out from live events to the WebSocket connections of this frontend."""

    def __init__(self) -> None:
        self.subscribers: dict[int, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
        self.sockets: set[web.WebSocketResponse] = set()

    async def publish(self, staff_id: int, event: dict[str, Any]) -> None:
        for queue in list(self.subscribers.get(staff_id, ())):
            if queue.qsize() < QUEUE_LIMIT:  # a stuck console must not hold memory forever
                queue.put_nowait(event)

    def subscribe(self, staff_id: int) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.subscribers[staff_id].add(queue)
        return queue

    def unsubscribe(self, staff_id: int, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self.subscribers[staff_id].discard(queue)
        if not self.subscribers[staff_id]:
            del self.subscribers[staff_id]

    def connected(self) -> set[int]:
        return set(self.subscribers)

    async def close_all(self) -> None:
        for ws in list(self.sockets):
            await ws.close(code=1001, message=b"server shutdown")


@routes.get("/api/v1/events")
@operation(auth="staff", tag="calls", query=Token, kind="websocket")
async def events(request: web.Request, staff_id: int) -> web.WebSocketResponse:
    """WebSocket: the staff member's live events

    `call.ringing`, `call.offer_ended`, `call.answered`, `call.dialing`, `call.connected`,
    `call.ended`, `case.updated` (API.md "Live events"); on connect, the current calls again."""
    hub = request.app[HUB]
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    queue = hub.subscribe(staff_id)
    hub.sockets.add(ws)
    try:
        db = request.app[DB]
        replay = [(staff_id, e) for e in await request.app[CLUSTER].agent_replay(staff_id)]
        replayed = await Profiles(db, db.engine.connect).enrich(replay)
        for _, event in replayed:
            await ws.send_bytes(orjson.dumps(event))
        sender = asyncio.create_task(_send(ws, queue))
        async for msg in ws:  # the console sends nothing we need; this waits for the close
            if msg.type == WSMsgType.ERROR:
                break
        sender.cancel()
    finally:
        hub.unsubscribe(staff_id, queue)
        hub.sockets.discard(ws)
    return ws


async def _send(ws: web.WebSocketResponse, queue: asyncio.Queue[dict[str, Any]]) -> None:
    while not ws.closed:
        event = await queue.get()
        await ws.send_str(orjson.dumps(event).decode())
