"""The replay tool against a tiny stub of the service: setup, delivery, order, retries, report.

The stub answers webhooks after a random few milliseconds, so a replayer that let two
notifications of one call overlap would show them out of order.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import random
import sys
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from callrouter import replay as rp

ADMIN = "admin-token"
SECRET = "s3cret"
ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


def _load_generator() -> ModuleType:
    # bench/ is scripts, not a package: load the generator from its file.
    path = Path(__file__).resolve().parents[2] / "bench" / "generate_traffic.py"
    spec = importlib.util.spec_from_file_location("generate_traffic", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickling look modules up here
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


@dataclass
class Stub:
    """The service's admin endpoints and webhook, recording what arrives."""

    staff: list[dict[str, Any]] = field(default_factory=list)
    operators: dict[int, int | None] = field(default_factory=dict)
    posts: list[dict[str, Any]] = field(default_factory=list)
    # Answers given before normal handling, one per webhook request: (status, headers).
    scripted: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    drops: int = 0  # webhook requests whose connection is closed without an answer
    reject: set[int] = field(default_factory=set)  # call ids answered 422
    admin_calls: int = 0
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_put("/api/v1/integrations/uis", self.integration)
        app.router.add_post("/api/v1/staff", self.create_staff)
        app.router.add_get("/api/v1/staff", self.list_staff)
        app.router.add_put("/api/v1/operators/{employee_id}", self.map_operator)
        app.router.add_post("/webhooks/uis/{secret}", self.webhook)
        return app

    def _admin(self, request: web.Request) -> None:
        self.admin_calls += 1
        if request.headers.get("Authorization") != f"Bearer {ADMIN}":
            raise web.HTTPUnauthorized()

    async def integration(self, request: web.Request) -> web.Response:
        self._admin(request)
        doc = await request.json()
        return web.json_response(
            {
                "webhook_path": f"/webhooks/uis/{SECRET}",
                "virtual_phone_number": doc["virtual_phone_number"],
                "call_api_url": "https://callapi.uiscom.ru/v4.0",
            }
        )

    async def create_staff(self, request: web.Request) -> web.Response:
        self._admin(request)
        doc = await request.json()
        person = {"id": len(self.staff) + 1, "full_name": doc["full_name"], "email": doc["email"]}
        self.staff.append(person)
        return web.json_response({**person, "token": f"t{person['id']}"}, status=201)

    async def list_staff(self, request: web.Request) -> web.Response:
        self._admin(request)
        limit = int(request.query.get("limit", 50))
        offset = int(request.query.get("offset", 0))
        page = self.staff[offset : offset + limit]
        return web.json_response({"items": page, "total": len(self.staff)})

    async def map_operator(self, request: web.Request) -> web.Response:
        self._admin(request)
        employee_id = int(request.match_info["employee_id"])
        self.operators[employee_id] = (await request.json())["staff_id"]
        return web.json_response(
            {"employee_id": employee_id, "staff_id": self.operators[employee_id]}
        )

    async def webhook(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["secret"] != SECRET:
            raise web.HTTPNotFound()
        doc = orjson.loads(await request.read())
        if self.drops:
            self.drops -= 1
            assert request.transport is not None
            request.transport.close()  # the client sees a dropped connection
            return web.Response()
        if self.scripted:
            status, headers = self.scripted.pop(0)
            return web.json_response({"error": {"code": "busy"}}, status=status, headers=headers)
        await asyncio.sleep(self.rng.uniform(0, 0.003))
        if doc["call_info"]["call_session_id"] in self.reject:
            return web.json_response({"error": {"code": "bad"}}, status=422)
        self.posts.append(doc)
        return web.json_response({"ok": True})


def _traffic(tmp_path: Path, calls: int, seed: int = 3) -> tuple[Path, list[dict[str, Any]]]:
    path = tmp_path / "traffic.jsonl"
    with path.open("wb") as out:
        gen.write_jsonl(gen.generate(calls, seed, employees=4), out)
    bodies = [orjson.loads(line)["body"] for line in path.read_bytes().splitlines()]
    return path, bodies


def _by_call(bodies: list[dict[str, Any]]) -> dict[int, list[bytes]]:
    calls: dict[int, list[bytes]] = defaultdict(list)
    for doc in bodies:
        calls[doc["call_info"]["call_session_id"]].append(orjson.dumps(doc))
    return calls


async def _serve(aiohttp_server: ServerFactory, stub: Stub) -> str:
    server = await aiohttp_server(stub.app())
    return str(server.make_url("/"))


def _assert_delivered(stub: Stub, bodies: list[dict[str, Any]]) -> None:
    sent = Counter(orjson.dumps(doc) for doc in bodies)
    got = Counter(orjson.dumps(doc) for doc in stub.posts)
    assert got == sent  # every notification exactly once
    assert _by_call(stub.posts) == _by_call(bodies)  # and each call's in file order


def _assert_consistent(report: rp.ReplayReport, count: int) -> None:
    assert report.sent == report.ok + sum(report.errors.values()) == count
    assert report.elapsed_seconds > 0
    assert report.throughput == pytest.approx(report.sent / report.elapsed_seconds)
    assert 0 < report.p50_ms <= report.p90_ms <= report.p99_ms <= report.max_ms


async def test_replay_sets_up_and_delivers_each_call_in_order(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    stub = Stub()
    url = await _serve(aiohttp_server, stub)
    path, bodies = _traffic(tmp_path, 50)
    report = await rp.replay(str(path), url, None, 8, admin_token=ADMIN, progress=False)
    _assert_delivered(stub, bodies)
    _assert_consistent(report, len(bodies))
    assert report.errors == {} and report.retries == 0
    assert report.webhook_path == f"/webhooks/uis/{SECRET}"
    employees = rp.employees_in(bodies)
    assert set(employees) <= set(range(1001, 1005)) and employees
    assert report.staff_created == report.operators_mapped == len(employees)
    by_email = {s["email"]: s for s in stub.staff}
    for employee_id, name in employees.items():
        person = by_email[rp.staff_email(employee_id)]
        assert person["full_name"] == name
        assert stub.operators[employee_id] == person["id"]


async def test_second_replay_reuses_the_staff_it_created(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    stub = Stub()
    url = await _serve(aiohttp_server, stub)
    path, bodies = _traffic(tmp_path, 10)
    await rp.replay(str(path), url, None, admin_token=ADMIN, progress=False)
    again = await rp.replay(str(path), url, None, admin_token=ADMIN, progress=False)
    assert again.staff_created == 0 and again.operators_mapped == len(stub.staff)
    assert len(stub.posts) == 2 * len(bodies)  # the service, not the replayer, drops duplicates


async def test_rate_paces_the_file_order(aiohttp_server: ServerFactory, tmp_path: Path) -> None:
    stub = Stub()
    url = await _serve(aiohttp_server, stub)
    path, bodies = _traffic(tmp_path, 8)
    rate = 200.0
    report = await rp.replay(str(path), url, rate, 16, admin_token=ADMIN, progress=False)
    _assert_delivered(stub, bodies)
    _assert_consistent(report, len(bodies))
    assert report.elapsed_seconds >= 0.9 * (len(bodies) - 1) / rate
    assert report.throughput <= rate * 1.1


async def test_503_is_retried_after_retry_after(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    stub = Stub(scripted=[(503, {"Retry-After": "1"})])
    url = await _serve(aiohttp_server, stub)
    path, bodies = _traffic(tmp_path, 3)
    report = await rp.replay(str(path), url, None, 4, admin_token=ADMIN, progress=False)
    _assert_delivered(stub, bodies)
    assert report.retries == 1 and report.errors == {} and report.ok == len(bodies)
    assert report.elapsed_seconds >= 1.0


async def test_dropped_connection_is_retried(aiohttp_server: ServerFactory, tmp_path: Path) -> None:
    stub = Stub(drops=2)
    url = await _serve(aiohttp_server, stub)
    path, bodies = _traffic(tmp_path, 3)
    report = await rp.replay(str(path), url, None, 4, admin_token=ADMIN, progress=False)
    _assert_delivered(stub, bodies)
    assert report.retries == 2 and report.errors == {}


async def test_final_errors_are_counted_by_status(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    path, bodies = _traffic(tmp_path, 6)
    calls = _by_call(bodies)
    rejected = list(calls)[1]  # not the first call, whose first notification meets the 503s
    stub = Stub(scripted=[(503, {"Retry-After": "0"})] * 3, reject={rejected})
    url = await _serve(aiohttp_server, stub)
    report = await rp.replay(
        str(path), url, None, 1, admin_token=ADMIN, max_retries=2, progress=False
    )
    # With one request in flight the first notification meets all three 503s: 2 retries, then
    # it gives up; the rejected call's notifications get 422 and are not retried.
    assert report.retries == 2
    assert report.errors == {"503": 1, "422": len(calls[rejected])}
    _assert_consistent(report, len(bodies))


async def test_without_setup_posts_straight_to_the_given_path(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    stub = Stub()
    url = await _serve(aiohttp_server, stub)
    path, bodies = _traffic(tmp_path, 5)
    report = await rp.replay(
        str(path), url, None, setup=False, webhook_path=f"/webhooks/uis/{SECRET}", progress=False
    )
    _assert_delivered(stub, bodies)
    assert stub.admin_calls == 0 and report.staff_created == 0


async def test_replay_refuses_to_start_without_what_it_needs(
    aiohttp_server: ServerFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(rp.ADMIN_TOKEN_ENV, raising=False)
    url = await _serve(aiohttp_server, Stub())
    path, _ = _traffic(tmp_path, 2)
    with pytest.raises(rp.ReplayError, match="webhook path"):
        await rp.replay(str(path), url, None, setup=False, progress=False)
    with pytest.raises(rp.ReplayError, match="admin token"):
        await rp.replay(str(path), url, None, progress=False)
    with pytest.raises(rp.ReplayError, match="401"):
        await rp.replay(str(path), url, None, admin_token="wrong", progress=False)
    with pytest.raises(rp.ReplayError, match="cannot read"):
        await rp.replay(str(tmp_path / "missing.jsonl"), url, None, progress=False)


async def test_command_line_prints_the_report(
    aiohttp_server: ServerFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stub = Stub()
    url = await _serve(aiohttp_server, stub)
    path, bodies = _traffic(tmp_path, 5)
    monkeypatch.setenv(rp.ADMIN_TOKEN_ENV, ADMIN)  # the token from the environment
    parser = argparse.ArgumentParser()
    rp.add_arguments(parser)
    args = parser.parse_args([str(path), "--url", url, "--concurrency", "4", "--no-progress"])
    # run() owns an event loop (asyncio.run), so it cannot run on the test's loop.
    assert await asyncio.to_thread(rp.run, args) == 0
    out = capsys.readouterr().out
    assert f"sent {len(bodies)} notifications" in out and "p99" in out
    _assert_delivered(stub, bodies)


# --- the generator that feeds the replay --------------------------------------------------------


def test_generator_is_sorted_deterministic_and_mixed() -> None:
    counts: Counter[str] = Counter()
    lines = list(gen.generate(400, 11, employees=5, counts=counts))
    assert lines == list(gen.generate(400, 11, employees=5))
    times = [line["t"] for line in lines]
    assert times == sorted(times) and 0.0 <= times[0] < 60.0
    assert counts["notifications"] == len(lines)
    assert sum(counts[kind] for kind in gen.MIX) == 400
    for kind, percent in gen.MIX.items():
        assert abs(counts[kind] / 400 - percent / 100) < 0.06, kind
    employees = {line["body"]["employee_info"]["employee_id"] for line in lines} - {None}
    assert employees <= set(range(1001, 1006))
    external = {line["body"]["external_id"] for line in lines} - {None}
    assert external and all(e.startswith("bench-") for e in external)


def test_generator_calls_overlap_and_callers_repeat() -> None:
    lines = list(gen.generate(400, 11, employees=5))
    spans: dict[int, list[float]] = {}
    phones: dict[int, str] = {}
    for line in lines:
        doc = line["body"]
        call = doc["call_info"]["call_session_id"]
        spans.setdefault(call, [line["t"], line["t"]])[1] = line["t"]
        phones[call] = doc["contact_info"]["contact_phone_number"]
    assert len(spans) == 400
    events = sorted([(a, 1) for a, _ in spans.values()] + [(b, -1) for _, b in spans.values()])
    live = peak = 0
    for _, step in events:
        live += step
        peak = max(peak, live)
    assert peak >= 10  # about calls/20 live at once by default
    assert max(Counter(phones.values()).values()) >= 3
