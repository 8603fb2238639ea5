"""Shared fixtures: `database`, a fresh schema on SQLite and on PostgreSQL.

PostgreSQL comes from CALLROUTER_TEST_PG_URL (default: the local server). Each test run gets its
own PostgreSQL schema, so parallel runs and other data in that database are left alone. When
the server is unreachable the PostgreSQL cases skip, unless CALLROUTER_REQUIRE_SERVICES=1,
where they fail (CI must not pass by skipping).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import SQLAlchemyError

from callrouter.storage.engine import Database, normalize_url
from callrouter.storage.models import Base

PG_URL = os.environ.get(
    "CALLROUTER_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REQUIRE_SERVICES = os.environ.get("CALLROUTER_REQUIRE_SERVICES") == "1"
_pg_tables_made: set[str] = set()  # schemas whose tables exist already in this run


async def _pg_admin(sql: str) -> None:
    db = Database(PG_URL)
    try:
        async with db.engine.begin() as conn:
            await conn.execute(text(sql))
    finally:
        await db.dispose()


@pytest.fixture(scope="session")
def pg_schema() -> Iterator[str | Exception]:
    """This run's PostgreSQL schema name, or why PostgreSQL cannot be used."""
    schema = f"test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(asyncio.wait_for(_pg_admin(f'CREATE SCHEMA "{schema}"'), 10))
    # Unreachable, refused, bad credentials: all mean "no PostgreSQL here".
    except (OSError, TimeoutError, SQLAlchemyError) as exc:
        yield exc
        return
    yield schema
    asyncio.run(_pg_admin(f'DROP SCHEMA "{schema}" CASCADE'))


def _use_schema(db: Database, schema: str) -> None:
    @event.listens_for(db.engine.sync_engine, "connect", insert=True)
    def set_search_path(dbapi_connection: Any, _record: Any) -> None:
        # SET outside a transaction, so a later rollback cannot undo it.
        autocommit = dbapi_connection.autocommit
        dbapi_connection.autocommit = True
        cursor = dbapi_connection.cursor()
        cursor.execute(f'SET SESSION search_path TO "{schema}"')
        cursor.close()
        dbapi_connection.autocommit = autocommit


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file with the schema, copied for each test (much faster than creating it)."""
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"

    async def create() -> None:
        db = Database(f"sqlite:///{path}")
        await db.create_schema()
        await db.dispose()  # the last connection closing folds the WAL into the file

    asyncio.run(create())
    return path


async def open_database(
    kind: str, tmp_path: Path, pg_schema: str | Exception, template: Path
) -> Database:
    """An empty database with the schema created (SQLite: a copy of the template file;
    PostgreSQL: the run's tables, created once and emptied per test)."""
    if kind == "sqlite":
        path = tmp_path / "test.sqlite3"
        shutil.copyfile(template, path)
        return Database(f"sqlite:///{path}")
    if isinstance(pg_schema, Exception):
        reason = f"PostgreSQL at {PG_URL} is unreachable: {pg_schema!r}"
        if REQUIRE_SERVICES:
            pytest.fail(reason + " (CALLROUTER_REQUIRE_SERVICES=1)")
        pytest.skip(reason)
    db = Database(normalize_url(PG_URL))
    _use_schema(db, pg_schema)
    if pg_schema not in _pg_tables_made:
        await db.create_schema()
        _pg_tables_made.add(pg_schema)
    async with db.engine.begin() as conn:
        # DELETE beats TRUNCATE on a handful of tiny tables (TRUNCATE rewrites each file).
        for table in reversed(Base.metadata.sorted_tables):
            await conn.execute(table.delete())
    return db


@pytest.fixture(params=["sqlite", "postgresql"])
async def database(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    pg_schema: str | Exception,
    sqlite_template: Path,
) -> AsyncIterator[Database]:
    """A fresh, empty database: once on SQLite, once on PostgreSQL."""
    db = await open_database(request.param, tmp_path, pg_schema, sqlite_template)
    yield db
    await db.dispose()


@pytest.fixture
async def sqlite_database(tmp_path: Path, sqlite_template: Path) -> AsyncIterator[Database]:
    """A fresh, empty SQLite database (for tests that do not depend on the dialect)."""
    db = await open_database("sqlite", tmp_path, RuntimeError("unused"), sqlite_template)
    yield db
    await db.dispose()
