"""The same recorded traffic, replayed fast or slowly, ends in the same cases (R32, STYLE 12).

Two fresh services of this module's own get one generated file: one as fast as the replay
client goes (calls interleave, so notifications arrive minutes to hours late in event time,
since the whole day is sent in seconds), the other slowly and one request at a time, in the
file's order, which is the order UIS sent them in. Once both have processed everything, every
case — subject, status, icon, assignee, user, messages with their calls and recordings — must
be the same (`callrouter.testing.fingerprint`). Only correctness is asserted, never timings;
a failure prints, per user, how the cases differ and how late each service got notifications.

The traffic is a compressed day (`generate_day` with a few seats): repeat callers, missed calls
grouped per user (R16), call-backs from the softphone and from a case, transfers (R13),
recordings after the call end and UIS's resends.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sqlite3
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from itertools import accumulate
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import orjson
import pytest

from callrouter.replay import replay
from callrouter.testing import fingerprint

if TYPE_CHECKING:
    from tests.e2e.conftest import Api, ServiceProcess

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SEATS = 3
CALLS_PER_SEAT_HOUR = 10.0  # a few hundred calls in all, few of them lost in the queue
SEED = 5
FAST_CONCURRENCY = 64
SLOW_RATE = 100.0  # notifications/s at most
SLOW_CONCURRENCY = 1  # one request at a time: the service gets exactly the file's order
# The account setting that bounds how late a notification may come (the service decides a
# call that long after its end); small, so the last calls are decided soon.
LATENESS_SECONDS = 2
SETTLE_TIMEOUT = 300.0
STABLE_SECONDS = 3.0  # the cases must not change for this long to count as final


def _generator() -> ModuleType:
    path = ROOT / "bench" / "generate_traffic.py"
    spec = importlib.util.spec_from_file_location("generate_traffic", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)  # dataclasses and pickling look modules up here
    spec.loader.exec_module(module)
    return module


@dataclass
class Traffic:
    path: Path
    lines: int
    call_ids: list[int]
    summary: str


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> Traffic:
    """A compressed day of yesterday's traffic (a few hundred calls) as JSONL."""
    gen = _generator()
    stats = gen.DayStats()
    path = tmp_path_factory.mktemp("replay-fingerprint") / "day.jsonl"
    with path.open("wb") as out:
        lines = gen.write_jsonl(
            gen.generate_day(
                SEATS, seed=SEED, calls_per_seat_hour=CALLS_PER_SEAT_HOUR, stats=stats
            ),
            out,
        )
    call_ids = sorted(
        {
            orjson.loads(line)["body"]["call_info"]["call_session_id"]
            for line in path.read_bytes().splitlines()
        }
    )
    return Traffic(path, lines, call_ids, stats.summary())


@pytest.fixture(scope="module")
def services(
    e2e_kit: ModuleType, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ServiceProcess]]:
    """Two fresh services ("fast", "slow"), each with its own data dir, started together."""
    e2e = e2e_kit
    root = tmp_path_factory.mktemp("e2e-replay-fingerprint")
    made: dict[str, ServiceProcess] = {}
    try:
        for name in ("fast", "slow"):
            (root / name).mkdir()
            svc = e2e.ServiceProcess(
                root / name / "data", admin_token=f"e2e-admin-{uuid.uuid4().hex}", name=name
            )
            svc.start()
            made[name] = svc
        for svc in made.values():
            svc.wait_ready()
        yield made
    finally:
        for svc in made.values():
            svc.interrupt()
        for svc in made.values():
            svc.stop()


def _set_lateness(api: Api) -> str:
    """Ask for a small lateness bound; a service that does not know the setting yet (422)
    keeps its own. Returns what happened, for the report."""
    resp = api.put("/api/v1/settings", {"lateness_seconds": LATENESS_SECONDS})
    assert resp.status in (200, 422), f"PUT /api/v1/settings: {resp}"
    return "set" if resp.status == 200 else f"unknown to this service ({resp.text[:120]})"


def _drained(api: Api, deadline: float) -> dict[str, Any]:
    """Poll `GET /api/v1/system` until nothing acknowledged is waiting to be processed."""
    info: dict[str, Any] = {}
    while time.monotonic() < deadline:
        resp = api.get("/api/v1/system")
        assert resp.status == 200, resp
        info = resp.json
        if info.get("inbox_pending") == 0 and not info.get("ingest_queue"):
            return info
        time.sleep(0.5)
    raise AssertionError(f"the inbox did not drain in time: {info}")


def _finalized(api: Api, call_ids: list[int], deadline: float) -> list[int]:
    """Poll until every call's cases were decided (the call shows its outcome); returns the
    calls still undecided at the deadline."""
    waiting = list(call_ids)
    while waiting and time.monotonic() < deadline:
        still = []
        for call_id in waiting:
            resp = api.get(f"/api/v1/calls/{call_id}")
            if not (resp.status == 200 and "outcome" in (resp.json or {})):
                still.append(call_id)
        waiting = still
        if waiting:
            time.sleep(1.0)
    return waiting


def _settled(svc: ServiceProcess, call_ids: list[int]) -> fingerprint.Fingerprint:
    """The service's fingerprint once it has processed everything and its cases stay put."""
    deadline = time.monotonic() + SETTLE_TIMEOUT
    api = svc.api(svc.admin_token)
    _drained(api, deadline)
    undecided = _finalized(api, call_ids, deadline)
    assert not undecided, f"{len(undecided)} call(s) never decided, e.g. {undecided[:10]}"
    last = fingerprint.read_database(svc.data_dir)
    while time.monotonic() < deadline:
        time.sleep(STABLE_SECONDS)
        now = fingerprint.read_database(svc.data_dir)
        if now == last:
            return now
        last = now
    raise AssertionError(f"{svc.data_dir}: the cases kept changing for {SETTLE_TIMEOUT} s")


def _delivery_lateness(svc: ServiceProcess) -> str:
    """How late, in event time, the service received notifications: for each, how far behind
    the latest `notification_time` already received it was (the inbox keeps arrival order).
    A diagnostic only: an unreadable inbox says why."""
    path = svc.data_dir / fingerprint.SQLITE_FILE
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            bodies = [body for (body,) in db.execute("SELECT body FROM inbox ORDER BY id")]
        times = [datetime.fromisoformat(orjson.loads(b)["notification_time"]) for b in bodies]
    except (sqlite3.Error, KeyError, TypeError, ValueError) as exc:
        return f"delivery order unknown ({exc!r})"
    lags = [(ahead - at).total_seconds() for ahead, at in zip(accumulate(times, max), times)]
    late = sum(1 for lag in lags if lag > LATENESS_SECONDS)
    return (
        f"{late} of {len(times)} notifications arrived more than {LATENESS_SECONDS} s late "
        f"in event time, the latest {max(lags, default=0):,.0f} s"
    )


async def _replay_both(traffic: Traffic, services: dict[str, ServiceProcess]) -> list[Any]:
    fast, slow = services["fast"], services["slow"]
    return list(
        await asyncio.gather(
            replay(
                str(traffic.path),
                fast.base_url,
                None,
                FAST_CONCURRENCY,
                admin_token=fast.admin_token,
                progress=False,
                lateness=LATENESS_SECONDS / 2,  # within the service's bound, as UIS delivers
            ),
            replay(
                str(traffic.path),
                slow.base_url,
                SLOW_RATE,
                SLOW_CONCURRENCY,
                admin_token=slow.admin_token,
                progress=False,
                lateness=LATENESS_SECONDS / 2,
            ),
        )
    )


def test_fast_and_slow_replays_end_in_the_same_cases(
    traffic: Traffic, services: dict[str, ServiceProcess]
) -> None:
    print(f"traffic: {traffic.path}\n{traffic.summary}")
    for name, svc in services.items():
        print(f"{name}: lateness_seconds {_set_lateness(svc.api(svc.admin_token))}")
    reports = asyncio.run(_replay_both(traffic, services))
    for name, report in zip(services, reports, strict=True):
        print(f"{name} replay: " + "; ".join(report.lines()[:1]))
        assert report.sent == traffic.lines and report.ok == report.sent, report
    prints = {name: _settled(svc, traffic.call_ids) for name, svc in services.items()}
    for name, found in prints.items():
        print(f"{name}: {found.summary()}; {_delivery_lateness(services[name])}")
    assert prints["fast"].cases, "no cases at all: the replay did not reach the service"
    # The two ways of reading a service agree (the comparison below reads the databases).
    over_http = fingerprint.read_api(services["slow"].base_url, services["slow"].admin_token)
    assert over_http == prints["slow"], fingerprint.diff(over_http, prints["slow"], ("api", "db"))
    difference = fingerprint.diff(prints["fast"], prints["slow"], ("fast", "slow"))
    lateness = "; ".join(f"{name}: {_delivery_lateness(svc)}" for name, svc in services.items())
    assert not difference, f"fast and slow replays ended in different cases ({lateness}):\n" + (
        difference
    )
