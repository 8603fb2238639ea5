"""`GET /api/v1/stats/<report>.csv?from=&to=` (API.md "Additions"): the six reports as files a
manager opens in a spreadsheet. In-process app on SQLite (staff names come from the staff
table), the statistics a fake answering the API.md bodies."""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from callrouter.domain.account import Account
from callrouter.http import stats, stats_csv
from callrouter.http.errors import error_middleware
from callrouter.http.keys import ACCOUNT, ADMIN_TOKEN, CLUSTER, DB, AccountBox
from callrouter.storage.directory import create_staff
from callrouter.storage.engine import Database

TOKEN = "admin-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ZONE = "Europe/Moscow"
Client = TestClient[web.Request, web.Application]

LOAD = {
    "new_total": 12,
    "new_from_users": 9,
    "reopened": 2,
    "in_work": 5,
    "answered": 8,
    "closed": 4,
}
PEAK = {
    "by_hour": [
        {"hour": h, "new_and_reopened": 3 if h == 9 else 0, "in_work": 1 if h == 14 else 0}
        for h in range(24)
    ],
    "by_weekday": [
        {"weekday": d, "new_and_reopened": 3 if d == 2 else 0, "in_work": 1 if d == 2 else 0}
        for d in range(1, 8)
    ],
}
CHANNELS = {"calls": {"new_and_reopened": 14, "in_work": 5, "closed": 4}}
RESPONSE = {
    "first_response": None,
    "any_response": None,
    "reply_writing": None,
    "replies_to_close": 1.5,
    "close_time": {"mean_seconds": 5400.25, "median_seconds": 3600.0},
}
SLA = {"first_response_breached": None, "any_response_breached": None, "close_sla_breached": 3}


def team_row(staff_id: int, **figures: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "staff_id": staff_id,
        "new_total": 0,
        "new_from_users": 0,
        "reopened": 0,
        "in_work": 0,
        "answered": 0,
        "replies": 0,
        "replies_to_close": None,
        "closed": 0,
        "close_time": None,
        "close_sla_breached": 0,
    }
    return row | figures


class FakeCluster:
    """The API.md bodies, the team's for the staff ids it is given; records what was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, datetime, datetime]] = []
        self.team: dict[str, Any] = {"items": []}

    async def report(self, name: str, start: datetime, end: datetime) -> dict[str, Any]:
        self.asked.append((name, start, end))
        bodies: dict[str, dict[str, Any]] = {
            "load": LOAD,
            "peak": PEAK,
            "channels": CHANNELS,
            "response": RESPONSE,
            "sla": SLA,
            "team": self.team,
        }
        return bodies[name]


@pytest.fixture
def cluster() -> FakeCluster:
    return FakeCluster()


@pytest.fixture
async def client(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
    cluster: FakeCluster,
    sqlite_database: Database,
) -> Client:
    app = web.Application(middlewares=[error_middleware])
    app[ADMIN_TOKEN] = TOKEN
    app[DB] = sqlite_database
    app[ACCOUNT] = AccountBox(Account(timezone=ZONE))
    app[CLUSTER] = cluster  # type: ignore[misc]
    app.add_routes(stats.routes)
    return await aiohttp_client(app)


async def new_staff(db: Database, name: str) -> tuple[int, str]:
    async with db.sessions() as session, session.begin():
        staff, token = await create_staff(session, name, f"{abs(hash(name))}@example.test")
        return staff.id, token


def rows(text: str, delimiter: str = ";") -> list[list[str]]:
    assert text.startswith("\ufeff"), "Excel needs the byte order mark to read UTF-8"
    return list(csv.reader(io.StringIO(text[1:], newline=""), delimiter=delimiter))


async def get_csv(
    client: Client,
    report: str = "load",
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    resp = await client.get(
        f"/api/v1/stats/{report}.csv?{urlencode(query or {})}",
        headers=AUTH if headers is None else headers,
    )
    return resp.status, dict(resp.headers), await resp.read()


DAY = {"from": "2026-11-02", "to": "2026-11-03"}


async def test_load_as_csv_with_bom_disposition_and_russian_headings(
    client: Client, cluster: FakeCluster
) -> None:
    status, headers, raw = await get_csv(client, "load", DAY)
    assert status == 200, raw
    assert headers["Content-Type"] == "text/csv; charset=utf-8"
    assert headers["Content-Disposition"] == 'attachment; filename="load-2026-11-02-2026-11-03.csv"'
    assert raw.startswith(b"\xef\xbb\xbf")  # the UTF-8 byte order mark
    assert b"\r\n" in raw
    assert rows(raw.decode("utf-8")) == [
        ["Показатель", "Значение"],
        ["Всего новых обращений", "12"],
        ["Новых обращений от клиентов", "9"],
        ["Снова открытых обращений", "2"],
        ["Обращений в работе", "5"],
        ["Обращений с ответом", "8"],
        ["Закрытых обращений", "4"],
    ]
    zone = ZoneInfo(ZONE)
    assert cluster.asked == [
        ("load", datetime(2026, 11, 2, tzinfo=zone), datetime(2026, 11, 3, tzinfo=zone))
    ]


async def test_english_has_commas_and_a_decimal_point(client: Client) -> None:
    status, _, raw = await get_csv(client, "response", DAY | {"lang": "en"})
    assert status == 200
    assert rows(raw.decode(), ",") == [
        ["Figure", "Value"],
        ["First response time", "not applicable for calls"],
        ["Any response time", "not applicable for calls"],
        ["Reply writing time", "not applicable for calls"],
        ["Replies to close", "1.5"],
        ["Close time, mean (seconds)", "5400.25"],
        ["Close time, median (seconds)", "3600"],
    ]


async def test_response_and_sla_in_russian_say_not_applicable(client: Client) -> None:
    _, _, raw = await get_csv(client, "response", DAY)
    assert rows(raw.decode()) == [
        ["Показатель", "Значение"],
        ["Скорость первого ответа", "не применимо к звонкам"],
        ["Скорость любого ответа", "не применимо к звонкам"],
        ["Скорость написания ответа", "не применимо к звонкам"],
        ["Количество ответов для закрытия", "1,5"],
        ["Скорость закрытия, среднее (секунды)", "5400,25"],
        ["Скорость закрытия, медиана (секунды)", "3600"],
    ]
    _, _, raw = await get_csv(client, "sla", DAY)
    assert rows(raw.decode()) == [
        ["Показатель", "Значение"],
        ["Не соблюден SLA первого ответа", "не применимо к звонкам"],
        ["Не соблюден SLA любого ответа", "не применимо к звонкам"],
        ["Не соблюден SLA закрытия", "3"],
    ]


async def test_peak_is_one_table_hours_then_weekdays(client: Client) -> None:
    _, _, raw = await get_csv(client, "peak", DAY)
    table = rows(raw.decode())
    assert table[0] == [
        "Разрез",
        "Интервал",
        "Новых и снова открытых обращений",
        "Обращений в работе",
    ]
    assert len(table) == 1 + 24 + 7
    assert table[1] == ["Час", "00:00–01:00", "0", "0"]
    assert table[10] == ["Час", "09:00–10:00", "3", "0"]
    assert table[15] == ["Час", "14:00–15:00", "0", "1"]
    assert table[24] == ["Час", "23:00–00:00", "0", "0"]
    assert [r[1] for r in table[25:]] == [
        "Понедельник",
        "Вторник",
        "Среда",
        "Четверг",
        "Пятница",
        "Суббота",
        "Воскресенье",
    ]
    assert table[26] == ["День недели", "Вторник", "3", "1"]
    _, _, raw = await get_csv(client, "peak", DAY | {"lang": "en"})
    assert rows(raw.decode(), ",")[26] == ["Weekday", "Tuesday", "3", "1"]


async def test_channels(client: Client) -> None:
    _, _, raw = await get_csv(client, "channels", DAY)
    assert rows(raw.decode()) == [
        ["Канал", "Новых и снова открытых обращений", "Обращений в работе", "Закрытых обращений"],
        ["Звонки", "14", "5", "4"],
    ]


async def test_team_rows_carry_staff_names(
    client: Client, cluster: FakeCluster, sqlite_database: Database
) -> None:
    """Names from the staff table, rows by name; an id the table does not know is `#id`; a
    name a spreadsheet would run as a formula is quoted."""
    petr, _ = await new_staff(sqlite_database, "Пётр Васильев")
    olga, _ = await new_staff(sqlite_database, "Ольга Кузнецова")
    formula, _ = await new_staff(sqlite_database, "=HYPERLINK(1)")
    cluster.team = {
        "items": [
            team_row(petr, new_total=2, answered=1, replies=1),
            team_row(
                olga,
                new_total=3,
                new_from_users=2,
                answered=2,
                replies=3,
                replies_to_close=1.5,
                closed=2,
                close_time={"mean_seconds": 90.5, "median_seconds": 90.5},
                close_sla_breached=1,
            ),
            team_row(999_999, in_work=1),
            team_row(formula),
        ]
    }
    status, headers, raw = await get_csv(client, "team", DAY)
    assert status == 200
    assert headers["Content-Disposition"] == 'attachment; filename="team-2026-11-02-2026-11-03.csv"'
    table = rows(raw.decode())
    assert table[0] == [
        "Сотрудник",
        "ID сотрудника",
        "Всего новых обращений",
        "Новых обращений от клиентов",
        "Снова открытых обращений",
        "Обращений в работе",
        "Обращений с ответом",
        "Общее количество ответов",
        "Количество ответов для закрытия",
        "Закрытых обращений",
        "Скорость закрытия, среднее (секунды)",
        "Скорость закрытия, медиана (секунды)",
        "Не соблюден SLA закрытия",
    ]
    assert table[1:] == [
        ["#999999", "999999", "0", "0", "0", "1", "0", "0", "", "0", "", "", "0"],
        ["'=HYPERLINK(1)", str(formula), "0", "0", "0", "0", "0", "0", "", "0", "", "", "0"],
        [
            "Ольга Кузнецова",
            str(olga),
            "3",
            "2",
            "0",
            "0",
            "2",
            "3",
            "1,5",
            "2",
            "90,5",
            "90,5",
            "1",
        ],
        ["Пётр Васильев", str(petr), "2", "0", "0", "0", "1", "1", "", "0", "", "", "0"],
    ]


async def test_a_staff_token_may_export(client: Client, sqlite_database: Database) -> None:
    _, token = await new_staff(sqlite_database, "Анна Смирнова")
    status, _, raw = await get_csv(
        client, "channels", DAY, headers={"Authorization": f"Bearer {token}"}
    )
    assert status == 200, raw


async def test_no_token_or_a_bad_one_is_401(client: Client, cluster: FakeCluster) -> None:
    for headers in ({}, {"Authorization": "Bearer nonsense"}, {"Authorization": "Basic x"}):
        status, got, raw = await get_csv(client, "load", DAY, headers=headers)
        assert status == 401, headers
        assert got["Content-Type"].startswith("application/json")
        assert b'"unauthorized"' in raw
    assert cluster.asked == []


@pytest.mark.parametrize(
    "query",
    [
        {"from": "2026-11-03", "to": "2026-11-02"},
        {"from": "2026-11-02", "to": "2026-11-02"},
        {"from": "yesterday"},
        {"from": "2026-13-01"},
        {"from": "2024-01-01", "to": "2026-01-02"},
        {"from": "1999-12-31"},
    ],
)
async def test_a_bad_period_is_422(
    client: Client, cluster: FakeCluster, query: dict[str, str]
) -> None:
    status, headers, raw = await get_csv(client, "load", query)
    assert status == 422, raw
    assert headers["Content-Type"].startswith("application/json")
    assert b'"invalid_period"' in raw
    assert cluster.asked == []


async def test_unknown_report_is_404_and_a_bad_lang_400(client: Client) -> None:
    status, _, raw = await get_csv(client, "nonsense", DAY)
    assert status == 404 and b'"unknown_report"' in raw
    status, _, raw = await get_csv(client, "load", DAY | {"lang": "de"})
    assert status == 400 and b'"invalid_parameter"' in raw


async def test_the_json_report_is_still_json(client: Client) -> None:
    """`/load.csv` reaches the CSV handler; `/load` is still the JSON report."""
    resp = await client.get(f"/api/v1/stats/load?{urlencode(DAY)}", headers=AUTH)
    assert resp.status == 200
    assert await resp.json() == LOAD


async def test_default_period_and_datetimes_in_the_file_name(
    client: Client, cluster: FakeCluster
) -> None:
    """No period is today; a period with times names them without colons."""
    status, headers, _ = await get_csv(client)
    assert status == 200
    (_, start, end) = cluster.asked[-1]
    assert headers["Content-Disposition"] == (
        f'attachment; filename="load-{start.date().isoformat()}-{end.date().isoformat()}.csv"'
    )
    status, headers, _ = await get_csv(
        client, "load", {"from": "2026-11-02T09:30", "to": "2026-11-02T18:00"}
    )
    assert headers["Content-Disposition"] == (
        'attachment; filename="load-2026-11-02T0930-2026-11-02T1800.csv"'
    )


def test_numbers() -> None:
    assert stats_csv.number(3, "ru") == "3"
    assert stats_csv.number(3.0, "ru") == "3"
    assert stats_csv.number(2 / 3, "ru") == "0,67"
    assert stats_csv.number(2 / 3, "en") == "0.67"
    assert stats_csv.number(1.10, "en") == "1.1"
    assert stats_csv.number(None, "en") == ""
