"""`Database.snapshot()`: every query of one read sees the same committed state, on SQLite and
PostgreSQL — a case and its messages are shown as one decision left them, never the case from
before a commit beside messages from after it."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from callrouter.storage.engine import Database
from callrouter.storage.models import Staff


async def _name(session: AsyncSession, staff_id: int) -> str:
    return str(await session.scalar(select(Staff.full_name).where(Staff.id == staff_id)))


async def _staff_named_a(database: Database) -> int:
    async with database.sessions() as session, session.begin():
        staff = Staff(full_name="A", email="a@x", token_hash="h", created_at=datetime.now(UTC))
        session.add(staff)
    return staff.id


async def _rename(database: Database, staff_id: int, name: str) -> None:
    async with database.sessions() as other, other.begin():
        await other.execute(update(Staff).where(Staff.id == staff_id).values(full_name=name))


async def test_a_snapshot_read_does_not_see_a_commit_made_during_it(database: Database) -> None:
    staff_id = await _staff_named_a(database)
    async with database.snapshot() as read:
        assert await _name(read, staff_id) == "A"
        await _rename(database, staff_id, "B")  # a decision commits between two queries
        assert await _name(read, staff_id) == "A"
    async with database.snapshot() as read:
        assert await _name(read, staff_id) == "B"


async def test_without_a_snapshot_each_query_sees_its_own_moment(database: Database) -> None:
    """Why the snapshot is needed: the plain session's second query sees the commit."""
    staff_id = await _staff_named_a(database)
    async with database.sessions() as read:
        assert await _name(read, staff_id) == "A"
        await _rename(database, staff_id, "B")
        assert await _name(read, staff_id) == "B"
