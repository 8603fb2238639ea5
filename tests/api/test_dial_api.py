"""Click-to-call over HTTP (`POST /api/v1/cases/{id}/calls`, R18; API.md "Cases"): the handler,
the Call API client and the fake UIS (`callrouter.testing.fake_uis`) over real HTTP."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import func, select

from callrouter.domain.account import Account, Integration
from callrouter.domain.phones import normalize_phone
from callrouter.http import dial
from callrouter.http.errors import error_middleware
from callrouter.http.keys import ACCOUNT, ADMIN_TOKEN, DB, STORE, AccountBox
from callrouter.storage import directory
from callrouter.storage.engine import Database
from callrouter.storage.local import LocalStore
from callrouter.storage.models import Case, Dial, UserPhone
from callrouter.testing.fake_uis import FIRST_CALL_SESSION_ID, FakeUis

KEY = "dial-test-key"
EMPLOYEE = 25
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
async def fake() -> AsyncIterator[FakeUis]:
    async with FakeUis(access_token=KEY) as fake:
        yield fake


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v4.0"  # the socket is closed: nothing listens there


async def dial_client(aiohttp_client: Any, db: Database, call_api_url: str) -> Any:
    """The click-to-call route, wired as the app factory wires it, with the Call API at
    `call_api_url`."""
    integration = Integration(
        api_key=KEY,
        virtual_phone_number="74950000000",
        call_api_url=call_api_url,
        webhook_secret="secret",
    )
    app = web.Application(middlewares=[error_middleware])
    app[DB] = db
    app[ADMIN_TOKEN] = "admin-secret"
    app[STORE] = LocalStore(db)
    app[ACCOUNT] = AccountBox(Account(integration=integration))
    app.cleanup_ctx.append(dial.http_client)
    app.add_routes(dial.routes)
    return await aiohttp_client(app)


async def staff_and_case(db: Database, phone: str) -> tuple[str, int]:
    """A staff member mapped to EMPLOYEE (their token) and an open case of a user with `phone`
    as entered (their case's id). A phone without digits is written as older versions could."""
    async with db.sessions.begin() as session:
        staff, token = await directory.create_staff(session, "Anna", "anna@example.test")
        await directory.put_operator(session, EMPLOYEE, staff.id)
        user = await directory.create_user(session, {}, now=T0)
        normalized = normalize_phone(phone) or ""
        session.add(UserPhone(user_id=user.id, phone=phone, normalized=normalized, position=0))
        case = Case(
            subject="Missed call", status="open", user_id=user.id, created_at=T0, updated_at=T0
        )
        session.add(case)
        await session.flush()
        return token, case.id


async def dials(db: Database) -> int:
    async with db.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Dial)) or 0)


async def test_profile_phone_is_dialled_as_digits(
    aiohttp_client: Any, sqlite_database: Database, fake: FakeUis
) -> None:
    """R18, UIS.md: the number typed as "+7 916 123-45-67" reaches UIS as "79161234567"."""
    token, case_id = await staff_and_case(sqlite_database, "+7 916 123-45-67")
    client = await dial_client(aiohttp_client, sqlite_database, fake.url)

    resp = await client.post(
        f"/api/v1/cases/{case_id}/calls", json={}, headers={"Authorization": f"Bearer {token}"}
    )

    assert resp.status == 202, await resp.text()
    assert (await resp.json())["call_session_id"] == FIRST_CALL_SESSION_ID
    [(_, params)] = fake.calls
    assert params["contact"] == "79161234567"
    assert params["employee"] == {"id": EMPLOYEE}


async def test_profile_phone_without_digits_is_422_and_uis_is_not_asked(
    aiohttp_client: Any, sqlite_database: Database, fake: FakeUis, expect_error: Any
) -> None:
    """R18: staff are told to correct the number; no dial is recorded, UIS hears nothing."""
    token, case_id = await staff_and_case(sqlite_database, "доб. —")
    client = await dial_client(aiohttp_client, sqlite_database, fake.url)

    resp = await client.post(
        f"/api/v1/cases/{case_id}/calls", json={}, headers={"Authorization": f"Bearer {token}"}
    )

    error = await expect_error(resp, 422, "invalid_phone")
    assert "доб. —" in error["message"]
    assert fake.requests == []
    assert await dials(sqlite_database) == 0


async def test_unreachable_uis_is_a_502_that_does_not_say_uis_refused(
    aiohttp_client: Any, sqlite_database: Database, expect_error: Any
) -> None:
    """R18, API.md: transport failures keep 502 and their code, but UIS never said no: staff
    read that UIS could not be reached and that the call was not started."""
    token, case_id = await staff_and_case(sqlite_database, "79161234567")
    client = await dial_client(aiohttp_client, sqlite_database, closed_port_url())

    resp = await client.post(
        f"/api/v1/cases/{case_id}/calls", json={}, headers={"Authorization": f"Bearer {token}"}
    )

    error = await expect_error(resp, 502, "uis_unreachable")
    message = error["message"].lower()
    assert "refuse" not in message and "reject" not in message
    assert "could not be reached" in message
    assert "the call was not started" in message
    assert await dials(sqlite_database) == 0


async def test_a_dial_whose_answer_made_no_sense_is_kept(
    aiohttp_client: Any, sqlite_database: Database, fake: FakeUis, expect_error: Any
) -> None:
    """R19: UIS may have started the call although its answer was unusable, so the dial stays
    and the call's notifications still find their case; a refusal forgets it."""
    token, case_id = await staff_and_case(sqlite_database, "79161234567")
    client = await dial_client(aiohttp_client, sqlite_database, fake.url)
    auth = {"Authorization": f"Bearer {token}"}

    fake.garble_next()
    resp = await client.post(f"/api/v1/cases/{case_id}/calls", json={}, headers=auth)
    await expect_error(resp, 502, "uis_bad_response")
    assert await dials(sqlite_database) == 1

    fake.fail_next("limit_exceeded", -32029)
    resp = await client.post(f"/api/v1/cases/{case_id}/calls", json={}, headers=auth)
    await expect_error(resp, 502, "limit_exceeded")
    assert await dials(sqlite_database) == 1  # the refused one is gone, the first one stays
