"""The directory repository on SQLite and PostgreSQL alike (settings, fields, staff, operators,
users and their search: R1, R2, R3, R7, R34)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from callrouter.domain.account import DEFAULT_CALL_API_URL, Account
from callrouter.storage import directory as d
from callrouter.storage.engine import Database
from callrouter.storage.models import Rejected, Staff

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


async def _in_tx(database: Database, fn: Any, *args: Any, **kwargs: Any) -> Any:
    async with database.sessions.begin() as session:
        return await fn(session, *args, **kwargs)


async def test_account_defaults_then_settings_round_trip(database: Database) -> None:
    assert await _in_tx(database, d.load_account) == Account()
    changed = await _in_tx(database, d.save_settings, timezone="Asia/Novosibirsk")
    assert changed.timezone == "Asia/Novosibirsk"
    await _in_tx(database, d.save_settings, close_sla_seconds=3600)
    account = await _in_tx(database, d.load_account)
    assert (account.timezone, account.close_sla_seconds) == ("Asia/Novosibirsk", 3600)
    assert account.service_level_seconds == 20


@pytest.mark.parametrize(
    "changes",
    [
        {"timezone": "Mars/Olympus"},
        {"timezone": "../etc/passwd"},
        {"timezone": ""},
        {"timezone": 3},
        {"close_sla_seconds": 0},
        {"service_level_seconds": -5},
        {"silent_call_timeout_seconds": True},
        {"silent_call_timeout_seconds": "60"},
        {"colour": "blue"},
        # All or nothing: the valid timezone is not saved either.
        {"timezone": "UTC", "close_sla_seconds": 1.5},
    ],
)
async def test_invalid_settings_change_nothing(database: Database, changes: Any) -> None:
    with pytest.raises(d.InvalidError):
        await _in_tx(database, d.save_settings, **changes)
    assert await _in_tx(database, d.load_account) == Account()


async def test_integration_secret_made_once_and_kept(database: Database) -> None:
    first = await _in_tx(database, d.save_integration, "key-1", "74951234567")
    assert first.call_api_url == DEFAULT_CALL_API_URL
    assert len(first.webhook_secret) >= 40
    second = await _in_tx(
        database, d.save_integration, "key-2", "74957654321", "https://example.test/v4.0"
    )
    assert second.webhook_secret == first.webhook_secret
    account = await _in_tx(database, d.load_account)
    assert account.integration == second


async def test_secrets_differ_between_accounts(tmp_path: Any) -> None:
    secrets = set()
    for name in ("a", "b"):
        db = Database(f"sqlite:///{tmp_path / name}.sqlite3")
        await db.create_schema()
        secrets.add((await _in_tx(db, d.save_integration, "k", "7495")).webhook_secret)
        await db.dispose()
    assert len(secrets) == 2


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("", "74951234567"), "invalid_field"),
        (("k", "no digits"), "invalid_phone"),
        (("k", "7495", "ftp://x"), "invalid_url"),
        (("k", "7495", "not a url"), "invalid_url"),
    ],
)
async def test_integration_validation(database: Database, args: Any, code: str) -> None:
    with pytest.raises(d.InvalidError) as info:
        await _in_tx(database, d.save_integration, *args)
    assert info.value.code == code


async def test_builtin_fields_exist_before_any_write(database: Database) -> None:
    fields = await _in_tx(database, d.list_fields)
    assert [(f.key, f.incoming_call) for f in fields] == [
        ("full_name", True),
        ("email", True),
        ("company", True),
        ("phones", False),
        ("note", False),
    ]
    await _in_tx(database, d.ensure_builtin_fields)
    await _in_tx(database, d.ensure_builtin_fields)  # idempotent
    assert [f.key for f in await _in_tx(database, d.list_fields)] == [f.key for f in fields]


async def test_custom_fields_and_flags(database: Database) -> None:
    field = await _in_tx(database, d.create_field, "tariff", "Tariff", True)
    assert d.field_json(field) == {"key": "tariff", "title": "Tariff", "incoming_call": True}
    await _in_tx(database, d.create_field, "city", "City")
    await _in_tx(database, d.update_field, "email", incoming_call=False)
    await _in_tx(database, d.update_field, "city", incoming_call=True, title="Town")
    fields = await _in_tx(database, d.list_fields)
    assert [f.key for f in fields][-2:] == ["tariff", "city"]
    assert {f.key: (f.title, f.incoming_call) for f in fields}["city"] == ("Town", True)
    assert {f.key: f.incoming_call for f in fields}["email"] is False
    assert await _in_tx(database, d.custom_field_keys) == {"tariff", "city"}


@pytest.mark.parametrize(
    ("key", "error"),
    [
        ("email", d.ConflictError),
        ("tariff", d.ConflictError),
        ("Bad Key", d.InvalidError),
        ("1st", d.InvalidError),
        ("ключ", d.InvalidError),
        ("", d.InvalidError),
    ],
)
async def test_field_key_rules(database: Database, key: str, error: type[Exception]) -> None:
    await _in_tx(database, d.create_field, "tariff", "Tariff")
    with pytest.raises(error):
        await _in_tx(database, d.create_field, key, "Title")


async def test_update_unknown_field(database: Database) -> None:
    with pytest.raises(d.NotFoundError):
        await _in_tx(database, d.update_field, "nope", incoming_call=True)


async def test_staff_token_is_stored_hashed(database: Database) -> None:
    staff, token = await _in_tx(database, d.create_staff, "Anna", "anna@example.test", now=T0)
    async with database.sessions() as session:
        stored = await session.get(Staff, staff.id)
    assert stored is not None
    assert token not in (stored.token_hash, stored.full_name, stored.email)
    assert stored.token_hash == d.hash_token(token)
    assert stored.created_at == T0
    with pytest.raises(d.InvalidError):
        await _in_tx(database, d.create_staff, "Bob", "not-an-email")


@pytest.mark.parametrize(
    ("first", "again"),
    [
        ("anna@example.test", "anna@example.test"),
        ("Anna@Example.test", "  anna@EXAMPLE.TEST\t"),
        ("Ёлка@Пример.рф", "ёлка@пример.РФ"),  # Unicode case, which SQLite's lower() misses
    ],
)
async def test_staff_email_is_taken_case_insensitively_after_stripping(
    database: Database, first: str, again: str
) -> None:
    """R2: one staff member per email; the second is a 409 and nothing is written."""
    anna, _ = await _in_tx(database, d.create_staff, "Anna", f" {first} ")
    assert anna.email == first  # kept as typed, without the surrounding blanks

    with pytest.raises(d.ConflictError) as caught:
        await _in_tx(database, d.add_staff, "Anna Again", again)

    assert caught.value.code == "email_taken"
    assert first in caught.value.message
    staff, total = await _in_tx(database, d.list_staff)
    assert (total, [s.id for s in staff]) == (1, [anna.id])
    other, _ = await _in_tx(database, d.create_staff, "Bob", "bob." + first)
    assert other.id != anna.id


async def test_staff_list_newest_first(database: Database) -> None:
    for i in range(3):
        await _in_tx(database, d.create_staff, f"S{i}", f"s{i}@example.test")
    staff, total = await _in_tx(database, d.list_staff, 2, 0)
    assert total == 3
    assert [s.full_name for s in staff] == ["S2", "S1"]
    staff, _ = await _in_tx(database, d.list_staff, 2, 2)
    assert [s.full_name for s in staff] == ["S0"]


async def test_operators_map_and_unmap(database: Database) -> None:
    anna, _ = await _in_tx(database, d.create_staff, "Anna", "anna@example.test")
    bob, _ = await _in_tx(database, d.create_staff, "Bob", "bob@example.test")
    await _in_tx(database, d.put_operator, 101, anna.id)
    await _in_tx(database, d.put_operator, 102, anna.id)
    await _in_tx(database, d.put_operator, 103, None)
    changed = await _in_tx(database, d.put_operator, 102, bob.id)
    assert d.operator_json(changed) == {
        "employee_id": 102,
        "staff_id": bob.id,
        "full_name": None,
        "phones": [],
    }
    assert await _in_tx(database, d.operator_map) == {101: anna.id, 102: bob.id}
    await _in_tx(database, d.put_operator, 101, None)
    assert await _in_tx(database, d.operator_map) == {102: bob.id}
    operators, total = await _in_tx(database, d.list_operators)
    assert (total, [o.employee_id for o in operators]) == (3, [101, 102, 103])
    with pytest.raises(d.InvalidError):
        await _in_tx(database, d.put_operator, 104, 999)


async def _user(database: Database, data: dict[str, Any], at: datetime = T0) -> dict[str, Any]:
    async with database.sessions.begin() as session:
        user = await d.create_user(session, data, now=at)
        return await d.user_view(session, user)


async def test_user_create_and_patch(database: Database) -> None:
    await _in_tx(database, d.create_field, "tariff", "Tariff")
    await _in_tx(database, d.create_field, "city", "City")
    user = await _user(
        database,
        {
            "full_name": "  Иван Петров ",
            "phones": ["+7 (926) 000-00-00", "89260000000", "2345"],
            "custom_fields": {"tariff": "Gold", "city": None},
        },
    )
    assert user == {
        "id": user["id"],
        "full_name": "Иван Петров",
        "email": None,
        "company": None,
        "phones": ["+7 (926) 000-00-00", "2345"],  # the same number twice is kept once
        "note": None,
        "custom_fields": {"tariff": "Gold"},
    }
    async with database.sessions.begin() as session:
        patched = await d.patch_user(
            session,
            user["id"],
            # Re-adding a kept number in a new order must not trip the unique constraint.
            {"phones": ["2345", "79260000000"], "custom_fields": {"city": "Omsk", "tariff": None}},
            now=T0 + timedelta(hours=1),
        )
        view = await d.user_view(session, patched)
    assert view["phones"] == ["2345", "79260000000"]
    assert view["custom_fields"] == {"city": "Omsk"}
    assert view["full_name"] == "Иван Петров"
    assert patched.updated_at == T0 + timedelta(hours=1)


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"phones": ["no digits"]}, "invalid_phone"),
        ({"phones": "79260000000"}, "invalid_field"),
        ({"phones": [79260000000]}, "invalid_phone"),
        ({"custom_fields": {"unknown": "x"}}, "unknown_field"),
        ({"custom_fields": ["x"]}, "invalid_field"),
        ({"custom_fields": {"tariff": {"nested": 1}}}, "invalid_field"),
        ({"full_name": 5}, "invalid_field"),
        ({"full_name": "x" * 201}, "invalid_field"),
        ({"nickname": "x"}, "unknown_field"),
    ],
)
async def test_user_validation(database: Database, data: Any, code: str) -> None:
    await _in_tx(database, d.create_field, "tariff", "Tariff")
    with pytest.raises(d.InvalidError) as info:
        await _user(database, data)
    assert info.value.code == code


async def test_patch_unknown_user(database: Database) -> None:
    with pytest.raises(d.NotFoundError):
        await _in_tx(database, d.patch_user, 12345, {"note": "x"})


async def test_find_by_phone_oldest_wins(database: Database) -> None:
    newer = await _user(database, {"full_name": "Newer", "phones": ["79260000000"]}, T0)
    older = await _user(
        database, {"full_name": "Older", "phones": ["8 926 000 00 00"]}, T0 - timedelta(days=1)
    )
    assert newer["id"] != older["id"]
    async with database.sessions() as session:
        found = await d.find_user_by_phone(session, "+79260000000")
        assert found is not None and found.full_name == "Older"
        assert await d.find_user_by_phone(session, "79261111111") is None
        assert await d.find_user_by_phone(session, None) is None


async def test_create_with_phone_and_add_phone(database: Database) -> None:
    async with database.sessions.begin() as session:
        user = await d.create_user_with_phone(session, "79260000000")
        user_id = user.id
    assert await _in_tx(database, d.add_phone, user_id, "+7 495 514-05-78") is True
    assert await _in_tx(database, d.add_phone, user_id, "74955140578") is False
    async with database.sessions() as session:
        assert (await d.phones_of(session, [user_id, 999])) == {
            user_id: ["79260000000", "+7 495 514-05-78"],
            999: [],
        }
    with pytest.raises(d.InvalidError):
        await _in_tx(database, d.add_phone, user_id, "none")
    with pytest.raises(d.NotFoundError):
        await _in_tx(database, d.add_phone, 999, "79260000000")


async def _search(database: Database, q: str | None, limit: int = 50) -> tuple[list[str], int]:
    async with database.sessions() as session:
        users, total = await d.search_users(session, q, limit, 0)
    return [u.full_name or "" for u in users], total


@pytest.fixture
async def people(database: Database) -> Database:
    await _in_tx(database, d.create_field, "tariff", "Tariff")
    await _in_tx(database, d.create_field, "vip", "VIP")
    rows: list[dict[str, Any]] = [
        {"full_name": "Иван Петров", "email": "ivan@example.test", "phones": ["79260000001"]},
        {"full_name": "Anna Smith", "company": "ООО «Ромашка»", "phones": ["+7 495 514-05-78"]},
        {"full_name": "Bob", "note": "Prefers calls after 18:00, 100% sure"},
        {"full_name": "Carl", "custom_fields": {"tariff": "Золотой", "vip": True}},
        {"full_name": "Dana", "email": "DANA@Mail.test", "phones": ["2345"]},
    ]
    for i, row in enumerate(rows):
        await _user(database, row, T0 + timedelta(minutes=i))
    return database


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("иван", ["Иван Петров"]),  # Cyrillic, other letter case (SQLite folds ASCII only)
        ("ПЕТРОВ", ["Иван Петров"]),
        ("ivan@", ["Иван Петров"]),
        ("dana@mail", ["Dana"]),
        ("ромашка", ["Anna Smith"]),
        ("after 18", ["Bob"]),
        ("золот", ["Carl"]),  # a custom field value
        ("tariff", []),  # a custom field *key* is not user data
        ("514-05", ["Anna Smith"]),  # phone digits, typed with punctuation
        ("8 495 514 05 78", ["Anna Smith"]),  # a whole number with the trunk prefix 8
        ("926000", ["Иван Петров"]),
        ("23", []),  # under 3 digits: not a phone search
        ("100%", ["Bob"]),  # LIKE wildcards are literal
        ("%", ["Bob"]),  # only Bob's note has a literal "%"
        ("_", []),
        ("nobody", []),
    ],
)
async def test_search_matches_each_kind_of_data(
    people: Database, q: str, expected: list[str]
) -> None:
    names, total = await _search(people, q)
    assert (names, total) == (expected, len(expected))


async def test_search_lists_newest_first_with_total(people: Database) -> None:
    assert await _search(people, None, limit=2) == (["Dana", "Carl"], 5)
    assert await _search(people, "  ", limit=50) == (
        ["Dana", "Carl", "Bob", "Anna Smith", "Иван Петров"],
        5,
    )
    # Several matches: one ASCII letter shared by many names, still newest first.
    names, total = await _search(people, "an", limit=2)
    assert (names, total) == (["Dana", "Anna Smith"], 3)


async def test_popup_fields(database: Database) -> None:
    await _in_tx(database, d.create_field, "tariff", "Tariff", True)
    await _in_tx(database, d.update_field, "phones", incoming_call=True)
    await _in_tx(database, d.update_field, "email", incoming_call=False)
    async with database.sessions.begin() as session:
        user = await d.create_user(
            session,
            {"full_name": "Anna", "phones": ["79260000000", "2345"], "custom_fields": {}},
        )
        popup = await d.popup_fields(session, user)
    assert popup == [
        {"key": "full_name", "title": "Full name", "value": "Anna"},
        {"key": "company", "title": "Company", "value": None},
        {"key": "phones", "title": "Phones", "value": "79260000000, 2345"},
        {"key": "tariff", "title": "Tariff", "value": None},
    ]


async def test_popup_defaults_on_fresh_database(database: Database) -> None:
    async with database.sessions.begin() as session:
        user = await d.create_user(session, {"full_name": "A", "email": "a@x.test"})
        keys = [f["key"] for f in await d.popup_fields(session, user)]
    assert keys == ["full_name", "email", "company"]  # R3 default


async def test_rejected_newest_first(database: Database) -> None:
    async with database.sessions.begin() as session:
        for i in range(3):
            at = T0 + timedelta(seconds=i)
            session.add(
                Rejected(received_at=at, status=400, code=f"c{i}", message="m", body="{", size=1)
            )
    rows, total = await _in_tx(database, d.list_rejected, 2, 0)
    assert total == 3
    assert [r.code for r in rows] == ["c2", "c1"]


async def test_invalid_user_adds_nothing_to_the_session(database: Database) -> None:
    # A caller that catches the error and commits its other work must not commit a blank user.
    async with database.sessions.begin() as session:
        with pytest.raises(d.InvalidError):
            await d.create_user(session, {"phones": ["no digits"]})
    assert await _search(database, None) == ([], 0)


async def test_search_survives_null_custom_fields(database: Database) -> None:
    async with database.sessions.begin() as session:
        user = await d.create_user(session, {"full_name": "Null"})
        user.custom_fields = None  # type: ignore[assignment]  # as careless code might write
    assert await _search(database, "null") == (["Null"], 1)
    assert await _search(database, "zzz") == ([], 0)
