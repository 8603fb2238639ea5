"""The frontend's typed facade over the actors (the only module `http/` uses for Ray).

Webhook bodies go to the writer in batches — whatever waits at one moment, a couple of calls
in flight — never one Ray call per notification (a Ray call costs ~1 ms of CPU here). Every
write of the frontends is a unit of work the writer runs (`run`), so SQLite has one writing
process. Live events are long-polled from the writer (shards' live events come back in their
deliveries' answers) and handed to a callback.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import ray

from callrouter.actors import placement
from callrouter.actors.host import shard_of
from callrouter.actors.shard import Supervisor
from callrouter.domain.notifications import Notification
from callrouter.storage import directory
from callrouter.storage.inbox import Failure

log = logging.getLogger("callrouter.cluster")

MAX_BATCH = 2000
IN_FLIGHT = 2
# Past this the webhooks answer 503 and UIS sends again (a repeat is recognised): a call to a
# writer that died mid-call must not hold the ingest slots forever.
INGEST_TIMEOUT = 30.0
EventSink = Callable[[int, dict[str, Any]], Awaitable[None]]
Body = tuple[bytes, Notification, datetime]

_ERRORS: dict[str, type[directory.DirectoryError]] = {
    cls.__name__: cls
    for cls in (directory.InvalidError, directory.NotFoundError, directory.ConflictError)
}


def unwrap(answer: tuple[Any, ...]) -> Any:
    """The result of a unit of work the writer ran, or the `DirectoryError` it raised."""
    if answer[0] == "ok":
        return answer[1]
    _, kind, code, message = answer
    raise _ERRORS.get(kind, directory.DirectoryError)(code, message)


class Cluster:
    def __init__(
        self,
        database_url: str,
        *,
        shards: int = 2,
        ray_address: str | None = None,
        ray_node_ip: str | None = None,
        prefix: str = "callrouter",
        statistics: bool = True,
    ) -> None:
        self.with_statistics = statistics
        # The Ray node this frontend attaches to, by its IP (several nodes on one machine);
        # None: the local node, the head first.
        self.ray_node_ip = ray_node_ip
        self.database_url = database_url
        self.count = shards
        self.ray_address = ray_address
        self.prefix = prefix
        self.shards: list[Any] = []
        self.queue: list[tuple[Body, asyncio.Future[int | None]]] = []
        self.wakeup = asyncio.Event()
        self.slots = asyncio.Semaphore(IN_FLIGHT)
        self.tasks: list[asyncio.Task[None]] = []
        self.started_ray = False
        # Webhook bodies through this frontend (`/metrics`): every one that reached a known
        # address, the repeats among them, and the refused ones by error code.
        self.received = 0
        self.duplicates = 0
        self.rejected: Counter[str] = Counter()

    def connect(self) -> None:
        """Join (or start) Ray; blocking, so call it before serving."""
        if not ray.is_initialized():
            os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a local run needs no token file
            # Ray runs its workers at nice 15 by default: the writer and the shards are the
            # service itself, not background work, so they get the frontend's priority.
            os.environ.setdefault("RAY_worker_niceness", "0")
            if self.ray_address:
                ray.init(
                    address=self.ray_address,
                    namespace=self.prefix,
                    log_to_driver=False,
                    _node_ip_address=self.ray_node_ip,
                )
            else:
                ray.init(
                    include_dashboard=False,
                    namespace=self.prefix,
                    log_to_driver=False,
                    num_cpus=max(2, os.cpu_count() or 2),
                )
            self.started_ray = True

    async def start(self, on_event: EventSink | None = None) -> None:
        """Get the actors from the named supervisor (created by the first frontend)."""
        # The handle is kept: an actor whose owner drops every reference is destroyed, shards
        # and all. On a shared cluster the supervisor outlives any one frontend.
        options: dict[str, Any] = {"name": f"{self.prefix}-supervisor", "get_if_exists": True}
        if self.ray_address:
            # On the head, whichever frontend comes first: the supervisor owns the writer and
            # the shards, and an owner's node takes what it owns down with it.
            options["lifetime"] = "detached"
            options.update(await asyncio.to_thread(placement.on_head))
        self.supervisor = Supervisor.options(**options).remote(  # type: ignore[attr-defined]  # ray.remote hides it from mypy
            self.count, self.database_url, self.prefix, self.with_statistics
        )
        self.shards = await self.supervisor.shards_ready.remote()
        handles = await self.supervisor.handles.remote()
        self.writer, self.board, self.statistics = (
            handles["writer"],
            handles["board"],
            handles["stats"],
        )
        if len(self.shards) != self.count:
            log.warning(
                "the cluster runs %s shards (set when it started), not %s: using %s",
                len(self.shards),
                self.count,
                len(self.shards),
                extra={"event": "shard_count", "shards": len(self.shards), "asked": self.count},
            )
        self.count = len(self.shards)
        self.tasks = [asyncio.create_task(self._sender())]
        if on_event is not None:
            self.tasks.append(asyncio.create_task(self._pump(self.writer, on_event)))

    # -- writes ---------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        """Bodies waiting to be sent to the writer."""
        return len(self.queue)

    async def ingest(self, body: Body) -> int | None:
        """Store one webhook body durably (with every other body waiting now); its inbox id,
        or None for a repeated body."""
        self.received += 1
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self.queue.append((body, future))
        self.wakeup.set()
        inbox_id = await future
        if inbox_id is None:
            self.duplicates += 1
        return inbox_id

    async def _sender(self) -> None:
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            while self.queue:
                await self.slots.acquire()
                batch, self.queue = self.queue[:MAX_BATCH], self.queue[MAX_BATCH:]
                asyncio.create_task(self._send(batch))

    async def _send(self, batch: list[tuple[Body, asyncio.Future[int | None]]]) -> None:
        try:
            call = self.writer.ingest.remote([body for body, _ in batch])
            ids = await asyncio.wait_for(call, INGEST_TIMEOUT)
        except Exception as exc:  # noqa: BLE001 - the webhooks answer 503; UIS sends again
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        else:
            for (_, future), inbox_id in zip(batch, ids, strict=True):
                if not future.done():
                    future.set_result(inbox_id)
        finally:
            self.slots.release()

    async def keep(self, item: dict[str, Any] | Failure) -> None:
        """Keep a rejected body (R33) or a body the parser failed on (the quarantine). Logs
        its code and size, never the body."""
        self.received += 1
        if isinstance(item, Failure):
            size = len((item.body or "").encode())
            log.error(
                "webhook body quarantined: the parser failed on it (%s bytes)",
                size,
                extra={"event": "webhook_quarantined", "size": size},
            )
        else:
            self.rejected[item["code"]] += 1
            log.warning(
                "webhook body rejected: %s %s (%s bytes)",
                item["status"],
                item["code"],
                item["size"],
                extra={
                    "event": "webhook_rejected",
                    "status": item["status"],
                    "code": item["code"],
                    "size": item["size"],
                },
            )
        await self.writer.keep.remote(item)

    async def run(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Run `fn(session, *args)` in the writer, in a transaction of its own."""
        return unwrap(await self.writer.run.remote(fn, *args))

    async def retry(self, entry_id: int | None) -> int:
        result: int = await self.writer.retry.remote(entry_id)
        return result

    # -- live events ----------------------------------------------------------------------

    async def _pump(self, source: Any, on_event: EventSink) -> None:
        epoch, cursor = 0, 0
        while True:
            try:
                epoch, cursor, events = await source.poll_events.remote(epoch, cursor, 5.0)
                for staff_id, event in events:
                    await on_event(staff_id, event)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("live events failed; polling again")
                await asyncio.sleep(0.5)

    # -- reads ----------------------------------------------------------------------------

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
            *(s.configure.remote() for s in self.shards),
            self.board.configure.remote(),
            self.writer.configure.remote(),
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

    # -- smart routing (issue 11 part 1) --------------------------------------------------

    async def staff_states(self, after: int, timeout: float) -> tuple[int, dict[int, str]]:
        """(seq, staff → free/ringing/talking/offline) from the board, once it changed."""
        seq, states = await asyncio.wait_for(
            self.board.states.remote(after, timeout), timeout + 5.0
        )
        return int(seq), dict(states)

    async def routed(self, items: list[tuple[int, int, datetime]]) -> None:
        """Tell the wallboard which calls smart routing sent to whom."""
        await asyncio.wait_for(self.board.routed.remote(items), 10.0)

    async def settled(self, timeout: float = 30.0) -> bool:
        """True once nothing is queued here, in the writer or in any shard (tests, benchmarks)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            checks = [self.writer.idle.remote(), *(s.idle.remote() for s in self.shards)]
            if not self.queue and all(await asyncio.gather(*checks)):
                return True
            await asyncio.sleep(0.05)
        return False

    async def stats(self) -> dict[str, Any]:
        shards = await asyncio.gather(*(s.stats.remote() for s in self.shards))
        writer = await self.writer.status.remote()
        statistics = None
        if self.statistics is not None:
            statistics = await self.statistics.status.remote()
        nodes = await self.supervisor.nodes.remote()
        for node in nodes:
            node["shards"] = [i for i, s in enumerate(shards) if s.get("node") == node["node_id"]]
        return {"shards": list(shards), "writer": writer, "statistics": statistics, "nodes": nodes}

    async def writer_metrics(self) -> dict[str, Any]:
        """The writer's figures for `/metrics` (`WriterService.metrics`)."""
        result: dict[str, Any] = await self.writer.metrics.remote()
        return result

    async def observe(self, timeout: float = 5.0) -> dict[str, Any]:
        """The actors' figures for `/metrics`: `shards` (their `stats`), `writer` (its
        `metrics`), `statistics` (its `status`) and `lag_seconds` (`WriterService.history_lag`);
        a part that does not answer within `timeout` is None, so an actor Ray is restarting
        costs the scrape that part only. The statistics are asked after the writer, so a lag
        they show is real."""

        async def ask(call: Any) -> Any:
            try:
                return await asyncio.wait_for(call, timeout)
            except Exception:  # noqa: BLE001 - a part that did not answer is left out
                return None

        shards, writer = await asyncio.gather(
            ask(asyncio.gather(*(s.stats.remote() for s in self.shards))),
            ask(self.writer.metrics.remote()),
        )
        statistics = lag = None
        if self.statistics is not None:
            statistics = await ask(self.statistics.status.remote())
        if writer is not None and statistics is not None:
            lag = 0.0
            if writer["history_max"] > statistics["max_id"]:
                lag = await ask(self.writer.history_lag.remote(statistics["max_id"]))
        return {"shards": shards, "writer": writer, "statistics": statistics, "lag_seconds": lag}

    # -- reconciliation with the UIS Data API (issue 11 part 2) ------------------------------

    async def reconcile(
        self, start: datetime, end: datetime, data_api_url: str | None = None
    ) -> int:
        """Queue a reconciliation run in the writer (the cluster's one runner); its id."""
        run_id: int = await self.writer.reconcile.remote(start, end, data_api_url)
        return run_id

    async def reconcile_configure(self, data_api_url: str | None) -> None:
        """Tell the writer the Data API URL this frontend was started with (if any)."""
        if data_api_url:
            await self.writer.reconcile_configure.remote(data_api_url)

    async def reconcile_held(self) -> int:
        """Ended calls the shards hold past the lateness bound for a reconciliation run."""
        loads = await asyncio.gather(*(s.stats.remote() for s in self.shards))
        return sum(int(load.get("held_for_reconciliation", 0)) for load in loads)

    async def reconcile_idle(self) -> bool:
        """No reconciliation run is queued or going on (tests)."""
        idle: bool = await self.writer.reconcile_idle.remote()
        return idle

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
