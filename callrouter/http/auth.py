"""Who is calling (API.md "Conventions", R34; issue 9): a bearer token, a sign-in session
cookie, or a read-only wallboard link.

- The admin token comes from the app (`ADMIN_TOKEN`); staff tokens are random, shown once, and
  stored only as their SHA-256 (`Staff.token_hash`), so a leaked database grants nothing.
- A page signs in at `POST /api/v1/auth/login` (`http.sessions`) and then sends the
  `callrouter_session` cookie; a cookie-authenticated POST/PUT/PATCH/DELETE must carry
  `X-Requested-With: callrouter` (a header no cross-site form can set), else 403 `csrf`.
  The Authorization header wins over the cookie, so API clients never meet that rule.
- A wallboard link's secret (`?link=` or the bearer header) reads the wallboard and the staff
  names only; `http.operation` refuses it anywhere else.

Deactivating a member, resetting a token, revoking a link and signing out take effect on every
frontend (they share the database): a looked-up principal is kept for at most
`CACHE_SECONDS`, and the frontend that made the change forgets its cache at once. Open
WebSockets are checked again in batches (`SocketGuard`), so a revoked console or wall screen is
disconnected too.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from weakref import WeakKeyDictionary

from aiohttp import web
from sqlalchemy import select

from callrouter.http.errors import forbidden, unauthorized
from callrouter.http.keys import ADMIN_TOKEN, DB
from callrouter.storage import access
from callrouter.storage.directory import hash_token
from callrouter.storage.models import Staff

# hash_token is defined once, in storage, so creating and checking a token hash agree.
__all__ = [
    "ADMIN",
    "COOKIE",
    "Principal",
    "admin_key",
    "authenticate",
    "hash_token",
    "new_token",
    "require_admin",
    "require_any",
    "require_staff",
    "revoked",
]

log = logging.getLogger("callrouter.auth")

COOKIE = "callrouter_session"
CSRF_HEADER = "X-Requested-With"
CSRF_VALUE = "callrouter"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

CACHE_SECONDS = 1.0  # how long another frontend may still honour a revoked credential
_CACHE_SIZE = 4096
GUARD_SECONDS = 2.0  # how often open WebSockets' credentials are checked again

Via = Literal["token", "session", "link"]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the admin (`is_admin`; `staff_id` None for the admin token, a member's
    id for a staff member with the role "admin"), a staff member, or a wallboard link (neither
    admin nor staff). `via` says how; `credential` is the SHA-256 of the secret presented
    (empty for the admin token), which the socket guard and sign-out use."""

    is_admin: bool
    staff_id: int | None
    via: Via = "token"
    credential: str = ""

    @property
    def is_link(self) -> bool:
        return self.via == "link"


ADMIN = Principal(is_admin=True, staff_id=None)

# credential hash -> (monotonic expiry, principal) per app (a frontend); misses are never
# kept, so a new token or session works at once.
_Cache = dict[str, tuple[float, Principal]]
_cache: WeakKeyDictionary[web.Application, _Cache] = WeakKeyDictionary()


def new_token() -> str:
    """A fresh unguessable token (256 bits)."""
    return secrets.token_urlsafe(32)


def admin_key(admin_token: str) -> str:
    """What an admin-token session stores to name the token it was opened with: a hash that is
    not the token's lookup hash. A new admin token ends those sessions."""
    return hashlib.sha256(b"callrouter admin session\0" + admin_token.encode()).hexdigest()


def _cached(app: web.Application, key: str) -> Principal | None:
    hit = _cache.get(app, {}).get(key)
    if hit is None or hit[0] < time.monotonic():
        return None
    return hit[1]


def _keep(app: web.Application, key: str, principal: Principal) -> Principal:
    cache = _cache.setdefault(app, {})
    if len(cache) >= _CACHE_SIZE:
        cache.clear()  # a second's worth of lookups is all it saves
    cache[key] = (time.monotonic() + CACHE_SECONDS, principal)
    return principal


async def _by_token(request: web.Request, token: str) -> Principal:
    if hmac.compare_digest(token.encode(), request.app[ADMIN_TOKEN].encode()):
        return ADMIN
    db = request.app[DB]
    digest = hash_token(token)
    key = f"t:{digest}"
    if (hit := _cached(request.app, key)) is not None:
        return hit
    async with db.sessions() as session:
        row = (
            await session.execute(
                select(Staff.id, Staff.role, Staff.active).where(Staff.token_hash == digest)
            )
        ).first()
        if row is not None and row.active:
            return _keep(request.app, key, Principal(row.role == "admin", row.id, "token", digest))
        if row is None and await access.link_id(session, digest) is not None:
            return _keep(request.app, key, Principal(False, None, "link", digest))
    raise unauthorized("unauthorized", "The token is not valid.")


async def _by_link(request: web.Request, secret: str) -> Principal:
    db = request.app[DB]
    digest = hash_token(secret)
    key = f"t:{digest}"  # the same secret may come as a bearer token too
    if (hit := _cached(request.app, key)) is not None and hit.is_link:
        return hit
    async with db.sessions() as session:
        if await access.link_id(session, digest) is not None:
            return _keep(request.app, key, Principal(False, None, "link", digest))
    raise unauthorized("unauthorized", "This wallboard link is not valid (revoked?).")


async def _by_session(request: web.Request, secret: str) -> Principal:
    db = request.app[DB]
    digest = hash_token(secret)
    key = f"s:{digest}"
    if (hit := _cached(request.app, key)) is not None:
        return hit
    async with db.sessions() as session:
        owner = await access.session_owner(session, digest, datetime.now(UTC))
    if owner is not None and owner.staff_id is None:
        current = admin_key(request.app[ADMIN_TOKEN])
        if owner.admin_key is None or not hmac.compare_digest(owner.admin_key, current):
            owner = None
    if owner is None:
        raise unauthorized("unauthorized", "The sign-in has ended: sign in again.")
    principal = Principal(owner.role == "admin", owner.staff_id, "session", digest)
    return _keep(request.app, key, principal)


def _bearer(header: str) -> str | None:
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


async def authenticate(
    request: web.Request, *, allow_query: bool = False, allow_link: bool = False
) -> Principal:
    """The caller's principal; 401 `unauthorized` without valid credentials, 403 `csrf` for a
    cookie-authenticated unsafe request without `X-Requested-With: callrouter`.

    Tried in order: the Authorization header (the admin token, a staff token or a link's
    secret), `?token=` when `allow_query` (WebSocket handshakes), `?link=` when `allow_link`
    (wallboard reads), the session cookie."""
    header = request.headers.get("Authorization")
    if header is not None:
        token = _bearer(header)
        if token is None:
            raise unauthorized(
                "unauthorized", "A valid 'Authorization: Bearer <token>' is required."
            )
        return await _by_token(request, token)
    if allow_query and (token := request.query.get("token")):
        # Browsers cannot set headers on a WebSocket handshake.
        return await _by_token(request, token)
    if allow_link and (link := request.query.get("link")):
        return await _by_link(request, link)
    cookie = request.cookies.get(COOKIE)
    if cookie:
        if request.method not in SAFE_METHODS and request.headers.get(CSRF_HEADER) != CSRF_VALUE:
            raise forbidden(
                "csrf", f"A signed-in page must send '{CSRF_HEADER}: {CSRF_VALUE}' with changes."
            )
        return await _by_session(request, cookie)
    raise unauthorized(
        "unauthorized", "A valid 'Authorization: Bearer <token>' or a sign-in is required."
    )


def _not_a_link(principal: Principal) -> Principal:
    if principal.is_link:
        raise forbidden("forbidden", "A wallboard link can read the wallboard and nothing else.")
    return principal


async def require_admin(request: web.Request) -> Principal:
    """The admin; 401 without a valid token, 403 `forbidden` for staff and links."""
    principal = await authenticate(request)
    if not principal.is_admin:
        raise forbidden("forbidden", "This needs the admin token.")
    return principal


async def require_staff(request: web.Request, *, allow_query: bool = False) -> int:
    """The acting staff member's id; 401 without a valid token, 403 `forbidden` for the admin
    token and links (these actions are done by a staff member)."""
    principal = await authenticate(request, allow_query=allow_query)
    if principal.staff_id is None:
        raise forbidden("forbidden", "This needs a staff token: the admin does not act as staff.")
    return principal.staff_id


async def require_any(request: web.Request, *, allow_query: bool = False) -> Principal:
    """The admin or any staff member; 401 without a valid token, 403 for a wallboard link."""
    return _not_a_link(await authenticate(request, allow_query=allow_query))


# --- revocation -----------------------------------------------------------------------------


class SocketGuard:
    """This frontend's open WebSockets by the credential that opened them. While any is open,
    every `GUARD_SECONDS` (or at once when this frontend revoked something) one batch of
    lookups finds the credentials that no longer sign anyone in and closes their sockets:
    the browser reconnects, is refused, and goes to the sign-in page."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        # credential -> the requests (by id: a request is a mapping, not hashable) it opened
        self.open: dict[tuple[Via, str], dict[int, web.Request]] = defaultdict(dict)
        self.wake = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def add(self, request: web.Request, principal: Principal) -> None:
        if not principal.credential:
            return  # the admin token: it changes only with a restart
        self.open[(principal.via, principal.credential)][id(request)] = request
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run())

    def discard(self, request: web.Request, principal: Principal) -> None:
        key = (principal.via, principal.credential)
        requests = self.open.get(key)
        if requests is not None:
            requests.pop(id(request), None)
            if not requests:
                del self.open[key]
        if not self.open:
            self.wake.set()  # the checker ends now instead of after its sleep

    async def _run(self) -> None:
        while self.open:
            try:
                await asyncio.wait_for(self.wake.wait(), GUARD_SECONDS)
            except TimeoutError:
                pass
            self.wake.clear()
            if self.open:
                try:
                    await self.check()
                except Exception:  # the database blinked: the next round tries again
                    log.exception("checking the open WebSockets' credentials failed")
                    await asyncio.sleep(GUARD_SECONDS)

    async def check(self) -> None:
        """Close the sockets whose credential was revoked."""
        checked = set(self.open)  # sockets opened during the lookups wait for the next round
        by_via: dict[Via, set[str]] = defaultdict(set)
        for via, credential in checked:
            by_via[via].add(credential)
        live: set[tuple[Via, str]] = set()
        async with self.app[DB].sessions() as session:
            for digest in await access.live_tokens(session, by_via["token"]):
                live.add(("token", digest))
            for digest in await access.live_links(session, by_via["link"]):
                live.add(("link", digest))
            now = datetime.now(UTC)
            current = admin_key(self.app[ADMIN_TOKEN])
            for digest in await access.live_sessions(session, by_via["session"], now, current):
                live.add(("session", digest))
        for key in checked - live:
            for request in list(self.open.pop(key, {}).values()):
                if request.transport is not None:
                    request.transport.close()


_guards: WeakKeyDictionary[web.Application, SocketGuard] = WeakKeyDictionary()


def socket_guard(app: web.Application) -> SocketGuard:
    """The app's socket guard (made on first use)."""
    guard = _guards.get(app)
    if guard is None:
        guard = _guards[app] = SocketGuard(app)
    return guard


def revoked(app: web.Application) -> None:
    """This frontend just revoked a credential (deactivation, token reset, sign-out, a link):
    forget the cached principals and check the open WebSockets now."""
    _cache.pop(app, None)
    guard = _guards.get(app)
    if guard is not None and guard.open:
        guard.wake.set()
