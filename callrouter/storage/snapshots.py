"""The statistics snapshot row: the counters with the last history id they include."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from callrouter.storage.models import StatsSnapshot


async def save_snapshot(session: AsyncSession, max_id: int, data: bytes, at: datetime) -> None:
    """Replace the snapshot (a unit of work the writer runs: it is the one writing process)."""
    values = {"id": 1, "max_id": max_id, "data": data, "saved_at": at}
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    await session.execute(
        insert(StatsSnapshot)
        .values(**values)
        .on_conflict_do_update(index_elements=["id"], set_=values)
    )
