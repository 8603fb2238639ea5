"""The notification inbox, the rejected bodies and the quarantine (R32, R33).

A body is durable before UIS gets its 2xx: the writer inserts every body waiting at one moment
in one statement (group commit); a repeated body is recognised by its hash and changes nothing.
An inbox row is `done` once its effects are durable; undone rows are re-applied after a crash.
Every function runs inside its caller's transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from callrouter.storage.contexts import chunks
from callrouter.storage.engine import Conn, SyncConnection
from callrouter.storage.models import InboxEntry, Quarantine, Rejected

inbox_t = cast(Table, InboxEntry.__table__)
quarantine_t = cast(Table, Quarantine.__table__)
rejected_t = cast(Table, Rejected.__table__)


def body_hash(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True, slots=True)
class Incoming:
    raw: bytes
    call_session_id: int
    received_at: datetime


async def insert_bodies(conn: Conn, items: Sequence[Incoming]) -> list[int | None]:
    """Store the bodies; each one's inbox id, or None for a body stored before (or earlier in
    this batch)."""
    hashes = [body_hash(item.raw) for item in items]
    first: dict[str, int] = {}
    rows = []
    for i, (item, h) in enumerate(zip(items, hashes, strict=True)):
        if h not in first:
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
    if isinstance(conn, SyncConnection):
        new = _insert_sqlite(conn, rows)
        return [new.get(h) if first[h] == i else None for i, h in enumerate(hashes)]
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(inbox_t)
        .on_conflict_do_nothing(index_elements=["body_hash"])
        .returning(inbox_t.c.id, inbox_t.c.body_hash)
    )
    # executemany: one compiled statement, sent as multi-row INSERTs ("insertmanyvalues").
    result = await conn.execute(stmt, rows) if rows else None
    new = {h: i for i, h in result.tuples()} if result is not None else {}
    return [new.get(h) if first[h] == i else None for i, h in enumerate(hashes)]


_SQLITE_INSERT = (
    "INSERT INTO inbox (id, body_hash, call_session_id, received_at, body, done)"
    " VALUES (?, ?, ?, ?, ?, 0) ON CONFLICT (body_hash) DO NOTHING"
)


def _insert_sqlite(conn: SyncConnection, rows: list[dict[str, Any]]) -> dict[str, int]:
    """The writer's inbox insert on SQLite, in sqlite3's C executemany: per row it costs a
    fraction of building the statement's parameters in Python (this runs for every body).
    Ids are taken after the highest, as the only writer may; rows that were stored before
    (the same hash) are skipped and their ids not returned."""
    db = conn.dbapi()
    (top,) = db.execute("SELECT COALESCE(MAX(id), 0) FROM inbox").fetchone()
    db.executemany(
        _SQLITE_INSERT,
        [
            (
                top + k,
                r["body_hash"],
                r["call_session_id"],
                _sqlite_time(r["received_at"]),
                r["body"],
            )
            for k, r in enumerate(rows, 1)
        ],
    )
    found = db.execute("SELECT id, body_hash FROM inbox WHERE id > ?", (top,)).fetchall()
    return {h: i for i, h in found}


def _sqlite_time(moment: datetime) -> str:
    """A time as SQLAlchemy stores it on SQLite (UTC, naive, always with microseconds)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


async def pending(conn: Conn, after_id: int = 0, limit: int = 5000) -> list[Any]:
    """Acknowledged notifications whose effects are not durable yet, oldest first."""
    query = (
        select(inbox_t.c.id, inbox_t.c.call_session_id, inbox_t.c.received_at, inbox_t.c.body)
        .where(inbox_t.c.done.is_(False), inbox_t.c.id > after_id)
        .order_by(inbox_t.c.id)
        .limit(limit)
    )
    return list((await conn.execute(query)).all())


async def count_pending(session: AsyncSession) -> int:
    query = select(func.count()).select_from(inbox_t).where(inbox_t.c.done.is_(False))
    return int(await session.scalar(query) or 0)


async def reopen_calls(conn: Conn, call_ids: Sequence[int]) -> None:
    """Mark every notification of these calls undone again (a quarantined call retried)."""
    for part in chunks(call_ids):
        await conn.execute(
            update(inbox_t).where(inbox_t.c.call_session_id.in_(part)).values(done=False)
        )


async def reject(conn: Conn, row: dict[str, Any]) -> None:
    """Keep a refused body for inspection (R33)."""
    await conn.execute(rejected_t.insert().values(**row))


# -- the quarantine ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Failure:
    """A call (or a body without a call) whose processing failed at `stage`."""

    call_session_id: int | None
    stage: str
    error: str
    inbox_ids: tuple[int, ...] = ()
    body: str | None = None


async def quarantine(conn: Conn, failures: Sequence[Failure], now: datetime) -> None:
    """Keep each failure with its error; a call already in quarantine gathers its new
    notifications into its entry. Its notifications count as handled: the entry holds them."""
    for f in failures:
        entry = None
        if f.call_session_id is not None:
            entry = (
                await conn.execute(
                    select(quarantine_t.c.id, quarantine_t.c.inbox_ids).where(
                        quarantine_t.c.call_session_id == f.call_session_id,
                        quarantine_t.c.status == "open",
                    )
                )
            ).first()
        if entry is None:
            await conn.execute(
                quarantine_t.insert().values(
                    call_session_id=f.call_session_id,
                    stage=f.stage,
                    error=f.error,
                    inbox_ids=list(f.inbox_ids),
                    body=f.body,
                    status="open",
                    attempts=1,
                    created_at=now,
                    updated_at=now,
                )
            )
        else:
            ids = sorted(set(entry.inbox_ids or []) | set(f.inbox_ids))
            await conn.execute(
                update(quarantine_t)
                .where(quarantine_t.c.id == entry.id)
                .values(inbox_ids=ids, updated_at=now)
            )
        for part in chunks(f.inbox_ids):
            await conn.execute(update(inbox_t).where(inbox_t.c.id.in_(part)).values(done=True))
        if f.call_session_id is not None:  # the entry holds all of the call's notifications
            await conn.execute(
                update(inbox_t)
                .where(inbox_t.c.call_session_id == f.call_session_id)
                .values(done=True)
            )


async def retry_entries(
    session: AsyncSession, entry_id: int | None, now: datetime
) -> list[tuple[int | None, str | None]]:
    """Send open entries (one, or all) back: they become `retried`, their calls' notifications
    undone again. Their (call, body)."""
    conn = await session.connection()
    entries = [e for e in await open_quarantine(conn) if entry_id in (None, e.id)]
    calls = [e.call_session_id for e in entries if e.call_session_id is not None]
    await mark_retried(conn, [e.id for e in entries], now)
    await reopen_calls(conn, calls)
    return [(e.call_session_id, e.body) for e in entries]


async def open_quarantine(conn: Conn) -> list[Any]:
    query = select(quarantine_t).where(quarantine_t.c.status == "open").order_by(quarantine_t.c.id)
    return list((await conn.execute(query)).all())


async def mark_retried(conn: Conn, entry_ids: Sequence[int], now: datetime) -> None:
    """These entries go back to be processed again."""
    for part in chunks(entry_ids):
        await conn.execute(
            update(quarantine_t)
            .where(quarantine_t.c.id.in_(part))
            .values(status="retried", updated_at=now)
        )
