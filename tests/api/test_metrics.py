"""`GET /metrics` on the real service (API.md "Additions"): the admin token only; the Prometheus
text parses, and the figures move as notifications come — received, repeated, refused, the
webhook latency by status class, decisions and their batches, the backlog, live calls and
consoles, the statistics' lag, and a shard's restart (with its log line)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from service_kit import Service

from callrouter.testing import uis_bodies as uis

pytestmark = pytest.mark.e2e

ADMIN_TOKEN = "metrics-admin-token-0123456789"
MSK = ZoneInfo("Europe/Moscow")
WAIT = 60.0
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    service = Service(tmp_path_factory.mktemp("metrics"), ADMIN_TOKEN)
    try:
        service.wait_ready()
        answer = service.admin(
            "PUT",
            "/api/v1/integrations/uis",
            {"api_key": "metrics-api-key", "virtual_phone_number": "74950000000"},
        )
        assert answer.status == 200, answer
        # Decided a second after the call's end rather than after the default 30 s.
        assert service.admin("PUT", "/api/v1/settings", {"lateness_seconds": 1}).status == 200
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="module")
def staff(svc: Service) -> dict[str, Any]:
    """A staff member (with their token) mapped to UIS employee 5001."""
    made = svc.admin("POST", "/api/v1/staff", {"full_name": "Анна", "email": "anna@example.test"})
    assert made.status == 201, made
    answer = svc.admin("PUT", "/api/v1/operators/5001", {"staff_id": made.json["id"]})
    assert answer.status == 200, answer
    member: dict[str, Any] = made.json
    return member


def scrape(svc: Service) -> Samples:
    answer = svc.admin("GET", "/metrics")
    assert answer.status == 200, answer
    assert answer.headers["Content-Type"].startswith("text/plain"), answer.headers
    samples: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        assert family.name.startswith("callrouter_"), family.name
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def wait_for(svc: Service, check: Callable[[Samples], bool], what: str) -> Samples:
    deadline = time.monotonic() + WAIT
    samples = scrape(svc)
    while not check(samples):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not seen in {WAIT} s: {samples}\n{svc.stderr()[-3000:]}")
        time.sleep(0.2)
        samples = scrape(svc)
    return samples


def webhook(svc: Service) -> str:
    path: str = svc.admin("GET", "/api/v1/integrations/uis").json["webhook_path"]
    return path


def post(svc: Service, data: bytes) -> int:
    return svc.request("POST", webhook(svc), data=data).status


def test_metrics_need_the_admin_token(svc: Service, staff: dict[str, Any]) -> None:
    for token, status, code in (
        (None, 401, "unauthorized"),
        ("not-a-token", 401, "unauthorized"),
        (staff["token"], 403, "forbidden"),
    ):
        answer = svc.request("GET", "/metrics", token=token)
        assert answer.status == status, answer
        assert answer.json["error"]["code"] == code
        assert set(answer.json["error"]) == {"code", "message"}
    samples = scrape(svc)
    for part in ("database", "shards", "writer", "statistics"):
        assert value(samples, "callrouter_up", part=part) == 1.0


def test_notifications_move_the_counters(svc: Service, staff: dict[str, Any]) -> None:
    before = scrape(svc)
    start = datetime.now(MSK).replace(tzinfo=None, microsecond=0) - timedelta(hours=2)
    events = uis.incoming_answered(7_000_001, start, "79161234567", 5001, talk_seconds=30)
    bodies = [uis.encode(doc) for _, doc in events]
    for raw in bodies:
        assert post(svc, raw) == 200
    assert post(svc, bodies[0]) == 200  # UIS sent it again
    assert post(svc, b'{"notification_name": ') == 400  # refused, kept for the admin

    def delta(samples: Samples, name: str, **labels: str) -> float:
        return value(samples, name, **labels) - value(before, name, **labels)

    after = wait_for(
        svc, lambda s: delta(s, "callrouter_case_decisions_total") >= 1, "the call's decision"
    )
    assert delta(after, "callrouter_notifications_received_total") == len(bodies) + 2
    assert delta(after, "callrouter_notifications_duplicate_total") == 1
    assert delta(after, "callrouter_notifications_rejected_total", code="invalid_json") == 1
    hist = "callrouter_webhook_duration_seconds"
    assert delta(after, f"{hist}_count", status="2xx") == len(bodies) + 1
    assert delta(after, f"{hist}_count", status="4xx") == 1
    assert delta(after, f"{hist}_bucket", status="2xx", le="+Inf") == len(bodies) + 1
    assert delta(after, f"{hist}_sum", status="2xx") > 0
    assert delta(after, "callrouter_decision_batch_seconds_count") >= 1
    assert value(after, "callrouter_decision_batch_seconds_bucket", le="+Inf") == value(
        after, "callrouter_decision_batch_seconds_count"
    )
    # Everything acknowledged becomes durable; the statistics catch up with the history.
    settled = wait_for(
        svc,
        lambda s: (
            value(s, "callrouter_notifications_pending") == 0
            and value(s, "callrouter_statistics_lag_events") == 0
        ),
        "an empty backlog and statistics up to date",
    )
    assert ("callrouter_notifications_pending", ()) in settled
    assert value(settled, "callrouter_statistics_lag_seconds") == 0
    assert ("callrouter_live_calls", ()) in settled


def test_live_calls_and_consoles(svc: Service, staff: dict[str, Any]) -> None:
    start = datetime.now(MSK).replace(tzinfo=None, microsecond=0) - timedelta(hours=1)
    events = uis.incoming_answered(7_000_002, start, "79161234568", 5001, talk_seconds=30)
    for _, doc in events[:2]:  # the call has begun (rung, answered), not ended
        assert post(svc, uis.encode(doc)) == 200
    wait_for(svc, lambda s: value(s, "callrouter_live_calls") >= 1, "a live call")

    async def with_console() -> Samples:
        url = f"{svc.base_url}/api/v1/events?token={staff['token']}"
        async with aiohttp.ClientSession() as session, session.ws_connect(url):
            return await asyncio.to_thread(
                wait_for, svc, lambda s: value(s, "callrouter_live_consoles") == 1, "a console"
            )

    asyncio.run(with_console())
    wait_for(svc, lambda s: value(s, "callrouter_live_consoles") == 0, "the console gone")


def test_a_shard_restart_is_counted_and_logged(svc: Service) -> None:
    before = scrape(svc)
    assert value(before, "callrouter_shard_restarts_total", shard="0") == 0
    workers = svc.workers("ray::Shard")
    assert workers, "no shard worker found"
    os.kill(workers[0].pid, signal.SIGKILL)  # which shard it is the metric tells

    def restarted(s: Samples) -> bool:
        return sum(v for (n, _), v in s.items() if n == "callrouter_shard_restarts_total") >= 1

    after = wait_for(svc, restarted, "the shard's restart")
    [shard] = [
        dict(labels)["shard"]
        for (name, labels), v in after.items()
        if name == "callrouter_shard_restarts_total" and v == 1
    ]
    deadline = time.monotonic() + WAIT
    while f"shard {shard} restarted" not in svc.stderr():
        assert time.monotonic() < deadline, svc.stderr()[-3000:]
        time.sleep(0.2)


def test_registries_are_per_app(tmp_path: Path) -> None:
    """Two apps in one process: each has a registry of its own (no duplicate-name error)."""
    from callrouter.config import Settings
    from callrouter.http.app import create_app
    from callrouter.http.metrics import METRICS

    first = create_app(Settings(data_dir=str(tmp_path)), "one-admin-token")
    second = create_app(Settings(data_dir=str(tmp_path)), "two-admin-token")
    assert first[METRICS].registry is not second[METRICS].registry
