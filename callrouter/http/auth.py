"""Bearer-token auth (API.md "Conventions", R34).

The admin token comes from the app (`ADMIN_TOKEN`); staff tokens are random, shown once, and
stored only as their SHA-256 (`Staff.token_hash`), so a leaked database grants nothing.
"""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from weakref import WeakKeyDictionary

from aiohttp import web
from sqlalchemy import select

from callrouter.http.errors import forbidden, unauthorized
from callrouter.http.keys import ADMIN_TOKEN, DB
from callrouter.storage.directory import hash_token
from callrouter.storage.engine import Database
from callrouter.storage.models import Staff

# hash_token is defined once, in storage, so creating and checking a token hash agree.
__all__ = [
    "ADMIN",
    "Principal",
    "authenticate",
    "hash_token",
    "new_token",
    "require_admin",
    "require_any",
    "require_staff",
]

_CACHE_SIZE = 1024

# token_hash -> staff_id per database. Tokens never change and staff are never deleted, so a
# positive hit stays true; misses are not cached, so a new staff token works at once.
_staff_cache: WeakKeyDictionary[Database, OrderedDict[str, int]] = WeakKeyDictionary()


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the admin (`staff_id` None) or one staff member."""

    is_admin: bool
    staff_id: int | None


ADMIN = Principal(is_admin=True, staff_id=None)


def new_token() -> str:
    """A fresh unguessable token (256 bits)."""
    return secrets.token_urlsafe(32)


def _bearer(request: web.Request, allow_query: bool) -> str | None:
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        return None
    if allow_query:
        # Browsers cannot set headers on a WebSocket handshake.
        return request.query.get("token") or None
    return None


async def _staff_id(db: Database, token_hash: str) -> int | None:
    cache = _staff_cache.setdefault(db, OrderedDict())
    staff_id = cache.get(token_hash)
    if staff_id is not None:
        cache.move_to_end(token_hash)
        return staff_id
    async with db.sessions() as session:
        staff_id = await session.scalar(select(Staff.id).where(Staff.token_hash == token_hash))
    if staff_id is not None:
        cache[token_hash] = staff_id
        if len(cache) > _CACHE_SIZE:
            cache.popitem(last=False)
    return staff_id


async def authenticate(request: web.Request, *, allow_query: bool = False) -> Principal:
    """The caller's principal; 401 `unauthorized` without a valid token. `allow_query` also
    accepts `?token=` (WebSocket handshakes)."""
    token = _bearer(request, allow_query)
    if token is None:
        raise unauthorized("unauthorized", "A valid 'Authorization: Bearer <token>' is required.")
    if hmac.compare_digest(token.encode(), request.app[ADMIN_TOKEN].encode()):
        return ADMIN
    staff_id = await _staff_id(request.app[DB], hash_token(token))
    if staff_id is None:
        raise unauthorized("unauthorized", "The token is not valid.")
    return Principal(is_admin=False, staff_id=staff_id)


async def require_admin(request: web.Request) -> Principal:
    """The admin; 401 without a valid token, 403 `forbidden` for a staff token."""
    principal = await authenticate(request)
    if not principal.is_admin:
        raise forbidden("forbidden", "This needs the admin token.")
    return principal


async def require_staff(request: web.Request, *, allow_query: bool = False) -> int:
    """The acting staff member's id; 401 without a valid token, 403 `forbidden` for the admin
    token (these actions are done by a staff member)."""
    principal = await authenticate(request, allow_query=allow_query)
    if principal.staff_id is None:
        raise forbidden("forbidden", "This needs a staff token: the admin does not act as staff.")
    return principal.staff_id


async def require_any(request: web.Request, *, allow_query: bool = False) -> Principal:
    """The admin or any staff member; 401 without a valid token."""
    return await authenticate(request, allow_query=allow_query)
