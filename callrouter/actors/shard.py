"""The Ray shell around `ShardHost`: one process hosting many entities.

Turns are synchronous (`deliver` never awaits between reading and writing entity state); their
storage effects go to one ordered outbox written in batched transactions, their envelopes for
other shards leave in one call per shard per flush, and live events wait in a log that the
frontends long-poll. On start the shard re-applies the acknowledged notifications whose
effects were not durable yet (R32).
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections import defaultdict, deque
from typing import Any

import ray

from callrouter.actors.board import Board
from callrouter.actors.host import (
    Envelope,
    Finalize,
    Inbound,
    Job,
    Live,
    MarkDone,
    Output,
    ShardHost,
    StoreRecording,
    entity_key,
    shard_of,
)
from callrouter.actors.stats import Stats
from callrouter.domain.phones import normalize_phone
from callrouter.domain.uis import parse_body, parse_notification
from callrouter.storage import calls as call_store
from callrouter.storage import directory
from callrouter.storage.engine import Database
from callrouter.storage.live import enrich
from callrouter.storage.models import Case

log = logging.getLogger("callrouter.shard")

TICK_SECONDS = 0.25
OUTBOX_BATCH = 200
OUTBOX_LANES = 8  # concurrent transactions per shard on PostgreSQL (the pool has 10 + 10)
EVENT_LOG = 20_000


def lane_of(job: Job, lanes: int) -> int:
    """Jobs of one caller (or one call) share a lane, so their order holds (R16)."""
    if isinstance(job, Finalize):
        key = normalize_phone(job.facts.phone) or str(job.facts.call_session_id)
    elif isinstance(job, StoreRecording):
        key = normalize_phone(job.notification.phone) or str(job.notification.call_session_id)
    elif isinstance(job, Live):
        key = f"staff:{job.staff_id}"
    else:
        key = "done"
    return zlib.crc32(key.encode()) % lanes


def shard_name(prefix: str, index: int) -> str:
    return f"{prefix}-shard-{index}"


@ray.remote(num_cpus=0, max_restarts=-1, max_concurrency=1000)  # type: ignore[call-overload]
class Shard:
    def __init__(self, index: int, count: int, database_url: str, prefix: str) -> None:
        logging.basicConfig(level=logging.INFO)
        self.prefix = prefix
        self.host = ShardHost(index, count)
        self.db = Database(database_url)
        self.peers: list[Any] = []
        self.board: Any = None
        self.outbox: deque[Job] = deque()
        self.outbox_ready = asyncio.Event()
        self.forwards: dict[int, list[Envelope]] = defaultdict(list)
        self.events: deque[tuple[int, int, dict[str, Any]]] = deque(maxlen=EVENT_LOG)
        self.seq = 0
        self.published = asyncio.Condition()
        self.tasks: list[asyncio.Task[None]] = []
        self.failed_jobs = 0
        self.started = False
        self.epoch = time.time_ns()

    async def start(self, peers: list[Any], board: Any = None) -> None:
        """Load configuration, recover undone notifications, start the loops. Idempotent."""
        self.peers = peers
        self.board = board if board is not None else ray.get_actor(f"{self.prefix}-board")
        if self.started:
            return
        self.started = True
        await self.configure()
        self.tasks = [asyncio.create_task(loop()) for loop in (self._outbox_loop, self._timer_loop)]
        await self._recover()

    async def configure(self) -> None:
        """(Re)load the operator map and the silent-call timeout."""
        async with self.db.sessions() as session:
            account = await directory.load_account(session)
            staff_of = await directory.operator_map(session)
        self.tz = account.tz
        self.host.configure(staff_of, float(account.silent_call_timeout_seconds))

    async def _recover(self) -> None:
        after = 0
        while True:
            async with self.db.sessions() as session:
                rows = await call_store.pending_inbox(session, after)
            if not rows:
                return
            after = rows[-1].id
            mine: list[Envelope] = []
            for row in rows:
                env = Inbound(
                    row.id,
                    row.received_at.timestamp(),
                    parse_notification(parse_body(row.body.encode()), self.tz, row.received_at),
                )
                if shard_of(entity_key(env), self.host.count) == self.host.index:
                    mine.append(env)
            self._absorb(self.host.handle(mine, time.time()))
            log.info("shard %s recovered %s notifications", self.host.index, len(mine))

    async def deliver(self, envelopes: list[Envelope]) -> int:
        """Apply a batch of envelopes (the only way work reaches entities)."""
        if not self.started:  # restarted by Ray after a crash: find the peers, recover
            await self.start(
                [ray.get_actor(shard_name(self.prefix, i)) for i in range(self.host.count)]
            )
        self._absorb(self.host.handle(envelopes, time.time()))
        return len(envelopes)

    def _absorb(self, out: Output) -> None:
        if out.board:
            self.board.apply.remote(out.board)
        if out.jobs:
            self.outbox.extend(out.jobs)
            self.outbox_ready.set()
        for target, envelopes in out.forwards.items():
            self.forwards[target].extend(envelopes)
        if out.forwards:
            self._send_forwards()

    def _send_forwards(self) -> None:
        # Tell, don't ask: fire one batch per peer; ordering per peer holds because Ray runs
        # one caller's calls to an actor in submission order and `deliver` never awaits.
        for target, envelopes in list(self.forwards.items()):
            if envelopes:
                self.peers[target].deliver.remote(envelopes)
        self.forwards.clear()

    async def _timer_loop(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            try:
                self._absorb(self.host.tick(time.time()))
            except Exception:  # a timer bug must not stop the shard
                log.exception("timer tick failed")

    async def _outbox_loop(self) -> None:
        # SQLite has one writer for all processes: short transactions keep the webhook's inbox
        # writes from queueing behind us. PostgreSQL takes parallel lanes (one per caller group).
        batch_size = 4 if self.db.is_sqlite else OUTBOX_BATCH
        lanes = 1 if self.db.is_sqlite else OUTBOX_LANES
        while True:
            await self.outbox_ready.wait()
            self.outbox_ready.clear()
            while self.outbox:
                batch = [self.outbox.popleft() for _ in range(min(batch_size, len(self.outbox)))]
                by_lane: dict[int, list[tuple[int, Job]]] = defaultdict(list)
                for i, job in enumerate(batch):
                    by_lane[lane_of(job, lanes)].append((i, job))
                done = await asyncio.gather(*(self._run_lane(jobs) for jobs in by_lane.values()))
                await self._publish(
                    [e for _, e in sorted((x for lane in done for x in lane), key=lambda x: x[0])]
                )

    async def _run_lane(
        self, jobs: list[tuple[int, Job]]
    ) -> list[tuple[int, tuple[int, dict[str, Any]]]]:
        """Run one lane's jobs in order in one transaction; job by job if that fails."""
        try:
            return await self._run(jobs)
        except Exception:
            log.exception("outbox batch failed; retrying job by job")
        events = []
        for job in jobs:
            try:
                events += await self._run([job])
            except Exception:
                # Left undone in the inbox: re-applied on the next start (R32).
                self.failed_jobs += 1
                log.exception("outbox job failed: %r", job[1])
        return events

    async def _run(
        self, jobs: list[tuple[int, Job]]
    ) -> list[tuple[int, tuple[int, dict[str, Any]]]]:
        """Run jobs in order in one transaction; return the live events to publish after it,
        each with its job's place in the batch (events leave in job order)."""
        events: list[tuple[int, tuple[int, dict[str, Any]]]] = []
        async with self.db.sessions() as session, session.begin():
            for place, job in jobs:
                found: list[tuple[int, dict[str, Any]]] = []
                if isinstance(job, Finalize):
                    done = await call_store.finalize_call(session, job.facts)
                    if done is None:
                        continue
                    staff = dict.fromkeys(job.staff_ids + done.staff_ids)
                    for staff_id in staff:
                        found.append(
                            (
                                staff_id,
                                {
                                    "type": "call.ended",
                                    "call_session_id": done.call_session_id,
                                    "case_ids": list(done.case_ids),
                                },
                            )
                        )
                        found += [
                            (staff_id, {"type": "case.updated", "case_id": c})
                            for c in done.case_ids
                        ]
                elif isinstance(job, StoreRecording):
                    changed = await call_store.store_recording(session, job.notification)
                    if job.inbox_id is not None:
                        await call_store.mark_done(session, [job.inbox_id])
                    for case_id in changed:
                        case = await session.get(Case, case_id)
                        if case is not None and case.assignee_id is not None:
                            found.append(
                                (case.assignee_id, {"type": "case.updated", "case_id": case_id})
                            )
                elif isinstance(job, MarkDone):
                    await call_store.mark_done(session, list(job.inbox_ids), job.call_session_id)
                elif isinstance(job, Live):
                    found.append((job.staff_id, await enrich(session, job.event)))
                events += [(place, e) for e in found]
        return events

    async def _publish(self, events: list[tuple[int, dict[str, Any]]]) -> None:
        if not events:
            return
        async with self.published:
            for staff_id, event in events:
                self.seq += 1
                # Unique across shard restarts: frontends sharing a cluster drop repeats by it.
                tagged = {**event, "event_id": f"{self.host.index}:{self.epoch}:{self.seq}"}
                self.events.append((self.seq, staff_id, tagged))
            self.published.notify_all()

    async def poll_events(
        self, after: int, timeout: float
    ) -> tuple[int, list[tuple[int, dict[str, Any]]]]:
        """Live events with a sequence number above `after`, waiting up to `timeout` for one.
        Returns (latest seq, [(staff_id, event)])."""
        async with self.published:
            if self.seq <= after:
                try:
                    await asyncio.wait_for(
                        self.published.wait_for(lambda: self.seq > after), timeout
                    )
                except TimeoutError:
                    return self.seq, []
            return self.seq, [(s, e) for q, s, e in self.events if q > after]

    async def call(self, call_session_id: int) -> dict[str, Any] | None:
        return self.host.call_snapshot(call_session_id)

    async def active_calls(self) -> list[dict[str, Any]]:
        return self.host.active_calls()

    async def agent_replay(self, staff_id: int) -> list[dict[str, Any]]:
        return self.host.agent_replay(staff_id)

    async def idle(self) -> bool:
        """Nothing queued: tests and benchmarks wait for this."""
        return not self.outbox and not self.forwards

    async def stats(self) -> dict[str, int]:
        return {
            "calls": len(self.host.calls),
            "agents": len(self.host.agents),
            "contacts": len(self.host.contacts),
            "outbox": len(self.outbox),
            "failed_jobs": self.failed_jobs,
            "seq": self.seq,
        }

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await self.db.dispose()


@ray.remote(num_cpus=0, max_restarts=-1)
class Supervisor:
    """Creates the named shard actors once and hands them out to every frontend."""

    def __init__(
        self, count: int, database_url: str, namespace_prefix: str, statistics: bool = True
    ) -> None:
        self.board = Board.options(name=f"{namespace_prefix}-board", get_if_exists=True).remote(  # type: ignore[attr-defined]  # ray.remote hides it from mypy
            database_url
        )
        # Without statistics (`serve --no-stats`) nothing tails the history log.
        self.stats = (
            Stats.options(name=f"{namespace_prefix}-stats", get_if_exists=True).remote(database_url)  # type: ignore[attr-defined]
            if statistics
            else None
        )
        self.shards = [
            Shard.options(name=shard_name(namespace_prefix, i), get_if_exists=True).remote(  # type: ignore[attr-defined]  # ray.remote hides it from mypy
                i, count, database_url, namespace_prefix
            )
            for i in range(count)
        ]
        self.ready = False

    async def shards_ready(self) -> list[Any]:
        if not self.ready:
            await asyncio.gather(*(s.start.remote(self.shards, self.board) for s in self.shards))
            self.ready = True
        return self.shards

    async def wallboard(self) -> Any:
        return self.board

    async def statistics(self) -> Any:
        return self.stats
