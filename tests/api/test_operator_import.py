"""Import of operators from UIS (issue 11, part 3): the admin's list of UIS employees read from
the Data API (`get.employees`, every page) against the fake UIS over real HTTP, the proposals
by email and by name, the bulk apply in one transaction with one config change, and the
errors (wrong key, the limit, admin only, bad bodies)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from callrouter.callapi import CallApiError
from callrouter.dataapi import DataApiClient, data_api_url, parse_employee
from callrouter.domain.operator_match import Matcher, StaffRef, name_key
from callrouter.http import admin, dial, operator_import
from callrouter.http.keys import DATA_API_LIMIT_BACKOFF
from callrouter.storage import directory
from callrouter.storage.engine import Database
from callrouter.testing.fake_uis import FakeUis, employee

ADMIN_TOKEN_VALUE = "admin-secret"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN_VALUE}"}
KEY = "uis-key-1"
IMPORT = "/api/v1/operators/import"
LIMIT_BACKOFF = 0.2
Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def client(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
    sqlite_database: Database,
    control: Any,
    app_base: Callable[[Database, Any], web.Application],
) -> Client:
    app = app_base(sqlite_database, control)
    app[DATA_API_LIMIT_BACKOFF] = LIMIT_BACKOFF
    app.cleanup_ctx.append(dial.http_client)
    app.add_routes(admin.routes)
    app.add_routes(operator_import.routes)
    return await aiohttp_client(app)


def _employees(n: int) -> list[dict[str, Any]]:
    return [
        employee(
            2000 + i,
            f"Оператор {i}",
            f"op{i}@uis.test",
            groups=["Поддержка"],
            phones=[f"7916000{i:04d}"],
        )
        for i in range(n)
    ]


@pytest.fixture
async def fake() -> AsyncIterator[FakeUis]:
    async with FakeUis(access_token=KEY) as running:
        yield running


async def _integrate(client: Client, fake: FakeUis, key: str = KEY) -> None:
    body = {"api_key": key, "virtual_phone_number": "74950000000", "call_api_url": fake.url}
    resp = await client.put("/api/v1/integrations/uis", json=body, headers=ADMIN)
    assert resp.status == 200, await resp.text()


async def _staff(client: Client, name: str, email: str) -> dict[str, Any]:
    resp = await client.post(
        "/api/v1/staff", json={"full_name": name, "email": email}, headers=ADMIN
    )
    assert resp.status == 201, await resp.text()
    made: dict[str, Any] = await resp.json()
    return made


async def _list(client: Client) -> dict[str, Any]:
    resp = await client.get(IMPORT, headers=ADMIN)
    assert resp.status == 200, await resp.text()
    answer: dict[str, Any] = await resp.json()
    return answer


# --- the list, paging and proposals ------------------------------------------------------


async def test_every_page_is_read(client: Client, fake: FakeUis) -> None:
    # 1000 employees a request (dataapi.PAGE)
    fake.employees = _employees(2345)
    await _integrate(client, fake)
    answer = await _list(client)
    assert answer["total"] == 2345
    assert [e["employee_id"] for e in answer["items"]] == list(range(2000, 4345))
    pages = [(r["params"]["limit"], r["params"]["offset"]) for r in fake.requests]
    assert pages == [(1000, 0), (1000, 1000), (1000, 2000)]
    assert {r["method"] for r in fake.requests} == {"get.employees"}
    assert all(r["params"]["access_token"] == KEY for r in fake.requests)


async def test_a_page_exactly_full_stops_at_the_total(fake: FakeUis) -> None:
    fake.employees = _employees(6)
    async with aiohttp.ClientSession() as session:
        found = await DataApiClient(session, fake.data_url, KEY, page=3).employees()
    assert [e.id for e in found] == list(range(2000, 2006))
    assert [r["params"]["offset"] for r in fake.requests] == [0, 3]


async def test_proposals_by_email_then_by_name(client: Client, fake: FakeUis) -> None:
    anna = await _staff(client, "Анна Смирнова", "Anna@Example.test")
    ivan = await _staff(client, "Иван Петров", "ivan@example.test")
    fedor = await _staff(client, "Фёдор Ёлкин", "fedor@example.test")
    fake.employees = [
        employee(
            1001,
            "Смирнова А.",
            " anna@example.TEST ",
            groups=["Поддержка"],
            phones=["79161234567"],
            extension="101",
        ),
        employee(
            1002,
            "петров  иван",
            "ivan.p@other.test",
            groups=["Поддержка", "Продажи"],
            phones=["74955140578...2345", "79031505050"],
        ),
        employee(1003, "Елкин Федор", None, phones=[]),
        employee(1004, "Никто Неизвестный", "nobody@example.test"),
    ]
    fake.employees[1]["phone_numbers"][0]["status"] = "inactive"
    await _integrate(client, fake)
    resp = await client.put("/api/v1/operators/1004", json={"staff_id": ivan["id"]}, headers=ADMIN)
    assert resp.status == 200
    items = {e["employee_id"]: e for e in (await _list(client))["items"]}
    assert items[1001] == {
        "employee_id": 1001,
        "full_name": "Смирнова А.",
        "email": "anna@example.TEST",
        "groups": ["Поддержка"],
        "phones": ["79161234567"],
        "extension": "101",
        "mapped": False,
        "staff_id": None,
        "proposed_staff_id": anna["id"],
        "proposed_by": "email",
    }
    assert (items[1002]["proposed_staff_id"], items[1002]["proposed_by"]) == (ivan["id"], "name")
    assert items[1002]["groups"] == ["Поддержка", "Продажи"]
    assert items[1002]["phones"] == ["79031505050", "74955140578...2345"]  # active first
    assert (items[1003]["proposed_staff_id"], items[1003]["proposed_by"]) == (fedor["id"], "name")
    assert items[1004]["proposed_staff_id"] is None
    assert (items[1004]["mapped"], items[1004]["staff_id"]) == (True, ivan["id"])


def test_matcher_rules() -> None:
    staff = [
        StaffRef(1, "Анна Смирнова", "anna@x.test"),
        StaffRef(2, "Анна Смирнова", "anna2@x.test"),  # a shared name proposes nobody
        StaffRef(3, "Пётр Ушёл", "petr@x.test", active=False),
    ]
    matcher = Matcher(staff)
    assert matcher.propose("Анна Смирнова", None) is None
    assert matcher.propose("Кто-то", "ANNA2@x.test ") is not None
    assert matcher.propose("Петр Ушел", "petr@x.test") is None  # inactive
    assert name_key("  Смирнова,  АННА ") == name_key("анна смирнова")
    assert parse_employee({"id": True, "full_name": "x"}) is None


def test_the_data_api_url_beside_the_call_api_url() -> None:
    assert data_api_url("https://callapi.uiscom.ru/v4.0") == "https://dataapi.uiscom.ru/v2.0"
    assert data_api_url("https://callapi.comagic.ru/v4.0") == "https://dataapi.comagic.ru/v2.0"
    assert data_api_url("http://127.0.0.1:8765/v4.0") == "http://127.0.0.1:8765/v2.0"
    assert data_api_url(None) == "https://dataapi.uiscom.ru/v2.0"


# --- the bulk apply -----------------------------------------------------------------------


async def test_bulk_apply_is_one_transaction_and_one_change(
    client: Client, control: Any, sqlite_database: Database
) -> None:
    anna = await _staff(client, "Анна Смирнова", "anna@example.test")
    ivan = await _staff(client, "Иван Петров", "ivan@example.test")
    await client.put("/api/v1/operators/9", json={"staff_id": anna["id"]}, headers=ADMIN)
    before = control.changes
    mappings: list[dict[str, Any]] = [
        {
            "employee_id": 3000 + i,
            "staff_id": anna["id"] if i % 2 else ivan["id"],
            "full_name": f"Оператор {i}",
            "phones": [f"7916{i:07d}"],
        }
        for i in range(2500)  # more than one slice of the upsert
    ]
    mappings.append({"employee_id": 9, "staff_id": None})
    resp = await client.post(IMPORT, json={"mappings": mappings}, headers=ADMIN)
    assert resp.status == 200, await resp.text()
    assert await resp.json() == {"mapped": 2500, "unmapped": 1}
    assert control.changes == before + 1
    async with sqlite_database.sessions() as session:
        mapping = await directory.operator_map(session)
        rows = await directory.all_operators(session)
    assert len(mapping) == 2500 and mapping[3001] == anna["id"] and mapping[3000] == ivan["id"]
    assert rows[9] is None
    # Phones and names are kept; applying again without them keeps them.
    resp = await client.post(
        IMPORT, json={"mappings": [{"employee_id": 3001, "staff_id": ivan["id"]}]}, headers=ADMIN
    )
    assert resp.status == 200
    async with sqlite_database.sessions() as session:
        from callrouter.storage.models import Operator

        row = await session.get(Operator, 3001)
    assert row is not None
    assert (row.staff_id, row.full_name, row.phones) == (ivan["id"], "Оператор 1", ["79160000001"])


async def test_an_unknown_staff_member_writes_nothing(
    client: Client, control: Any, sqlite_database: Database
) -> None:
    anna = await _staff(client, "Анна Смирнова", "anna@example.test")
    before = control.changes
    body = {
        "mappings": [
            {"employee_id": 1, "staff_id": anna["id"]},
            {"employee_id": 2, "staff_id": 999},
        ]
    }
    resp = await client.post(IMPORT, json=body, headers=ADMIN)
    assert resp.status == 422
    assert (await resp.json())["error"]["code"] == "unknown_staff"
    assert control.changes == before
    async with sqlite_database.sessions() as session:
        assert await directory.all_operators(session) == {}


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "missing_field"),
        ({"mappings": []}, "invalid_field"),
        ({"mappings": [{"employee_id": 1}]}, "missing_field"),
        ({"mappings": [{"employee_id": "1", "staff_id": None}]}, "invalid_field"),
        ({"mappings": [{"employee_id": 0, "staff_id": None}]}, "invalid_field"),
        ({"mappings": [{"employee_id": 1, "staff_id": None, "x": 1}]}, "unknown_field"),
        ({"mappings": [{"employee_id": 1, "staff_id": None, "phones": "7916"}]}, "invalid_field"),
        ({"mappings": [{"employee_id": 1, "staff_id": None}] * 2}, "duplicate_employee"),
    ],
)
async def test_bad_bodies(client: Client, body: dict[str, Any], code: str) -> None:
    resp = await client.post(IMPORT, json=body, headers=ADMIN)
    assert resp.status == 422, await resp.text()
    assert (await resp.json())["error"]["code"] == code


async def test_admin_only(client: Client) -> None:
    member = await _staff(client, "Анна Смирнова", "anna@example.test")
    staff = {"Authorization": f"Bearer {member['token']}"}
    body = {"mappings": [{"employee_id": 1, "staff_id": None}]}
    assert (await client.get(IMPORT)).status == 401
    assert (await client.post(IMPORT, json=body)).status == 401
    assert (await client.get(IMPORT, headers=staff)).status == 403
    assert (await client.post(IMPORT, json=body, headers=staff)).status == 403


# --- errors from UIS --------------------------------------------------------------------------


async def test_before_the_integration_is_saved(client: Client) -> None:
    resp = await client.get(IMPORT, headers=ADMIN)
    assert resp.status == 409
    assert (await resp.json())["error"]["code"] == "integration_not_configured"


async def test_a_wrong_key_is_a_502_saying_what_to_fix(client: Client, fake: FakeUis) -> None:
    await _integrate(client, fake, key="not-the-key")
    resp = await client.get(IMPORT, headers=ADMIN)
    assert resp.status == 502
    error = (await resp.json())["error"]
    assert error["code"] == "access_token_invalid"
    assert "UIS does not know this API key" in error["message"]
    assert len(fake.requests) == 1  # a refusal is not retried


async def test_limit_exceeded_waits_and_asks_again(client: Client, fake: FakeUis) -> None:
    fake.employees = _employees(3)
    await _integrate(client, fake)
    fake.fail_next("limit_exceeded")
    fake.fail_next("limit_exceeded")
    started = time.monotonic()
    answer = await _list(client)
    waited = time.monotonic() - started
    assert answer["total"] == 3
    assert len(fake.requests) == 3
    assert waited >= LIMIT_BACKOFF * (1 + 2)  # doubling: 0.2 s, then 0.4 s


async def test_limit_exceeded_for_good_is_a_502(fake: FakeUis) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    for _ in range(4):
        fake.fail_next("limit_exceeded")
    async with aiohttp.ClientSession() as session:
        client = DataApiClient(session, fake.data_url, KEY, limit_backoff=5.0, sleep=sleep)
        with pytest.raises(CallApiError) as caught:
            await client.employees()
    assert waits == [5.0, 10.0, 20.0]
    assert caught.value.code == "limit_exceeded"
    assert "Data API limit is used up" in caught.value.message


async def test_internal_errors_and_timeouts_are_retried_refusals_not(fake: FakeUis) -> None:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    fake.employees = _employees(2)
    fake.fail_next("internal_error")
    fake.delay_next(1.0)
    async with aiohttp.ClientSession() as session:
        client = DataApiClient(session, fake.data_url, KEY, timeout=0.2, sleep=sleep)
        assert len(await client.employees()) == 2
        assert waits == [0.5, 1.0]
        fake.fail_next("forbidden")
        with pytest.raises(CallApiError) as caught:
            await client.employees()
    assert caught.value.code == "forbidden"
    assert "Data API" in caught.value.message
    assert waits == [0.5, 1.0]


async def test_unreachable_and_garbled(client: Client, fake: FakeUis) -> None:
    await _integrate(client, fake)
    fake.garble_next()
    resp = await client.get(IMPORT, headers=ADMIN)
    assert resp.status == 502
    assert (await resp.json())["error"]["code"] == "uis_bad_response"
    async with aiohttp.ClientSession() as session:
        closed = DataApiClient(session, "http://127.0.0.1:9/v2.0", KEY, retries=1, sleep=_no_wait)
        with pytest.raises(CallApiError) as caught:
            await closed.employees()
    assert caught.value.code == "uis_unreachable"
    assert "could not connect to the UIS Data API" in caught.value.message


async def _no_wait(seconds: float) -> None:
    return None
