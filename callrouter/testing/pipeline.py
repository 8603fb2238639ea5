"""The whole path from a webhook body to cases in one process, in virtual time, without Ray:
the parser, the inbox, the writer's `Dispatch`, `ShardHost`s and the case store on a real
database. Property tests deliver the same notifications in many orders and delays and
compare the cases they end in; nothing here sleeps.

It plays the Ray shells' part faithfully but plainly: every delivery carries the event clock,
every shard output is handed on at once, and the writer writes one batch per `step`.
"""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from callrouter.actors.dispatch import Dispatch, Late, Routed
from callrouter.actors.host import Envelope, Live, Output, ShardHost
from callrouter.domain.call import CallFacts
from callrouter.domain.notifications import Notification
from callrouter.domain.uis import parse_body, parse_notification
from callrouter.storage import inbox
from callrouter.storage.case_store import Batch, CallFailed, write_batch
from callrouter.storage.engine import Database
from callrouter.storage.inbox import Failure, Incoming
from callrouter.storage.models import Call

MSK = ZoneInfo("Europe/Moscow")


class Pipeline:
    def __init__(
        self,
        db: Database,
        staff_of: dict[int, int],
        *,
        shards: int = 2,
        lateness: float = 30.0,
        silent_timeout: float = 7200.0,
        hold: float = 0.0,
        tz: ZoneInfo = MSK,
    ) -> None:
        self.db = db
        self.tz = tz
        self.dispatch = Dispatch(shards)
        self.dispatch.clock.set_reach(lateness)
        self.hosts = [
            ShardHost(i, shards, staff_of, silent_timeout, lateness, hold) for i in range(shards)
        ]
        self.decide: deque[CallFacts] = deque()
        self.batch = Batch()
        self.live: list[Live] = []  # every live event, in order
        self.set_aside: list[Failure] = []

    async def post(self, raw: bytes, wall: float) -> int | None:
        """A webhook body arrives at `wall` (seconds): parsed, stored, routed, applied. Its
        inbox id, None for a repeat. Raises the parser's errors (the webhook's 4xx)."""
        received = datetime.fromtimestamp(wall, UTC)
        n = parse_notification(parse_body(raw), self.tz, received)
        async with self.db.writing() as conn:
            [inbox_id] = await inbox.insert_bodies(
                conn, [Incoming(raw, n.call_session_id, received)]
            )
        if inbox_id is not None:
            await self._route([(inbox_id, n, wall)], wall)
        return inbox_id

    async def post_many(self, raws: list[bytes], wall: float) -> list[int | None]:
        """Bodies stored in one transaction and routed together, as the writer does with one
        ingest (the reconciliation's repairs); their inbox ids, None for repeats."""
        received = datetime.fromtimestamp(wall, UTC)
        notes = [parse_notification(parse_body(raw), self.tz, received) for raw in raws]
        incoming = [Incoming(raw, n.call_session_id, received) for raw, n in zip(raws, notes)]
        async with self.db.writing() as conn:
            ids = await inbox.insert_bodies(conn, incoming)
        items = [(i, n, wall) for i, n in zip(ids, notes, strict=True) if i is not None]
        if items:
            await self._route(list(items), wall)
        return ids

    async def _route(
        self, items: list[tuple[int | None, Notification, float]], wall: float
    ) -> None:
        unknown = self.dispatch.unknown({n.call_session_id for _, n, _ in items})
        if unknown:
            async with self.db.engine.connect() as conn:
                rows = await conn.scalars(
                    Call.__table__.select()
                    .with_only_columns(Call.call_session_id)
                    .where(Call.call_session_id.in_(unknown), Call.finalized.is_(True))
                )
                self.dispatch.learned(unknown, set(rows))
        self._take(self.dispatch.stored(items, wall), wall)

    def _take(self, routed: Routed, wall: float) -> None:
        self.batch.records += [(r.inbox_id, r.notification) for r in routed.records]
        self.batch.late += [(x.inbox_id, x.notification) for x in routed.late]
        reading = self.dispatch.clock.reading()
        for shard, envelopes in routed.deliveries.items():
            host = self.hosts[shard]
            host.clock = reading
            self._absorb(host.handle(list(envelopes), wall), wall)
            self._absorb(host.tick(wall), wall)

    def _absorb(self, out: Output, wall: float) -> None:
        self.live += out.live
        self.decide += self.dispatch.finished_calls(out.finished)
        for env in out.late:
            for news in self.dispatch.news(Late(env.inbox_id, env.notification)):
                self.batch.late.append((news.inbox_id, news.notification))
        for q in out.quarantined:
            self._set_aside(Failure(q.call_session_id, q.stage, q.error, q.inbox_ids))
        for target, envelopes in out.forwards.items():
            self._forward(target, list(envelopes), wall)

    def _forward(self, target: int, envelopes: list[Envelope], wall: float) -> None:
        self._absorb(self.hosts[target].handle(envelopes, wall), wall)

    def _set_aside(self, failure: Failure) -> None:
        self.set_aside.append(failure)
        self.batch.failures.append(failure)
        if failure.call_session_id is not None:
            self.decide += self.dispatch.set_aside(failure.call_session_id)

    async def tick(self, wall: float) -> None:
        """Time passes to `wall`: shards fire their timers, the writer writes what is ready."""
        reading = self.dispatch.clock.reading()
        for host in self.hosts:
            if reading is not None:
                host.clock = reading
            self._absorb(host.tick(wall), wall)
        await self.write()

    async def write(self) -> None:
        """The writer writes everything ready, batch after batch."""
        while self.decide or len(self.batch):
            batch, self.batch = self.batch, Batch()
            batch.calls = list(self.decide)
            self.decide.clear()
            while True:
                try:
                    async with self.db.writing() as conn:
                        result = await write_batch(conn, batch, datetime.now(UTC))
                    break
                except CallFailed as failed:
                    batch.calls = [
                        c for c in batch.calls if c.call_session_id != failed.call_session_id
                    ]
                    failure = Failure(failed.call_session_id, failed.stage, failed.error)
                    self.set_aside.append(failure)
                    batch.failures.append(failure)
                    self.decide += self.dispatch.set_aside(failed.call_session_id)
            ready = self.dispatch.decided_calls([d.call_session_id for d in result.decided])
            self.batch.late += [(x.inbox_id, x.notification) for x in ready]

    async def settle(self, wall: float, step: float = 1.0, limit: float = 100_000.0) -> float:
        """Let time pass from `wall` until nothing is left to decide; the wall time then."""
        end = wall + limit
        while wall < end:
            await self.tick(wall)
            if not self.dispatch.live and not self.dispatch.finished and not self.decide:
                return wall
            wall += step
        raise AssertionError("the pipeline did not settle")

    def pending(self) -> dict[str, Any]:
        return {"live": len(self.dispatch.live), "finished": len(self.dispatch.finished)}
