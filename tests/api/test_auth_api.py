"""Sign-in and roles (issue 9): email + password sessions with a cookie, the admin token's
sign-in, CSRF, rate-limited failures, `GET /api/v1/me` and the staff directory, the admin's
staff management (deactivation, token reset, passwords, roles, unique emails) and read-only
wallboard links. In-process apps without Ray; storage on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from http.cookies import SimpleCookie
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient
from sqlalchemy import bindparam, inspect, select, text

from callrouter.http import (
    admin,
    auth,
    sessions,
    staff_admin,
    users,
    wallboard,
    wallboard_links,
)
from callrouter.http.auth import require_staff
from callrouter.http.errors import error_middleware, json_response
from callrouter.http.keys import (
    ADMIN_TOKEN,
    CLUSTER,
    CONTROL,
    DB,
    PUBLIC_URL,
    STORE,
    WALLBOARD_FEED,
)
from callrouter.http.sessions import Throttle
from callrouter.storage.engine import Database
from callrouter.storage.local import LocalStore
from callrouter.storage.models import Staff, UtcDateTime, WallboardLink, WebSession

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[[web.Application], Awaitable[Client]]

ADMIN_TOKEN_VALUE = "admin-secret"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN_VALUE}"}
PAGE = {"X-Requested-With": "callrouter"}  # what the pages send with every change
PASSWORD = "correct horse battery"
SNAPSHOT = {"ringing": 0, "talking": 0, "per_staff": [], "seq": 7}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def cookie(secret: str) -> dict[str, str]:
    return {"Cookie": f"{auth.COOKIE}={secret}"}


class FakeCluster:
    """The wallboard endpoints' one need of the cluster."""

    async def wallboard(self) -> dict[str, Any]:
        return dict(SNAPSHOT)


class Control:
    def __init__(self) -> None:
        self.changes = 0

    async def config_changed(self) -> None:
        self.changes += 1


async def _acting(request: web.Request) -> web.Response:
    return json_response({"staff_id": await require_staff(request)})


def make_app(
    db: Database,
    control: Control,
    *,
    admin_token: str = ADMIN_TOKEN_VALUE,
    public_url: str | None = None,
) -> web.Application:
    app = web.Application(middlewares=[error_middleware])
    app[DB] = db
    app[STORE] = LocalStore(db)
    app[CONTROL] = control
    app[ADMIN_TOKEN] = admin_token
    app[PUBLIC_URL] = public_url
    app[CLUSTER] = FakeCluster()  # type: ignore[assignment]
    app[WALLBOARD_FEED] = wallboard.WallboardFeed()  # not running: the snapshot comes on connect
    for module in (admin, users, sessions, staff_admin, wallboard, wallboard_links):
        app.add_routes(module.routes)
    app.router.add_post("/test/acting", _acting)
    return app


@pytest.fixture
def control() -> Control:
    return Control()


@pytest.fixture
async def client(aiohttp_client: MakeClient, database: Database, control: Control) -> Client:
    """A client of the app, once on SQLite and once on PostgreSQL."""
    return await aiohttp_client(make_app(database, control))


@pytest.fixture
async def sqlite_client(
    aiohttp_client: MakeClient, sqlite_database: Database, control: Control
) -> Client:
    """A client of the app on SQLite (for what does not depend on the database)."""
    return await aiohttp_client(make_app(sqlite_database, control))


async def expect_error(resp: Any, status: int, code: str) -> dict[str, Any]:
    assert resp.status == status, await resp.text()
    body = await resp.json()
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


async def new_member(
    client: Client, name: str = "Anna", *, password: str | None = PASSWORD, role: str = "staff"
) -> dict[str, Any]:
    """A staff member made by the admin, with a password (and a role) when given."""
    resp = await client.post(
        "/api/v1/staff",
        json={"full_name": name, "email": f"{name.lower()}@example.test"},
        headers=ADMIN,
    )
    assert resp.status == 201, await resp.text()
    member: dict[str, Any] = await resp.json()
    change: dict[str, Any] = {}
    if password is not None:
        change["password"] = password
    if role != "staff":
        change["role"] = role
    if change:
        resp = await client.patch(f"/api/v1/staff/{member['id']}", json=change, headers=ADMIN)
        assert resp.status == 200, await resp.text()
    return member


async def sign_in(client: Client, email: str, password: str = PASSWORD) -> str:
    """The session secret of a good sign-in; the client's cookie jar is left empty, so each
    request says which cookie it sends."""
    resp = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert resp.status == 200, await resp.text()
    secret = resp.cookies[auth.COOKIE].value
    client.session.cookie_jar.clear()
    return secret


# --- signing in -------------------------------------------------------------------------------


async def test_sign_in_me_directory_and_sign_out(client: Client) -> None:
    anna = await new_member(client, "Anna")
    bob = await new_member(client, "Bob", password=None)

    resp = await client.post(
        "/api/v1/auth/login", json={"email": " ANNA@example.test ", "password": PASSWORD}
    )
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {"staff_id": anna["id"], "full_name": "Anna", "role": "staff"}
    [set_cookie] = resp.headers.getall("Set-Cookie")
    attributes = {part.strip().split("=")[0].lower() for part in set_cookie.split(";")}
    assert {"httponly", "path", "samesite", "max-age"} <= attributes
    assert "secure" not in attributes  # plain http, no https public URL
    jar = SimpleCookie(set_cookie)[auth.COOKIE]
    assert (jar["path"], jar["samesite"], jar["max-age"]) == ("/", "Strict", "43200")
    secret = jar.value
    client.session.cookie_jar.clear()

    # Only the secret's SHA-256 is stored.
    async with client.app[DB].sessions() as session:
        [row] = list(await session.scalars(select(WebSession)))
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest() != secret
    assert row.staff_id == anna["id"]
    assert (row.expires_at - row.created_at).total_seconds() == 12 * 3600

    resp = await client.get("/api/v1/me", headers=cookie(secret))
    assert await resp.json() == {
        "staff_id": anna["id"],
        "full_name": "Anna",
        "email": "anna@example.test",
        "role": "staff",
    }
    resp = await client.get("/api/v1/directory/staff", headers=cookie(secret))
    assert await resp.json() == {
        "items": [
            {"id": anna["id"], "full_name": "Anna", "active": True},
            {"id": bob["id"], "full_name": "Bob", "active": True},
        ],
        "total": 2,
    }
    # The session acts as the staff member, like their token.
    resp = await client.post("/test/acting", headers=cookie(secret) | PAGE)
    assert await resp.json() == {"staff_id": anna["id"]}
    # Staff may not administer, signed in or not.
    await expect_error(await client.get("/api/v1/staff", headers=cookie(secret)), 403, "forbidden")

    resp = await client.post("/api/v1/auth/logout", headers=cookie(secret) | PAGE)
    assert (resp.status, await resp.json()) == (200, {"ok": True})
    cleared = SimpleCookie(resp.headers["Set-Cookie"])[auth.COOKIE]
    assert cleared.value == "" and cleared["max-age"] == "0"
    await expect_error(await client.get("/api/v1/me", headers=cookie(secret)), 401, "unauthorized")
    resp = await client.post("/api/v1/auth/logout", headers=cookie(secret) | PAGE)
    assert resp.status == 200  # twice is no error
    async with client.app[DB].sessions() as session:
        assert list(await session.scalars(select(WebSession))) == []


async def test_me_and_directory_for_tokens(sqlite_client: Client) -> None:
    client = sqlite_client
    anna = await new_member(client, "Anna", password=None)
    resp = await client.get("/api/v1/me", headers=bearer(anna["token"]))
    assert (await resp.json())["staff_id"] == anna["id"]
    resp = await client.get("/api/v1/me", headers=ADMIN)
    assert await resp.json() == {
        "staff_id": None,
        "full_name": None,
        "email": None,
        "role": "admin",
    }
    resp = await client.get("/api/v1/directory/staff", headers=ADMIN)
    [entry] = (await resp.json())["items"]
    assert set(entry) == {"id", "full_name", "active"}  # no email, no token
    resp = await client.get("/api/v1/directory/staff?limit=0", headers=bearer(anna["token"]))
    assert await resp.json() == {"items": [], "total": 1}
    await expect_error(await client.get("/api/v1/me"), 401, "unauthorized")
    await expect_error(await client.get("/api/v1/directory/staff"), 401, "unauthorized")
    resp = await client.get("/api/v1/directory/staff?limit=9999", headers=ADMIN)
    await expect_error(resp, 400, "invalid_parameter")


async def test_wrong_pair_is_one_answer(sqlite_client: Client) -> None:
    client = sqlite_client
    await new_member(client, "Anna")
    await new_member(client, "Bob", password=None)
    answers = []
    for email, password in (
        ("anna@example.test", "wrong password"),
        ("nobody@example.test", PASSWORD),
        ("bob@example.test", ""),  # no password set: nothing opens it
        ("bob@example.test", "anything at all"),
    ):
        resp = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
        if password == "":
            await expect_error(resp, 422, "missing_field")
            continue
        answers.append((resp.status, await resp.json(), resp.cookies.get(auth.COOKIE)))
    assert all(a == answers[0] for a in answers), answers
    assert answers[0][0] == 401
    assert answers[0][1]["error"] == {
        "code": "invalid_credentials",
        "message": "Wrong email or password.",
    }


async def test_repeated_failures_are_throttled(
    sqlite_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    client = sqlite_client
    caplog.set_level(logging.INFO, logger="callrouter.events")
    await new_member(client, "Anna")
    wrong = {"email": "anna@example.test", "password": "not it at all"}
    for _ in range(sessions.FAILURES_PER_EMAIL):
        await expect_error(
            await client.post("/api/v1/auth/login", json=wrong), 401, "invalid_credentials"
        )
    right = {"email": "anna@example.test", "password": PASSWORD}
    resp = await client.post("/api/v1/auth/login", json=right)  # even the right one waits
    error = await expect_error(resp, 429, "too_many_attempts")
    wait = int(resp.headers["Retry-After"])
    assert 0 < wait <= 15 * 60
    assert f"{wait} seconds" in error["message"]
    paused = [r for r in caplog.records if getattr(r, "event", "") == "sign_in_throttled"]
    assert [r.getMessage() for r in paused] == [
        "sign-ins paused after 5 failures within 15 minutes (email anna@example.test)"
    ]  # once, and never a password
    # Another email from the same address may still try (the address allows more).
    await new_member(client, "Bob")
    resp = await client.post(
        "/api/v1/auth/login", json={"email": "bob@example.test", "password": PASSWORD}
    )
    assert resp.status == 200, await resp.text()


async def test_parallel_guesses_cannot_outrun_the_count(sqlite_client: Client) -> None:
    client = sqlite_client
    await new_member(client, "Anna")
    wrong = {"email": "anna@example.test", "password": "a guess"}
    answers = await asyncio.gather(
        *(client.post("/api/v1/auth/login", json=wrong) for _ in range(12))
    )
    statuses = sorted(resp.status for resp in answers)
    assert statuses == [401] * sessions.FAILURES_PER_EMAIL + [429] * 7


async def test_an_address_is_throttled_across_emails(sqlite_client: Client) -> None:
    client = sqlite_client
    for i in range(sessions.FAILURES_PER_ADDRESS):
        body = {"email": f"guess{i}@example.test", "password": "guess"}
        await expect_error(
            await client.post("/api/v1/auth/login", json=body), 401, "invalid_credentials"
        )
    body = {"email": "fresh@example.test", "password": "guess"}
    resp = await client.post("/api/v1/auth/login", json=body)
    await expect_error(resp, 429, "too_many_attempts")
    resp = await client.post("/api/v1/auth/login", json={"admin_token": ADMIN_TOKEN_VALUE})
    await expect_error(resp, 429, "too_many_attempts")  # the admin token from there too


def test_throttle_window() -> None:
    throttle = Throttle(window=900)
    for t in (0, 10, 20):
        throttle.fail("k", t)
    assert throttle.wait("k", 3, 30) == 870  # until the oldest failure ages out
    assert throttle.wait("k", 4, 30) == 0
    assert throttle.wait("k", 3, 899) == 1
    assert throttle.wait("k", 3, 900) == 0  # t=0 has left the window
    throttle.clear("k")
    assert throttle.wait("k", 1, 30) == 0


async def test_admin_token_sign_in(client: Client, aiohttp_client: MakeClient) -> None:
    resp = await client.post("/api/v1/auth/login", json={"admin_token": "wrong"})
    await expect_error(resp, 401, "invalid_credentials")
    resp = await client.post("/api/v1/auth/login", json={"admin_token": ADMIN_TOKEN_VALUE})
    assert await resp.json() == {"staff_id": None, "full_name": None, "role": "admin"}
    secret = resp.cookies[auth.COOKIE].value
    client.session.cookie_jar.clear()

    resp = await client.get("/api/v1/me", headers=cookie(secret))
    assert (await resp.json())["role"] == "admin"
    resp = await client.get("/api/v1/staff", headers=cookie(secret))
    assert resp.status == 200
    body = {"full_name": "Anna", "email": "anna@example.test"}
    # A change without the page's header is refused (CSRF); with it, it is done.
    resp = await client.post("/api/v1/staff", json=body, headers=cookie(secret))
    await expect_error(resp, 403, "csrf")
    resp = await client.post("/api/v1/staff", json=body, headers=cookie(secret) | PAGE)
    assert resp.status == 201
    # The admin of the token does not act as staff.
    resp = await client.post("/test/acting", headers=cookie(secret) | PAGE)
    await expect_error(resp, 403, "forbidden")

    # Another frontend on the same database with another admin token: that session is over.
    other = await aiohttp_client(make_app(client.app[DB], Control(), admin_token="new-token"))
    await expect_error(await other.get("/api/v1/me", headers=cookie(secret)), 401, "unauthorized")
    same = await aiohttp_client(make_app(client.app[DB], Control()))
    assert (await same.get("/api/v1/me", headers=cookie(secret))).status == 200


async def test_bearer_wins_over_the_cookie_and_needs_no_header(sqlite_client: Client) -> None:
    client = sqlite_client
    anna = await new_member(client, "Anna")
    bob = await new_member(client, "Bob")
    secret = await sign_in(client, "anna@example.test")
    headers = cookie(secret) | bearer(bob["token"])
    assert await (await client.post("/test/acting", headers=headers)).json() == {
        "staff_id": bob["id"]
    }
    resp = await client.post("/test/acting", headers=cookie(secret))
    await expect_error(resp, 403, "csrf")
    resp = await client.post("/test/acting", headers=cookie(secret) | {"X-Requested-With": "x"})
    await expect_error(resp, 403, "csrf")
    resp = await client.post("/test/acting", headers=cookie(secret) | PAGE)
    assert await resp.json() == {"staff_id": anna["id"]}
    # Reads need no header.
    assert (await client.get("/api/v1/users", headers=cookie(secret))).status == 200
    resp = await client.post("/api/v1/auth/logout", headers=cookie(secret))
    await expect_error(resp, 403, "csrf")
    await expect_error(
        await client.get("/api/v1/me", headers=cookie("forged")), 401, "unauthorized"
    )


async def test_login_takes_json_only_and_one_form(sqlite_client: Client) -> None:
    client = sqlite_client
    await new_member(client, "Anna")
    # A cross-site form can post text/plain that happens to be JSON: refused.
    raw = f'{{"email": "anna@example.test", "password": "{PASSWORD}"}}'
    resp = await client.post("/api/v1/auth/login", data=raw, headers={"Content-Type": "text/plain"})
    await expect_error(resp, 403, "csrf")
    resp = await client.post(
        "/api/v1/auth/login", data=raw, headers={"Content-Type": "text/plain"} | PAGE
    )
    assert resp.status == 200
    for body, code in (
        ({}, "missing_field"),
        ({"email": "anna@example.test"}, "missing_field"),
        ({"password": PASSWORD}, "missing_field"),
        ({"admin_token": ADMIN_TOKEN_VALUE, "email": "anna@example.test"}, "invalid_body"),
        ({"email": "anna@example.test", "password": PASSWORD, "remember": True}, "unknown_field"),
        ({"email": 5, "password": PASSWORD}, "invalid_field"),
    ):
        resp = await client.post("/api/v1/auth/login", json=body)
        await expect_error(resp, 422, code)


async def test_secure_cookie_behind_an_https_public_url(
    aiohttp_client: MakeClient, sqlite_database: Database
) -> None:
    client = await aiohttp_client(
        make_app(sqlite_database, Control(), public_url="https://desk.example.com")
    )
    resp = await client.post("/api/v1/auth/login", json={"admin_token": ADMIN_TOKEN_VALUE})
    assert resp.status == 200
    assert "secure" in resp.headers["Set-Cookie"].lower()


# --- staff management ---------------------------------------------------------------------------


async def test_deactivation_revokes_token_and_sessions_at_once(
    client: Client, control: Control, aiohttp_client: MakeClient
) -> None:
    anna = await new_member(client, "Anna")
    secret = await sign_in(client, "anna@example.test")
    second = await sign_in(client, "anna@example.test")  # another browser
    # Another frontend on the same database has her principals cached.
    other = await aiohttp_client(make_app(client.app[DB], Control()))
    assert (await other.get("/api/v1/me", headers=bearer(anna["token"]))).status == 200
    assert (await other.get("/api/v1/me", headers=cookie(second))).status == 200
    changes = control.changes

    resp = await client.patch(f"/api/v1/staff/{anna['id']}", json={"active": False}, headers=ADMIN)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["active"] is False
    assert control.changes == changes + 1  # the wallboard lists active staff only

    for headers in (bearer(anna["token"]), cookie(secret), cookie(second)):
        await expect_error(await client.get("/api/v1/me", headers=headers), 401, "unauthorized")
    await asyncio.sleep(auth.CACHE_SECONDS + 0.1)
    for headers in (bearer(anna["token"]), cookie(second)):
        await expect_error(await other.get("/api/v1/me", headers=headers), 401, "unauthorized")

    right = {"email": "anna@example.test", "password": PASSWORD}
    resp = await client.post("/api/v1/auth/login", json=right)
    error = await expect_error(resp, 403, "deactivated")
    assert "deactivated" in error["message"]
    wrong = {"email": "anna@example.test", "password": "not the password"}
    await expect_error(
        await client.post("/api/v1/auth/login", json=wrong), 401, "invalid_credentials"
    )

    resp = await client.get("/api/v1/directory/staff", headers=ADMIN)
    assert (await resp.json())["items"] == [
        {"id": anna["id"], "full_name": "Anna", "active": False}
    ]
    listed = (await (await client.get("/api/v1/staff", headers=ADMIN)).json())["items"]
    assert listed[0]["active"] is False and listed[0]["has_password"] is True
    async with client.app[DB].sessions() as session:
        assert list(await session.scalars(select(WebSession))) == []

    # Reactivated: the password signs in again; the old token stays dead until a reset.
    resp = await client.patch(f"/api/v1/staff/{anna['id']}", json={"active": True}, headers=ADMIN)
    assert (await resp.json())["active"] is True
    await sign_in(client, "anna@example.test")
    await expect_error(
        await client.get("/api/v1/me", headers=bearer(anna["token"])), 401, "unauthorized"
    )
    resp = await client.post(f"/api/v1/staff/{anna['id']}/token", headers=ADMIN)
    assert (
        await client.get("/api/v1/me", headers=bearer((await resp.json())["token"]))
    ).status == 200


async def test_token_reset(client: Client, aiohttp_client: MakeClient) -> None:
    anna = await new_member(client, "Anna", password=None)
    other = await aiohttp_client(make_app(client.app[DB], Control()))
    assert (await other.get("/api/v1/me", headers=bearer(anna["token"]))).status == 200

    resp = await client.post(f"/api/v1/staff/{anna['id']}/token", headers=ADMIN)
    assert resp.status == 200
    fresh = await resp.json()
    assert set(fresh) == {"id", "token"} and fresh["id"] == anna["id"]
    assert fresh["token"] != anna["token"]
    await expect_error(
        await client.get("/api/v1/me", headers=bearer(anna["token"])), 401, "unauthorized"
    )
    await asyncio.sleep(auth.CACHE_SECONDS + 0.1)
    await expect_error(
        await other.get("/api/v1/me", headers=bearer(anna["token"])), 401, "unauthorized"
    )
    assert (await client.get("/api/v1/me", headers=bearer(fresh["token"]))).status == 200
    async with client.app[DB].sessions() as session:
        row = await session.get(Staff, anna["id"])
    assert row is not None and row.token_hash == hashlib.sha256(fresh["token"].encode()).hexdigest()

    await expect_error(
        await client.post("/api/v1/staff/999999/token", headers=ADMIN), 404, "staff_not_found"
    )
    resp = await client.post(f"/api/v1/staff/{anna['id']}/token", headers=bearer(fresh["token"]))
    await expect_error(resp, 403, "forbidden")
    await expect_error(await client.post(f"/api/v1/staff/{anna['id']}/token"), 401, "unauthorized")


async def test_patch_staff(client: Client, control: Control) -> None:
    anna = await new_member(client, "Anna", password=None)
    await new_member(client, "Bob", password=None)
    path = f"/api/v1/staff/{anna['id']}"

    resp = await client.patch(path, json={"email": " BOB@example.TEST "}, headers=ADMIN)
    error = await expect_error(resp, 409, "email_taken")
    assert "bob@example.test" in error["message"]
    # Her own email again (any case) is not taken by someone else.
    resp = await client.patch(path, json={"email": "Anna@Example.test"}, headers=ADMIN)
    assert (await resp.json())["email"] == "Anna@Example.test"
    changes = control.changes
    resp = await client.patch(
        path, json={"full_name": "Анна Смирнова", "email": "anna.s@example.test"}, headers=ADMIN
    )
    assert await resp.json() == {
        "id": anna["id"],
        "full_name": "Анна Смирнова",
        "email": "anna.s@example.test",
        "active": True,
        "role": "staff",
        "has_password": False,
    }
    assert control.changes == changes  # names are the directory's, not the shards'

    for body, status, code in (
        ({"password": "short"}, 422, "invalid_password"),
        ({"password": ""}, 422, "missing_field"),
        ({"password": 12345678}, 422, "invalid_password"),
        ({}, 422, "missing_field"),
        ({"full_name": None}, 422, "invalid_field"),
        ({"full_name": "  "}, 422, "missing_field"),
        ({"email": "not-an-email"}, 422, "invalid_email"),
        ({"role": "owner"}, 422, "invalid_role"),
        ({"active": "no"}, 422, "invalid_field"),
        ({"token": "mine"}, 422, "unknown_field"),
    ):
        await expect_error(await client.patch(path, json=body, headers=ADMIN), status, code)
    resp = await client.patch("/api/v1/staff/999999", json={"active": False}, headers=ADMIN)
    await expect_error(resp, 404, "staff_not_found")
    resp = await client.patch(path, json={"active": False}, headers=bearer(anna["token"]))
    await expect_error(resp, 403, "forbidden")

    # A password of 8 characters is enough; it is stored as an argon2id hash only.
    resp = await client.patch(path, json={"password": "8 chars!"}, headers=ADMIN)
    assert (await resp.json())["has_password"] is True
    async with client.app[DB].sessions() as session:
        row = await session.get(Staff, anna["id"])
    assert row is not None and row.password_hash is not None
    assert row.password_hash.startswith("$argon2id$") and "8 chars!" not in row.password_hash
    await sign_in(client, "anna.s@example.test", "8 chars!")


async def test_a_new_password_ends_the_sessions(sqlite_client: Client) -> None:
    client = sqlite_client
    anna = await new_member(client, "Anna")
    secret = await sign_in(client, "anna@example.test")
    resp = await client.patch(
        f"/api/v1/staff/{anna['id']}", json={"password": "a new password"}, headers=ADMIN
    )
    assert resp.status == 200
    await expect_error(await client.get("/api/v1/me", headers=cookie(secret)), 401, "unauthorized")
    assert (await client.get("/api/v1/me", headers=bearer(anna["token"]))).status == 200
    resp = await client.post(
        "/api/v1/auth/login", json={"email": "anna@example.test", "password": PASSWORD}
    )
    await expect_error(resp, 401, "invalid_credentials")
    await sign_in(client, "anna@example.test", "a new password")


async def test_an_admin_member(client: Client) -> None:
    """A member with the role admin administers (signed in or with their token) and still acts
    as staff; back to the role staff, they cannot any more, at once."""
    boss = await new_member(client, "Boss", role="admin")
    resp = await client.post(
        "/api/v1/auth/login", json={"email": "boss@example.test", "password": PASSWORD}
    )
    assert await resp.json() == {"staff_id": boss["id"], "full_name": "Boss", "role": "admin"}
    secret = resp.cookies[auth.COOKIE].value
    client.session.cookie_jar.clear()
    for headers in (cookie(secret), bearer(boss["token"])):
        assert (await client.get("/api/v1/staff", headers=headers)).status == 200
        resp = await client.post("/test/acting", headers=headers | PAGE)
        assert await resp.json() == {"staff_id": boss["id"]}
    assert (await (await client.get("/api/v1/me", headers=cookie(secret))).json())[
        "role"
    ] == "admin"
    resp = await client.patch(
        f"/api/v1/staff/{boss['id']}", json={"role": "staff"}, headers=cookie(secret) | PAGE
    )
    assert (await resp.json())["role"] == "staff"
    for headers in (cookie(secret), bearer(boss["token"])):
        await expect_error(await client.get("/api/v1/staff", headers=headers), 403, "forbidden")


# --- wallboard links ----------------------------------------------------------------------------


async def test_wallboard_links(client: Client) -> None:
    anna = await new_member(client, "Anna", password=None)
    resp = await client.post("/api/v1/wallboard/links", json={"label": "Hall"}, headers=ADMIN)
    assert resp.status == 201, await resp.text()
    link = await resp.json()
    assert set(link) == {"id", "label", "created_at", "url"} and link["label"] == "Hall"
    base = f"http://{client.host}:{client.port}/wallboard?link="
    assert link["url"].startswith(base)
    secret = link["url"][len(base) :]
    assert len(secret) >= 43

    resp = await client.get("/api/v1/wallboard/links", headers=ADMIN)
    listed = await resp.json()
    assert listed == {
        "items": [{"id": link["id"], "label": "Hall", "created_at": link["created_at"]}],
        "total": 1,
    }
    assert secret not in await resp.text()
    async with client.app[DB].sessions() as session:
        [row] = list(await session.scalars(select(WallboardLink)))
    assert row.secret_hash == hashlib.sha256(secret.encode()).hexdigest()

    # It reads the wallboard, the names and the settings (the wall clock shows the account's
    # zone): as ?link= or as a bearer token.
    for path in ("/api/v1/wallboard", "/api/v1/directory/staff", "/api/v1/settings"):
        assert (await client.get(path, params={"link": secret})).status == 200
        assert (await client.get(path, headers=bearer(secret))).status == 200
    assert await (await client.get("/api/v1/wallboard", params={"link": secret})).json() == SNAPSHOT
    # And nothing else.
    for method, path in (
        ("GET", "/api/v1/me"),
        ("GET", "/api/v1/users"),
        ("GET", "/api/v1/staff"),
        ("PUT", "/api/v1/settings"),
        ("POST", "/api/v1/wallboard/links"),
        ("PATCH", f"/api/v1/staff/{anna['id']}"),
        ("POST", "/test/acting"),
    ):
        resp = await client.request(method, path, json={}, headers=bearer(secret))
        await expect_error(resp, 403, "forbidden")
    # `?link=` is read by the wallboard endpoints only.
    await expect_error(
        await client.get("/api/v1/users", params={"link": secret}), 401, "unauthorized"
    )
    # Staff neither make nor see links.
    resp = await client.post("/api/v1/wallboard/links", json={}, headers=bearer(anna["token"]))
    await expect_error(resp, 403, "forbidden")
    await expect_error(
        await client.get("/api/v1/wallboard/links", headers=bearer(anna["token"])), 403, "forbidden"
    )

    resp = await client.delete(f"/api/v1/wallboard/links/{link['id']}", headers=ADMIN)
    assert resp.status == 204
    for path in ("/api/v1/wallboard", "/api/v1/directory/staff"):
        await expect_error(await client.get(path, params={"link": secret}), 401, "unauthorized")
        await expect_error(await client.get(path, headers=bearer(secret)), 401, "unauthorized")
    resp = await client.delete(f"/api/v1/wallboard/links/{link['id']}", headers=ADMIN)
    await expect_error(resp, 404, "link_not_found")
    assert await (await client.get("/api/v1/wallboard/links", headers=ADMIN)).json() == {
        "items": [],
        "total": 0,
    }
    resp = await client.post("/api/v1/wallboard/links", json={"label": 5}, headers=ADMIN)
    await expect_error(resp, 422, "invalid_field")


async def test_link_url_uses_the_public_url(
    aiohttp_client: MakeClient, sqlite_database: Database
) -> None:
    client = await aiohttp_client(
        make_app(sqlite_database, Control(), public_url="https://desk.example.com/")
    )
    resp = await client.post("/api/v1/wallboard/links", headers=ADMIN)  # no body: no label
    link = await resp.json()
    assert link["url"].startswith("https://desk.example.com/wallboard?link=")
    assert link["label"] == ""


async def test_open_sockets_close_when_their_link_is_revoked(sqlite_client: Client) -> None:
    client = sqlite_client
    link = await (await client.post("/api/v1/wallboard/links", headers=ADMIN)).json()
    secret = link["url"].rsplit("=", 1)[1]
    ws = await client.ws_connect("/api/v1/wallboard/events", params={"link": secret})
    first = await ws.receive_json(timeout=5)
    assert first == {"type": "wallboard", **SNAPSHOT}
    admin_ws = await client.ws_connect(
        "/api/v1/wallboard/events", params={"token": ADMIN_TOKEN_VALUE}
    )
    await admin_ws.receive_json(timeout=5)

    resp = await client.delete(f"/api/v1/wallboard/links/{link['id']}", headers=ADMIN)
    assert resp.status == 204
    msg = await ws.receive(timeout=5)
    assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING, WSMsgType.ERROR)
    assert not admin_ws.closed  # only the revoked one goes
    await admin_ws.close()
    resp = await client.get("/api/v1/wallboard/events", params={"link": secret})
    await expect_error(resp, 401, "unauthorized")


async def test_open_sockets_close_when_their_member_is_deactivated(
    sqlite_client: Client, aiohttp_client: MakeClient
) -> None:
    """A socket on another frontend goes within the guard's round, no help from this one."""
    client = sqlite_client
    anna = await new_member(client, "Anna")
    secret = await sign_in(client, "anna@example.test")
    other = await aiohttp_client(make_app(client.app[DB], Control()))
    ws = await other.ws_connect("/api/v1/wallboard/events", headers=cookie(secret))
    await ws.receive_json(timeout=5)
    resp = await client.patch(f"/api/v1/staff/{anna['id']}", json={"active": False}, headers=ADMIN)
    assert resp.status == 200
    msg = await ws.receive(timeout=auth.GUARD_SECONDS + 3)
    assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING, WSMsgType.ERROR)


# --- an older database --------------------------------------------------------------------------


async def test_an_older_database_gets_the_new_columns(database: Database) -> None:
    """A data dir from before issue 9: the staff table without the sign-in columns, and no
    session or link tables. Starting adds them; existing staff become active members with
    the role staff and no password."""
    async with database.engine.begin() as conn:
        await conn.execute(text("DROP TABLE web_sessions"))
        await conn.execute(text("DROP TABLE wallboard_links"))
        for column in ("password_hash", "active", "role"):
            await conn.execute(text(f"ALTER TABLE staff DROP COLUMN {column}"))
        insert = text(
            "INSERT INTO staff (full_name, email, token_hash, created_at)"
            " VALUES ('Old', 'old@example.test', :h, :at)"
        ).bindparams(bindparam("at", type_=UtcDateTime()))
        await conn.execute(insert, {"h": "0" * 64, "at": datetime(2025, 1, 1, tzinfo=UTC)})
    await database.create_schema()
    async with database.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert {"web_sessions", "wallboard_links"} <= tables
    async with database.sessions() as session:
        [old] = list(await session.scalars(select(Staff)))
    assert (old.active, old.role, old.password_hash) == (True, "staff", None)
    await database.create_schema()  # idempotent
