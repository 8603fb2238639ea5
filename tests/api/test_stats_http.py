"""`GET /api/v1/stats/<report>?from=&to=` (API.md "Statistics"): how a period is read and which
ones are refused. Every period lies within [2000-01-01, 2100-01-01) on the account's clock and
is at most two years long; anything else is 422 `invalid_period`, and no query string is ever a
500. The cluster is a fake that records what it was asked."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from callrouter.domain.account import Account
from callrouter.http import stats
from callrouter.http.errors import error_middleware
from callrouter.http.keys import ACCOUNT, ADMIN_TOKEN, CLUSTER, AccountBox
from callrouter.stats.figures import REPORTS

TOKEN = "admin-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ZONE = "Asia/Kolkata"  # +05:30: a zone whose midnight is not a UTC hour
BODY = {"new_total": 1}
Client = TestClient[web.Request, web.Application]


class FakeCluster:
    """Answers every report with the same body and records the periods it was asked."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, datetime, datetime]] = []

    async def report(self, name: str, start: datetime, end: datetime) -> dict[str, Any]:
        self.asked.append((name, start, end))
        return BODY


@pytest.fixture
def cluster() -> FakeCluster:
    return FakeCluster()


@pytest.fixture
async def client(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]], cluster: FakeCluster
) -> Client:
    app = web.Application(middlewares=[error_middleware])
    app[ADMIN_TOKEN] = TOKEN
    app[ACCOUNT] = AccountBox(Account(timezone=ZONE))
    app[CLUSTER] = cluster  # type: ignore[misc]
    app.add_routes(stats.routes)
    return await aiohttp_client(app)


async def get(client: Client, report: str = "load", **query: str) -> tuple[int, Any]:
    resp = await client.get(f"/api/v1/stats/{report}?{urlencode(query)}", headers=AUTH)
    return resp.status, await resp.json()


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(ZONE))


async def test_a_period_is_read_in_the_account_zone(client: Client, cluster: FakeCluster) -> None:
    """Dates are local midnights, `to` defaults to one day after `from`, an offset is kept."""
    assert await get(client, **{"from": "2026-11-02", "to": "2026-11-05"}) == (200, BODY)
    assert await get(client, **{"from": "2026-11-02T09:30"}) == (200, BODY)
    assert await get(client, **{"from": "2026-11-02T09:30:00+00:00"}) == (200, BODY)
    assert cluster.asked == [
        ("load", local("2026-11-02"), local("2026-11-05")),
        ("load", local("2026-11-02T09:30"), local("2026-11-03T09:30")),
        ("load", local("2026-11-02T15:00"), local("2026-11-03T15:00")),
    ]


async def test_from_defaults_to_today(client: Client, cluster: FakeCluster) -> None:
    assert await get(client, "peak") == (200, BODY)
    ((_, start, end),) = cluster.asked
    today = datetime.now(ZoneInfo(ZONE)).date()
    assert (start, end) == (local(today.isoformat()), local(today.isoformat()) + timedelta(days=1))


@pytest.mark.parametrize(
    ("query", "why"),
    [
        ({"from": "9999-12-31"}, "to would overflow"),
        ({"from": "0001-01-03", "to": "9999-12-29"}, "years 1 to 9999"),
        ({"from": "0001-01-01"}, "year 1"),
        ({"from": "1999-12-31", "to": "2000-01-02"}, "starts before 2000"),
        ({"from": "2099-12-31", "to": "2100-01-02"}, "ends after 2099"),
        ({"from": "2099-12-31T12:00"}, "the default `to` ends after 2099"),
        ({"from": "2100-01-01"}, "starts in 2100"),
        ({"from": "1999-12-31T18:29:59+00:00"}, "23:59:59 on 1999-12-31 on the account's clock"),
        ({"from": "2024-01-01", "to": "2026-01-02"}, "732 days"),
        ({"from": "2026-11-02", "to": "2026-11-02"}, "empty"),
        ({"from": "2026-11-03", "to": "2026-11-02"}, "backwards"),
        ({"from": "2026-13-01"}, "not a date"),
        ({"from": "yesterday"}, "not a date"),
        ({"from": "9999-12-31T23:59:59-23:59"}, "overflows in the account zone"),
        ({"from": "0001-01-01T00:00+23:59"}, "overflows in the account zone"),
    ],
)
async def test_bad_periods_are_422(
    client: Client, cluster: FakeCluster, query: dict[str, str], why: str
) -> None:
    for report in ("load", "peak", "team"):
        status, body = await get(client, report, **query)
        assert status == 422, (why, body)
        assert body["error"]["code"] == "invalid_period", why
        assert body["error"]["message"]
    assert cluster.asked == []


async def test_the_widest_periods_are_answered(client: Client, cluster: FakeCluster) -> None:
    """Two years (731 days, a leap day in them) and the first and last days allowed."""
    for query in (
        {"from": "2024-01-01", "to": "2026-01-01"},
        {"from": "2000-01-01"},
        {"from": "1999-12-31T18:30:00+00:00"},  # midnight of 2000-01-01 in Kolkata
        {"from": "2099-12-31"},
        {"from": "2098-01-01", "to": "2100-01-01"},
    ):
        assert await get(client, "peak", **query) == (200, BODY), query
    assert len(cluster.asked) == 5


async def test_unknown_report_and_no_token(client: Client) -> None:
    assert (await get(client, "nonsense", **{"from": "2026-11-01"}))[0] == 404
    resp = await client.get("/api/v1/stats/load?from=2026-11-01")
    assert resp.status == 401


# Query values: dates and datetimes near the limits and far outside, and arbitrary text.
_moments = st.one_of(
    st.dates().map(lambda d: d.isoformat()),
    st.datetimes(timezones=st.none() | st.timezones()).map(lambda d: d.isoformat()),
    st.sampled_from(["2000-01-01", "2099-12-31", "2100-01-01", "1999-12-31", "9999-12-31"]),
    st.text(max_size=40),
)
_queries = st.dictionaries(st.sampled_from(["from", "to", "other"]), _moments, max_size=3)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(query=_queries, report=st.sampled_from([*REPORTS, "bogus"]))
async def test_no_query_string_is_a_500(
    client: Client, cluster: FakeCluster, query: dict[str, str], report: str
) -> None:
    """Whatever the query, the answer is the report, 404 or 422 `invalid_period`; what the
    cluster is asked is a period of at most two years inside [2000, 2100)."""
    cluster.asked.clear()
    resp = await client.get(f"/api/v1/stats/{report}", params=query, headers=AUTH)
    body = await resp.json()
    if report == "bogus":
        assert resp.status == 404
        return
    assert resp.status in (200, 422), body
    if resp.status == 422:
        assert body["error"]["code"] == "invalid_period"
        assert cluster.asked == []
        return
    ((_, start, end),) = cluster.asked
    wall_start, wall_end = start.replace(tzinfo=None), end.replace(tzinfo=None)
    assert datetime(2000, 1, 1) <= wall_start < wall_end <= datetime(2100, 1, 1)
    assert start < end and wall_end - wall_start <= timedelta(days=stats.MAX_DAYS)
