"""Two frontends, one PostgreSQL database, live events through the real Redis (R5, R34).

UIS posts to frontend A; the staff member's console is connected to frontend B. With
`--redis-url`, the popup reaches them on B — and only them."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from types import ModuleType
from typing import Any

import aiohttp
import pytest

from callrouter.testing import uis_bodies as ub

pytestmark = pytest.mark.e2e

REDIS_URL = os.environ.get("CALLROUTER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _redis_reachable() -> str | None:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=3).ping()
    except redis.RedisError as exc:
        return f"Redis unreachable at {REDIS_URL}: {exc}"
    return None


@pytest.fixture(scope="module")
def frontends(e2e_kit: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Any:
    e2e = e2e_kit
    problem = _redis_reachable()
    database = f"callrouter_e2e_two_{uuid.uuid4().hex[:8]}"
    if problem is None:
        try:
            asyncio.run(e2e._pg_admin(f'CREATE DATABASE "{database}"'))
        except Exception as exc:  # noqa: BLE001 - any failure means: no PostgreSQL here
            problem = f"PostgreSQL unreachable: {exc}"
    if problem:
        if e2e.REQUIRE_SERVICES:
            pytest.fail(problem + " (CALLROUTER_REQUIRE_SERVICES=1)")
        pytest.skip(problem)
    root = tmp_path_factory.mktemp("two-frontends")
    url = e2e._plain_pg_url(e2e.PG_URL, database)
    token = f"e2e-admin-{uuid.uuid4().hex}"
    made = []
    try:
        for name in ("a", "b"):
            svc = e2e.ServiceProcess(
                root / name,
                admin_token=token,
                database_url=url,
                name=f"frontend-{name}",
                extra_args=("--redis-url", REDIS_URL),
            )
            svc.start()
            made.append(svc)
            svc.wait_ready()  # one after the other: the first creates the tables
        yield e2e, made[0], made[1]
    finally:
        for svc in made:
            svc.interrupt()
        for svc in made:
            svc.stop()
        asyncio.run(e2e._pg_admin(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


async def _events(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> list[dict[str, Any]]:
    got = []
    try:
        while True:
            msg = await asyncio.wait_for(ws.receive(), seconds)
            if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                got.append(json.loads(msg.data))
            else:
                return got
    except TimeoutError:
        return got


async def test_a_popup_reaches_the_staff_member_on_the_other_frontend(frontends: Any) -> None:
    e2e, a, b = frontends
    desk = e2e.Desk(a)  # admin set-up and webhooks through frontend A
    anna, boris = desk.staff("Анна"), desk.staff("Борис")
    phone, call_id = desk.new_phone(), desk.new_call_id()
    async with aiohttp.ClientSession() as session:
        ws_url = b.base_url.replace("http", "ws") + "/api/v1/events?token="
        async with (
            session.ws_connect(ws_url + anna.token) as anna_ws,
            session.ws_connect(ws_url + boris.token) as boris_ws,
        ):
            await asyncio.sleep(0.5)
            events = ub.incoming_answered(call_id, desk.when(), phone, anna.employee_id)
            await asyncio.to_thread(desk.post_call, events[:1])  # the leg out: Anna's phone rings
            ringing = await _events(anna_ws, 5.0)
            assert [e["type"] for e in ringing] == ["call.ringing"]
            assert ringing[0]["call_session_id"] == call_id and ringing[0]["phone"] == phone
            assert ringing[0]["user"] is None  # unknown caller (R5)
            await asyncio.to_thread(desk.post_call, events[1:])
            rest = [e["type"] for e in await _events(anna_ws, 6.0)]
            assert rest[0] == "call.answered" and "call.ended" in rest
            assert await _events(boris_ws, 0.5) == [], "R34: Boris must not see Anna's call"
