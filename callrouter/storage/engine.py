"""One async engine per process (STYLE: SQLAlchemy asyncio docs): SQLite file by default,
PostgreSQL by URL."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Protocol

import orjson
from sqlalchemy import Connection, Dialect, Engine, create_engine, event, inspect, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.schema import CreateColumn

from callrouter.storage.models import Base


def normalize_url(url: str) -> str:
    """Give a plain `postgresql://` or `sqlite://` URL its async driver."""
    for plain, driver in (
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgres://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    return url


def sqlite_url(data_dir: str | Path) -> str:
    """The default database: a SQLite file in the data dir."""
    return f"sqlite+aiosqlite:///{Path(data_dir).resolve() / 'callrouter.sqlite3'}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the frontend and the shard processes read while one of them writes; the busy
    # timeout makes concurrent writers queue instead of failing; NORMAL keeps commits durable
    # against process crashes (what R32 needs) without an fsync per transaction.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


CHECKPOINT_SECONDS = 1.0


class Conn(Protocol):
    """What the storage's batch writes need of a connection: `AsyncConnection`, or a sync
    connection behind `SyncConnection`."""

    @property
    def dialect(self) -> Dialect: ...

    async def execute(self, statement: Any, parameters: Any = None) -> Any: ...

    async def scalar(self, statement: Any, parameters: Any = None) -> Any: ...

    async def scalars(self, statement: Any, parameters: Any = None) -> Any: ...


class SyncConnection:
    """A sync connection with `AsyncConnection`'s methods. The writer runs its SQLite work on
    one of these in its own thread: aiosqlite hands every statement to a thread of its own, and
    on a busy machine each hand-over waits for the scheduler."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.dialect = conn.dialect

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        return self.conn.execute(statement, parameters)

    async def scalar(self, statement: Any, parameters: Any = None) -> Any:
        return self.conn.scalar(statement, parameters)

    async def scalars(self, statement: Any, parameters: Any = None) -> Any:
        return self.conn.scalars(statement, parameters)

    def dbapi(self) -> Any:
        """The sqlite3 connection itself, for the few statements worth running in C alone."""
        return self.conn.connection.dbapi_connection


class Database:
    """Owns the engine and the session factory; `dispose()` releases the pool."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = normalize_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        kwargs: dict[str, Any] = {
            "echo": echo,
            # A failed statement's error (logged, kept in the quarantine) must not carry its
            # values: an API key, a password hash or a notification body may be among them.
            "hide_parameters": True,
            "json_serializer": lambda value: orjson.dumps(value).decode(),
            "json_deserializer": orjson.loads,
        }
        if not self.is_sqlite:
            kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessions: async_sessionmaker[AsyncSession] = async_sessionmaker(
            self.engine, expire_on_commit=False
        )
        self._sync: Engine | None = None
        self._checkpointer: _Checkpointer | None = None
        self._json = (kwargs["json_serializer"], kwargs["json_deserializer"])

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[AsyncSession]:
        """A session for a read of several queries that must agree — a case and its messages
        as one decision left them. Without it each query sees the database of its own moment:
        SQLite's driver begins no transaction before a SELECT, and PostgreSQL's read committed
        takes a new snapshot per statement."""
        async with self.sessions() as session:
            if self.is_sqlite:
                await session.execute(text("BEGIN"))  # deferred: the snapshot of its first read
            else:
                await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            yield session

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[Conn]:
        """A transaction for the writer's batches: on SQLite a sync connection in this thread,
        on PostgreSQL the async one (asyncpg has no thread to hand over to)."""
        if not self.is_sqlite:
            async with self.engine.begin() as conn:
                yield conn
            return
        if self._sync is None:
            serializer, deserializer = self._json
            self._sync = create_engine(
                self.url.replace("sqlite+aiosqlite", "sqlite+pysqlite", 1),
                json_serializer=serializer,
                json_deserializer=deserializer,
                hide_parameters=True,
            )
            event.listen(self._sync, "connect", _sqlite_pragmas)
            event.listen(self._sync, "connect", _no_autocheckpoint)
            self._checkpointer = _Checkpointer(self._sync.url.database or "")
            self._checkpointer.start()
        with self._sync.begin() as sync_conn:
            yield SyncConnection(sync_conn)

    async def create_schema(self) -> None:
        """Create missing tables and add missing nullable columns (idempotent; several
        processes may race here on start)."""
        async with self.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
            await conn.run_sync(_upgrade)

    async def drop_schema(self) -> None:
        """Drop every table: tests only."""
        async with self.engine.begin() as conn:
            await conn.run_sync(Base.metadata.drop_all)

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._checkpointer is not None:
            self._checkpointer.stopped.set()
        if self._sync is not None:
            self._sync.dispose()


def _no_autocheckpoint(dbapi_connection: Any, _record: Any) -> None:
    # The writer's commits only append to the WAL; `_Checkpointer` copies it into the database
    # file from a thread of its own, so no commit waits for a checkpoint's fsync (seen: 34 ms).
    dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")


class _Checkpointer(threading.Thread):
    """Checkpoints the WAL every second (PASSIVE: it never blocks the writer)."""

    def __init__(self, path: str) -> None:
        super().__init__(name="wal-checkpoint", daemon=True)
        self.path = path
        self.stopped = threading.Event()

    def run(self) -> None:
        db = None
        while not self.stopped.wait(CHECKPOINT_SECONDS):
            try:
                db = db or sqlite3.connect(self.path, timeout=30, check_same_thread=False)
                db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error:
                pass  # busy now (or gone): the next one catches up
        if db is not None:
            db.close()


def _upgrade(conn: Connection) -> None:
    """A data dir from an older version lacks the columns and indexes added since: add them
    (each added column is nullable or has a server default, which the existing rows take),
    so an upgrade needs no migration step."""
    inspector = inspect(conn)
    for table in Base.metadata.sorted_tables:
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            addable = column.nullable or column.server_default is not None
            if column.name not in present and addable:
                ddl = CreateColumn(column).compile(dialect=conn.dialect)
                conn.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {ddl}")
        indexes = {i["name"] for i in inspector.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in indexes:
                index.create(conn, checkfirst=True)
