"""Reconciliation with the UIS Data API (issue 11 part 2) against the fake UIS over real HTTP:
the report client (every page, pieces UIS accepts, a piece halved when its rows pass UIS's
largest offset, the growing wait after `limit_exceeded`, key errors in words), the job's error
classes (no integration, an unreadable row, runs a stopped writer left), and the endpoints
(`POST/GET /api/v1/reconcile`, `GET/PUT /api/v1/reconcile/settings`: admin only, errors in
words), with the real `Reconciler` storing its repairs in the inbox, without Ray."""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from callrouter import dataapi
from callrouter.callapi import CallApiError
from callrouter.dataapi import DataApiReports, periods
from callrouter.domain.notifications import Kind, Notification
from callrouter.http import reconcile as endpoints
from callrouter.http.keys import CLUSTER
from callrouter.reconciler import HttpReports, Reconciler
from callrouter.storage import directory, inbox
from callrouter.storage import reconcile as store
from callrouter.storage.engine import Database
from callrouter.storage.inbox import Incoming
from callrouter.storage.local import LocalStore
from callrouter.testing import uis_bodies as ub
from callrouter.testing.fake_uis import FakeUis, reports_from_stream

MSK = ZoneInfo("Europe/Moscow")
KEY = "reconcile-key"
ADMIN = {"Authorization": "Bearer admin-secret"}
DAY = datetime(2026, 11, 2, tzinfo=MSK)
Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def fake() -> AsyncIterator[FakeUis]:
    async with FakeUis(access_token=KEY) as running:
        yield running


def _calls(n: int) -> list[list[ub.Event]]:
    rng = random.Random(7)
    start = DAY.replace(tzinfo=None, hour=10)
    return [
        ub.incoming_answered(
            900 + i, start + timedelta(minutes=10 * i), "79260000001", 401, rng=rng
        )
        for i in range(n)
    ]


def _fill(fake: FakeUis, calls: list[list[ub.Event]]) -> list[bytes]:
    bodies = [ub.encode(b) for events in calls for _, b in events]
    fake.call_rows, fake.leg_rows = reports_from_stream(bodies, MSK)
    return bodies


# -- the report client ----------------------------------------------------------------------


async def test_reports_read_every_page_of_the_period_asked_in_the_accounts_time(
    fake: FakeUis,
) -> None:
    _fill(fake, _calls(5))
    async with aiohttp.ClientSession() as http:
        reports = DataApiReports(http, fake.data_url, KEY, page=2)
        calls = await reports.calls_report(DAY, DAY + timedelta(days=1), MSK)
        legs = await reports.call_legs_report(DAY, DAY + timedelta(days=1), MSK)
    assert sorted(c["id"] for c in calls) == [900, 901, 902, 903, 904]
    assert sorted(g["direction"] for g in legs) == ["in"] * 5 + ["out"] * 5  # the caller's own too
    asked = [r["params"] for r in fake.requests if r["method"] == "get.calls_report"]
    assert [p["offset"] for p in asked] == [0, 2, 4]
    assert asked[0]["date_from"] == "2026-11-02 00:00:00"
    assert asked[0]["date_till"] == "2026-11-02 23:59:59"  # UIS's end is inclusive
    assert "finish_time" in asked[0]["fields"]


async def test_a_piece_with_more_rows_than_uis_pages_through_is_halved(
    fake: FakeUis, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(fake, _calls(6))
    monkeypatch.setattr(dataapi, "MAX_OFFSET", 2)
    async with aiohttp.ClientSession() as http:
        reports = DataApiReports(http, fake.data_url, KEY, page=1)
        calls = await reports.calls_report(DAY, DAY + timedelta(days=1), MSK)
    assert sorted(c["id"] for c in calls) == list(range(900, 906))  # none lost, none twice
    froms = {r["params"]["date_from"] for r in fake.requests}
    assert len(froms) > 1  # asked in smaller pieces


def test_a_long_period_is_asked_in_pieces_uis_accepts() -> None:
    cuts = periods(DAY, DAY + timedelta(days=200))
    assert cuts[0] == (DAY, DAY + timedelta(days=90))
    assert cuts[-1][1] == DAY + timedelta(days=200)
    assert all(b == c for (_, b), (c, _) in itertools.pairwise(cuts))


async def test_limit_exceeded_is_waited_out_with_a_growing_wait(fake: FakeUis) -> None:
    _fill(fake, _calls(1))
    fake.fail_next("limit_exceeded")
    fake.fail_next("limit_exceeded")
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    async with aiohttp.ClientSession() as http:
        reports = DataApiReports(http, fake.data_url, KEY, limit_backoff=3.0, sleep=sleep)
        calls = await reports.calls_report(DAY, DAY + timedelta(days=1), MSK)
    assert [c["id"] for c in calls] == [900]
    assert waits == [3.0, 6.0]


async def test_a_key_uis_refuses_is_one_error_in_words_not_retried(fake: FakeUis) -> None:
    async with aiohttp.ClientSession() as http:
        reports = DataApiReports(http, fake.data_url, "not-the-key")
        with pytest.raises(CallApiError) as caught:
            await reports.calls_report(DAY, DAY + timedelta(days=1), MSK)
    assert caught.value.code == "access_token_invalid"
    assert "key" in caught.value.message.lower()
    assert len(fake.requests) == 1


# -- the job --------------------------------------------------------------------------------


class Job:
    """The real reconciler over a database, storing repairs in the inbox (as the writer's
    ingest does first), with the fake's Data API."""

    def __init__(self, db: Database, fake: FakeUis) -> None:
        self.db = db
        self.stored: list[Notification] = []
        self.reconciler = Reconciler(
            db,
            LocalStore(db).run,
            self.ingest,
            lambda i: HttpReports(fake.data_url, i.api_key, limit_backoff=0.01),
            now=lambda: DAY + timedelta(days=1),
        )

    async def ingest(self, items: list[tuple[bytes, Notification, datetime]]) -> list[int | None]:
        self.stored += [n for _, n, _ in items]
        async with self.db.writing() as conn:
            return await inbox.insert_bodies(
                conn, [Incoming(raw, n.call_session_id, at) for raw, n, at in items]
            )

    async def run(self) -> Any:
        run_id = await self.reconciler.request(DAY, DAY + timedelta(days=1))
        await self.reconciler.wait()
        async with self.db.sessions() as session:
            rows, _ = await store.list_runs(session, 50, 0)
        return next(r for r in rows if r.id == run_id)


async def _integrate(db: Database, key: str = KEY) -> None:
    async with db.sessions() as session, session.begin():
        await directory.save_integration(session, key, "74950000000")


async def test_the_job_repairs_once_and_then_finds_nothing(
    sqlite_database: Database, fake: FakeUis
) -> None:
    calls = _calls(2)
    bodies = _fill(fake, calls)
    await _integrate(sqlite_database)
    job = Job(sqlite_database, fake)
    first = await job.run()
    assert first.status == "done", first.error
    assert first.counts == {
        **{k.value: 2 for k in Kind if k is not Kind.OUTGOING_CALL},
        "whole_calls": 2,
    }
    assert len(first.body_hashes) == len(bodies) == len(job.stored)
    second = await job.run()
    assert (second.status, second.counts, second.repairs) == ("done", {}, [])


async def test_the_jobs_errors_are_in_words(sqlite_database: Database, fake: FakeUis) -> None:
    job = Job(sqlite_database, fake)
    unset = await job.run()
    assert (unset.status, unset.error_code) == ("failed", "integration_not_configured")
    await _integrate(sqlite_database, "wrong-key")
    refused = await job.run()
    assert (refused.status, refused.error_code) == ("failed", "access_token_invalid")
    assert "key" in refused.error.lower()
    await _integrate(sqlite_database)
    _fill(fake, _calls(1))
    fake.call_rows[0]["finish_time"] = "soon"
    bad = await job.run()
    assert (bad.status, bad.error_code) == ("failed", "uis_bad_response")
    assert "cannot read" in bad.error


async def test_runs_a_stopped_writer_left_are_marked_interrupted(
    sqlite_database: Database, fake: FakeUis
) -> None:
    run = LocalStore(sqlite_database).run
    left = await run(store.create_run, "schedule", DAY, DAY + timedelta(hours=6), DAY)
    job = Job(sqlite_database, fake)
    assert await job.reconciler.prepare() == 1
    async with sqlite_database.sessions() as session:
        [row], _ = await store.list_runs(session, 1, 0)
    assert (row.id, row.status, row.error_code) == (left, "failed", "interrupted")


# -- the endpoints --------------------------------------------------------------------------


class ClusterDouble:
    """What the endpoints ask of the cluster: the job runs here, in this process."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.held = 0

    async def reconcile(self, start: datetime, end: datetime, url: str | None = None) -> int:
        run_id: int = await self.job.reconciler.request(start, end, "admin")
        return run_id

    async def reconcile_held(self) -> int:
        return self.held


@pytest.fixture
async def client(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
    sqlite_database: Database,
    control: Any,
    app_base: Callable[[Database, Any], web.Application],
    fake: FakeUis,
) -> Client:
    app = app_base(sqlite_database, control)
    app[CLUSTER] = ClusterDouble(Job(sqlite_database, fake))  # type: ignore[assignment]
    app.add_routes(endpoints.routes)
    return await aiohttp_client(app)


async def test_settings_are_admin_only_checked_and_reach_the_shards(
    client: Client, control: Any, sqlite_database: Database
) -> None:
    assert (await client.get("/api/v1/reconcile/settings")).status == 401
    got = await (await client.get("/api/v1/reconcile/settings", headers=ADMIN)).json()
    assert got == {
        "enabled": False,  # the admin turns it on
        "interval_seconds": 600,
        "lookback_seconds": 21600,
        "margin_seconds": 120,
        "hold_seconds": 0,  # off: no run will come, nothing is held
    }
    resp = await client.put("/api/v1/reconcile/settings", json={"enabled": True}, headers=ADMIN)
    assert (await resp.json())["hold_seconds"] == 0  # no integration: still nothing is held
    await _integrate(sqlite_database)
    resp = await client.put(
        "/api/v1/reconcile/settings", json={"interval_seconds": 300}, headers=ADMIN
    )
    assert resp.status == 200
    assert (await resp.json())["hold_seconds"] == 300 + 120 + 60
    assert control.changes == 2
    bad = await client.put("/api/v1/reconcile/settings", json={"margin_seconds": 5}, headers=ADMIN)
    assert bad.status == 422
    assert "margin_seconds" in (await bad.json())["error"]["message"]


async def test_a_run_on_demand_is_queued_listed_and_explained(
    client: Client, fake: FakeUis, sqlite_database: Database
) -> None:
    period = {"from": "2026-11-02", "to": "2026-11-03"}
    unset = await client.post("/api/v1/reconcile", json=period, headers=ADMIN)
    assert (unset.status, (await unset.json())["error"]["code"]) == (
        409,
        "integration_not_configured",
    )
    await _integrate(sqlite_database)
    for body, code in (
        ({"from": "2026-11-03", "to": "2026-11-02"}, "invalid_period"),
        ({"from": "2026-01-01", "to": "2026-06-01"}, "period_too_long"),
        ({"from": "someday", "to": "2026-06-01"}, "invalid_period"),
    ):
        resp = await client.post("/api/v1/reconcile", json=body, headers=ADMIN)
        assert (resp.status, (await resp.json())["error"]["code"]) == (422, code)
    _fill(fake, _calls(1))
    resp = await client.post("/api/v1/reconcile", json=period, headers=ADMIN)
    assert resp.status == 202
    queued = await resp.json()
    assert queued["status"] == "queued"
    await client.app[CLUSTER].job.reconciler.wait()  # type: ignore[attr-defined]
    listed = await (await client.get("/api/v1/reconcile?limit=1", headers=ADMIN)).json()
    assert (listed["total"], listed["held_calls"]) == (1, 0)
    [run] = listed["items"]
    assert (run["id"], run["status"], run["trigger"]) == (queued["id"], "done", "admin")
    assert run["from"] == "2026-11-02T00:00:00+03:00"
    assert [r["kind"] for r in run["repairs"]] == [
        "leg_start",
        "answer",
        "leg_end",
        "call_end",
        "recording",
    ]
    assert all(r["whole_call"] and r["stored"] for r in run["repairs"])
    assert run["repairs"][0]["at"].endswith("+03:00")
    assert (await client.get("/api/v1/reconcile", headers=ADMIN)).status == 200
    assert (await client.post("/api/v1/reconcile", json=period)).status == 401
