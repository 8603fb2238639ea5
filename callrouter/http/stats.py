"""`GET /api/v1/stats/<report>?from=&to=` (R25–R30): periods in the account's time zone.

A period is read, checked and refused (422 `invalid_period`) before the statistics see it: it
must lie within [2000-01-01, 2100-01-01) on the account's clock (the statistics read nothing
outside it) and be at most `MAX_DAYS` long, so no query string can overflow a date or keep the
statistics busy for long while other requests wait.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from aiohttp import web

from callrouter.http.errors import ApiError, not_found, unprocessable
from callrouter.http.keys import ACCOUNT, CLUSTER
from callrouter.http.operation import operation
from callrouter.http.schemas import REPORT_MODELS, Period
from callrouter.stats.figures import REPORTS

routes = web.RouteTableDef()

EARLIEST = datetime(2000, 1, 1)  # on the account's clock
LATEST = datetime(2100, 1, 1)
MAX_DAYS = 731  # two years, a leap day included


def invalid(message: str) -> ApiError:
    """422 `invalid_period` with a human message."""
    return unprocessable("invalid_period", message)


def parse_moment(text: str, tz: tzinfo, name: str) -> datetime:
    """A date (its midnight) or a datetime, read in the account's zone unless it has an offset;
    returned in the account's zone. 422 for anything else or outside [2000, 2100)."""
    try:
        if len(text) == 10:
            moment = datetime.combine(date.fromisoformat(text), time(), tz)
        else:
            moment = datetime.fromisoformat(text)
            moment = moment.replace(tzinfo=tz) if moment.tzinfo is None else moment.astimezone(tz)
    except (ValueError, OverflowError):
        raise invalid(f"`{name}` must be a date (2026-11-01) or an ISO datetime.") from None
    if not EARLIEST <= moment.replace(tzinfo=None) <= LATEST:
        raise invalid(f"`{name}` must lie between 2000-01-01 and 2100-01-01.")
    return moment


def period(query: Mapping[str, str], tz: tzinfo, now: datetime) -> tuple[datetime, datetime]:
    """[from, to) from the query: `from` defaults to today (of `now` in the zone), `to` to one
    day after `from`. 422 `invalid_period` unless it lies within [2000-01-01, 2100-01-01) and
    is at most MAX_DAYS long."""
    raw_from, raw_to = query.get("from"), query.get("to")
    if raw_from is None:
        start = datetime.combine(now.astimezone(tz).date(), time(), tz)
    else:
        start = parse_moment(raw_from, tz, "from")
    end = start + timedelta(days=1) if raw_to is None else parse_moment(raw_to, tz, "to")
    wall_start, wall_end = start.replace(tzinfo=None), end.replace(tzinfo=None)
    if not EARLIEST <= wall_start < LATEST or wall_end > LATEST:
        raise invalid("The period must lie between 2000-01-01 and 2100-01-01.")
    if end <= start:
        raise invalid("`to` must be after `from` (the period is [from, to)).")
    if wall_end - wall_start > timedelta(days=MAX_DAYS):
        raise invalid(f"A period is at most {MAX_DAYS} days (two years) long.")
    return start, end


@routes.get("/api/v1/stats/{report}")
@operation(
    auth="any",
    tag="statistics",
    query=Period,
    answer=REPORT_MODELS,
    errors=(404, 422, 503),
)
async def report(request: web.Request) -> Any:
    """One of the guide's six reports for the period [from, to) (R25–R30)

    `report` is one of load, peak, channels, response, sla, team."""
    name = request.match_info["report"]
    if name not in REPORTS:
        raise not_found("unknown_report", f"No report {name!r}; reports: {', '.join(REPORTS)}.")
    tz = request.app[ACCOUNT].value.tz
    start, end = period(request.query, tz, datetime.now(tz))
    answer = await request.app[CLUSTER].report(name, start, end)
    if answer is None:
        raise ApiError(
            503,
            "statistics_disabled",
            "This service runs without statistics (--no-stats).",
            headers={"Retry-After": "3600"},
        )
    return answer
