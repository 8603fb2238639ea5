"""The statistics actor (R25–R30): fed by the writer with each batch's history as it commits,
it keeps the incremental counters, answers reports from them, and saves a snapshot (counters +
the last history id they include) so a restart resumes exactly where it stopped.

Exactly once: history ids rise in commit order (one writer), every feed says the highest id
committed before it, and the counters ignore ids they hold already. A feed that finds the
counters behind it (this actor restarted, a feed was lost) reads the log up to there first.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from datetime import UTC, datetime
from typing import Any

import ray
from sqlalchemy import select

from callrouter import logs
from callrouter.stats.counters import StatsState
from callrouter.stats.history import HistoryEvent, from_row
from callrouter.storage import directory
from callrouter.storage.engine import Database
from callrouter.storage.models import CaseEvent, StatsSnapshot
from callrouter.storage.snapshots import save_snapshot

log = logging.getLogger("callrouter.stats")

SAVE_SECONDS = 300.0  # a restart reads the log written since; saving stalls the writer a bit
# PostgreSQL's bytea stops at 1 GiB; past this a snapshot is not saved and a restart resumes
# from the last one saved, reading the rest of the log (slower, still exact).
MAX_SNAPSHOT_BYTES = 512 * 2**20
READ_BATCH = 20_000


@ray.remote(num_cpus=0, max_restarts=-1)
class Stats:
    def __init__(self, database_url: str, prefix: str) -> None:
        logs.setup_actor()
        self.prefix = prefix
        self.db = Database(database_url)
        self.state: StatsState | None = None
        self.lock = asyncio.Lock()
        self.saved_max = -1
        self.failed: list[str] = []  # events the counters could not take (their error)
        self.task: asyncio.Task[None] | None = None

    async def _ready(self) -> StatsState:
        if self.state is None:
            async with self.lock:
                if self.state is None:
                    state = StatsState()
                    async with self.db.sessions() as session:
                        row = await session.get(StatsSnapshot, 1)
                    if row is not None:
                        try:
                            state = StatsState.from_bytes(row.data)
                        except ValueError:
                            log.warning("statistics snapshot unreadable: rebuilding from the log")
                    self.state = state
                    self.saved_max = state.max_id
                    await self._read_log(state, None)
                    self.task = asyncio.create_task(self._saver())
        return self.state

    async def _read_log(self, state: StatsState, until: int | None) -> int:
        """Apply the log after what the counters hold, up to `until` (all when None)."""
        applied = 0
        while True:
            query = select(CaseEvent).where(CaseEvent.id > state.max_id)
            if until is not None:
                query = query.where(CaseEvent.id <= until)
            async with self.db.sessions() as session:
                rows = await session.scalars(query.order_by(CaseEvent.id).limit(READ_BATCH))
                events = [from_row(r) for r in rows]
            applied += self._apply(state, events)
            if len(events) < READ_BATCH:
                return applied

    def _apply(self, state: StatsState, events: list[HistoryEvent]) -> int:
        applied = 0
        for ev in events:
            try:
                applied += state.apply(ev)
            except Exception:  # noqa: BLE001 - one event's failure costs only that event
                state.max_id = max(state.max_id, ev.id)
                error = f"history {ev.id} (case {ev.case_id}): {traceback.format_exc(limit=6)}"
                log.error("statistics skipped %s", error)
                self.failed.append(error)
        return applied

    async def feed(self, before: int, events: list[HistoryEvent]) -> int:
        """History just committed, in id order; `before`: the highest id committed earlier."""
        state = await self._ready()
        async with self.lock:
            if state.max_id < before:
                await self._read_log(state, before)
            return self._apply(state, events)

    async def _saver(self) -> None:
        while True:
            await asyncio.sleep(SAVE_SECONDS)
            try:
                await self.save()
            except Exception:
                log.exception("saving the statistics snapshot failed")

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
        # Through the writer: the one process that writes the database.
        writer = ray.get_actor(f"{self.prefix}-writer")
        await writer.run.remote(save_snapshot, max_id, data, datetime.now(UTC))
        self.saved_max = max_id

    async def report(self, name: str, start: datetime, end: datetime) -> dict[str, Any]:
        """A report over [start, end), including everything committed before the call."""
        state = await self._ready()
        async with self.lock:
            await self._read_log(state, None)  # a feed may still be on its way
        async with self.db.sessions() as session:
            account = await directory.load_account(session)
        started = time.perf_counter()
        answer = state.report(name, start, end, account.tz, account.close_sla_seconds)
        if (spent := time.perf_counter() - started) > 0.2:
            log.warning("statistics report %s took %.0f ms", name, spent * 1000)
        return answer

    async def status(self) -> dict[str, Any]:
        state = await self._ready()
        return {
            "max_id": state.max_id,
            "failed": len(self.failed),
            "last_failure": (self.failed[-1] if self.failed else None),
        }

    async def stop(self) -> None:
        await self.save()
