"""The frontend's typed facade over the shard actors (the only module `http/` uses for Ray).

Notifications are sent to shards in batches — one `deliver` call in flight per shard, whatever
piled up meanwhile goes in the next — never one Ray call per notification (a Ray call costs
~1 ms of CPU here). Live events are long-polled from every shard and handed to a callback.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

import ray

from callrouter.actors.host import Envelope, Inbound, entity_key, shard_of
from callrouter.actors.shard import Supervisor

log = logging.getLogger("callrouter.cluster")

MAX_BATCH = 2000
EventSink = Callable[[int, dict[str, Any]], Awaitable[None]]


class Cluster:
    def __init__(
        self,
        database_url: str,
        *,
        shards: int = 2,
        ray_address: str | None = None,
        prefix: str = "callrouter",
        statistics: bool = True,
    ) -> None:
        self.with_statistics = statistics
        self.database_url = database_url
        self.count = shards
        self.ray_address = ray_address
        self.prefix = prefix
        self.shards: list[Any] = []
        self.pending: list[list[Envelope]] = []
        self.wakeups: list[asyncio.Event] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.started_ray = False

    def connect(self) -> None:
        """Join (or start) Ray; blocking, so call it before serving."""
        if not ray.is_initialized():
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a local run needs no token file
            if self.ray_address:
                ray.init(address=self.ray_address, namespace=self.prefix, log_to_driver=False)
            else:
                ray.init(
                    include_dashboard=False,
                    namespace=self.prefix,
                    log_to_driver=False,
                    num_cpus=max(2, os.cpu_count() or 2),
                )
            self.started_ray = True

    async def start(self, on_event: EventSink | None = None) -> None:
        """Get the shards from the named supervisor (created by the first frontend)."""
        # The handle is kept: an actor whose owner drops every reference is destroyed, shards
        # and all. On a shared cluster the supervisor outlives any one frontend.
        options: dict[str, Any] = {"name": f"{self.prefix}-supervisor", "get_if_exists": True}
        if self.ray_address:
            options["lifetime"] = "detached"
        self.supervisor = Supervisor.options(**options).remote(  # type: ignore[attr-defined]  # ray.remote hides it from mypy
            self.count, self.database_url, self.prefix, self.with_statistics
        )
        self.shards = await self.supervisor.shards_ready.remote()
        self.board = await self.supervisor.wallboard.remote()
        self.statistics = await self.supervisor.statistics.remote()
        self.count = len(self.shards)
        self.pending = [[] for _ in self.shards]
        self.wakeups = [asyncio.Event() for _ in self.shards]
        self.tasks = [asyncio.create_task(self._sender(i)) for i in range(self.count)]
        if on_event is not None:
            self.tasks += [asyncio.create_task(self._pump(i, on_event)) for i in range(self.count)]

    def submit(self, envelopes: list[Inbound]) -> None:
        """Queue stored notifications for their call entities; returns at once."""
        for env in envelopes:
            i = shard_of(entity_key(env), self.count)
            self.pending[i].append(env)
            self.wakeups[i].set()

    async def _sender(self, i: int) -> None:
        while True:
            await self.wakeups[i].wait()
            self.wakeups[i].clear()
            while self.pending[i]:
                batch, self.pending[i] = self.pending[i][:MAX_BATCH], self.pending[i][MAX_BATCH:]
                try:
                    await self.shards[i].deliver.remote(batch)
                except Exception:
                    # Stored already: the shard re-applies undone notifications when it restarts.
                    log.exception("delivery to shard %s failed", i)
                    await asyncio.sleep(0.5)

    async def _pump(self, i: int, on_event: EventSink) -> None:
        seq = await self.shards[i].poll_events.remote(1 << 62, 0)
        cursor = seq[0]
        while True:
            try:
                cursor, events = await self.shards[i].poll_events.remote(cursor, 5.0)
                for staff_id, event in events:
                    await on_event(staff_id, event)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("live events from shard %s failed", i)
                await asyncio.sleep(0.5)

    def _shard_for_call(self, call_session_id: int) -> Any:
        return self.shards[shard_of(f"call:{call_session_id}", self.count)]

    async def call(self, call_session_id: int) -> dict[str, Any] | None:
        result: dict[str, Any] | None = await self._shard_for_call(call_session_id).call.remote(
            call_session_id
        )
        return result

    async def active_calls(self) -> list[dict[str, Any]]:
        parts = await asyncio.gather(*(s.active_calls.remote() for s in self.shards))
        return [c for part in parts for c in part]

    async def agent_replay(self, staff_id: int) -> list[dict[str, Any]]:
        shard = self.shards[shard_of(f"agent:{staff_id}", self.count)]
        result: list[dict[str, Any]] = await shard.agent_replay.remote(staff_id)
        return result

    async def config_changed(self) -> None:
        await asyncio.gather(
            *(s.configure.remote() for s in self.shards), self.board.configure.remote()
        )

    async def wallboard(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.board.snapshot.remote()
        return result

    async def wallboard_poll(self, after: int, timeout: float) -> dict[str, Any]:
        result: dict[str, Any] = await self.board.poll.remote(after, timeout)
        return result

    async def report(self, name: str, start: Any, end: Any) -> dict[str, Any] | None:
        """The report, or None when the service runs without statistics."""
        if self.statistics is None:
            return None
        result: dict[str, Any] = await self.statistics.report.remote(name, start, end)
        return result

    async def report_online(self, frontend: str, staff_ids: list[int]) -> None:
        await self.board.set_online.remote(frontend, staff_ids)

    async def settled(self, timeout: float = 30.0) -> bool:
        """True once nothing is queued here or in any shard (tests, benchmarks)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            quiet = not any(self.pending)
            if quiet and all(await asyncio.gather(*(s.idle.remote() for s in self.shards))):
                return True
            await asyncio.sleep(0.05)
        return False

    async def stats(self) -> list[dict[str, int]]:
        return list(await asyncio.gather(*(s.stats.remote() for s in self.shards)))

    async def stop(self) -> None:
        try:  # the counters' snapshot, so the next start resumes without re-reading the log
            if self.statistics is not None:
                await asyncio.wait_for(self.statistics.stop.remote(), 10)
        except Exception:
            log.exception("saving the statistics snapshot failed")
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.started_ray:
            ray.shutdown()
