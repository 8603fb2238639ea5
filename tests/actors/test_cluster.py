"""The Ray shell for real: shard actors, batched delivery, the outbox, recovery (R32), and
live events. One local Ray for the whole module (it costs seconds to start)."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import ray
from sqlalchemy import func, select

from callrouter.actors.cluster import Cluster
from callrouter.actors.host import Inbound
from callrouter.domain.uis import parse_body, parse_notification
from callrouter.storage import directory
from callrouter.storage.engine import Database
from callrouter.storage.inbox import InboxWriter, Incoming
from callrouter.storage.models import Case, InboxEntry, Message
from callrouter.testing import uis_bodies as ub

pytestmark = pytest.mark.ray

START = datetime(2026, 11, 23, 10, 0, 0)


@pytest.fixture(scope="module")
def local_ray() -> Any:
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(include_dashboard=False, num_cpus=2, log_to_driver=False, namespace="callrouter-tests")
    yield
    ray.shutdown()


async def _setup(db: Database) -> dict[int, int]:
    """Two staff mapped to operators 1001 and 1002."""
    await db.create_schema()
    async with db.sessions() as session, session.begin():
        await directory.ensure_builtin_fields(session)
        staff = {}
        for employee in (1001, 1002):
            member, _ = await directory.create_staff(
                session, f"Staff {employee}", f"{employee}@example.com"
            )
            await directory.put_operator(session, employee, member.id)
            staff[employee] = member.id
    return staff


async def _store_and_submit(
    db: Database, cluster: Cluster | None, events: list[tuple[datetime, dict]]
) -> None:
    writer = InboxWriter(db)
    writer.start()
    try:
        for _, doc in events:
            raw = ub.encode(doc)
            now = datetime.now(UTC)
            n = parse_notification(parse_body(raw), ZoneInfo("Europe/Moscow"), now)
            inbox_id = await writer.store(Incoming(raw, n.call_session_id, now))
            if cluster is not None and inbox_id is not None:
                cluster.submit([Inbound(inbox_id, now.timestamp(), n)])
    finally:
        await writer.stop()


async def _cases(db: Database) -> list[Case]:
    async with db.sessions() as session:
        return list(await session.scalars(select(Case).order_by(Case.id)))


async def _wait_cases(db: Database, count: int, timeout: float = 20) -> list[Case]:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        cases = await _cases(db)
        if len(cases) >= count or asyncio.get_running_loop().time() > deadline:
            return cases
        await asyncio.sleep(0.1)


async def test_batched_delivery_makes_cases_and_live_events(local_ray: Any, tmp_path: Path) -> None:
    """R5, R11, R15 through real shard actors: popups for mapped staff, cases in storage."""
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    db = Database(url)
    staff = await _setup(db)
    received: list[tuple[int, dict]] = []

    async def sink(staff_id: int, event: dict) -> None:
        received.append((staff_id, event))

    cluster = Cluster(url, shards=2, prefix=f"t{uuid.uuid4().hex[:8]}")
    await cluster.start(on_event=sink)
    try:
        traffic = ub.incoming_answered(7001, START, "79260000001", 1001) + ub.incoming_missed(
            7002, START, "79260000002", [1001, 1002]
        )
        await _store_and_submit(db, cluster, traffic)
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
        async with db.sessions() as session:
            undone = await session.scalar(
                select(func.count()).select_from(InboxEntry).where(InboxEntry.done.is_(False))
            )
        assert undone == 0
        types = [(s, e["type"]) for s, e in received]
        assert (staff[1001], "call.ringing") in types and (staff[1001], "call.answered") in types
        assert (staff[1002], "call.ringing") in types and (staff[1002], "call.offer_ended") in types
        assert any(
            t == "call.ended" and e.get("case_ids") for s, e in received for t in [e["type"]]
        )
    finally:
        await cluster.stop()
        await db.dispose()


async def test_undone_notifications_are_applied_once_after_a_restart(
    local_ray: Any, tmp_path: Path
) -> None:
    """R32: acknowledged but not applied (the process died) → applied on the shards' start,
    exactly once, even when the shards start twice."""
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    db = Database(url)
    staff = await _setup(db)
    await _store_and_submit(db, None, ub.incoming_answered(7101, START, "79260000011", 1002))
    for attempt in range(2):  # a second start must not create the case again
        cluster = Cluster(url, shards=2, prefix=f"t{uuid.uuid4().hex[:8]}")
        await cluster.start()
        try:
            cases = await _wait_cases(db, 1)
            assert await cluster.settled()
            await asyncio.sleep(2)  # a duplicate would show up within the settle window
        finally:
            for shard in cluster.shards:
                ray.kill(shard)
            ray.kill(cluster.supervisor)
            await cluster.stop()
    cases = await _cases(db)
    assert [(c.subject, c.assignee_id) for c in cases] == [
        ("Входящий звонок с 79260000011", staff[1002])
    ]
    async with db.sessions() as session:
        messages = list(await session.scalars(select(Message)))
    assert len(messages) == 1
    await db.dispose()
