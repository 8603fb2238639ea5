"""Admin endpoints (API.md "Admin"), auth (R34), errors and validation (API.md "Conventions")."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from callrouter.http.keys import DB, PUBLIC_URL
from callrouter.storage.models import Rejected, Staff

ADMIN = {"Authorization": "Bearer admin-secret"}
DEFAULT_SETTINGS = {
    "timezone": "Europe/Moscow",
    "close_sla_seconds": 86400,
    "service_level_seconds": 20,
    "silent_call_timeout_seconds": 7200,
    "lateness_seconds": 30,
}
BUILTINS = [
    {"key": "full_name", "title": "Full name", "incoming_call": True},
    {"key": "email", "title": "Email", "incoming_call": True},
    {"key": "company", "title": "Company", "incoming_call": True},
    {"key": "phones", "title": "Phones", "incoming_call": False},
    {"key": "note", "title": "Note", "incoming_call": False},
]
# Every admin endpoint with a body it would accept from the admin.
ADMIN_ENDPOINTS: list[tuple[str, str, Any]] = [
    ("PUT", "/api/v1/integrations/uis", {"api_key": "k", "virtual_phone_number": "74951234567"}),
    ("GET", "/api/v1/integrations/uis", None),
    ("PUT", "/api/v1/settings", {"timezone": "UTC"}),
    ("POST", "/api/v1/staff", {"full_name": "X", "email": "x@example.test"}),
    ("GET", "/api/v1/staff", None),
    ("PUT", "/api/v1/operators/7", {"staff_id": None}),
    ("GET", "/api/v1/operators", None),
    ("GET", "/api/v1/fields", None),
    ("POST", "/api/v1/fields", {"key": "tariff", "title": "Tariff"}),
    ("PATCH", "/api/v1/fields/email", {"incoming_call": False}),
    ("GET", "/api/v1/rejected", None),
]


# A new member (issue 9): active, role staff, no password until the admin gives one.
NEW = {"active": True, "role": "staff", "has_password": False}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- auth -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_ENDPOINTS)
async def test_admin_endpoints_need_the_admin(
    client: Any, new_staff: Any, expect_error: Any, method: str, path: str, body: Any
) -> None:
    staff = await new_staff(client)
    for headers, status, code in (
        ({}, 401, "unauthorized"),
        (bearer("wrong"), 401, "unauthorized"),
        ({"Authorization": "Basic YWRtaW46YWRtaW4="}, 401, "unauthorized"),
        (bearer(staff["token"]), 403, "forbidden"),  # R34: staff may not administer
    ):
        resp = await client.request(method, path, json=body, headers=headers)
        await expect_error(resp, status, code)
    resp = await client.request(method, path, json=body, headers=ADMIN)
    assert resp.status in (200, 201, 404), await resp.text()  # 404: integration not set yet


async def test_401_asks_for_a_bearer_token(client: Any, expect_error: Any) -> None:
    resp = await client.get("/api/v1/staff")
    await expect_error(resp, 401, "unauthorized")
    assert resp.headers["WWW-Authenticate"] == "Bearer"


async def test_principals_and_query_token(client: Any, new_staff: Any, expect_error: Any) -> None:
    staff = await new_staff(client)
    resp = await client.get("/test/whoami", headers={"Authorization": f"bearer {staff['token']}"})
    assert await resp.json() == {"is_admin": False, "staff_id": staff["id"]}
    # A WebSocket handshake carries the token in the query.
    resp = await client.get("/test/whoami", params={"token": staff["token"]})
    assert await resp.json() == {"is_admin": False, "staff_id": staff["id"]}
    resp = await client.get("/test/whoami", params={"token": "admin-secret"})
    assert await resp.json() == {"is_admin": True, "staff_id": None}
    await expect_error(await client.get("/test/whoami", params={"token": "nope"}), 401)
    # Staff actions need a staff member: the admin token is not one.
    resp = await client.post("/test/acting", headers=bearer(staff["token"]))
    assert await resp.json() == {"staff_id": staff["id"]}
    await expect_error(await client.post("/test/acting", headers=ADMIN), 403, "forbidden")
    # Only WebSocket-style probes accept the query token.
    resp = await client.post("/test/acting", params={"token": staff["token"]})
    await expect_error(resp, 401)


# --- error shapes ---------------------------------------------------------------------------


async def test_unknown_route_and_method(client: Any, expect_error: Any) -> None:
    await expect_error(await client.get("/api/v1/nothing-here"), 404, "not_found")
    resp = await client.delete("/api/v1/staff", headers=ADMIN)
    await expect_error(resp, 405, "method_not_allowed")
    assert "GET" in resp.headers["Allow"]


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [
        (b"{not json", 400, "invalid_json"),
        (b"\xff\xfe", 400, "invalid_json"),
        (b"[1, 2]", 422, "invalid_body"),
        (b'"text"', 422, "invalid_body"),
    ],
)
async def test_malformed_bodies(
    client: Any, expect_error: Any, raw: bytes, status: int, code: str
) -> None:
    resp = await client.put("/api/v1/settings", data=raw, headers=ADMIN)
    await expect_error(resp, status, code)


async def test_too_large_body(client: Any, expect_error: Any) -> None:
    raw = b'{"note": "' + b"x" * (1 << 20) + b'"}'
    resp = await client.put("/api/v1/settings", data=raw, headers=ADMIN)
    await expect_error(resp, 413, "too_large")


async def test_unexpected_errors_are_500_and_logged(
    client: Any, control: Any, expect_error: Any, caplog: pytest.LogCaptureFixture
) -> None:
    control.error = RuntimeError("boom")
    resp = await client.put("/api/v1/settings", json={}, headers=ADMIN)
    error = await expect_error(resp, 500, "internal_error")
    assert "boom" not in error["message"]  # internals stay in the log
    assert "boom" in caplog.text


# --- integration (R1) -----------------------------------------------------------------------


async def test_integration_put_get_and_stable_secret(
    client: Any, control: Any, expect_error: Any
) -> None:
    await expect_error(
        await client.get("/api/v1/integrations/uis", headers=ADMIN),
        404,
        "integration_not_configured",
    )
    body = {"api_key": "secret-key", "virtual_phone_number": "74951234567"}
    resp = await client.put("/api/v1/integrations/uis", json=body, headers=ADMIN)
    assert resp.status == 200
    first = await resp.json()
    assert set(first) == {"webhook_path", "webhook_url", "virtual_phone_number", "call_api_url"}
    # The admin pastes a full address into UIS: absolute, from the request's own host.
    host = f"http://{client.server.host}:{client.server.port}"
    assert first["webhook_url"] == host + first["webhook_path"]
    assert first["call_api_url"] == "https://callapi.uiscom.ru/v4.0"
    assert first["virtual_phone_number"] == "74951234567"
    match = re.fullmatch(r"/webhooks/uis/([A-Za-z0-9_-]+)", first["webhook_path"])
    assert match and len(match.group(1)) >= 40  # 256 random bits: unguessable
    assert control.changes == 1

    body = {**body, "call_api_url": "https://uis.example.test/v4.0", "api_key": "new-key"}
    second = await (await client.put("/api/v1/integrations/uis", json=body, headers=ADMIN)).json()
    assert second["webhook_path"] == first["webhook_path"]  # the URL in UIS stays valid
    assert second["call_api_url"] == "https://uis.example.test/v4.0"
    got = await (await client.get("/api/v1/integrations/uis", headers=ADMIN)).json()
    assert got == second
    assert "new-key" not in str(got)  # the API key is write-only
    assert control.changes == 2


async def test_webhook_url_uses_the_configured_public_url(client: Any) -> None:
    """Behind a proxy the request's host is not what UIS reaches: `--public-url` wins."""
    client.server.app[PUBLIC_URL] = "https://desk.example.com/"
    body = {"api_key": "k", "virtual_phone_number": "74951234567"}
    got = await (await client.put("/api/v1/integrations/uis", json=body, headers=ADMIN)).json()
    assert got["webhook_url"] == "https://desk.example.com" + got["webhook_path"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"virtual_phone_number": "74951234567"}, "missing_field"),
        ({"api_key": "k"}, "missing_field"),
        ({"api_key": 5, "virtual_phone_number": "7495"}, "invalid_field"),
        ({"api_key": "k", "virtual_phone_number": "none"}, "invalid_phone"),
        ({"api_key": "k", "virtual_phone_number": "7495", "call_api_url": "x"}, "invalid_url"),
        ({"api_key": "k", "virtual_phone_number": "7495", "secret": "mine"}, "unknown_field"),
    ],
)
async def test_integration_validation(
    client: Any, control: Any, expect_error: Any, body: Any, code: str
) -> None:
    resp = await client.put("/api/v1/integrations/uis", json=body, headers=ADMIN)
    await expect_error(resp, 422, code)
    assert control.changes == 0


# --- settings -------------------------------------------------------------------------------


async def test_settings_defaults_and_partial_put(client: Any, control: Any, new_staff: Any) -> None:
    staff = await new_staff(client)
    resp = await client.get("/api/v1/settings", headers=bearer(staff["token"]))
    assert await resp.json() == DEFAULT_SETTINGS
    resp = await client.put(
        "/api/v1/settings",
        json={"timezone": "Asia/Vladivostok", "service_level_seconds": 30},
        headers=ADMIN,
    )
    assert resp.status == 200
    expected = {**DEFAULT_SETTINGS, "timezone": "Asia/Vladivostok", "service_level_seconds": 30}
    assert await resp.json() == expected
    assert await (await client.get("/api/v1/settings", headers=ADMIN)).json() == expected
    assert control.changes == 2  # the new staff member (the wallboard lists staff) + settings


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"timezone": "Moscow"}, "invalid_timezone"),
        ({"timezone": None}, "invalid_timezone"),
        ({"close_sla_seconds": 0}, "invalid_setting"),
        ({"silent_call_timeout_seconds": "7200"}, "invalid_setting"),
        ({"service_level_seconds": 20.5}, "invalid_setting"),
        # Issue "nothing lost" #8: a one-second silence timeout would end calls that wait.
        ({"silent_call_timeout_seconds": 1}, "invalid_setting"),
        ({"lateness_seconds": 0}, "invalid_setting"),
        ({"lateness_seconds": 4000}, "invalid_setting"),
        ({"lateness_seconds": 600, "silent_call_timeout_seconds": 300}, "invalid_setting"),
        ({"session": 1}, "unknown_setting"),
    ],
)
async def test_settings_validation(
    client: Any, control: Any, expect_error: Any, body: Any, code: str
) -> None:
    await expect_error(await client.put("/api/v1/settings", json=body, headers=ADMIN), 422, code)
    assert await (await client.get("/api/v1/settings", headers=ADMIN)).json() == DEFAULT_SETTINGS
    assert control.changes == 0


# --- staff ----------------------------------------------------------------------------------


async def test_staff_create_list_and_hashed_token(client: Any, new_staff: Any) -> None:
    anna = await new_staff(client, "Anna")
    assert set(anna) == {"id", "full_name", "email", "active", "role", "has_password", "token"}
    assert (anna["full_name"], anna["email"]) == ("Anna", "anna@example.test")
    bob = await new_staff(client, "Bob")
    assert anna["token"] != bob["token"]

    resp = await client.get("/api/v1/staff", headers=ADMIN)
    assert await resp.json() == {
        "items": [
            {"id": bob["id"], "full_name": "Bob", "email": "bob@example.test", **NEW},
            {"id": anna["id"], "full_name": "Anna", "email": "anna@example.test", **NEW},
        ],
        "total": 2,
    }
    page = await (await client.get("/api/v1/staff?limit=1&offset=1", headers=ADMIN)).json()
    assert ([s["id"] for s in page["items"]], page["total"]) == ([anna["id"]], 2)

    # R34: tokens are hashed at rest; the plain token is nowhere in the database.
    async with client.app[DB].sessions() as session:
        rows = list(await session.scalars(select(Staff)))
    for row in rows:
        assert len(row.token_hash) == 64
        assert row.token_hash not in (anna["token"], bob["token"])
    raw = (await _database_bytes(client)).decode("latin-1")
    assert anna["token"] not in raw and bob["token"] not in raw


async def _database_bytes(client: Any) -> bytes:
    db = client.app[DB]
    async with db.engine.connect() as conn:  # checkpoint WAL so the file holds everything
        await conn.exec_driver_sql("PRAGMA wal_checkpoint(FULL)")
    path = db.url.split("///", 1)[1]
    return Path(path).read_bytes()


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"email": "x@example.test"}, "missing_field"),
        ({"full_name": "  ", "email": "x@example.test"}, "missing_field"),
        ({"full_name": "X"}, "missing_field"),
        ({"full_name": "X", "email": "nope"}, "invalid_email"),
        ({"full_name": "X", "email": "x@example.test", "token": "mine"}, "unknown_field"),
    ],
)
async def test_staff_validation(client: Any, expect_error: Any, body: Any, code: str) -> None:
    await expect_error(await client.post("/api/v1/staff", json=body, headers=ADMIN), 422, code)


async def test_duplicate_staff_email_is_409(
    any_client: Any, control: Any, expect_error: Any
) -> None:
    """R2: a second staff member with the same email (any case, any blanks) is refused."""
    body = {"full_name": "Anna", "email": "Anna@Example.test"}
    resp = await any_client.post("/api/v1/staff", json=body, headers=ADMIN)
    assert resp.status == 201, await resp.text()
    anna = await resp.json()

    again = {"full_name": "Anna K.", "email": " anna@example.TEST "}
    resp = await any_client.post("/api/v1/staff", json=again, headers=ADMIN)

    error = await expect_error(resp, 409, "email_taken")
    assert "Anna@Example.test" in error["message"]
    resp = await any_client.get("/api/v1/staff", headers=ADMIN)
    listed = await resp.json()
    assert (listed["total"], [s["id"] for s in listed["items"]]) == (1, [anna["id"]])
    assert control.changes == 1  # the refused one tells nobody


@pytest.mark.parametrize("query", ["limit=x", "limit=-1", "offset=1.5", "limit=100000"])
async def test_bad_paging(client: Any, expect_error: Any, query: str) -> None:
    resp = await client.get(f"/api/v1/staff?{query}", headers=ADMIN)
    await expect_error(resp, 400, "invalid_parameter")


# --- operators (R2) -------------------------------------------------------------------------


async def test_operators(client: Any, control: Any, new_staff: Any, expect_error: Any) -> None:
    anna = await new_staff(client)
    resp = await client.put("/api/v1/operators/101", json={"staff_id": anna["id"]}, headers=ADMIN)
    plain = {"full_name": None, "phones": []}  # not imported from UIS: no name, no phones
    assert (resp.status, await resp.json()) == (
        200,
        {"employee_id": 101, "staff_id": anna["id"]} | plain,
    )
    resp = await client.put("/api/v1/operators/102", json={"staff_id": None}, headers=ADMIN)
    assert await resp.json() == {"employee_id": 102, "staff_id": None} | plain
    resp = await client.put("/api/v1/operators/101", json={"staff_id": None}, headers=ADMIN)
    assert await resp.json() == {"employee_id": 101, "staff_id": None} | plain
    assert control.changes == 4  # the new staff member + three operator changes
    resp = await client.get("/api/v1/operators", headers=ADMIN)
    assert await resp.json() == {
        "items": [
            {"employee_id": 101, "staff_id": None} | plain,
            {"employee_id": 102, "staff_id": None} | plain,
        ],
        "total": 2,
    }

    for body, code in (
        ({"staff_id": 999}, "unknown_staff"),
        ({}, "missing_field"),
        ({"staff_id": "1"}, "invalid_field"),
        ({"staff_id": True}, "invalid_field"),
    ):
        resp = await client.put("/api/v1/operators/103", json=body, headers=ADMIN)
        await expect_error(resp, 422, code)
    for path in ("/api/v1/operators/abc", "/api/v1/operators/0", f"/api/v1/operators/{1 << 64}"):
        resp = await client.put(path, json={"staff_id": None}, headers=ADMIN)
        await expect_error(resp, 404)
    assert control.changes == 4  # refused changes tell nobody


# --- fields (R3) ----------------------------------------------------------------------------


async def test_fields(client: Any, control: Any, expect_error: Any) -> None:
    assert await (await client.get("/api/v1/fields", headers=ADMIN)).json() == BUILTINS

    resp = await client.post(
        "/api/v1/fields", json={"key": "tariff", "title": "Тариф"}, headers=ADMIN
    )
    assert (resp.status, await resp.json()) == (
        201,
        {"key": "tariff", "title": "Тариф", "incoming_call": False},
    )
    resp = await client.patch("/api/v1/fields/tariff", json={"incoming_call": True}, headers=ADMIN)
    assert await resp.json() == {"key": "tariff", "title": "Тариф", "incoming_call": True}
    resp = await client.patch(
        "/api/v1/fields/company", json={"incoming_call": False}, headers=ADMIN
    )
    assert (resp.status, (await resp.json())["incoming_call"]) == (200, False)
    assert control.changes == 3

    fields = await (await client.get("/api/v1/fields", headers=ADMIN)).json()
    assert [(f["key"], f["incoming_call"]) for f in fields] == [
        ("full_name", True),
        ("email", True),
        ("company", False),
        ("phones", False),
        ("note", False),
        ("tariff", True),
    ]

    resp = await client.post("/api/v1/fields", json={"key": "tariff", "title": "T"}, headers=ADMIN)
    await expect_error(resp, 409, "field_exists")
    resp = await client.post("/api/v1/fields", json={"key": "email", "title": "E"}, headers=ADMIN)
    await expect_error(resp, 409, "field_exists")
    for body, code in (
        ({"key": "Bad key", "title": "T"}, "invalid_field_key"),
        ({"key": "ok"}, "missing_field"),
        ({"key": "ok", "title": "T", "incoming_call": "yes"}, "invalid_field"),
    ):
        resp = await client.post("/api/v1/fields", json=body, headers=ADMIN)
        await expect_error(resp, 422, code)
    resp = await client.patch("/api/v1/fields/nope", json={"incoming_call": True}, headers=ADMIN)
    await expect_error(resp, 404, "field_not_found")
    for patch in ({}, {"incoming_call": 1}, {"builtin": True}):
        resp = await client.patch("/api/v1/fields/email", json=patch, headers=ADMIN)
        await expect_error(resp, 422)
    assert control.changes == 3


# --- rejected bodies (R33) ------------------------------------------------------------------


async def test_rejected_list(client: Any) -> None:
    received = datetime(2026, 11, 2, 6, 30, tzinfo=UTC)
    async with client.app[DB].sessions.begin() as session:
        for i, (status, code) in enumerate([(400, "invalid_json"), (422, "unknown_name")]):
            session.add(
                Rejected(
                    received_at=received,
                    status=status,
                    code=code,
                    message=f"m{i}",
                    body="{oops" if status == 400 else '{"notification_name": "x"}',
                    size=100 + i,
                )
            )
    resp = await client.get("/api/v1/rejected", headers=ADMIN)
    body = await resp.json()
    assert body["total"] == 2
    first = body["items"][0]
    assert first == {
        "id": first["id"],
        "received_at": "2026-11-02T09:30:00+03:00",  # the account's zone (Moscow)
        "status": 422,
        "code": "unknown_name",
        "message": "m1",
        "body": '{"notification_name": "x"}',
        "size": 101,
    }
    assert body["items"][1]["code"] == "invalid_json"
    resp = await client.get("/api/v1/rejected?limit=1&offset=1", headers=ADMIN)
    assert [r["code"] for r in (await resp.json())["items"]] == ["invalid_json"]
