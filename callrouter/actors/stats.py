"""The statistics actor (R25–R30): tails the case history log as it is written into the
incremental counters, answers reports from them, and saves a snapshot (counters + last id) so a
restart resumes exactly where it stopped."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

import ray
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from callrouter.stats.counters import StatsState
from callrouter.stats.history import from_row
from callrouter.stats.tail import Tail
from callrouter.storage import directory
from callrouter.storage.engine import Database
from callrouter.storage.models import CaseEvent, StatsSnapshot

log = logging.getLogger("callrouter.stats")

POLL_SECONDS = 0.5
SAVE_SECONDS = 60.0
# PostgreSQL's bytea stops at 1 GiB; past this a snapshot is not saved and a restart resumes
# from the last one saved, reading the rest of the log (slower, still exact).
MAX_SNAPSHOT_BYTES = 512 * 2**20
READ_BATCH = 20_000


@ray.remote(num_cpus=0, max_restarts=-1)
class Stats:
    def __init__(self, database_url: str) -> None:
        self.db = Database(database_url)
        self.state: StatsState | None = None
        self.tail = Tail()
        self.lock = asyncio.Lock()
        self.saved_max = -1
        self.task: asyncio.Task[None] | None = None

    async def _ready(self) -> StatsState:
        if self.state is None:
            async with self.lock:
                if self.state is None:
                    async with self.db.sessions() as session:
                        row = await session.get(StatsSnapshot, 1)
                    self.state = StatsState.from_bytes(row.data) if row else StatsState()
                    self.tail = Tail(next_id=self.state.max_id + 1)
                    self.saved_max = self.state.max_id
                    self.task = asyncio.create_task(self._loop())
        return self.state

    async def _loop(self) -> None:
        last_save = time.monotonic()
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                await self.catch_up()
                if time.monotonic() - last_save > SAVE_SECONDS:
                    await self.save()
                    last_save = time.monotonic()
            except Exception:
                log.exception("statistics tail failed")

    async def catch_up(self) -> int:
        """Apply what was written since the last look; returns how many events."""
        state = await self._ready()
        async with self.lock:
            applied = 0
            while True:
                async with self.db.sessions() as session:
                    rows = await session.scalars(
                        select(CaseEvent)
                        .where(CaseEvent.id >= self.tail.next_id)
                        .order_by(CaseEvent.id)
                        .limit(READ_BATCH)
                    )
                    events = [from_row(r) for r in rows]
                ready = self.tail.take(events, time.monotonic())
                applied += state.apply_all(ready)
                if len(ready) < READ_BATCH:
                    return applied

    async def save(self) -> None:
        state = await self._ready()
        async with self.lock:  # no event is applied while the counters are serialised
            if state.max_id == self.saved_max:
                return
            data, max_id = await asyncio.to_thread(state.to_bytes), state.max_id
        if len(data) > MAX_SNAPSHOT_BYTES:
            log.warning(
                "statistics snapshot of %s MiB not saved (limit %s MiB)",
                len(data) >> 20,
                MAX_SNAPSHOT_BYTES >> 20,
            )
            return
        values = {"id": 1, "max_id": max_id, "data": data, "saved_at": datetime.now(UTC)}
        async with self.db.sessions() as session, session.begin():
            insert = pg_insert if not self.db.is_sqlite else sqlite_insert
            await session.execute(
                insert(StatsSnapshot)
                .values(**values)
                .on_conflict_do_update(index_elements=["id"], set_=values)
            )
        self.saved_max = max_id

    async def report(self, name: str, start: datetime, end: datetime) -> dict[str, Any]:
        """A report over [start, end), including everything committed before the call."""
        state = await self._ready()
        await self.catch_up()
        async with self.db.sessions() as session:
            account = await directory.load_account(session)
        return state.report(name, start, end, account.tz, account.close_sla_seconds)

    async def stop(self) -> None:
        await self.save()
