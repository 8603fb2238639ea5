"""Storage data live events carry: the caller's profile in a popup (R3, R5), the case of a
call from a case (R18)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from callrouter.storage import directory
from callrouter.storage.models import Dial


async def enrich(session: AsyncSession, event: dict[str, Any]) -> dict[str, Any]:
    """Complete a live event from the shard with what only storage knows."""
    kind = event["type"]
    if kind in ("call.ringing", "call.answered"):
        user = (
            await directory.find_user_by_phone(session, event.get("phone"))
            if event.get("phone")
            else None
        )
        if kind == "call.ringing":
            fields = await directory.popup_fields(session, user) if user is not None else None
            return {
                **event,
                "user": {"id": user.id, "fields": fields} if user is not None else None,
            }
        return {**event, "user_id": user.id if user is not None else None}
    if kind in ("call.dialing", "call.connected"):
        # The first notifications may arrive before UIS's answer gave us the session id.
        case_id = None
        if event.get("external_id"):
            case_id = await session.scalar(
                select(Dial.case_id).where(Dial.external_id == event["external_id"])
            )
        if case_id is None:
            case_id = await session.scalar(
                select(Dial.case_id).where(Dial.call_session_id == event["call_session_id"])
            )
        return {**event, "case_id": case_id}
    return event
