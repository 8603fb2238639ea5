"""How live events from the shards reach every frontend's WebSocket connections.

In-process (the default) hands them to this frontend's hub. With Redis, every frontend
publishes what its shards produced to one pub/sub channel and delivers what it hears there, so
a staff member connected to any frontend gets their events (R5). Frontends sharing one Ray
cluster read the same shards, so each event carries an id and repeats are dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Any, Protocol

import orjson

from callrouter.http.live import Hub

log = logging.getLogger("callrouter.fanout")

CHANNEL = "callrouter:live"
REMEMBERED_IDS = 50_000


class Fanout(Protocol):
    async def publish(self, staff_id: int, event: dict[str, Any]) -> None: ...
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


class LocalFanout:
    """Events go straight to this frontend's connections."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def publish(self, staff_id: int, event: dict[str, Any]) -> None:
        await self.hub.publish(staff_id, _public(event))

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


def _public(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != "event_id"}


class RedisFanout:
    """Events go through a Redis pub/sub channel to every frontend."""

    def __init__(self, hub: Hub, url: str, channel: str = CHANNEL) -> None:
        import redis.asyncio as aioredis

        self.hub = hub
        self.channel = channel
        self.redis = aioredis.from_url(url)
        self.seen: OrderedDict[str, None] = OrderedDict()
        self.task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    async def publish(self, staff_id: int, event: dict[str, Any]) -> None:
        await self.redis.publish(self.channel, orjson.dumps({"staff_id": staff_id, "event": event}))

    async def start(self) -> None:
        await self.redis.ping()  # fail at start, not at the first popup
        self.task = asyncio.create_task(self._listen())
        await asyncio.wait_for(self.ready.wait(), 10)

    async def _listen(self) -> None:
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    self.ready.set()
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            await self._deliver(orjson.loads(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis restarted or the connection dropped: resubscribe
                log.exception("redis fan-out lost its subscription; retrying")
                await asyncio.sleep(1)

    async def _deliver(self, message: dict[str, Any]) -> None:
        event = message["event"]
        event_id = event.get("event_id")
        if event_id is not None:
            if event_id in self.seen:
                return
            self.seen[event_id] = None
            if len(self.seen) > REMEMBERED_IDS:
                self.seen.popitem(last=False)
        await self.hub.publish(int(message["staff_id"]), _public(event))

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.redis.aclose()
