"""Live events between frontends through the real Redis (R5 with several frontends, R34)."""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest
import redis.asyncio as aioredis

from callrouter.http.fanout import LocalFanout, RedisFanout
from callrouter.http.live import Hub

REDIS_URL = os.environ.get("CALLROUTER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
async def redis_url() -> str:
    client = aioredis.from_url(REDIS_URL)
    try:
        await asyncio.wait_for(client.ping(), 3)
    except (OSError, TimeoutError, aioredis.RedisError) as exc:
        if os.environ.get("CALLROUTER_REQUIRE_SERVICES") == "1":
            pytest.fail(f"Redis is required but unreachable at {REDIS_URL}: {exc}")
        pytest.skip(f"Redis unreachable at {REDIS_URL}: {exc}")
    finally:
        await client.aclose()
    return REDIS_URL


async def _next(queue: asyncio.Queue[dict], timeout: float = 3.0) -> dict:
    return await asyncio.wait_for(queue.get(), timeout)


async def test_an_event_published_on_one_frontend_reaches_the_other(redis_url: str) -> None:
    channel = f"callrouter:test:{uuid.uuid4().hex}"
    hub_a, hub_b = Hub(), Hub()
    a, b = RedisFanout(hub_a, redis_url, channel), RedisFanout(hub_b, redis_url, channel)
    await a.start()
    await b.start()
    try:
        anna_on_b = hub_b.subscribe(7)
        boris_on_b = hub_b.subscribe(8)
        anna_on_a = hub_a.subscribe(7)
        event = {"type": "call.ringing", "call_session_id": 1, "phone": "79260000000", "event_id": "0:1:1"}
        await a.publish(7, event)
        got = await _next(anna_on_b)
        assert got == {"type": "call.ringing", "call_session_id": 1, "phone": "79260000000"}
        assert (await _next(anna_on_a))["call_session_id"] == 1
        assert boris_on_b.empty(), "R34: another staff member's popup must not reach Boris"
    finally:
        await a.stop()
        await b.stop()


async def test_the_same_event_from_two_frontends_is_delivered_once(redis_url: str) -> None:
    """Frontends sharing a Ray cluster both read a shard's event; staff see it once."""
    channel = f"callrouter:test:{uuid.uuid4().hex}"
    hub = Hub()
    a, b = RedisFanout(hub, redis_url, channel), RedisFanout(Hub(), redis_url, channel)
    await a.start()
    await b.start()
    try:
        queue = hub.subscribe(5)
        event = {"type": "call.answered", "call_session_id": 2, "event_id": "1:99:5"}
        await a.publish(5, event)
        await b.publish(5, event)
        await a.publish(5, {**event, "event_id": "1:99:6", "call_session_id": 3})
        assert (await _next(queue))["call_session_id"] == 2
        assert (await _next(queue))["call_session_id"] == 3
        await asyncio.sleep(0.2)
        assert queue.empty()
    finally:
        await a.stop()
        await b.stop()


async def test_local_fanout_delivers_to_its_own_hub_only_for_that_staff() -> None:
    hub = Hub()
    fanout = LocalFanout(hub)
    mine, other = hub.subscribe(1), hub.subscribe(2)
    await fanout.publish(1, {"type": "case.updated", "case_id": 4, "event_id": "x"})
    assert await _next(mine) == {"type": "case.updated", "case_id": 4}
    assert other.empty()
