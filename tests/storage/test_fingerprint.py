"""`callrouter.testing.fingerprint`: what a user sees of every case, free of ids and write order,
and a diff that says which user's cases differ and how."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from callrouter.storage.engine import Database
from callrouter.storage.models import Case, Message, Recording, Staff, User, UserPhone
from callrouter.testing import fingerprint as fp

T0 = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)
ANNA = "Анна Смирнова <anna@example.test>"
LINK = "https://media.uiscom.ru/{}/{:032x}"


def _call(call_id: int, outcome: str = "missed", *urls: str) -> fp.CallPrint:
    return fp.CallPrint(call_id, "in", outcome, 0 if outcome == "missed" else 60, tuple(urls))


def _message(minute: int, call: fp.CallPrint | None = None, body: str = "") -> fp.MessagePrint:
    at = (T0 + timedelta(minutes=minute)).isoformat(timespec="microseconds")
    return fp.MessagePrint(at, "call" if call else "note", ANNA, body, call)


def _case(
    phone: str, minute: int, *messages: fp.MessagePrint, status: str = "open"
) -> fp.CasePrint:
    at = (T0 + timedelta(minutes=minute)).isoformat(timespec="microseconds")
    return fp.CasePrint(
        (phone,), at, f"Пропущенный звонок с {phone}", status, "calls", "missed", ANNA, None,
        messages,
    )  # fmt: skip


def test_order_of_cases_and_messages_does_not_matter() -> None:
    a = _case("79260000001", 0, _message(0, _call(1)), _message(5, _call(2)))
    b = _case("79260000002", 1, _message(1, _call(3)))
    shuffled = _case("79260000001", 0, _message(5, _call(2)), _message(0, _call(1)))
    first, second = fp.build([a, b]), fp.build([b, shuffled])
    assert first == second
    assert first.digest() == second.digest() and len(first.digest()) == 64
    assert fp.diff(first, second) == ""
    # Messages at the same moment are ordered by what they say, never by id.
    same_time = [_message(3, body="b"), _message(3, body="a")]
    one = fp.build([_case("79260000003", 3, *same_time)])
    other = fp.build([_case("79260000003", 3, *reversed(same_time))])
    assert one == other and [m.body for m in one.cases[0].messages] == ["a", "b"]


def test_the_digest_changes_with_anything_a_user_sees() -> None:
    base = fp.build([_case("79260000001", 0, _message(0, _call(1)))])
    changed = [
        fp.build([_case("79260000001", 0, _message(0, _call(1)), status="closed")]),
        fp.build([_case("79260000001", 0, _message(0, _call(1, "answered", "u")))]),
        fp.build([_case("79260000009", 0, _message(0, _call(1)))]),
        fp.build([_case("79260000001", 0, _message(0, _call(1), body="summary"))]),
    ]
    assert len({base.digest(), *(c.digest() for c in changed)}) == 5


def test_the_diff_shows_each_affected_user_with_all_their_cases() -> None:
    phone = "79260000001"
    grouped = fp.build([_case(phone, 0, _message(0, _call(1)), _message(5, _call(2)))])
    split = fp.build(
        [_case(phone, 0, _message(0, _call(1))), _case(phone, 5, _message(5, _call(2)))]
    )
    text = fp.diff(grouped, split, ("fast", "slow"))
    assert "1 case(s) only in fast, 2 only in slow; 1 user(s) affected" in text
    assert f"user {phone}: 1 case(s) in fast, 2 in slow" in text
    lines = text.splitlines()
    # The unchanged first message is shown as context, the moved one as removed and added.
    assert any(line[4] == " " and "message:" in line and "call=1 " in line for line in lines)
    assert any(line.startswith("    +case ") and "06:05:00" in line for line in lines)
    assert fp.diff(grouped, split, limit=0).endswith("... and 1 more user(s)")


def test_of_phones_keeps_the_cases_of_those_users() -> None:
    both = fp.build([_case("79260000001", 0), _case("79260000002", 1)])
    assert [c.phones for c in both.of_phones({"79260000002"}).cases] == [("79260000002",)]


def test_times_from_the_api_and_from_the_database_agree() -> None:
    from_api = "2026-11-02T09:00:01.500000+03:00"
    from_sqlite = datetime(2026, 11, 2, 6, 0, 1, 500000)  # naive UTC
    assert fp._utc(from_api) == fp._utc(from_sqlite) == "2026-11-02T06:00:01.500000+00:00"


def test_database_urls_are_read_only_and_async(tmp_path: Path) -> None:
    url = make_url(fp.database_url(tmp_path))
    assert url.drivername == "sqlite+aiosqlite"
    assert url.database == f"file:{tmp_path / fp.SQLITE_FILE}"
    assert url.query == {"mode": "ro", "uri": "true"}
    assert fp.database_url("postgresql://u:p@h/db") == "postgresql+asyncpg://u:p@h/db"
    with pytest.raises(ValueError):
        fp.database_url("sqlite://")


async def _write(path: Path, reverse: bool, id_offset: int) -> None:
    """The same two users' cases, written in one order or the other with other ids."""
    db = Database(f"sqlite:///{path}")
    await db.create_schema()
    rows: list[tuple[Any, dict[str, Any]]] = [
        (Staff, {"id": 1 + id_offset, "full_name": "Анна Смирнова", "email": "anna@example.test",
                 "token_hash": f"h{id_offset}", "created_at": T0}),
    ]  # fmt: skip
    for n, phone in enumerate(("79260000001", "79260000002")):
        user, case = 10 + n + id_offset, 100 + n + id_offset
        rows += [
            (User, {"id": user, "created_at": T0, "updated_at": T0, "custom_fields": {}}),
            (UserPhone, {"user_id": user, "phone": phone, "normalized": phone, "position": 0}),
            (Case, {"id": case, "subject": f"Входящий звонок с {phone}", "status": "waiting",
                    "channel": "calls", "user_id": user, "assignee_id": 1 + id_offset,
                    "call_icon": "normal", "created_at": T0 + timedelta(minutes=n),
                    "updated_at": T0, "closed_at": None}),
        ]  # fmt: skip
        for part in range(2):  # a transfer: one message and one recording per operator
            call, employee = 5000 + n, 1001 + part
            rows += [
                (Message, {"case_id": case, "kind": "call", "author_staff_id": 1 + id_offset,
                           "body": "", "created_at": T0 + timedelta(minutes=n),
                           "call_session_id": call, "call_direction": "in",
                           "call_outcome": "answered", "talk_seconds": 30 + part,
                           "employee_id": employee}),
                (Recording, {"call_session_id": call, "employee_id": employee,
                             "url": LINK.format(call, part), "seconds": 30,
                             "recorded_at": T0}),
            ]  # fmt: skip
    if reverse:
        rows = rows[:1] + rows[:0:-1]
    async with db.engine.begin() as conn:
        for table in (Staff, User, UserPhone, Case, Message, Recording):  # foreign keys first
            for model, values in rows:
                if model is table:
                    await conn.execute(insert(table).values(**values))
    await db.dispose()


async def test_the_database_fingerprint_ignores_ids_and_write_order(tmp_path: Path) -> None:
    await _write(tmp_path / "a.sqlite3", reverse=False, id_offset=0)
    await _write(tmp_path / "b.sqlite3", reverse=True, id_offset=7)
    first = await fp.from_database(tmp_path / "a.sqlite3")
    second = await fp.from_database(f"sqlite:///{tmp_path / 'b.sqlite3'}")
    assert first == second, fp.diff(first, second)
    [case, _] = first.cases
    assert case.assignee == ANNA and case.phones == ("79260000001",)
    # Each part of the transfer shows its own operator's recording, as the API does.
    assert [m.call.recording_urls for m in case.messages if m.call] == [
        (LINK.format(5000, 0),),
        (LINK.format(5000, 1),),
    ]


async def test_the_database_is_only_read(tmp_path: Path) -> None:
    await _write(tmp_path / "a.sqlite3", reverse=False, id_offset=0)
    engine = fp.read_only_engine(tmp_path / "a.sqlite3")
    try:
        async with engine.connect() as conn, conn.begin():
            with pytest.raises(OperationalError, match="readonly"):
                await conn.execute(text("DELETE FROM messages"))
    finally:
        await engine.dispose()
    assert len((await fp.from_database(tmp_path / "a.sqlite3")).cases) == 2
