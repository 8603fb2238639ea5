"""The writer: the one process that writes the database (SQLite has one writer; PostgreSQL
gets the same single sequence, so the statistics read history in commit order).

Everything durable passes through it, in one loop:
- webhook bodies from the frontends, group-committed to the inbox before their 2xx (R32); it
  then knows every stored notification first, so it keeps the event clock and the order of
  each caller's call ends, and routes the notifications to the shards with the clock
  (`dispatch.py`);
- finished calls from the shards, released per caller in the order of their ends, decided and
  written in batches (`storage/case_store.py`), each batch's history fed to the statistics as
  it commits;
- recordings and late news of decided calls, applied to the stored calls (R32);
- what staff and admins change (`run`): one transaction each, between batches.

A failure belongs to one call (STYLE habit 11): a decision that raises is set aside at once; a
batch whose write fails on a healthy database is split until the one item at fault is
quarantined with its error; an unreachable database is waited out, nothing being dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from bisect import bisect_left
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import ray
from sqlalchemy import func, select, text

from callrouter import logs
from callrouter.actors.dispatch import Dispatch, Late, Routed
from callrouter.actors.events import EventLog
from callrouter.actors.host import Envelope, Inbound, Output
from callrouter.domain.call import CallFacts
from callrouter.domain.notifications import Kind, Notification
from callrouter.domain.uis import parse_body, parse_notification
from callrouter.reconciler import Reconciler, http_reports
from callrouter.stats.history import HistoryEvent, from_row
from callrouter.storage import directory, inbox
from callrouter.storage.case_store import Batch, BatchResult, CallFailed, write_batch
from callrouter.storage.directory import DirectoryError
from callrouter.storage.engine import Database
from callrouter.storage.inbox import Failure, Incoming
from callrouter.storage.live import Profiles, keeps_profiles
from callrouter.storage.models import Call, CaseEvent

log = logging.getLogger("callrouter.writer")

INGEST_BATCH = 2000
DECIDE_BATCH = 200  # calls per transaction: short enough that the inbox never waits long
WORK_BATCH = 1000
DELIVER_BATCH = 2000
# A delivery takes milliseconds; one unanswered this long is lost (a call to an actor that
# died mid-call has been seen to hang): it is sent again.
DELIVER_TIMEOUT = 20.0
# Seconds a shard's timers' output waits at most for a delivery while the shard is busy; after
# quiet rounds (nothing sent, nothing back, no call waiting for its lateness bound) the wait
# doubles up to IDLE_HEARTBEAT, never past the shard's next wall-clock deadline (a silent call,
# a held call), so an idle service costs almost nothing (a Ray call is ~1 ms of CPU on each
# side) and no decision comes later for it. New work wakes a sender at once.
HEARTBEAT = 0.1
IDLE_HEARTBEAT = 10.0
BOARD_LINGER = 0.25  # seconds wallboard changes gather before they go (R31: within a second)
RECOVER_BATCH = 5000
LINGER = 0.05  # seconds a batch may wait to fill (what waits: a case ~30 s after its call)
BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)  # seconds
FED_MARKS = 4096  # the latest feeds to the statistics whose commit time is remembered


class Buckets:
    """A Prometheus-style histogram the writer keeps for the frontends' `/metrics`: a count per
    upper bound (the last one is +Inf, not cumulative) and the sum."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value

    def snapshot(self) -> dict[str, Any]:
        return {"bounds": list(self.bounds), "counts": list(self.counts), "sum": self.sum}


class _Unreachable(Exception):
    """The database does not answer: the batch went back to its queues."""


class WriterService:
    """The writer's shell; `Writer` is it as a Ray actor (tests may run it in-process)."""

    def __init__(
        self,
        database_url: str,
        shards: int,
        prefix: str,
        statistics: Any = None,
        board: Any = None,
    ) -> None:
        logs.setup_actor()
        self.prefix = prefix
        self.db = Database(database_url)
        self.count = shards
        self.stats = statistics
        self.board = board
        self.board_events: list[Any] = []
        self.board_wakeup = asyncio.Event()
        self.profiles = Profiles(self.db, self.db.writing)
        self.shards: list[Any] = []
        self.epochs: list[int | None] = [None] * shards
        self.answers: list[int | None] = [None] * shards  # the last answer of each, received
        # Shards restarted and being sent what they lost (the inbox's pending notifications of
        # their calls); deliveries hold their timers until it is all there.
        self.catching_up: dict[int, asyncio.Task[int]] = {}
        self.started = False
        self.ready = asyncio.Event()
        self.dispatch = Dispatch(shards)
        self.ingest_queue: list[tuple[Incoming, Notification, asyncio.Future[int | None]]] = []
        self.pending = Batch()  # what the next batch writes, but for the calls:
        self.decide_queue: deque[CallFacts] = deque()
        # Kept bodies and failures, answered once the batch holding them commits; `unkept`
        # names (by id) those the database refused alone (a NUL in PostgreSQL text, ...).
        self.kept: list[tuple[object, asyncio.Future[None]]] = []
        self.unkept: set[int] = set()
        self.runs: deque[tuple[Callable[..., Awaitable[Any]], tuple[Any, ...], Any]] = deque()
        self.outboxes: list[list[Envelope]] = [[] for _ in range(shards)]
        self.send_wakeups = [asyncio.Event() for _ in range(shards)]
        self.wakeup = asyncio.Event()
        self.events = EventLog("writer")
        self.history_max = 0
        self.tz: Any = None
        self.tasks: list[asyncio.Task[None]] = []
        self.set_aside_count = 0
        self.batches = 0
        self.last_batch = 0.0
        self.linger: asyncio.TimerHandle | None = None
        self.timings: dict[str, deque[float]] = {  # milliseconds, the latest of each
            k: deque(maxlen=500) for k in ("ingest", "batch")
        }
        self.calls: Counter[str] = Counter()  # Ray calls, each way: what costs CPU here
        # For `/metrics`, since this process started: calls decided, batch write times, the
        # restarts seen of each shard, the notifications re-routed by the start's recovery
        # (None until it is done), and (last history id, commit time) of the latest feeds.
        self.decisions = 0
        self.batch_seconds = Buckets(BATCH_BUCKETS)
        self.restarts = [0] * shards
        self.recovered: int | None = None
        self.fed: deque[tuple[int, float]] = deque(maxlen=FED_MARKS)
        # The cluster's one reconciliation job (issue 11 part 2): its repairs are our ingests.
        self.data_api_url: str | None = None  # `serve --data-api-url`; else beside the Call API
        self.reconciler = Reconciler(
            self.db, self._unit, self.ingest, lambda i: http_reports(self.data_api_url)(i)
        )
        self.reconcile_ready = asyncio.Event()

    # -- life -----------------------------------------------------------------------------

    async def start(self, shards: list[Any] | None = None) -> None:
        """Load settings, retry what was quarantined, re-route what was not done (R32).
        Idempotent; a writer Ray restarted after a crash starts itself on its first call."""
        if self.started:
            await self.ready.wait()
            return
        self.started = True
        if shards is None:
            from callrouter.actors.shard import shard_name  # that module imports this one

            shards = [ray.get_actor(shard_name(self.prefix, i)) for i in range(self.count)]
        self.shards = shards
        await self.db.create_schema()
        await self.configure()
        async with self.db.engine.connect() as conn:
            top = await conn.scalar(select(func.coalesce(func.max(CaseEvent.id), 0)))
        self.history_max = int(top or 0)
        self.tasks = [asyncio.create_task(self._loop()), asyncio.create_task(self._board_loop())]
        self.tasks.append(asyncio.create_task(self._reconcile_loop()))  # issue 11 part 2
        self.tasks += [asyncio.create_task(self._sender(i)) for i in range(self.count)]
        self.ready.set()  # the loop runs: what follows goes through it
        await self._retry(None)
        self.recovered = await self._recover(None)

    async def configure(self) -> None:
        """(Re)load the settings the writer decides by."""
        async with self.db.sessions() as session:
            account = await directory.load_account(session)
        self.tz = account.tz
        self.dispatch.clock.set_reach(float(account.lateness_seconds))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        self.reconciler.stop()
        await self.db.dispose()

    # -- from the frontends ---------------------------------------------------------------

    async def ingest(self, items: list[tuple[bytes, Notification, datetime]]) -> list[int | None]:
        """Store the bodies durably; each one's inbox id (None: a body stored before)."""
        await self.start()
        self.calls["ingest"] += 1
        loop = asyncio.get_running_loop()
        futures = []
        for raw, n, received_at in items:
            future: asyncio.Future[int | None] = loop.create_future()
            self.ingest_queue.append((Incoming(raw, n.call_session_id, received_at), n, future))
            futures.append(future)
        self.wakeup.set()
        return list(await asyncio.gather(*futures))

    async def keep(self, item: dict[str, Any] | Failure) -> None:
        """Keep a rejected body (R33) or a body the parser failed on (the quarantine)."""
        await self.start()
        if isinstance(item, Failure):
            self._set_aside(item)
        else:
            self.pending.rejected.append(item)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.kept.append((item, future))
        self.wakeup.set()
        await future

    async def run(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> tuple[Any, ...]:
        """Run `fn(session, *args)` in a transaction of its own; ("ok", result) or
        ("error", kind, code, message) for a `DirectoryError` the caller maps to HTTP."""
        await self.start()
        future: asyncio.Future[tuple[Any, ...]] = asyncio.get_running_loop().create_future()
        self.runs.append((fn, args, future))
        self.wakeup.set()
        return await future

    async def retry(self, entry_id: int | None) -> int:
        """Send quarantined calls back through (one entry, or every open one); how many."""
        await self.start()
        return await self._retry(entry_id)

    # -- reconciliation with the UIS Data API (issue 11 part 2) ------------------------------

    async def reconcile(
        self, start: datetime, end: datetime, data_api_url: str | None = None
    ) -> int:
        """Queue a reconciliation run over the calls that started in [start, end); its id at
        once. Runs go one after another, here only: one runner per cluster."""
        await self.start()
        await self.reconcile_configure(data_api_url)
        await self.reconcile_ready.wait()
        return await self.reconciler.request(start, end, "admin")

    async def reconcile_configure(self, data_api_url: str | None) -> None:
        """The Data API URL a frontend was started with (`--data-api-url`), if any."""
        self.data_api_url = data_api_url or self.data_api_url

    async def reconcile_idle(self) -> bool:
        """No run is queued or going on (tests)."""
        return not self.reconciler.busy

    async def _reconcile_loop(self) -> None:
        """Fail the runs a stopped writer left, then run on schedule until stopped."""
        while True:
            try:
                await self.reconciler.prepare()
                break
            except Exception:  # the database may be away: the loop waits for it
                log.exception("marking interrupted reconciliation runs failed")
                await asyncio.sleep(5.0)
        self.reconcile_ready.set()
        await self.reconciler.loop()

    async def _unit(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """`run`, its result or its `DirectoryError` raised (the reconciler's writes)."""
        answer = await self.run(fn, *args)
        if answer[0] == "ok":
            return answer[1]
        raise DirectoryError(answer[2], answer[3])

    # -- what the shards made ---------------------------------------------------------------

    async def _absorb(self, made: Output) -> None:
        """Take what a shard made: its finished calls for decisions, news of its finished
        calls, calls that failed there, live events, wallboard changes, agent envelopes."""
        self.decide_queue += self.dispatch.finished_calls(made.finished)
        for env in made.late:
            for news in self.dispatch.news(Late(env.inbox_id, env.notification)):
                self.pending.late.append((news.inbox_id, news.notification))
        for q in made.quarantined:
            self._set_aside(Failure(q.call_session_id, q.stage, q.error, q.inbox_ids))
        for target, envelopes in made.forwards.items():
            self.outboxes[target] += envelopes
            self.send_wakeups[target].set()
        if made.board:
            self.board_events += made.board
            self.board_wakeup.set()
        if made.live:
            events = [(live.staff_id, live.event) for live in made.live]
            events = await self.profiles.enrich(events)
            self.events.publish(events)
        if made.finished or made.late or made.quarantined:
            self.wakeup.set()

    def _shard_restarted(self, index: int) -> None:
        """Shard `index` restarted with no memory: send it what is not done yet, and let the
        others tell its agents what rings and who talks."""
        self.restarts[index] += 1
        log.warning(
            "shard %s restarted: sending what is not done",
            index,
            extra={"event": "shard_restart", "shard": index, "restarts": self.restarts[index]},
        )
        for i, shard in enumerate(self.shards):
            if i != index:
                shard.resync_agents.remote(index)
                self.send_wakeups[i].set()  # their envelopes go with the next delivery: now
        self.catching_up[index] = asyncio.create_task(self._recover(index))

    async def _board_loop(self) -> None:
        """Wallboard changes leave in batches, one `apply` in flight, each gathering what came
        in BOARD_LINGER (R31 wants a second; a Ray call per delivery would cost the board
        actor more than all its folding)."""
        while True:
            await self.board_wakeup.wait()
            await asyncio.sleep(BOARD_LINGER)
            self.board_wakeup.clear()
            while self.board_events and self.board is not None:
                batch, self.board_events = self.board_events, []
                self.calls["board"] += 1
                try:
                    await asyncio.wait_for(self.board.apply.remote(batch), DELIVER_TIMEOUT)
                except Exception:  # noqa: BLE001 - the board restarts and rebuilds from storage
                    log.warning("the wallboard did not take %s events", len(batch))
                    await asyncio.sleep(0.5)

    # -- reads ----------------------------------------------------------------------------

    async def poll_events(
        self, epoch: int, after: int, timeout: float
    ) -> tuple[int, int, list[tuple[int, dict[str, Any]]]]:
        self.calls["poll_events"] += 1
        return await self.events.poll(epoch, after, timeout)

    async def status(self) -> dict[str, Any]:
        reading = self.dispatch.clock.reading()
        return {
            "ingest_queue": len(self.ingest_queue),
            "decisions_queued": len(self.decide_queue),
            "held_for_order": self.dispatch.order.waiting(),
            "work_queued": len(self.pending),
            "live_calls": len(self.dispatch.live),
            "finished_calls": len(self.dispatch.finished),
            "batches": self.batches,
            "set_aside": self.set_aside_count,
            **{f"{k}_ms_p50": _median(v) for k, v in self.timings.items()},
            "ray_calls": dict(self.calls),
            "event_clock": None
            if reading is None
            else datetime.fromtimestamp(reading.at(time.time()), UTC).isoformat(),
        }

    async def metrics(self) -> dict[str, Any]:
        """The figures `/metrics` shows of the writer, since this process started."""
        return {
            "incarnation": self.events.epoch,
            "recovered": self.recovered,
            "decisions": self.decisions,
            "batch_seconds": self.batch_seconds.snapshot(),
            "shard_restarts": list(self.restarts),
            "set_aside": self.set_aside_count,
            "history_max": self.history_max,
        }

    async def history_lag(self, applied: int) -> float:
        """Seconds since the oldest history the statistics have not applied (all up to
        `applied`) was committed: 0 when they have it all; at worst a lower bound, when that
        history is older than the marks kept."""
        for last_id, committed in self.fed:
            if last_id > applied:
                return max(0.0, time.time() - committed)
        return 0.0

    async def idle(self) -> bool:
        """Nothing waits here (tests, benchmarks)."""
        return not (
            self.ingest_queue
            or self.decide_queue
            or len(self.pending)
            or self.runs
            or any(self.outboxes)
            or self.dispatch.finished
        )

    # -- routing --------------------------------------------------------------------------

    async def _route(self, items: list[tuple[int, Notification, float]]) -> None:
        """Send stored notifications on (`Dispatch.stored`)."""
        unknown = self.dispatch.unknown({n.call_session_id for _, n, _ in items})
        if unknown:
            async with self.db.writing() as conn:
                self.dispatch.learned(unknown, await _decided_among(conn, unknown))
        self._take(self.dispatch.stored(list(items), time.time()))

    def _take(self, routed: Routed) -> None:
        for shard, envelopes in routed.deliveries.items():
            self.outboxes[shard] += envelopes
        self.pending.records += [(r.inbox_id, r.notification) for r in routed.records]
        self.pending.late += [(late.inbox_id, late.notification) for late in routed.late]
        for shard in routed.deliveries:
            self.send_wakeups[shard].set()
        self.wakeup.set()

    async def _sender(self, i: int) -> None:
        """One `deliver` in flight to shard i; whatever piles up meanwhile goes next. The
        event clock travels with the notifications; at least every HEARTBEAT a delivery goes
        anyway, to bring back what the shard's timers made."""
        wait = HEARTBEAT
        while True:
            try:
                await asyncio.wait_for(self.send_wakeups[i].wait(), wait)
            except TimeoutError:
                pass
            self.send_wakeups[i].clear()
            quiet = True
            while True:
                batch = self.outboxes[i][:DELIVER_BATCH]
                del self.outboxes[i][: len(batch)]
                self.calls["deliver"] += 1
                hold = i in self.catching_up
                if self.ingest_queue:  # bodies wait behind a batch: no idling past them
                    self.dispatch.clock.touch(time.time())
                call = self.shards[i].deliver.remote(
                    batch, self.dispatch.clock.reading(), self.epochs[i], hold, self.answers[i]
                )
                try:
                    epoch, answer, made, waiting, due = await asyncio.wait_for(
                        call, DELIVER_TIMEOUT
                    )
                except Exception:
                    # The shard died (Ray restarts it; its new epoch says so) or the call was
                    # lost: send the batch again (a repeat is a no-op for its calls); the
                    # unacknowledged answer comes with the next one.
                    log.warning("delivery to shard %s failed; retrying", i, exc_info=True)
                    self.outboxes[i][:0] = batch
                    await asyncio.sleep(0.5)
                    continue
                if made is None:  # a new incarnation: what it lost goes first
                    self.outboxes[i][:0] = batch
                    self.epochs[i], self.answers[i] = epoch, None
                    self._shard_restarted(i)
                    continue
                self.epochs[i], self.answers[i] = epoch, answer
                quiet = quiet and not batch and not made and not waiting
                quiet = quiet and i not in self.catching_up
                try:
                    await self._absorb(made)
                except Exception:  # this loop must outlive any one answer
                    log.exception("taking shard %s's answer failed", i)
                if i in self.catching_up and self.catching_up[i].done() and not self.outboxes[i]:
                    del self.catching_up[i]  # everything it lost was delivered: let it finish
                if not self.outboxes[i]:
                    break
            until_due = IDLE_HEARTBEAT if due is None else due - time.time()
            wait = min(wait * 2, IDLE_HEARTBEAT, max(HEARTBEAT, until_due)) if quiet else HEARTBEAT

    async def _recover(self, shard: int | None) -> int:
        """Route the notifications not done yet (all, or those of one shard's calls); how
        many."""
        after, total = 0, 0
        while True:
            async with self.db.engine.connect() as conn:
                rows = await inbox.pending(conn, after, RECOVER_BATCH)
            if not rows:
                log.info(
                    "recovery: %s notification(s) not done yet re-routed%s",
                    total,
                    "" if shard is None else f" to shard {shard}",
                    extra={"event": "recovery", "replayed": total, "shard": shard},
                )
                return total
            after = rows[-1].id
            items = []
            for row in rows:
                if shard is not None and (
                    self.dispatch.shard_of_call(row.call_session_id) != shard
                    or row.call_session_id in self.dispatch.finished  # its facts are here
                ):
                    continue
                try:
                    n = parse_notification(parse_body(row.body.encode()), self.tz, row.received_at)
                except Exception:  # noqa: BLE001 - it parsed once; set it aside, go on
                    error = traceback.format_exc(limit=4)
                    self._set_aside(Failure(row.call_session_id, "parse", error, (row.id,)))
                    continue
                items.append((row.id, n, row.received_at.timestamp()))
            if shard is not None:  # recordings stay here; the rest goes to that shard
                routed = Routed()
                for inbox_id, n, received in items:
                    if n.kind is not Kind.RECORDING:
                        routed.deliveries[shard].append(Inbound(inbox_id, received, n))
                self._take(routed)
            else:
                await self._route(items)
            total += len(items)

    async def _retry(self, entry_id: int | None) -> int:
        # Through the loop, as every write of this process: never two writers at once.
        answer = await self.run(inbox.retry_entries, entry_id, datetime.now(UTC))
        entries: list[tuple[int | None, str | None]] = answer[1]
        calls = [call for call, _ in entries if call is not None]
        for call_id in calls:
            self.dispatch.reset(call_id)
            await self.shards[self.dispatch.shard_of_call(call_id)].reset.remote([call_id])
        if entry_id is not None and calls:
            await self._recover(None)
        for body in (body for _, body in entries if body is not None):
            await self._reingest(body)
        return len(entries)

    async def _reingest(self, body: str) -> None:
        raw, received = body.encode(), datetime.now(UTC)
        try:
            n = parse_notification(parse_body(raw), self.tz, received)
        except Exception:  # noqa: BLE001 - still broken: back to the quarantine
            self._set_aside(Failure(None, "parse", traceback.format_exc(limit=4), (), body))
            return
        await self.ingest([(raw, n, received)])

    # -- the loop -------------------------------------------------------------------------

    async def _loop(self) -> None:
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            try:
                while self.ingest_queue or self.runs or self._batch_due():
                    if self.ingest_queue:  # first: webhooks wait for it
                        await self._ingest()
                    elif self.runs:
                        await self._run_next()
                    else:
                        await self._batch()
                if (self.decide_queue or len(self.pending)) and self.linger is None:
                    self.linger = asyncio.get_running_loop().call_later(LINGER, self._linger_over)
            except _Unreachable:
                await asyncio.sleep(1.0)  # the database is down: wait, keep everything
                self.wakeup.set()
            except Exception:
                log.exception("writer loop failed; going on")
                await asyncio.sleep(0.5)
                self.wakeup.set()

    async def _ingest(self) -> None:
        batch = self.ingest_queue[:INGEST_BATCH]
        del self.ingest_queue[: len(batch)]
        self.dispatch.clock.touch(time.time())  # stored or refused, the line is not quiet
        started = time.perf_counter()
        unknown = self.dispatch.unknown({n.call_session_id for _, n, _ in batch})
        try:
            async with self.db.writing() as conn:
                ids = await inbox.insert_bodies(conn, [item for item, _, _ in batch])
                decided = await _decided_among(conn, unknown) if unknown else set()
            self.timings["ingest"].append((time.perf_counter() - started) * 1000)
        except Exception as exc:  # noqa: BLE001 - the webhooks answer 503; UIS sends again
            log.warning("inbox write failed: %s", exc)
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, _, future), inbox_id in zip(batch, ids, strict=True):
            if not future.done():
                future.set_result(inbox_id)
        self.dispatch.learned(unknown, decided)
        stored = [
            (inbox_id, n, item.received_at.timestamp())
            for (item, n, _), inbox_id in zip(batch, ids, strict=True)
            if inbox_id is not None
        ]
        self._take(self.dispatch.stored(stored, time.time()))

    async def _run_next(self) -> None:
        fn, args, future = self.runs.popleft()
        try:
            async with self.db.sessions() as session, session.begin():
                result = await fn(session, *args)
        except DirectoryError as exc:
            future.set_result(("error", type(exc).__name__, exc.code, exc.message))
            return
        except Exception as exc:  # noqa: BLE001 - the caller answers 500 with it
            future.set_exception(exc)
            return
        future.set_result(("ok", result))
        if not keeps_profiles(fn):
            self.profiles.forget()  # a user, a phone or a popup field may have changed
        await self._feed_since()

    def _linger_over(self) -> None:
        self.linger = None  # one timer at a time: each wake-up must not start another
        self.wakeup.set()

    def _batch_due(self) -> bool:
        """A batch is written once it is full or has waited `LINGER`: under load batches grow
        (a batch costs a few dozen statements whatever its size) instead of coming faster."""
        if not (self.decide_queue or len(self.pending)):
            return False
        full = len(self.decide_queue) >= DECIDE_BATCH or len(self.pending) >= WORK_BATCH
        return full or time.monotonic() - self.last_batch >= LINGER

    async def _batch(self) -> None:
        """Take the next batch off the queues and write it."""
        self.last_batch = time.monotonic()
        calls = [
            self.decide_queue.popleft() for _ in range(min(DECIDE_BATCH, len(self.decide_queue)))
        ]
        batch, self.pending = self.pending, Batch()
        batch.calls = calls
        kept, self.kept = self.kept, []
        started = time.perf_counter()
        try:
            await self._write(batch)
        except _Unreachable:
            self.kept = kept + self.kept  # they wait in `pending` with the rest
            raise
        elapsed = time.perf_counter() - started
        self.timings["batch"].append(elapsed * 1000)
        self.batch_seconds.observe(elapsed)
        for item, future in kept:
            if future.done():
                continue
            if id(item) in self.unkept:
                future.set_exception(RuntimeError("could not be stored"))
            else:
                future.set_result(None)
        self.unkept.clear()
        self.batches += 1

    async def _write(self, batch: Batch) -> None:
        """Write one batch; on failure find what is at fault, never dropping the rest."""
        while len(batch):
            try:
                async with self.db.writing() as conn:
                    result = await write_batch(conn, batch, datetime.now(UTC))
            except CallFailed as failed:
                batch.calls = [
                    c for c in batch.calls if c.call_session_id != failed.call_session_id
                ]
                batch.failures.append(
                    self._set_aside(
                        Failure(failed.call_session_id, failed.stage, failed.error), queue=False
                    )
                )
                continue
            except Exception:  # noqa: BLE001 - split until the one at fault is found
                if not await self._database_ok():
                    log.warning("database unreachable; %s calls wait", len(batch.calls))
                    self.decide_queue.extendleft(reversed(batch.calls))
                    batch.calls = []
                    self.pending = _merge(batch, self.pending)
                    raise _Unreachable from None
                if len(batch) == 1:
                    self._fail(batch)
                    return
                first, second = batch.halves()
                await self._write(first)
                await self._write(second)
                return
            await self._after(result)
            return

    def _fail(self, batch: Batch) -> None:
        """The one item of `batch` cannot be written: set it aside with the error."""
        error = traceback.format_exc(limit=8)
        log.error("writing set aside: %s", error)
        for facts in batch.calls:
            self._set_aside(Failure(facts.call_session_id, "write", error))
        for inbox_id, n in batch.records + batch.late:
            ids = (inbox_id,) if inbox_id is not None else ()
            self._set_aside(Failure(n.call_session_id, "amend", error, ids))
        # A failure or a rejected body that cannot be kept is only logged, and its webhook 500s.
        self.unkept.update(id(item) for item in (*batch.failures, *batch.rejected))

    async def _database_ok(self) -> bool:
        try:
            async with self.db.engine.connect() as conn:
                await asyncio.wait_for(conn.execute(text("SELECT 1")), 5)
            return True
        except Exception:  # noqa: BLE001 - any failure means "not now"
            return False

    async def _after(self, result: BatchResult) -> None:
        """What follows a committed batch: memory, the statistics, live events."""
        events: list[tuple[int, dict[str, Any]]] = []
        self.profiles.forget(result.new_numbers)
        ready = self.dispatch.decided_calls([d.call_session_id for d in result.decided])
        self.decisions += len(result.decided)
        self.pending.late += [(late.inbox_id, late.notification) for late in ready]
        for d in result.decided:
            event = {
                "type": "call.decided",
                "call_session_id": d.call_session_id,
                "case_ids": list(d.case_ids),
            }
            events += [(s, event) for s in d.staff_ids]
        for case_id, staff in result.updated.items():
            events += [(s, {"type": "case.updated", "case_id": case_id}) for s in sorted(staff)]
        self._feed(result.history)
        self.events.publish(events)
        if len(self.pending):
            self.wakeup.set()

    def _set_aside(self, failure: Failure, queue: bool = True) -> Failure:
        """Quarantine a call: it no longer holds up its caller's later calls. The failure is
        written with the next batch (`queue`) or by the caller."""
        self.set_aside_count += 1
        if failure.call_session_id is not None:
            self.decide_queue += self.dispatch.set_aside(failure.call_session_id)
        if queue:
            self.pending.failures.append(failure)
            self.wakeup.set()
        return failure

    # -- statistics -----------------------------------------------------------------------

    def _feed(self, history: list[HistoryEvent]) -> None:
        """Hand committed history to the statistics, with the highest id they must already
        have: a statistics actor that missed a feed reads the log up to there first."""
        if not history:
            return
        before, self.history_max = self.history_max, max(self.history_max, history[-1].id)
        self.fed.append((self.history_max, time.time()))
        if self.stats is not None:
            self.calls["statistics"] += 1
            self.stats.feed.remote(before, history)

    async def _feed_since(self) -> None:
        async with self.db.engine.connect() as conn:
            query = (
                select(CaseEvent.__table__)
                .where(CaseEvent.id > self.history_max)
                .order_by(CaseEvent.id)
            )
            rows = (await conn.execute(query)).all()
        self._feed([from_row(r._mapping) for r in rows])


async def _decided_among(conn: Any, call_ids: set[int]) -> set[int]:
    """Which of these calls were decided already."""
    query = select(Call.call_session_id).where(
        Call.call_session_id.in_(call_ids), Call.finalized.is_(True)
    )
    return set(await conn.scalars(query))


def _median(values: deque[float]) -> float | None:
    return round(sorted(values)[len(values) // 2], 1) if values else None


def _merge(first: Batch, second: Batch) -> Batch:
    """`first`'s items, then `second`'s (a batch put back in front of what came meanwhile)."""
    return Batch(
        calls=first.calls + second.calls,
        records=first.records + second.records,
        late=first.late + second.late,
        failures=first.failures + second.failures,
        rejected=first.rejected + second.rejected,
    )


Writer = ray.remote(num_cpus=0, max_restarts=-1, max_concurrency=1000)(WriterService)  # type: ignore[call-overload]
