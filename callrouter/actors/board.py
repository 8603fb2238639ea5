"""The wallboard actor (R31): one per service, fed by the shards' board events in batches and by
each frontend's list of connected staff. On start it rebuilds today's counters from the calls
stored today, so a restart loses nothing; live calls come back as the shards re-apply them."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from datetime import time as day_time
from typing import Any

import ray
from sqlalchemy import select

from callrouter.domain.wallboard import FinishedCall, LiveCall, Wallboard
from callrouter.storage import directory
from callrouter.storage.engine import Database
from callrouter.storage.models import Call, Staff
from callrouter.storage.routing import routed_today

ONLINE_TTL = 15.0  # a frontend that stopped reporting no longer vouches for its staff


@ray.remote(num_cpus=0, max_restarts=-1)
class Board:
    def __init__(self, database_url: str) -> None:
        self.db = Database(database_url)
        self.board: Wallboard | None = None
        self.online: dict[str, tuple[float, set[int]]] = {}
        self.changed = asyncio.Condition()
        self.lock = asyncio.Lock()
        # The last staff states and the seq they are of: a poll that times out on a quiet
        # board does not walk every live call again (100,000 ringing cost 3 % of a core).
        self.last_states: tuple[int, dict[int, str]] = (-1, {})

    async def _ready(self) -> Wallboard:
        async with self.lock:  # concurrent first calls must not rebuild twice
            if self.board is None:
                self.board = await self._rebuild()
        return self.board

    async def _rebuild(self) -> Wallboard:
        async with self.db.sessions() as session:
            account = await directory.load_account(session)
            staff = set(await session.scalars(select(Staff.id).where(Staff.active.is_(True))))
            tz = account.tz
            midnight = datetime.combine(datetime.now(tz).date(), day_time(), tz)
            rows = await session.scalars(
                select(Call)
                .where(Call.finalized.is_(True), Call.started_at >= midnight)
                .order_by(Call.ended_at)
            )
            board = Wallboard(tz, account.service_level_seconds, staff=staff)
            for row in rows:
                assert row.started_at is not None
                board.call_finished(
                    FinishedCall(
                        row.call_session_id,
                        row.direction or "in",
                        row.started_at,
                        row.outcome == "answered",
                        row.wait_seconds,
                        row.talk_seconds or 0,
                        tuple(row.offered_staff_ids or ()),
                        tuple((s, t) for s, t in (row.talked or ())),
                    )
                )
            for call_id, staff_id, at in await routed_today(session, midnight):
                board.call_routed(call_id, staff_id, at)
        return board

    async def configure(self) -> None:
        """Staff or the service-level threshold changed."""
        board = await self._ready()
        async with self.db.sessions() as session:
            account = await directory.load_account(session)
            staff = set(await session.scalars(select(Staff.id).where(Staff.active.is_(True))))
        board.set_staff(staff, account.service_level_seconds)
        await self._notify()

    async def apply(self, events: list[LiveCall | FinishedCall]) -> None:
        board = await self._ready()
        for event in events:
            if isinstance(event, LiveCall):
                board.call_changed(event)
            else:
                board.call_finished(event)
        await self._notify()

    async def routed(self, items: list[tuple[int, int, datetime]]) -> None:
        """Smart routing's (call, staff, at) routings, from a frontend in batches."""
        board = await self._ready()
        for call_id, staff_id, at in items:
            board.call_routed(call_id, staff_id, at)
        await self._notify()

    async def states(self, after: int, timeout: float) -> tuple[int, dict[int, str]]:
        """(seq, staff → state) once seq passes `after`, or after `timeout`: what smart
        routing needs of the board, without the whole snapshot."""
        board = await self._past(after, timeout)
        if self.last_states[0] != board.seq:  # every change bumps seq: unchanged, the same states
            self.last_states = (board.seq, board.staff_states())
        return self.last_states

    async def set_online(self, frontend: str, staff_ids: list[int]) -> None:
        board = await self._ready()
        now = time.time()
        self.online[frontend] = (now, set(staff_ids))
        fresh = [ids for seen, ids in self.online.values() if now - seen < ONLINE_TTL]
        before = board.seq
        board.set_online(set().union(*fresh) if fresh else set())
        if board.seq != before:
            await self._notify()

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    async def snapshot(self) -> dict[str, Any]:
        board = await self._ready()
        return board.snapshot(time.time(), datetime.now(board.tz).date())

    async def poll(self, after: int, timeout: float) -> dict[str, Any]:
        """The snapshot once its seq passes `after`, or after `timeout` whatever it is."""
        await self._past(after, timeout)
        return await self.snapshot()

    async def _past(self, after: int, timeout: float) -> Wallboard:
        """The board once its seq passes `after`, or after `timeout` whatever it is."""
        board = await self._ready()
        if board.seq <= after:
            async with self.changed:
                try:
                    await asyncio.wait_for(
                        self.changed.wait_for(lambda: board.seq > after), timeout
                    )
                except TimeoutError:
                    pass
        return board
