"""The notification inbox: a body is durable before UIS gets its 2xx (R32), written with group
commit — every webhook waiting at one moment shares one transaction — and a repeated body is
recognised by its hash and changes nothing."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from callrouter.storage.engine import Database
from callrouter.storage.models import InboxEntry, Rejected

log = logging.getLogger("callrouter.inbox")

MAX_BATCH = 2000


def body_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True, slots=True)
class Incoming:
    raw: bytes
    call_session_id: int
    received_at: datetime


class InboxWriter:
    """Stores bodies in batches; `store` returns the inbox id, or None for a repeated body."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.queue: list[tuple[Incoming, asyncio.Future[int | None]]] = []
        self.wakeup = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    @property
    def depth(self) -> int:
        return len(self.queue)

    async def store(self, item: Incoming) -> int | None:
        future: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self.queue.append((item, future))
        self.wakeup.set()
        return await future

    async def _loop(self) -> None:
        while True:
            await self.wakeup.wait()
            self.wakeup.clear()
            while self.queue:
                batch, self.queue = self.queue[:MAX_BATCH], self.queue[MAX_BATCH:]
                try:
                    ids = await self._write([item for item, _ in batch])
                except Exception as exc:  # the callers answer 503; UIS will resend
                    log.exception("inbox write failed")
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (item, future), inbox_id in zip(batch, ids, strict=True):
                    if not future.done():
                        future.set_result(inbox_id)

    async def _write(self, items: list[Incoming]) -> list[int | None]:
        hashes = [body_hash(item.raw) for item in items]
        first: dict[str, int] = {}
        rows = []
        for i, (item, h) in enumerate(zip(items, hashes, strict=True)):
            if h not in first:  # the same body twice in one batch: the second is a repeat
                first[h] = i
                rows.append(
                    {
                        "body_hash": h,
                        "call_session_id": item.call_session_id,
                        "received_at": item.received_at,
                        "body": item.raw.decode(),
                        "done": False,
                    }
                )
        insert = pg_insert if not self.db.is_sqlite else sqlite_insert
        stmt = insert(InboxEntry).on_conflict_do_nothing(index_elements=["body_hash"])
        async with self.db.sessions() as session, session.begin():
            new: dict[str, int] = {}
            for start in range(0, len(rows), 500):
                chunk = rows[start : start + 500]
                result = await session.execute(
                    stmt.values(chunk).returning(InboxEntry.id, InboxEntry.body_hash)
                )
                new.update({h: i for i, h in result.tuples()})
        return [new.get(h) if first[h] == i else None for i, h in enumerate(hashes)]


async def reject(
    db: Database,
    *,
    status: int,
    code: str,
    message: str,
    raw: bytes,
    size: int,
    received_at: datetime,
) -> None:
    """Keep a refused body for inspection (R33)."""
    async with db.sessions() as session, session.begin():
        session.add(
            Rejected(
                received_at=received_at,
                status=status,
                code=code,
                message=message,
                body=raw.decode("utf-8", errors="replace"),
                size=size,
            )
        )
