"""Smart routing over HTTP (issue 11 part 1): UIS asks `/webhooks/uis/<secret>/route`, the
admin sets the rules and the operators' phones.

The app is the real routing module on `base_app` with a fake cluster (`FakeSource`: the
board's staff states, the writer's units of work run here, the wallboard's routed list), so
every failure path can be produced: a view not loaded, states that stop coming, a database
that hangs, a bug in the decision.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select, update

from callrouter.domain.account import Account, Integration
from callrouter.domain.routing import Caller
from callrouter.http import admin, routing
from callrouter.http.keys import ACCOUNT, AccountBox
from callrouter.storage import directory
from callrouter.storage import routing as store
from callrouter.storage.engine import Database
from callrouter.storage.local import LocalStore
from callrouter.storage.models import Call, Case, CaseEvent, RoutingDecision, User, UserPhone
from callrouter.testing.uis_scenario import ask_route, fields

ADMIN = {"Authorization": "Bearer admin-secret"}
SECRET = "route-secret-0123456789"
URL = f"/webhooks/uis/{SECRET}/route"
CALLER = "79261110000"


class FakeSource:
    """The cluster as routing sees it."""

    def __init__(self, db: Database) -> None:
        self.store = LocalStore(db)
        self.states: dict[int, str] = {}
        self.fail = False
        self.sent: list[tuple[int, int, datetime]] = []

    async def staff_states(self, after: int, timeout: float) -> tuple[int, dict[int, str]]:
        await asyncio.sleep(0.01)
        if self.fail:
            raise RuntimeError("the board is away")
        return after + 1, dict(self.states)

    async def run(self, fn: Any, *args: Any) -> Any:
        return await self.store.run(fn, *args)

    async def routed(self, items: list[tuple[int, int, datetime]]) -> None:
        self.sent += items


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CONFIG_EVERY", "DELTA_EVERY", "FLUSH_EVERY"):
        monkeypatch.setattr(routing, name, 0.05)


async def until(check: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


def make(db: Database, control: Any, app_base: Any, source: FakeSource) -> web.Application:
    app: web.Application = app_base(db, control)
    app.add_routes(admin.routes)
    app.add_routes(routing.routes)
    integration = Integration("key", "74951234567", "https://callapi.test", SECRET)
    app[ACCOUNT] = AccountBox(Account(integration=integration))
    app.cleanup_ctx.append(routing.service_ctx(lambda _: source))
    return app


async def seed_case(db: Database, phone: str, assignee: int | None, status: str = "open") -> int:
    """A user with `phone` and a case assigned to `assignee`, as the writer would store it."""
    now = datetime.now(UTC)
    async with db.sessions() as session, session.begin():
        user = User(custom_fields={}, created_at=now, updated_at=now)
        session.add(user)
        await session.flush()
        session.add(UserPhone(user_id=user.id, phone=phone, normalized=phone, position=0))
        case = Case(
            subject="s",
            status=status,
            user_id=user.id,
            assignee_id=assignee,
            created_at=now,
            updated_at=now,
        )
        session.add(case)
        await session.flush()
        session.add(
            CaseEvent(case_id=case.id, at=now, kind="created", status=status, assignee_id=assignee)
        )
        return case.id


@pytest.fixture
async def world(
    aiohttp_client: Any, sqlite_database: Database, control: Any, app_base: Any, new_staff: Any
) -> Any:
    """Anna (operator 501 with two phones) owns an open case of CALLER, routing on."""
    source = FakeSource(sqlite_database)
    client = await aiohttp_client(make(sqlite_database, control, app_base, source))
    anna = await new_staff(client, "Anna")
    resp = await client.put(
        "/api/v1/operators/501",
        json={"staff_id": anna["id"], "phones": ["+7 (495) 000-00-01", "74950000002...12"]},
        headers=ADMIN,
    )
    assert resp.status == 200 and (await resp.json())["phones"][0] == "+7 (495) 000-00-01"
    await seed_case(sqlite_database, CALLER, anna["id"])
    resp = await client.put(
        "/api/v1/routing", json={"enabled": True, "fallback_code": 3}, headers=ADMIN
    )
    assert resp.status == 200, await resp.text()
    service = client.app[routing.ROUTING]
    await until(lambda: service.affinity is not None and service.phones)
    await until(lambda: service.affinity.caller(CALLER))
    source.states = {anna["id"]: "free"}
    await until(lambda: service.states)

    class World:
        pass

    w = World()
    w.client, w.source, w.anna, w.service, w.db = client, source, anna, service, sqlite_database  # type: ignore[attr-defined]
    return w


async def test_the_assignee_is_rung_whether_uis_posts_a_form_json_or_a_query(world: Any) -> None:
    anna_phones = ["74950000001", "74950000002...12"]
    url = str(world.client.make_url(URL))
    session = world.client.session
    for method in ("form", "json", "get"):
        outcome = await ask_route(session, url, fields(CALLER, "74951234567", 700), method=method)  # type: ignore[arg-type]
        assert (outcome.status, outcome.phones, outcome.fell_back) == (200, anna_phones, False)
    await until(lambda: len(world.source.sent) == 3)
    assert {(c, s) for c, s, _ in world.source.sent} == {(700, world.anna["id"])}
    async with world.db.sessions() as session_:
        [*decisions] = (await store.decisions_of(session_, [700]))[700]
    assert [d.reason for d in decisions] == ["open_case_assignee"] * 3
    assert decisions[0].caller == CALLER and decisions[0].numb == "74951234567"
    resp = await world.client.get("/api/v1/routing/stats", headers=ADMIN)
    stats = await resp.json()
    assert (stats["routed"], stats["reached"], stats["by_reason"]) == (
        1,  # UIS asked three times for one call
        0,  # the call has not been answered (here: never stored)
        {"open_case_assignee": 3},
    )


async def test_every_failure_falls_through_to_the_branch(world: Any) -> None:
    client, anna = world.client, world.anna

    async def ask(data: Any = None, **kw: Any) -> Any:
        resp = await client.post(URL, data=data, **kw)
        assert resp.status == 200
        return await resp.json()

    fell = {"returned_code": 3}
    assert await ask({"call_session_id": "1", "numa": "79990000000"}) == fell  # unknown
    assert await ask({"call_session_id": "2"}) == fell  # no numa
    assert await ask({"call_session_id": "x", "numa": CALLER}) == fell  # bad id
    assert await ask(b"{not json", headers={"Content-Type": "application/json"}) == fell
    assert await ask(b"x" * 20_000) == fell  # too large
    world.source.states = {anna["id"]: "talking"}
    await until(lambda: world.service.states.get(anna["id"]) == "talking")
    assert await ask({"call_session_id": "3", "numa": CALLER}) == fell  # busy
    world.service.decide = None  # a bug on the request path: still 200 and the branch
    assert await ask({"call_session_id": "4", "numa": CALLER}) == fell
    await until(lambda: not world.service.pending)
    assert await _reasons(world.db) == [
        "unknown_caller",
        "bad_request",
        "bad_request",
        "bad_request",
        "bad_request",
        "no_free_agent",
        "error",
    ]


async def _reasons(db: Database) -> list[str]:
    async with db.sessions() as session:
        rows = await session.scalars(select(RoutingDecision.reason).order_by(RoutingDecision.id))
        return list(rows)


async def test_stale_states_and_switched_off_routing_fall_through(
    world: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = world.client
    body = {"call_session_id": "9", "numa": CALLER}
    monkeypatch.setattr(routing, "STALE_SECONDS", 0.2)
    world.source.fail = True  # the board stops answering
    await asyncio.sleep(0.3)
    assert await (await client.post(URL, data=body)).json() == {"returned_code": 3}
    world.source.fail = False
    await until(lambda: time.monotonic() - world.service.states_at < 0.1)
    assert "phones" in await (await client.post(URL, data=body)).json()
    resp = await client.put("/api/v1/routing", json={"enabled": False}, headers=ADMIN)
    assert (await resp.json())["enabled"] is False
    assert await (await client.get(URL, params=body)).json() == {"returned_code": 3}
    assert world.service.reasons["stale_view"] == 1 and world.service.reasons["disabled"] == 1


async def test_the_answer_never_waits_for_the_database(world: Any) -> None:
    """With every database read hanging, answers still come from memory, at once."""
    hang = asyncio.Event()

    def hanging_sessions() -> Any:
        class Hang:
            async def __aenter__(self) -> Any:
                await hang.wait()

            async def __aexit__(self, *exc: object) -> None:
                return None

        return Hang()

    world.db.sessions = hanging_sessions
    started = time.perf_counter()
    for i in range(20):
        resp = await world.client.post(URL, data={"call_session_id": str(800 + i), "numa": CALLER})
        assert (await resp.json())["phones"][0] == "74950000001"
    assert (time.perf_counter() - started) / 20 < 0.05
    hang.set()


async def test_not_ready_and_wrong_secret(
    aiohttp_client: Any, sqlite_database: Database, control: Any, app_base: Any
) -> None:
    source = FakeSource(sqlite_database)
    app = make(sqlite_database, control, app_base, source)
    app.cleanup_ctx.clear()  # nothing loads: the view is never ready
    client = await aiohttp_client(app)
    resp = await client.post(URL, data={"call_session_id": "1", "numa": CALLER})
    assert (resp.status, await resp.json()) == (200, {"returned_code": 1})
    for method in ("get", "post"):
        resp = await client.request(method, "/webhooks/uis/wrong/route", data={"numa": CALLER})
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "unknown_webhook"


async def test_new_cases_are_seen_without_a_reload(world: Any) -> None:
    other = "79262220000"
    resp = await world.client.post(URL, data={"numa": other})
    assert await resp.json() == {"returned_code": 3}
    await seed_case(world.db, other, world.anna["id"], status="waiting")
    await until(lambda: world.service.affinity.caller(other))
    resp = await world.client.post(URL, data={"numa": other})
    assert (await resp.json())["phones"]


async def test_settings_api(world: Any, expect_error: Any) -> None:
    client = world.client
    resp = await client.get("/api/v1/routing", headers=ADMIN)
    answer = await resp.json()
    assert answer["route_url"].endswith(URL)
    assert {k: answer[k] for k in ("enabled", "open_case", "last_talked", "fallback_code")} == {
        "enabled": True,
        "open_case": True,
        "last_talked": True,
        "fallback_code": 3,
    }
    assert answer["view"]["loaded"] is True and answer["view"]["callers"] == 1
    for body in ({"fallback_code": 1001}, {"enabled": "yes"}, {"colour": 1}):
        resp = await client.put("/api/v1/routing", json=body, headers=ADMIN)
        await expect_error(resp, 422)
    await expect_error(await client.get("/api/v1/routing"), 401)
    resp = await client.put(
        "/api/v1/operators/501",
        json={"staff_id": world.anna["id"], "phones": ["abc"]},
        headers=ADMIN,
    )
    await expect_error(resp, 422, "invalid_phone")


async def test_stats_count_routed_and_reached(database: Database) -> None:
    """On SQLite and PostgreSQL: the period's routings and who answered them."""
    now = datetime.now(UTC)
    day = now - timedelta(days=3)
    rows = [
        {"call_session_id": 1, "at": now, "reason": "open_case_assignee", "staff_id": 10},
        {"call_session_id": 2, "at": now, "reason": "last_talked", "staff_id": 10},
        {"call_session_id": 3, "at": now, "reason": "no_free_agent", "returned_code": 1},
        {"call_session_id": 4, "at": day, "reason": "last_talked", "staff_id": 10},
    ]
    async with database.sessions() as session, session.begin():
        blank = {"staff_id": None, "returned_code": None, "details": {}, "phones": []}
        await store.save_decisions(session, [blank | r for r in rows])
        for call_id, talked in ((1, [[10, 30]]), (2, [[20, 30]]), (4, [[10, 5]])):
            session.add(Call(call_session_id=call_id, finalized=True, talked=talked, staff_ids=[]))
    async with database.sessions() as session:
        routed, talked, reasons = await store.routed_between(
            session, now - timedelta(hours=1), now + timedelta(hours=1)
        )
    assert routed == [(1, 10), (2, 10)]
    assert talked == {1: [10], 2: [20]}
    assert reasons == {"open_case_assignee": 1, "last_talked": 1, "no_free_agent": 1}


async def test_the_view_loads_and_follows_the_database(database: Database) -> None:
    """On SQLite and PostgreSQL: the full load, then deltas of cases, numbers and talks."""
    async with database.sessions() as session, session.begin():
        made = [await directory.create_staff(session, n, f"{n}@x.test") for n in "abc"]
    a, b, c = (staff.id for staff, _ in made)
    await seed_case(database, "79260000001", a)
    await seed_case(database, "79260000002", None)  # unassigned: nobody to ring
    async with database.sessions() as session:
        affinity, cursors = await store.load_affinity(session, datetime.now(UTC) - timedelta(1))
    assert affinity.caller("89260000001") == Caller(affinity.caller("79260000001").cases)  # type: ignore[union-attr]
    assert [link.assignee_id for link in affinity.caller("79260000001").cases] == [a]  # type: ignore[union-attr]
    assert affinity.caller("79260000002") is None
    case_id = await seed_case(database, "79260000003", b, status="waiting")
    assert affinity.caller("79260000003") is None  # not until the delta
    async with database.sessions() as session:
        assert await store.apply_delta(session, affinity, cursors) == 1
    assert [link.assignee_id for link in affinity.caller("79260000003").cases] == [b]  # type: ignore[union-attr]
    now = datetime.now(UTC)
    async with database.sessions() as session, session.begin():
        talked = [[b, 10], [c, 20]]
        session.add(
            Call(
                call_session_id=77,
                phone="+7 926 000-00-02",
                finalized=True,
                talked=talked,
                staff_ids=[],
                ended_at=now,
            )
        )
        await session.execute(update(Case).where(Case.id == case_id).values(status="closed"))
        session.add(CaseEvent(case_id=case_id, at=now, kind="status", status="closed"))
    async with database.sessions() as session:
        await store.apply_delta(session, affinity, cursors)
        await store.apply_calls(session, affinity, [77])
    assert affinity.caller("79260000003") is None  # its only case closed
    assert affinity.caller("79260000002") == Caller((), c)  # the last to talk in the call
