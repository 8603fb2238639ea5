"""Reading cases' recordings: which recorded parts of a call a message shows (R8, R9, R13).
Writing cases is `case_store`'s alone."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callrouter.storage.models import Message, Recording


def recordings_for(message: Message, recordings: Sequence[Recording]) -> list[Recording]:
    """The recordings of the message's part of the call: a transfer's parts are recorded per
    operator (R13); a recording without an operator belongs to every message of the call."""
    return [
        r
        for r in recordings
        if r.call_session_id == message.call_session_id
        and (
            r.employee_id is None
            or message.employee_id is None
            or r.employee_id == message.employee_id
        )
    ]


async def recordings_of_calls(session: AsyncSession, call_ids: Sequence[int]) -> list[Recording]:
    if not call_ids:
        return []
    rows = await session.scalars(
        select(Recording).where(Recording.call_session_id.in_(set(call_ids))).order_by(Recording.id)
    )
    return list(rows)
