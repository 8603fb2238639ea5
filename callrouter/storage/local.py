"""Units of work run in this process: what the writer does, for tests and tools that run no
Ray (`http` handlers only see the `Store` seam)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from callrouter.storage.engine import Database


class LocalStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def run(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """`fn(session, *args)` in a transaction of its own."""
        async with self.db.sessions() as session, session.begin():
            return await fn(session, *args)
