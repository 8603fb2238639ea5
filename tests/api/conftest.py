"""A small app with just the admin and users routes, a recording control plane, and helpers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from callrouter.http import admin, users
from callrouter.http.auth import require_any, require_staff
from callrouter.http.errors import error_middleware, json_response
from callrouter.http.keys import ADMIN_TOKEN, CONTROL, DB, STORE
from callrouter.storage.engine import Database
from callrouter.storage.local import LocalStore

ADMIN_TOKEN_VALUE = "admin-secret"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN_VALUE}"}
Client = TestClient[web.Request, web.Application]
MakeClient = Callable[[web.Application], Awaitable[Client]]


class RecordingControl:
    """A control plane that counts `config_changed` calls (and raises `error` if set)."""

    def __init__(self) -> None:
        self.changes = 0
        self.error: Exception | None = None

    async def config_changed(self) -> None:
        if self.error is not None:
            raise self.error
        self.changes += 1


async def _whoami(request: web.Request) -> web.Response:
    principal = await require_any(request, allow_query=True)
    return json_response({"is_admin": principal.is_admin, "staff_id": principal.staff_id})


async def _acting(request: web.Request) -> web.Response:
    return json_response({"staff_id": await require_staff(request)})


def base_app(db: Database, control: RecordingControl) -> web.Application:
    """What every route needs, wired as the real app factory wires it: the error shape, the
    database, the writer's part (in this process), the control plane, the admin token."""
    app = web.Application(middlewares=[error_middleware])
    app[DB] = db
    app[STORE] = LocalStore(db)
    app[CONTROL] = control
    app[ADMIN_TOKEN] = ADMIN_TOKEN_VALUE
    return app


def make_app(db: Database, control: RecordingControl) -> web.Application:
    """The admin and users routes on `base_app`."""
    app = base_app(db, control)
    app.add_routes(admin.routes)
    app.add_routes(users.routes)
    # Probes for the auth helpers that no route of these modules uses.
    app.router.add_get("/test/whoami", _whoami)
    app.router.add_post("/test/acting", _acting)
    return app


@pytest.fixture
def app_base() -> Callable[[Database, RecordingControl], web.Application]:
    """`base_app`, for modules that add routes of their own (a conftest is not importable)."""
    return base_app


@pytest.fixture
def control() -> RecordingControl:
    return RecordingControl()


@pytest.fixture
async def client(
    aiohttp_client: MakeClient, sqlite_database: Database, control: RecordingControl
) -> Client:
    """A client of the app on SQLite."""
    return await aiohttp_client(make_app(sqlite_database, control))


@pytest.fixture
async def any_client(
    aiohttp_client: MakeClient, database: Database, control: RecordingControl
) -> Client:
    """A client of the app, once on SQLite and once on PostgreSQL."""
    return await aiohttp_client(make_app(database, control))


async def _new_staff(client: Client, name: str = "Anna") -> dict[str, Any]:
    resp = await client.post(
        "/api/v1/staff",
        json={"full_name": name, "email": f"{name.lower()}@example.test"},
        headers=ADMIN,
    )
    assert resp.status == 201, await resp.text()
    staff: dict[str, Any] = await resp.json()
    return staff


async def _expect_error(resp: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/json"
    body = await resp.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code
    error: dict[str, Any] = body["error"]
    return error


@pytest.fixture
def new_staff() -> Callable[..., Awaitable[dict[str, Any]]]:
    """`await new_staff(client, name="Anna")`: a staff member made through the API, with the
    token from the answer."""
    return _new_staff


@pytest.fixture
def expect_error() -> Callable[..., Awaitable[dict[str, Any]]]:
    """`await expect_error(resp, status, code=None)`: assert the API error shape."""
    return _expect_error
