"""UIS Data API client (issue 11, UIS.md "Data API v2.0"): `get.employees` for the admin's
import of operators.

The Data API is JSON-RPC 2.0 like the Call API, with the same key and IP allow list, so the
request, the error mapping and what the admin reads about the key come from `callrouter.callapi`
(`rpc_exchange`, `KEY_ADMIN_MESSAGES`, `admin_message`); only what differs is here. Reading
changes nothing at UIS, so a timeout or an internal error is retried, and `limit_exceeded` (a
minute's points used up) waits with a growing backoff before asking again. Every failure leaves
as one CallApiError whose `message` is written for the admin.

Its URL is not stored with the integration (docs/decisions.md 40): `data_api_url` derives it
from the Call API URL (`callapi.X/v4.0` → `dataapi.X/v2.0`, any other host: the same origin's
`/v2.0`, which is where the fake UIS answers), and `serve --data-api-url` overrides it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import aiohttp

from callrouter.callapi import KEY_ADMIN_MESSAGES, CallApiError, admin_message, rpc_exchange

log = logging.getLogger(__name__)

DEFAULT_URL: Final = "https://dataapi.uiscom.ru/v2.0"
EMPLOYEES: Final = "get.employees"
PAGE: Final = 1000  # employees per request; UIS allows up to 10,000 (one limit point each)
MAX_PAGES: Final = 100  # 100,000 employees: more is a server that ignores `offset`

_URL_HINT = "The usual Data API URL is https://dataapi.uiscom.ru/v2.0."
# What the admin reads when the Data API refuses; the key's own problems as for the key check.
MESSAGES: Final[Mapping[str, str]] = {
    **KEY_ADMIN_MESSAGES,
    "forbidden": "UIS took the key, but its user may not use the Data API. In UIS, give the "
    "key's user access to the Data API (Administrator → User management), then try again.",
    "component_disabled": "The key works, but the Data API is not enabled on the UIS account. "
    "Enable it under Administrator → Account → Tariff and options, then try again.",
    "limit_exceeded": "The UIS Data API limit is used up for now (every request costs points), "
    "even after waiting. Try again in a few minutes; if it persists, the daily limit is reached "
    "(Tariff and options in UIS).",
    "method_not_found": f"The address answered, but not as the UIS Data API. {_URL_HINT} It is "
    "derived from the Call API URL in the integration settings (or set by --data-api-url).",
    "invalid_parameter_value": "UIS refused the request for its employees as malformed. This is "
    "a fault in this service: tell its developers.",
    "data_type_error": "UIS refused the request for its employees as malformed. This is a fault "
    "in this service: tell its developers.",
    "internal_error": "UIS had an internal error, even after asking again. Try again in a "
    "minute; if it keeps happening, contact UIS support.",
    "uis_timeout": "UIS did not answer in time, even after asking again. Try again in a minute; "
    f"if it keeps happening, check this server's network connection. {_URL_HINT}",
    "uis_unreachable": "This server could not connect to the UIS Data API. Check that it can "
    f"reach the internet and the Call API URL in the integration settings. {_URL_HINT}",
    "uis_bad_response": f"The address answered with something that is not the UIS Data API. "
    f"{_URL_HINT}",
}

# Reading changes nothing at UIS: whatever failed for a passing reason may be asked again.
_RETRYABLE: Final = frozenset({"internal_error", "uis_timeout", "uis_unreachable"})
_LIMIT: Final = "limit_exceeded"

Sleep = Callable[[float], Awaitable[None]]


def data_api_url(call_api_url: str | None) -> str:
    """The Data API URL beside a Call API URL: UIS's own hosts `callapi.X` answer at
    `https://dataapi.X/v2.0`; any other host (a proxy, the fake UIS) at its `/v2.0`."""
    if not call_api_url:
        return DEFAULT_URL
    parts = urlsplit(call_api_url)
    host = parts.netloc
    if host.startswith("callapi."):
        return urlunsplit((parts.scheme, "dataapi." + host[len("callapi.") :], "/v2.0", "", ""))
    return urlunsplit((parts.scheme, host, "/v2.0", "", ""))


@dataclass(frozen=True, slots=True)
class Employee:
    """One UIS employee as the import shows it: phones as UIS writes them (a dial suffix
    `74955140578...2345` kept), active ones first."""

    id: int
    full_name: str
    email: str | None
    groups: tuple[str, ...]
    phones: tuple[str, ...]
    extension: str | None


def parse_employee(item: Mapping[str, Any]) -> Employee | None:
    """An Employee from one `get.employees` item; None for an item without a usable id."""
    raw_id = item.get("id")
    if not isinstance(raw_id, int) or isinstance(raw_id, bool) or raw_id < 1:
        return None
    name = item.get("full_name")
    email = item.get("email")
    groups = tuple(
        g["group_name"]
        for g in _dicts(item.get("groups"))
        if isinstance(g.get("group_name"), str) and g["group_name"]
    )
    numbers = [
        p for p in _dicts(item.get("phone_numbers")) if isinstance(p.get("phone_number"), str)
    ]
    numbers.sort(key=lambda p: p.get("status") != "active")  # stable: UIS's order otherwise
    extension = item.get("extension")
    ext = extension.get("extension_phone_number") if isinstance(extension, dict) else None
    return Employee(
        id=raw_id,
        full_name=name.strip() if isinstance(name, str) else "",
        email=email.strip() or None if isinstance(email, str) else None,
        groups=groups,
        phones=tuple(p["phone_number"] for p in numbers),
        extension=str(ext) if isinstance(ext, (str, int)) and str(ext) else None,
    )


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


class DataApiClient:
    """The real UIS Data API over an injected aiohttp session (issue 11)."""

    asking = "employees"  # what the admin's messages say was asked for

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        access_token: str,
        *,
        timeout: float = 15.0,
        retries: int = 2,
        backoff: float = 0.5,
        limit_retries: int = 3,
        limit_backoff: float = 5.0,
        page: int = PAGE,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """`retries` for timeouts and internal errors (doubling from `backoff` seconds);
        `limit_retries` for `limit_exceeded` (doubling from `limit_backoff`: the limit is per
        minute). `sleep` is injected so tests see the waits without waiting."""
        self._session = session
        self._url = url
        self._access_token = access_token
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._retries = max(0, retries)
        self._backoff = backoff
        self._limit_retries = max(0, limit_retries)
        self._limit_backoff = limit_backoff
        self._page = max(1, page)
        self._sleep = sleep
        self._ids = itertools.count(1)

    async def employees(self) -> list[Employee]:
        """Every employee of the account, reading page after page (`limit`/`offset`) until a
        short page or `metadata.total_items`; raise CallApiError (message for the admin)."""
        found: list[Employee] = []
        offset = 0
        for _ in range(MAX_PAGES):
            params = {"access_token": self._access_token, "limit": self._page, "offset": offset}
            result = await self.call(EMPLOYEES, params)
            data = result.get("data") if isinstance(result, dict) else None
            if not isinstance(data, list):
                raise _for_admin(
                    CallApiError(
                        "uis_bad_response", "", detail=f"no list of employees: {result!r}"[:300]
                    )
                )
            found.extend(
                e for item in data if isinstance(item, dict) and (e := parse_employee(item))
            )
            offset += len(data)
            metadata = result.get("metadata")
            total = metadata.get("total_items") if isinstance(metadata, dict) else None
            if len(data) < self._page or (isinstance(total, int) and offset >= total):
                return found
        return found

    async def call(self, method: str, params: Mapping[str, Any]) -> Any:
        """One Data API method's `result`, retrying what may pass (see the module)."""
        attempt = limited = 0
        while True:
            try:
                _, _, result = await rpc_exchange(
                    self._session, self._url, method, params, next(self._ids), self._timeout
                )
                return result
            except CallApiError as exc:
                log.warning(
                    "UIS Data API %s failed (attempt %d): %s %s",
                    method,
                    attempt + limited + 1,
                    exc.code,
                    exc.detail,
                )
                if exc.code == _LIMIT and limited < self._limit_retries:
                    await self._sleep(self._limit_backoff * 2**limited)
                    limited += 1
                elif exc.code in _RETRYABLE and attempt < self._retries:
                    await self._sleep(self._backoff * 2**attempt)
                    attempt += 1
                else:
                    raise _for_admin(exc, self.asking) from exc


def _for_admin(exc: CallApiError, what: str = "employees") -> CallApiError:
    """The same failure, worded for the admin (who imports operators and can fix the key)."""
    messages = MESSAGES
    if what != "employees":  # the malformed-request texts name what was asked for
        messages = {
            **MESSAGES,
            **{
                k: v.replace("its employees", f"its {what}")
                for k, v in MESSAGES.items()
                if "its employees" in v
            },
        }
    message = admin_message(exc, messages, what=f"the request for {what}")
    return CallApiError(
        exc.code, message, rpc_code=exc.rpc_code, retryable=False, detail=exc.detail
    )


# -- reports for the reconciliation (issue 11 part 2) ------------------------------------------

CALLS_REPORT: Final = "get.calls_report"
LEGS_REPORT: Final = "get.call_legs_report"
REPORT_PAGE: Final = 10000  # UIS's largest `limit`
MAX_OFFSET: Final = 100000  # UIS's largest `offset`: more rows in one period → split it
MAX_SPAN: Final = timedelta(days=90)  # UIS refuses periods over three months
CALL_FIELDS: Final = (
    "id",
    "start_time",
    "finish_time",
    "direction",
    "source",
    "is_lost",
    "contact_phone_number",
    "virtual_phone_number",
    "wait_duration",
    "talk_duration",
    "total_duration",
    "call_records",
    "employees",
    "last_answered_employee_id",
    "call_api_external_id",
)
LEG_FIELDS: Final = (
    "id",
    "call_session_id",
    "start_time",
    "connect_time",
    "duration",
    "direction",
    "is_operator",
    "is_failed",
    "is_talked",
    "employee_id",
    "employee_full_name",
    "called_phone_number",
    "call_records",
)
_REPORT_TIME: Final = "%Y-%m-%d %H:%M:%S"  # UIS: the account's local time, no zone


def report_time(moment: datetime, tz: ZoneInfo) -> str:
    """A `date_from`/`date_till` value: `YYYY-MM-DD hh:mm:ss` in the account's zone."""
    return moment.astimezone(tz).strftime(_REPORT_TIME)


def periods(
    start: datetime, end: datetime, span: timedelta = MAX_SPAN
) -> list[tuple[datetime, datetime]]:
    """[start, end) cut into pieces UIS accepts (at most `span` each), in order."""
    cuts: list[tuple[datetime, datetime]] = []
    while start < end:
        cuts.append((start, min(end, start + span)))
        start = cuts[-1][1]
    return cuts


class DataApiReports(DataApiClient):
    """The Data API's call and leg reports for a period (`get.calls_report`,
    `get.call_legs_report`): every page of every piece of the period, as UIS's items."""

    asking = "calls and legs"

    def __init__(self, *args: Any, page: int = REPORT_PAGE, **kwargs: Any) -> None:
        super().__init__(*args, page=page, **kwargs)

    async def calls_report(
        self, start: datetime, end: datetime, tz: ZoneInfo
    ) -> list[dict[str, Any]]:
        """Every call that started in [start, end), as `get.calls_report` items."""
        return await self._report(CALLS_REPORT, CALL_FIELDS, start, end, tz)

    async def call_legs_report(
        self, start: datetime, end: datetime, tz: ZoneInfo
    ) -> list[dict[str, Any]]:
        """Every leg of the calls that started in [start, end), as `get.call_legs_report`
        items."""
        return await self._report(LEGS_REPORT, LEG_FIELDS, start, end, tz)

    async def _report(
        self,
        method: str,
        fields: tuple[str, ...],
        start: datetime,
        end: datetime,
        tz: ZoneInfo,
    ) -> list[dict[str, Any]]:
        found: dict[object, dict[str, Any]] = {}  # by id: a row on two pages counts once
        pieces = periods(start, end)
        while pieces:
            piece_start, piece_end = pieces.pop(0)
            rows = await self._pages(method, fields, piece_start, piece_end, tz)
            if rows is None:  # more than `offset` reaches: halve the piece and read both halves
                middle = piece_start + (piece_end - piece_start) / 2
                if middle <= piece_start:
                    raise self._refused(method, "more rows in one second than UIS pages through")
                pieces[:0] = [(piece_start, middle), (middle, piece_end)]
                continue
            for row in rows:  # a row without a numeric id is kept: the parser names it
                found[row["id"] if isinstance(row.get("id"), int) else object()] = row
        return list(found.values())

    async def _pages(
        self,
        method: str,
        fields: tuple[str, ...],
        start: datetime,
        end: datetime,
        tz: ZoneInfo,
    ) -> list[dict[str, Any]] | None:
        """All rows of one piece; None when they do not fit under UIS's largest offset.
        `date_till` is inclusive at UIS, so the last second of the piece is asked for."""
        rows: list[dict[str, Any]] = []
        offset = 0
        page = min(self._page, REPORT_PAGE)
        till = end - timedelta(seconds=1)
        while True:
            params = {
                "access_token": self._access_token,
                "date_from": report_time(start, tz),
                "date_till": report_time(max(start, till), tz),
                "fields": list(fields),
                "limit": page,
                "offset": offset,
            }
            result = await self.call(method, params)
            data = result.get("data") if isinstance(result, dict) else None
            if not isinstance(data, list):
                raise self._refused(method, f"no list of rows: {result!r}"[:300])
            rows += [r for r in data if isinstance(r, dict)]
            offset += len(data)
            metadata = result.get("metadata")
            total = metadata.get("total_items") if isinstance(metadata, dict) else None
            if len(data) < page or (isinstance(total, int) and offset >= total):
                return rows
            if offset > MAX_OFFSET:  # UIS refuses a larger offset: the piece must be cut
                return None

    @staticmethod
    def _refused(method: str, detail: str) -> CallApiError:
        error = CallApiError("uis_bad_response", "", detail=f"{method}: {detail}")
        return _for_admin(error, DataApiReports.asking)
