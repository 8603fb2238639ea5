"""`GET /api/v1/stats/<report>?from=&to=` (R25–R30): periods in the account's time zone."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from aiohttp import web

from callrouter.http.auth import require_any
from callrouter.http.errors import ApiError, json_response, not_found, unprocessable
from callrouter.http.keys import ACCOUNT, CLUSTER
from callrouter.stats.figures import REPORTS

routes = web.RouteTableDef()


def parse_moment(text: str, tz: object, name: str) -> datetime:
    """A date (its midnight) or a datetime, read in the account's zone unless it has an offset."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), tz)  # type: ignore[arg-type]
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise unprocessable(
            "invalid_period", f"`{name}` must be a date (2026-11-01) or an ISO datetime."
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)  # type: ignore[arg-type]


@routes.get("/api/v1/stats/{report}")
async def report(request: web.Request) -> web.Response:
    await require_any(request)
    name = request.match_info["report"]
    if name not in REPORTS:
        raise not_found("unknown_report", f"No report {name!r}; reports: {', '.join(REPORTS)}.")
    tz = request.app[ACCOUNT].value.tz
    today = datetime.combine(datetime.now(tz).date(), time(), tz)
    start = parse_moment(request.query["from"], tz, "from") if "from" in request.query else today
    end = (
        parse_moment(request.query["to"], tz, "to")
        if "to" in request.query
        else start + timedelta(days=1)
    )
    if end <= start:
        raise unprocessable(
            "invalid_period", "`to` must be after `from` (the period is [from, to))."
        )
    answer = await request.app[CLUSTER].report(name, start, end)
    if answer is None:
        raise ApiError(
            503,
            "statistics_disabled",
            "This service runs without statistics (--no-stats).",
            headers={"Retry-After": "3600"},
        )
    return json_response(answer)
