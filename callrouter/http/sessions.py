"""Signing in from the pages (issue 9): `POST /api/v1/auth/login` and `/logout`,
`GET /api/v1/me`, and `GET /api/v1/directory/staff` (the names every page shows).

A sign-in opens a session stored in the database (`storage.access`; only the SHA-256 of its
secret) and sets the `callrouter_session` cookie: HttpOnly, SameSite=Strict, Path=/, Secure
when the page is served over https (the request, or `--public-url`). A session lasts
`SESSION_HOURS` from the sign-in, fixed: checking it costs one read per request and never a
write. Failed attempts are counted in memory on each frontend (`Throttle`).
"""

from __future__ import annotations

import hmac
import logging
import math
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any
from weakref import WeakKeyDictionary

from aiohttp import web

from callrouter.http import passwords
from callrouter.http.auth import (
    COOKIE,
    CSRF_HEADER,
    CSRF_VALUE,
    Principal,
    admin_key,
    hash_token,
    revoked,
)
from callrouter.http.errors import ApiError, forbidden, json_response, unauthorized, unprocessable
from callrouter.http.keys import ADMIN_TOKEN, DB, PUBLIC_URL, STORE
from callrouter.http.operation import operation
from callrouter.http.render import page
from callrouter.http.schemas import DirectoryEntry, DirectoryQuery, LoginIn, Me, Ok, Page, SignedIn
from callrouter.storage import access, directory

log = logging.getLogger("callrouter.events")
routes = web.RouteTableDef()

SESSION_HOURS = 12  # a working day or a long shift; then sign in again
WINDOW_SECONDS = 15 * 60
FAILURES_PER_EMAIL = 5
# Higher than per email: a contact centre's whole floor may come from one address (NAT).
FAILURES_PER_ADDRESS = 20


class Throttle:
    """Failed sign-ins per key (an email, a client address) in a sliding window: at `limit`
    failures within `window` seconds the key waits until the oldest one leaves the window.
    Time is a parameter; memory is bounded by forgetting keys whose failures have all aged."""

    MAX_KEYS = 100_000

    def __init__(self, window: float = WINDOW_SECONDS) -> None:
        self.window = window
        self.failures: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self.failures.get(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def wait(self, key: str, limit: int, now: float) -> float:
        """Seconds `key` must wait before its next attempt; 0 when it may try now."""
        times = self._recent(key, now)
        if len(times) < limit:
            return 0.0
        return times[-limit] + self.window - now

    def fail(self, key: str, now: float) -> int:
        """Count a failure; how many `key` has in the window now."""
        if len(self.failures) >= self.MAX_KEYS:
            for old in [k for k, t in self.failures.items() if not self._recent(k, now)]:
                del self.failures[old]
        times = self._recent(key, now)
        times.append(now)
        self.failures[key] = times
        return len(times)

    def undo(self, key: str, at: float) -> None:
        """Take back the failure counted at `at` (the attempt succeeded after all)."""
        times = self.failures.get(key)
        if times is not None and at in times:
            times.remove(at)

    def clear(self, key: str) -> None:
        self.failures.pop(key, None)


_throttles: WeakKeyDictionary[web.Application, Throttle] = WeakKeyDictionary()


def _throttle(app: web.Application) -> Throttle:
    throttle = _throttles.get(app)
    if throttle is None:
        throttle = _throttles[app] = Throttle()
    return throttle


def _secure(request: web.Request) -> bool:
    public = request.app.get(PUBLIC_URL) or ""
    return request.secure or public.startswith("https://")


def _limits(request: web.Request, email: str | None) -> list[tuple[str, int]]:
    keys = [(f"addr:{request.remote or '?'}", FAILURES_PER_ADDRESS)]
    if email is not None:
        keys.append((f"email:{email.strip().lower()}", FAILURES_PER_EMAIL))
    return keys


def _check_form(request: web.Request, body: LoginIn) -> None:
    # Login CSRF (a foreign page signing the browser in as someone else): a cross-site form
    # can send neither a JSON content type nor this header.
    if request.content_type != "application/json" and (
        request.headers.get(CSRF_HEADER) != CSRF_VALUE
    ):
        raise forbidden("csrf", f"Sign in with a JSON body, or send '{CSRF_HEADER}: {CSRF_VALUE}'.")
    if body.admin_token is not None:
        if body.email is not None or body.password is not None:
            raise unprocessable(
                "invalid_body", "Give either 'email' and 'password', or 'admin_token' alone."
            )
    elif body.email is None or body.password is None:
        missing = "email" if body.email is None else "password"
        raise unprocessable("missing_field", f"Field '{missing}' is required.")


@routes.post("/api/v1/auth/login")
@operation(auth="none", tag="auth", body=LoginIn, answer=SignedIn, errors=(401, 403, 422, 429))
async def login(request: web.Request, body: LoginIn) -> web.Response:
    """Sign in and get the session cookie

    `{"email", "password"}` signs a staff member in; `{"admin_token"}` signs in the admin of
    the token printed at the first start. 401 `invalid_credentials` for a wrong pair (the same
    answer whether the email is known or not); 403 `deactivated` for a deactivated member's
    right password; 429 `too_many_attempts` with `Retry-After` after 5 failures for one email,
    or 20 from one address, within 15 minutes. The session lasts 12 hours."""
    _check_form(request, body)
    throttle, now = _throttle(request.app), time.monotonic()
    limits = _limits(request, body.email)
    wait = max(throttle.wait(key, limit, now) for key, limit in limits)
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        raise ApiError(
            429,
            "too_many_attempts",
            f"Too many failed sign-ins: try again in {seconds} seconds.",
            {"Retry-After": str(seconds)},
        )
    # Counted as a failure before checking, so parallel guesses cannot outrun the count; taken
    # back when the attempt succeeds.
    counts = [throttle.fail(key, now) for key, _ in limits]
    staff_id: int | None = None
    rehash: str | None = None
    if body.admin_token is not None:
        token = request.app[ADMIN_TOKEN]
        if not _same(body.admin_token, token):
            _failed(limits, counts)
            raise unauthorized("invalid_credentials", "The admin token is not valid.")
        answer: dict[str, Any] = {"staff_id": None, "full_name": None, "role": "admin"}
        key: str | None = admin_key(token)
    else:
        assert body.email is not None and body.password is not None
        async with request.app[DB].sessions() as session:
            staff = await directory.staff_by_email(session, body.email)
        stored = staff.password_hash if staff is not None else None
        if staff is None or not await passwords.verify_password(stored, body.password):
            _failed(limits, counts)
            raise unauthorized("invalid_credentials", "Wrong email or password.")
        throttle.clear(limits[-1][0])  # the email's count: its owner knows the password
        if not staff.active:
            throttle.undo(limits[0][0], now)
            raise forbidden("deactivated", "This account is deactivated: ask your admin.")
        assert stored is not None
        if passwords.needs_rehash(stored):
            rehash = await passwords.hash_password(body.password)
        staff_id, key = staff.id, None
        answer = {"staff_id": staff.id, "full_name": staff.full_name, "role": staff.role}
    throttle.undo(limits[0][0], now)
    secret = access.new_secret()
    opened = datetime.now(UTC)
    await request.app[STORE].run(
        access.open_session,
        hash_token(secret),
        staff_id,
        key,
        opened,
        opened + timedelta(hours=SESSION_HOURS),
        rehash,
    )
    log.info(
        "signed in: %s",
        f"staff {staff_id}" if staff_id is not None else "the admin token",
        extra={"event": "sign_in", "staff_id": staff_id, "address": request.remote},
    )
    response = json_response(answer)
    response.set_cookie(
        COOKIE,
        secret,
        max_age=SESSION_HOURS * 3600,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=_secure(request),
    )
    return response


def _same(given: str, token: str) -> bool:
    return hmac.compare_digest(given.encode(), token.encode())


def _failed(limits: list[tuple[str, int]], counts: list[int]) -> None:
    for (key, limit), count in zip(limits, counts, strict=True):
        if count == limit:  # once, when the key starts to wait
            kind, _, who = key.partition(":")
            log.warning(
                "sign-ins paused after %s failures within 15 minutes (%s %s)",
                limit,
                kind,
                who,
                extra={"event": "sign_in_throttled", "key": kind, "value": who},
            )


@routes.post("/api/v1/auth/logout")
@operation(auth="none", tag="auth", answer=Ok, errors=(403,))
async def logout(request: web.Request) -> web.Response:
    """Sign out: end the session of the cookie and clear the cookie

    Always 200 (signing out twice is no error); with a cookie it needs
    `X-Requested-With: callrouter` like every change a page makes."""
    secret = request.cookies.get(COOKIE)
    if secret:
        if request.headers.get(CSRF_HEADER) != CSRF_VALUE:
            raise forbidden("csrf", f"A signed-in page must send '{CSRF_HEADER}: {CSRF_VALUE}'.")
        await request.app[STORE].run(access.close_session, hash_token(secret))
        revoked(request.app)
    response = json_response({"ok": True})
    response.del_cookie(COOKIE, path="/", secure=_secure(request), httponly=True, samesite="Strict")
    return response


@routes.get("/api/v1/me")
@operation(auth="any", tag="auth", answer=Me)
async def me(request: web.Request, principal: Principal) -> dict[str, Any]:
    """Who is signed in: the staff member (any role), or the admin of the admin token"""
    if principal.staff_id is None:
        return {"staff_id": None, "full_name": None, "email": None, "role": "admin"}
    async with request.app[DB].sessions() as session:
        staff = await directory.get_staff(session, principal.staff_id)
    if staff is None:  # not reachable: staff are never deleted
        raise unauthorized("unauthorized", "The token is not valid.")
    return {
        "staff_id": staff.id,
        "full_name": staff.full_name,
        "email": staff.email,
        "role": staff.role,
    }


@routes.get("/api/v1/directory/staff")
@operation(auth="wallboard", tag="auth", query=DirectoryQuery, answer=Page[DirectoryEntry])
async def staff_directory(request: web.Request, query: DirectoryQuery) -> dict[str, Any]:
    """Every staff member's name, by id, for the pages (no emails, tokens or other secrets)

    Deactivated members are listed with `"active": false` (their names still stand in the
    history). Default `limit` 1000. A wallboard link may read this too."""
    async with request.app[DB].sessions() as session:
        items, total = await directory.staff_directory(session, query.limit, query.offset)
    return page(items, total)
