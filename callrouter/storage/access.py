"""Sign-in sessions and read-only wallboard links (issue 9): who may call the API besides the
bearer tokens of `Staff`.

Both hold a random secret the client keeps (a cookie, a link's `?link=`) and store only its
SHA-256 (`directory.hash_token`), so a leaked database opens nothing. Writes are units of work
the writer runs (`Store.run`: plain arguments in, plain answers out); the lookups run in the
frontend on every request.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from callrouter.storage.directory import NotFoundError, paged
from callrouter.storage.models import Staff, WallboardLink, WebSession

CHUNK = 1000  # hashes per IN (...): both drivers cap a statement's parameters


def _chunks(items: Iterable[str]) -> list[list[str]]:
    values = sorted(set(items))
    return [values[i : i + CHUNK] for i in range(0, len(values), CHUNK)]


def new_secret() -> str:
    """A fresh unguessable secret (256 bits), URL- and cookie-safe."""
    return secrets.token_urlsafe(32)


# --- sessions ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionOwner:
    """Whom a live session signs in: a staff member (`staff_id`, `role`), or the admin of the
    admin token (`staff_id` None, `admin_key` naming that token)."""

    staff_id: int | None
    role: str
    admin_key: str | None


async def open_session(
    session: AsyncSession,
    secret_hash: str,
    staff_id: int | None,
    admin_key: str | None,
    now: datetime,
    expires_at: datetime,
    password_rehash: str | None = None,
) -> None:
    """Store a new session (the caller made the secret and keeps it); expired sessions go at the
    same time, so the table holds only live ones and a few hours of dead ones. With
    `password_rehash` the member's password hash is upgraded to the current parameters."""
    await session.execute(delete(WebSession).where(WebSession.expires_at <= now))
    session.add(
        WebSession(
            secret_hash=secret_hash,
            staff_id=staff_id,
            admin_key=admin_key,
            created_at=now,
            expires_at=expires_at,
        )
    )
    if password_rehash is not None and staff_id is not None:
        staff = await session.get(Staff, staff_id)
        if staff is not None:
            staff.password_hash = password_rehash
    await session.flush()


async def close_session(session: AsyncSession, secret_hash: str) -> None:
    """End one session (sign-out); nothing when it is gone already."""
    await session.execute(delete(WebSession).where(WebSession.secret_hash == secret_hash))


async def session_owner(
    session: AsyncSession, secret_hash: str, now: datetime
) -> SessionOwner | None:
    """The owner of a live session: None when it is unknown, expired, or its staff member is
    deactivated. The admin key is the caller's to compare with the current admin token."""
    row = (
        await session.execute(
            select(WebSession.staff_id, WebSession.admin_key, Staff.role, Staff.active)
            .outerjoin(Staff, Staff.id == WebSession.staff_id)
            .where(WebSession.secret_hash == secret_hash, WebSession.expires_at > now)
        )
    ).first()
    if row is None:
        return None
    staff_id, admin_key, role, active = row
    if staff_id is None:
        return SessionOwner(None, "admin", admin_key)
    if not active:
        return None
    return SessionOwner(staff_id, role, None)


async def live_sessions(
    session: AsyncSession, secret_hashes: Iterable[str], now: datetime, admin_key: str
) -> set[str]:
    """Which of these session hashes still sign someone in (open WebSockets are checked in
    batches with this)."""
    live: set[str] = set()
    for hashes in _chunks(secret_hashes):
        rows = await session.execute(
            select(WebSession.secret_hash, WebSession.staff_id, WebSession.admin_key, Staff.active)
            .outerjoin(Staff, Staff.id == WebSession.staff_id)
            .where(WebSession.secret_hash.in_(hashes), WebSession.expires_at > now)
        )
        live |= {
            secret
            for secret, staff_id, key, active in rows.tuples()
            if (staff_id is None and key == admin_key) or (staff_id is not None and active)
        }
    return live


# --- wallboard links --------------------------------------------------------------------------


def link_json(link: WallboardLink) -> dict[str, Any]:
    """A link without its secret (which is shown once, in the URL of its creation)."""
    return {"id": link.id, "label": link.label, "created_at": link.created_at}


async def create_link(
    session: AsyncSession, secret_hash: str, label: str, now: datetime
) -> dict[str, Any]:
    """A new wallboard link for a secret the caller made."""
    link = WallboardLink(secret_hash=secret_hash, label=label, created_at=now)
    session.add(link)
    await session.flush()
    return link_json(link)


async def list_links(
    session: AsyncSession, limit: int = 50, offset: int = 0
) -> tuple[list[WallboardLink], int]:
    """Live links, newest first, and how many there are."""
    stmt = select(WallboardLink).order_by(WallboardLink.id.desc())
    return await paged(session, stmt, limit, offset)


async def revoke_link(session: AsyncSession, link_id: int) -> None:
    """Revoke a link: its secret stops working. 404 `link_not_found` for an unknown id."""
    gone = await session.execute(delete(WallboardLink).where(WallboardLink.id == link_id))
    if not gone.rowcount:  # type: ignore[attr-defined]
        raise NotFoundError("link_not_found", f"No wallboard link {link_id}.")


async def link_id(session: AsyncSession, secret_hash: str) -> int | None:
    """The link a secret (hashed) belongs to, or None."""
    return await session.scalar(
        select(WallboardLink.id).where(WallboardLink.secret_hash == secret_hash)
    )


async def live_links(session: AsyncSession, secret_hashes: Iterable[str]) -> set[str]:
    """Which of these link hashes are not revoked."""
    live: set[str] = set()
    for hashes in _chunks(secret_hashes):
        live |= set(
            await session.scalars(
                select(WallboardLink.secret_hash).where(WallboardLink.secret_hash.in_(hashes))
            )
        )
    return live


async def live_tokens(session: AsyncSession, token_hashes: Iterable[str]) -> set[str]:
    """Which of these staff token hashes belong to an active member."""
    live: set[str] = set()
    for hashes in _chunks(token_hashes):
        live |= set(
            await session.scalars(
                select(Staff.token_hash).where(Staff.token_hash.in_(hashes), Staff.active.is_(True))
            )
        )
    return live
