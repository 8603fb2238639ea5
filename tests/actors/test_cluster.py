"""The Ray shell for real: the writer storing bodies and routing them to shard actors, finished
calls decided in batches, live events, and recovery (R32) — after a restart of everything, of
one shard, of the writer — with nothing lost or doubled. One local Ray for the module."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import ray
from sqlalchemy import func, select

from callrouter.actors.cluster import Cluster
from callrouter.domain.uis import parse_body, parse_notification
from callrouter.storage import directory, inbox
from callrouter.storage.engine import Database
from callrouter.storage.inbox import Incoming
from callrouter.storage.models import Case, InboxEntry, Message
from callrouter.testing import uis_bodies as ub

pytestmark = pytest.mark.ray

MSK = ZoneInfo("Europe/Moscow")
START = datetime.now(MSK).replace(tzinfo=None) - timedelta(hours=2)


@pytest.fixture(scope="module")
def local_ray() -> Any:
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(include_dashboard=False, num_cpus=2, log_to_driver=False, namespace="callrouter-tests")
    yield
    ray.shutdown()


async def _setup(db: Database) -> dict[int, int]:
    """Two staff mapped to operators 1001 and 1002; a one-second lateness bound."""
    await db.create_schema()
    async with db.sessions() as session, session.begin():
        await directory.ensure_builtin_fields(session)
        await directory.save_settings(session, lateness_seconds=1)
        staff = {}
        for employee in (1001, 1002):
            member, _ = await directory.create_staff(
                session, f"Staff {employee}", f"{employee}@example.com"
            )
            await directory.put_operator(session, employee, member.id)
            staff[employee] = member.id
    return staff


def _bodies(events: list[tuple[datetime, dict[str, Any]]]) -> list[tuple[bytes, Any, datetime]]:
    out = []
    for _, doc in events:
        raw = ub.encode(doc)
        now = datetime.now(UTC)
        out.append((raw, parse_notification(parse_body(raw), MSK, now), now))
    return out


async def _post(cluster: Cluster, events: list[tuple[datetime, dict[str, Any]]]) -> None:
    """As the webhook does: each body stored (retried while the writer is away)."""
    for body in _bodies(events):
        for _ in range(100):
            try:
                await cluster.ingest(body)
                break
            except Exception:  # noqa: BLE001 - 503 for UIS: it sends again
                await asyncio.sleep(0.2)


async def _cases(db: Database) -> list[Case]:
    async with db.sessions() as session:
        return list(await session.scalars(select(Case).order_by(Case.id)))


async def _undone(db: Database) -> int:
    async with db.sessions() as session:
        query = select(func.count()).select_from(InboxEntry).where(InboxEntry.done.is_(False))
        return int(await session.scalar(query) or 0)


async def _wait_cases(db: Database, count: int, timeout: float = 40) -> list[Case]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        cases = await _cases(db)
        done = len(cases) >= count and await _undone(db) == 0
        if done or asyncio.get_running_loop().time() > deadline:
            return cases
        await asyncio.sleep(0.1)


def _cluster(url: str) -> Cluster:
    return Cluster(url, shards=2, prefix=f"t{uuid.uuid4().hex[:8]}")


def _traffic(first_call: int, calls: int) -> list[tuple[datetime, dict[str, Any]]]:
    events = []
    for i in range(calls):
        at = START + timedelta(minutes=i)
        phone = f"7926{first_call + i:07d}"
        if i % 2:
            events += ub.incoming_missed(first_call + i, at, phone, [1001, 1002])
        else:
            events += ub.incoming_answered(first_call + i, at, phone, 1001)
    return sorted(events, key=lambda e: e[0])


async def test_bodies_become_cases_and_live_events(local_ray: Any, tmp_path: Path) -> None:
    """R5, R11, R15 through the real writer and shard actors: popups for mapped staff as the
    phones ring, cases in storage, `call.decided` with the case ids."""
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    db = Database(url)
    staff = await _setup(db)
    received: list[tuple[int, dict[str, Any]]] = []

    async def sink(staff_id: int, event: dict[str, Any]) -> None:
        received.append((staff_id, event))

    cluster = _cluster(url)
    await cluster.start(on_event=sink)
    try:
        traffic = ub.incoming_answered(7001, START, "79260000001", 1001) + ub.incoming_missed(
            7002, START, "79260000002", [1001, 1002]
        )
        await _post(cluster, traffic)
        cases = await _wait_cases(db, 2)
        assert await cluster.settled()
        by_subject = {c.subject: c for c in cases}
        answered = by_subject["Входящий звонок с 79260000001"]
        missed = by_subject["Пропущенный звонок с 79260000002"]
        assert (answered.status, answered.assignee_id) == ("open", staff[1001])
        assert (missed.status, missed.assignee_id, missed.call_icon) == (
            "open",
            staff[1002],
            "missed",
        )
        await asyncio.sleep(0.5)
        types = [(s, e["type"]) for s, e in received]
        assert (staff[1001], "call.ringing") in types and (staff[1001], "call.answered") in types
        assert (staff[1002], "call.ringing") in types and (staff[1002], "call.offer_ended") in types
        assert (staff[1001], "call.ended") in types
        decided = [e for s, e in received if e["type"] == "call.decided"]
        assert {e["call_session_id"] for e in decided} == {7001, 7002}
        assert all(e["case_ids"] for e in decided)
    finally:
        await cluster.stop()
        await db.dispose()


async def test_undone_notifications_are_applied_once_after_a_restart(
    local_ray: Any, tmp_path: Path
) -> None:
    """R32: acknowledged but not applied (the process died) → applied when the writer starts,
    exactly once, even when everything starts twice."""
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    db = Database(url)
    staff = await _setup(db)
    async with db.engine.begin() as conn:
        for raw, n, at in _bodies(ub.incoming_answered(7101, START, "79260000011", 1002)):
            await inbox.insert_bodies(conn, [Incoming(raw, n.call_session_id, at)])
    for _ in range(2):  # a second start must not create the case again
        cluster = _cluster(url)
        await cluster.start()
        try:
            await _wait_cases(db, 1)
            assert await cluster.settled()
        finally:
            for actor in [*cluster.shards, cluster.writer, cluster.board, cluster.supervisor]:
                ray.kill(actor)
            await cluster.stop()
    cases = await _cases(db)
    assert [(c.subject, c.assignee_id) for c in cases] == [
        ("Входящий звонок с 79260000011", staff[1002])
    ]
    async with db.sessions() as session:
        messages = list(await session.scalars(select(Message)))
    assert len(messages) == 1
    await db.dispose()


@pytest.mark.parametrize("victim", ["shard0", "shard1", "writer"])
async def test_a_crashed_actor_loses_nothing_without_a_service_restart(
    local_ray: Any, tmp_path: Path, victim: str
) -> None:
    """Issue "nothing lost" #4: an actor killed mid-traffic is restarted by Ray and everything
    acknowledged still gets exactly its cases, with no restart of the service."""
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    db = Database(url)
    await _setup(db)
    cluster = _cluster(url)
    await cluster.start()
    try:
        traffic = _traffic(8000, 24)
        half = len(traffic) // 2
        await _post(cluster, traffic[:half])
        actor = cluster.writer if victim == "writer" else cluster.shards[int(victim[-1])]
        ray.kill(actor, no_restart=False)
        await _post(cluster, traffic[half:])
        cases = await _wait_cases(db, 24, timeout=90)
        assert len(cases) == 24, [c.subject for c in cases]
        assert await _undone(db) == 0
        async with db.sessions() as session:
            messages = await session.scalar(select(func.count()).select_from(Message))
        assert messages == 24
    finally:
        await cluster.stop()
        await db.dispose()
