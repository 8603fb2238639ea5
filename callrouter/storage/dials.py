"""Click-to-call records (R18): written before UIS is asked, so the call's first notifications,
which may beat UIS's answer, already find their case through our `external_id`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from callrouter.domain.phones import dial_digits
from callrouter.storage import directory
from callrouter.storage.directory import InvalidError, NotFoundError
from callrouter.storage.models import Case, Dial, Operator


async def start_dial(
    session: AsyncSession, case_id: int, staff_id: int, external_id: str, at: datetime
) -> tuple[str, int]:
    """Record the dial; (the number to call as the profile has it, the staff member's UIS
    employee id). 422 before anything is written when the user's first number has no digits
    to dial (numbers stored before they were checked), so UIS is never asked to call it."""
    case = await session.get(Case, case_id)
    if case is None:
        raise NotFoundError("case_not_found", f"No case {case_id}.")
    phones = (
        (await directory.phones_of(session, [case.user_id]))[case.user_id] if case.user_id else []
    )
    if not phones:
        raise InvalidError("no_phone", "The case's user has no phone number to call.")
    if dial_digits(phones[0]) is None:
        raise InvalidError(
            "invalid_phone",
            f"The user's phone number '{phones[0]}' has no digits to call. Correct it in the "
            "user's profile, then try again.",
        )
    employee_id = await session.scalar(
        select(Operator.employee_id).where(Operator.staff_id == staff_id).limit(1)
    )
    if employee_id is None:
        raise InvalidError(
            "staff_not_mapped", "You are not mapped to a UIS operator; ask the admin."
        )
    session.add(Dial(external_id=external_id, case_id=case_id, staff_id=staff_id, created_at=at))
    return phones[0], employee_id


async def drop_dial(session: AsyncSession, external_id: str) -> None:
    """UIS refused the call: forget the dial."""
    await session.execute(delete(Dial).where(Dial.external_id == external_id))


async def dial_started(session: AsyncSession, external_id: str, call_session_id: int) -> None:
    """UIS answered with the call's session id."""
    await session.execute(
        update(Dial).where(Dial.external_id == external_id).values(call_session_id=call_session_id)
    )
