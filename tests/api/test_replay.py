"""The replay tool against a tiny stub of the service: setup, delivery, order, retries, report.

The stub answers webhooks after a random few milliseconds, so a replayer that let two
notifications of one call overlap would show them out of order; it also counts such overlaps
outright. Sender processes (`processes=`) are real spawned processes posting to the stub in
this test process; pipelining is checked against a raw server that sees what is queued.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import random
import socket
import sys
import time
from array import array
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
    active: set[int] = field(default_factory=set)  # calls with a request being handled
    overlaps: int = 0  # requests of a call that arrived while another of it was handled
    arrivals: list[float] = field(default_factory=list)  # time.monotonic() of each post
    slow: set[int] = field(default_factory=set)  # call ids answered after `slow_seconds`
    slow_seconds: float = 0.0
    close_every: int = 0  # every Nth webhook answer closes its connection (Connection: close)
    hangs: int = 0  # webhook requests that never get a useful answer (the client must time out)
    handled: int = 0

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
        call = doc["call_info"]["call_session_id"]
        if call in self.active:
            self.overlaps += 1
        self.active.add(call)
        try:
            return await self._answer(request, doc, call)
        finally:
            self.active.discard(call)

    async def _answer(
        self, request: web.Request, doc: dict[str, Any], call: int
    ) -> web.StreamResponse:
        self.handled += 1
        if self.hangs:
            self.hangs -= 1
            await asyncio.sleep(5)  # the client gives up first; this one is not recorded
            return web.Response(status=504)
        if self.drops:
            self.drops -= 1
            assert request.transport is not None
            request.transport.close()  # the client sees a dropped connection
            return web.Response()
        if self.scripted:
            status, headers = self.scripted.pop(0)
            return web.json_response({"error": {"code": "busy"}}, status=status, headers=headers)
        await asyncio.sleep(
            self.rng.uniform(0, 0.003) + (self.slow_seconds if call in self.slow else 0)
        )
        if call in self.reject:
            return web.json_response({"error": {"code": "bad"}}, status=422)
        self.posts.append(doc)
        self.arrivals.append(time.monotonic())
        response = web.json_response({"ok": True})
        if self.close_every and self.handled % self.close_every == 0:
            response.force_close()  # what was pipelined behind it is never handled
        return response


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
    assert stub.overlaps == 0  # never two of one call at the same time


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


# --- several sender processes, pipelining, timeouts ---------------------------------------------


async def test_processes_keep_each_calls_order(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    stub = Stub()
    url = await _serve(aiohttp_server, stub)
    path, bodies = _traffic(tmp_path, 60)
    report = await rp.replay(
        str(path), url, None, 6, admin_token=ADMIN, progress=False, processes=3, pipeline=4
    )
    _assert_delivered(stub, bodies)
    _assert_consistent(report, len(bodies))
    assert report.errors == {} and report.retries == 0
    assert (report.processes, report.connections, report.pipeline) == (3, 6, 4)
    assert report.staff_created == len(rp.employees_in(bodies))  # setup ran once, in the parent
    assert "client: 3 process(es), 6 connections, pipeline 4" in report.lines()


async def test_processes_count_every_retry(aiohttp_server: ServerFactory, tmp_path: Path) -> None:
    stub = Stub(scripted=[(503, {"Retry-After": "0"})] * 4, drops=2)
    url = await _serve(aiohttp_server, stub)
    path, bodies = _traffic(tmp_path, 12)
    report = await rp.replay(
        str(path), url, None, 4, admin_token=ADMIN, max_retries=10, progress=False, processes=2
    )
    _assert_delivered(stub, bodies)
    assert report.retries == 6 and report.errors == {} and report.ok == len(bodies)


async def test_processes_merge_their_latencies(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    path, bodies = _traffic(tmp_path, 40)
    calls = list(_by_call(bodies))
    # Calls are dealt out to the senders in order of first appearance: these all go to one.
    stub = Stub(slow=set(calls[::6]), slow_seconds=0.1)
    url = await _serve(aiohttp_server, stub)
    report = await rp.replay(
        str(path), url, None, 8, admin_token=ADMIN, progress=False, processes=2
    )
    _assert_delivered(stub, bodies)
    _assert_consistent(report, len(bodies))
    assert report.p50_ms < 100 <= report.max_ms  # the slow sender's and the fast one's figures


def test_outcomes_merge_into_one_distribution() -> None:
    fast = rp._Outcome({"200": 3}, 1, array("d", [1.0, 2.0, 3.0]).tobytes(), 10.5)
    slow = rp._Outcome({"200": 1, "422": 1}, 2, array("d", [40.0, 50.0]).tobytes(), 12.0)
    statuses, retries, latencies, elapsed = rp._merge([fast, slow], start=10.0)
    assert statuses == {"200": 4, "422": 1} and retries == 3
    assert latencies == [1.0, 2.0, 3.0, 40.0, 50.0] and elapsed == 2.0


async def test_rate_paces_the_file_order_across_processes(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    stub = Stub()
    url = await _serve(aiohttp_server, stub)
    path, bodies = _traffic(tmp_path, 12)
    rate = 150.0
    report = await rp.replay(
        str(path), url, rate, 8, admin_token=ADMIN, progress=False, processes=2, pipeline=4
    )
    _assert_delivered(stub, bodies)
    _assert_consistent(report, len(bodies))
    assert report.elapsed_seconds >= 0.9 * (len(bodies) - 1) / rate
    assert report.throughput <= rate * 1.1
    # Together, not each: by any moment the two senders have posted no more than the schedule.
    first = stub.arrivals[0]
    for count, at in enumerate(stub.arrivals):
        assert at - first >= count / rate - 0.1, count


async def test_a_connection_closed_under_a_pipeline_retries_what_it_carried(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    stub = Stub(drops=1, close_every=7)
    url = await _serve(aiohttp_server, stub)
    path, bodies = _traffic(tmp_path, 20)
    report = await rp.replay(str(path), url, None, 2, admin_token=ADMIN, progress=False, pipeline=8)
    _assert_delivered(stub, bodies)  # each exactly once and in order, despite the lost pipelines
    assert report.errors == {} and report.ok == len(bodies)
    assert report.retries >= 1


async def test_a_request_past_the_timeout_is_retried(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    stub = Stub(hangs=1)
    url = await _serve(aiohttp_server, stub)
    path, bodies = _traffic(tmp_path, 3)
    report = await rp.replay(
        str(path), url, None, 4, admin_token=ADMIN, progress=False, timeout=0.3
    )
    _assert_delivered(stub, bodies)
    assert report.retries == 1 and report.errors == {}


async def test_an_unreachable_service_ends_in_connection_errors(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    path, bodies = _traffic(tmp_path, 3)
    report = await rp.replay(
        str(path),
        f"http://127.0.0.1:{port}",
        None,
        4,
        setup=False,
        webhook_path="/webhooks/uis/x",
        max_retries=1,
        progress=False,
    )
    assert report.errors == {"connection": len(bodies)} and report.ok == 0
    assert report.retries == len(bodies)  # each tried twice


class PipelineWitness(asyncio.Protocol):
    """A raw HTTP/1.1 server answering in order after a pause; it records how many requests
    were queued on a connection at once and whether two of them belonged to one call."""

    depths: list[int]
    same_call: list[int]

    def __init__(self) -> None:
        self.buffer = b""
        self.queued: list[int] = []  # the calls of requests not yet answered, oldest first
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end].lower()
            start = head.index(b"content-length:") + len(b"content-length:")
            length = int(head[start:].split(b"\r\n")[0])
            if len(self.buffer) < end + 4 + length:
                return
            body, self.buffer = (
                self.buffer[end + 4 : end + 4 + length],
                self.buffer[end + 4 + length :],
            )
            call = orjson.loads(body)["call_info"]["call_session_id"]
            if call in self.queued:
                self.same_call.append(call)
            self.queued.append(call)
            self.depths.append(len(self.queued))
            asyncio.get_running_loop().call_later(0.005, self.answer)

    def answer(self) -> None:
        self.queued.pop(0)
        assert self.transport is not None
        if not self.transport.is_closing():
            ok = b'{"ok": true}'
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(ok), ok))


async def test_pipelining_queues_different_calls_on_one_connection(tmp_path: Path) -> None:
    PipelineWitness.depths, PipelineWitness.same_call = [], []
    server = await asyncio.get_running_loop().create_server(PipelineWitness, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    path, bodies = _traffic(tmp_path, 30)
    try:
        report = await rp.replay(
            str(path),
            f"http://127.0.0.1:{port}",
            None,
            1,
            setup=False,
            webhook_path="/webhooks/uis/x",
            progress=False,
            pipeline=4,
            lateness=None,  # this compressed traffic would otherwise be held by its UIS time
        )
    finally:
        server.close()
        await server.wait_closed()
    assert report.ok == len(bodies) and report.connections == 1
    assert max(PipelineWitness.depths) == 4  # it does pipeline, never deeper than asked
    assert PipelineWitness.same_call == []  # and never two of one call in the pipe


# --- the response parser ------------------------------------------------------------------------


def test_parser_takes_responses_split_anywhere() -> None:
    ok = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n{"ok":1}'
    busy = b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 2\r\ncontent-length: 0\r\n\r\n"
    stream = ok + busy + ok
    for cut in range(1, len(stream)):
        parser = rp.ResponseParser()
        answers = parser.feed(stream[:cut]) + parser.feed(stream[cut:])
        assert [a.status for a in answers] == [200, 503, 200], cut
        assert answers[1].retry_after == "2" and not any(a.close for a in answers)


def test_parser_handles_chunked_interim_bodiless_and_closing_answers() -> None:
    parser = rp.ResponseParser()
    chunked = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 422 Unprocessable\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n3;ext=1\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n"
        b"HTTP/1.1 204 No Content\r\n\r\n"
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"
    )
    assert [(a.status, a.close) for a in parser.feed(chunked)] == [
        (422, False),
        (204, False),
        (200, True),
    ]
    assert parser.feed(b"HTTP/1.0 200 OK\r\n\r\nbody until the end") == []
    assert parser.eof() == [rp.Answer(200, None, True)]
    with pytest.raises(rp.ProtocolError):
        rp.ResponseParser().feed(b"SSH-2.0-OpenSSH\r\n\r\n")


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


# --- the UIS-time window ------------------------------------------------------------------------


class SlowCallWitness(asyncio.Protocol):
    """A raw HTTP/1.1 server that answers one call's notifications only after a second, and
    records, for every request, its UIS time and the UIS times still unanswered then."""

    slow_call: int
    seen: list[tuple[float, list[float]]]
    open_times: list[float]

    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.pending: list[float] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end].lower()
            start = head.index(b"content-length:") + len(b"content-length:")
            length = int(head[start:].split(b"\r\n")[0])
            if len(self.buffer) < end + 4 + length:
                return
            body = orjson.loads(self.buffer[end + 4 : end + 4 + length])
            self.buffer = self.buffer[end + 4 + length :]
            at = rp._event_time(body, 0.0)
            SlowCallWitness.seen.append((at, list(SlowCallWitness.open_times)))
            SlowCallWitness.open_times.append(at)
            delay = 1.0 if body["call_info"]["call_session_id"] == self.slow_call else 0.001
            self.pending.append(at)
            asyncio.get_running_loop().call_later(delay, self.answer)

    def answer(self) -> None:
        at = self.pending.pop(0)
        SlowCallWitness.open_times.remove(at)
        assert self.transport is not None
        if not self.transport.is_closing():
            ok = b'{"ok": true}'
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(ok), ok))


@pytest.mark.parametrize("processes", [1, 2])
async def test_a_compressed_replay_stays_within_the_lateness_in_uis_time(
    tmp_path: Path, processes: int
) -> None:
    """With `lateness` W, no notification is sent while one earlier by more than W in UIS time
    is unanswered — here one slow call holds everything later than it by W, in every sender
    process — so the service sees the disorder UIS could cause, not more."""
    path, bodies = _traffic(tmp_path, 40)
    SlowCallWitness.slow_call = rp._call_id(bodies[len(bodies) // 3])
    SlowCallWitness.seen, SlowCallWitness.open_times = [], []
    server = await asyncio.get_running_loop().create_server(SlowCallWitness, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        report = await rp.replay(
            str(path),
            f"http://127.0.0.1:{port}",
            None,
            8,
            setup=False,
            webhook_path="/webhooks/uis/x",
            progress=False,
            processes=processes,
            lateness=5.0,
        )
    finally:
        server.close()
        await server.wait_closed()
    assert report.ok == len(bodies)
    assert all(at <= min(open_, default=at) + 5.0 for at, open_ in SlowCallWitness.seen)
    assert any(open_ and at > min(open_) for at, open_ in SlowCallWitness.seen)  # not serial
