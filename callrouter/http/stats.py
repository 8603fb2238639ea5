"""`GET /api/v1/stats/<report>?from=&to=` (R25–R30): periods in the account's time zone; and
`GET /api/v1/stats/<report>.csv` the same report as a spreadsheet file (`http.stats_csv`).

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
from sqlalchemy import select

from callrouter.http import stats_csv
from callrouter.http.errors import ApiError, not_found, unprocessable
from callrouter.http.keys import ACCOUNT, CLUSTER, DB
from callrouter.http.operation import operation
from callrouter.http.schemas import REPORT_MODELS, Period, StatsCsvQuery
from callrouter.stats.figures import REPORTS
from callrouter.storage.models import Staff

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


async def _report(request: web.Request) -> tuple[str, datetime, datetime, dict[str, Any]]:
    """The named report for the query's period: 404 for an unknown report, 422 for a bad
    period, 503 without statistics."""
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
    return name, start, end, answer


# Before `/api/v1/stats/{report}`: aiohttp tries routes in order, and `{report}` alone would
# also match `load.csv`.
@routes.get("/api/v1/stats/{report}.csv")
@operation(auth="any", tag="statistics", query=StatsCsvQuery, errors=(404, 422, 503), kind="csv")
async def report_csv(request: web.Request, query: StatsCsvQuery) -> web.Response:
    """One of the six reports as a CSV file, for a spreadsheet

    The same figures as the JSON report for the same period, one table with a header row,
    UTF-8 with a byte order mark (Excel then reads Cyrillic right). `lang=ru` (the default):
    Russian headings, `;` between fields, a decimal comma — what Excel expects in a Russian
    locale; `lang=en`: English headings, `,` and a decimal point. Staff are named (team);
    figures that do not apply to calls are written as "not applicable for calls". Answered as
    an attachment named `<report>-<from>-<to>.csv`."""
    name, start, end, answer = await _report(request)
    names = await _staff_names(request) if name == "team" else {}
    text = stats_csv.render(name, answer, names, query.lang)
    filename = f"{name}-{_file_moment(start)}-{_file_moment(end)}.csv"
    return web.Response(
        body=text.encode("utf-8"),
        content_type="text/csv",
        charset="utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


def _file_moment(moment: datetime) -> str:
    """A period's end in a file name: its date at midnight, else date and time (no colons,
    which some systems refuse in file names)."""
    if moment.time() == time():
        return moment.date().isoformat()
    return moment.strftime("%Y-%m-%dT%H%M")


async def _staff_names(request: web.Request) -> dict[int, str]:
    """Every staff member's name by id (deactivated ones too: their past work is reported)."""
    async with request.app[DB].sessions() as session:
        rows = await session.execute(select(Staff.id, Staff.full_name))
        return {staff_id: full_name for staff_id, full_name in rows}


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
    return (await _report(request))[3]
