"""User endpoints (API.md "Users"; R7 search), on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

ADMIN = {"Authorization": "Bearer admin-secret"}
USER_KEYS = {"id", "full_name", "email", "company", "phones", "note", "custom_fields"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def staff_headers(any_client: Any, new_staff: Any) -> dict[str, str]:
    return bearer((await new_staff(any_client))["token"])


async def _field(client: Any, key: str) -> None:
    resp = await client.post("/api/v1/fields", json={"key": key, "title": key}, headers=ADMIN)
    assert resp.status == 201


async def test_users_need_a_token(any_client: Any, expect_error: Any) -> None:
    for method, path in (
        ("POST", "/api/v1/users"),
        ("GET", "/api/v1/users"),
        ("GET", "/api/v1/users/1"),
        ("PATCH", "/api/v1/users/1"),
    ):
        resp = await any_client.request(method, path, json={}, headers=bearer("nope"))
        await expect_error(resp, 401, "unauthorized")


async def test_create_read_patch(
    any_client: Any, staff_headers: dict[str, str], expect_error: Any
) -> None:
    await _field(any_client, "tariff")
    resp = await any_client.post(
        "/api/v1/users",
        json={
            "full_name": "Иван Петров",
            "email": "ivan@example.test",
            "company": "ООО «Ромашка»",
            "phones": ["+7 (926) 000-00-00"],
            "note": "VIP",
            "custom_fields": {"tariff": "Gold"},
        },
        headers=staff_headers,
    )
    assert resp.status == 201
    user = await resp.json()
    assert user == {
        "id": user["id"],
        "full_name": "Иван Петров",
        "email": "ivan@example.test",
        "company": "ООО «Ромашка»",
        "phones": ["+7 (926) 000-00-00"],
        "note": "VIP",
        "custom_fields": {"tariff": "Gold"},
    }
    path = f"/api/v1/users/{user['id']}"
    assert await (await any_client.get(path, headers=staff_headers)).json() == user

    # The admin may manage users too; `phones` replaces the list, other fields stay.
    resp = await any_client.patch(
        path, json={"phones": ["79260000000", "2345"], "note": None}, headers=ADMIN
    )
    assert resp.status == 200
    patched = await resp.json()
    assert patched == {**user, "phones": ["79260000000", "2345"], "note": None}
    assert await (await any_client.get(path, headers=staff_headers)).json() == patched

    resp = await any_client.patch(
        path, json={"custom_fields": {"tariff": None}}, headers=staff_headers
    )
    assert (await resp.json())["custom_fields"] == {}


async def test_empty_user(any_client: Any, staff_headers: dict[str, str]) -> None:
    resp = await any_client.post("/api/v1/users", json={}, headers=staff_headers)
    assert resp.status == 201
    user = await resp.json()
    assert set(user) == USER_KEYS
    assert (user["phones"], user["custom_fields"], user["full_name"]) == ([], {}, None)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"phones": ["abc"]}, "invalid_phone"),
        ({"phones": "79260000000"}, "invalid_field"),
        ({"custom_fields": {"unknown": "x"}}, "unknown_field"),
        ({"email": ["a"]}, "invalid_field"),
        ({"id": 5}, "unknown_field"),
    ],
)
async def test_user_validation(
    any_client: Any, staff_headers: dict[str, str], expect_error: Any, body: Any, code: str
) -> None:
    resp = await any_client.post("/api/v1/users", json=body, headers=staff_headers)
    await expect_error(resp, 422, code)
    resp = await any_client.get("/api/v1/users", headers=staff_headers)
    assert (await resp.json())["total"] == 0  # nothing half-made


async def test_unknown_user(
    any_client: Any, staff_headers: dict[str, str], expect_error: Any
) -> None:
    for path in ("/api/v1/users/999", "/api/v1/users/abc", "/api/v1/users/-1"):
        await expect_error(await any_client.get(path, headers=staff_headers), 404)
    resp = await any_client.get("/api/v1/users/999", headers=staff_headers)
    await expect_error(resp, 404, "user_not_found")
    resp = await any_client.patch("/api/v1/users/999", json={"note": "x"}, headers=staff_headers)
    await expect_error(resp, 404, "user_not_found")
    resp = await any_client.patch("/api/v1/users/999", data=b"{", headers=staff_headers)
    await expect_error(resp, 400, "invalid_json")


async def test_search_by_each_kind_of_data(any_client: Any, staff_headers: dict[str, str]) -> None:
    await _field(any_client, "city")
    people = [
        {"full_name": "Иван Петров", "phones": ["+7 926 000-00-01"]},
        {"full_name": "Anna", "email": "anna@Example.test"},
        {"full_name": "Bob", "company": "Ромашка"},
        {"full_name": "Carl", "note": "Calls after six"},
        {"full_name": "Dana", "custom_fields": {"city": "Новосибирск"}},
    ]
    for person in people:
        resp = await any_client.post("/api/v1/users", json=person, headers=staff_headers)
        assert resp.status == 201

    async def names(q: str, extra: str = "") -> tuple[list[str], int]:
        resp = await any_client.get(
            f"/api/v1/users?q={q}{extra}" if q else f"/api/v1/users?{extra}",
            headers=staff_headers,
        )
        assert resp.status == 200
        body = await resp.json()
        assert set(body) == {"items", "total"}
        assert all(set(u) == USER_KEYS for u in body["items"])
        return [u["full_name"] for u in body["items"]], body["total"]

    assert await names("иВАН") == (["Иван Петров"], 1)  # name, any letter case
    assert await names("EXAMPLE") == (["Anna"], 1)  # email
    assert await names("ромашк") == (["Bob"], 1)  # company
    assert await names("8926000") == (["Иван Петров"], 1)  # phone, typed with the 8 prefix
    assert await names("after SIX") == (["Carl"], 1)  # note
    assert await names("новосиб") == (["Dana"], 1)  # a custom field value
    assert await names("zzz") == ([], 0)
    assert await names("", "limit=2") == (["Dana", "Carl"], 5)  # newest first
    assert await names("", "limit=2&offset=4") == (["Иван Петров"], 5)


async def test_search_paging_is_validated(
    any_client: Any, staff_headers: dict[str, str], expect_error: Any
) -> None:
    resp = await any_client.get("/api/v1/users?limit=abc", headers=staff_headers)
    await expect_error(resp, 400, "invalid_parameter")
