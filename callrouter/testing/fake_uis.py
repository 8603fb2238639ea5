"""A fake UIS Call API and Data API: a real aiohttp JSON-RPC server on a local port (R18, UIS.md
"Call API", "Data API v2.0").

It validates `start.employee_call` and `list.calls` (the admin's key check) at `/v4.0`, and the
Data API's `get.employees` (the import of operators, paged by `limit`/`offset`, answering the
configurable `employees`) at `/v2.0`, the way UIS documents them (JSON-RPC envelope, method, `access_token`, required and typed params, unknown
params, the account's IP allow list) and answers with UIS's success and error shapes. Tests
script the next answers with `fail_next`, `delay_next` and `garble_next`, and read what arrived
in `requests` (bodies) and `headers`.

    async with FakeUis(access_token="k") as fake:
        client = CallApiClient(session, fake.url, "k")

Standalone, for manual runs: `python -m callrouter.testing.fake_uis --port 8765 --access-token K
--demo-employees` (or `--employees FILE.json`, a list in `get.employees`' shape).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import threading
from collections import deque
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self, TypeAlias
from zoneinfo import ZoneInfo

import orjson
from aiohttp import web

from callrouter.domain.notifications import Kind, Notification
from callrouter.domain.uis import parse_notification

log = logging.getLogger(__name__)

MSK: Final = ZoneInfo("Europe/Moscow")
PATH: Final = "/v4.0"
DATA_PATH: Final = "/v2.0"  # the Data API, on the same server (callrouter.dataapi.data_api_url)
MAX_DATA_LIMIT: Final = 10000
MAX_DATA_OFFSET: Final = 100000
FIRST_CALL_SESSION_ID: Final = 237859081
DAY_LIMIT: Final = 10000
MINUTE_LIMIT: Final = 100

# Codes and English texts from the UIS Call API error lists (common and start.employee_call).
_CODES: Final = {
    "parse_error": -32700,
    "invalid_request": -32600,
    "method_not_found": -32601,
    "internal_error": -32603,
    "access_token_invalid": -32001,
    "access_token_expired": -32001,
    "access_token_blocked": -32001,
    "auth_error": -32001,
    "contact_in_blacklist": -32002,
    "ip_not_whitelisted": -32003,
    "forbidden": -32003,
    "virtual_phone_number_not_found": -32007,
    "component_disabled": -32008,
    "account_inactive": -32009,
    "limit_exceeded": -32029,
    "notifications_not_supported": -32099,
    "batch_opreations_not_supported": -32099,  # sic: UIS's spelling
}
_TEXTS: Final = {
    "parse_error": "Invalid JSON was received by the server.",
    "invalid_request": "Invalid Request The JSON sent is not a valid Request object",
    "method_not_found": "The method does not exist / is not available",
    "internal_error": "Internal error, contact the support service",
    "access_token_invalid": "Access token is invalid",
    "access_token_expired": "Access token has been expired",
    "access_token_blocked": "Access token has been blocked",
    "ip_not_whitelisted": "Your IP 127.0.0.1 is not whitelisted",
    "virtual_phone_number_not_found": "Virtual phone number not found. "
    "It is not your virtual phone number.",
    "limit_exceeded": "Limit per minute has been exceeded. Value of current limit per minute "
    "is 100",
    "employee_not_found": "Employee not found. It is not your employee.",
    "no_active_phone_number": "The phone number does not exist or inactive",
    "data_type_error": "Data supplied is of wrong type",
    "required_parameter_missed": "The required parameter has been missed",
    "invalid_parameter_value": "Invalid parameter value",
    "unexpected_parameters": "Unexpected method parameter(s)",
}

_METHOD: Final = "start.employee_call"
_LIST_METHOD: Final = "list.calls"
_EMPLOYEES: Final = "get.employees"
_EMPLOYEES_TYPES: Final[dict[str, type]] = {
    "access_token": str,
    "limit": int,
    "offset": int,
    "filter": dict,
    "fields": list,
    "sort": list,
}
_CALLS_REPORT: Final = "get.calls_report"
_LEGS_REPORT: Final = "get.call_legs_report"
_REPORTS: Final = (_CALLS_REPORT, _LEGS_REPORT)
_DATA_METHODS: Final = (_EMPLOYEES, *_REPORTS)
_REPORT_TYPES: Final[dict[str, type]] = {
    "access_token": str,
    "user_id": int,
    "date_from": str,
    "date_till": str,
    "limit": int,
    "offset": int,
    "filter": dict,
    "fields": list,
    "sort": list,
}
_REPORT_TIME: Final = "%Y-%m-%d %H:%M:%S"
_MAX_REPORT_DAYS: Final = 92  # "at most three months"
_LIST_TYPES: Final[dict[str, type]] = {
    "access_token": str,
    "direction": str,
    "virtual_phone_number": str,
}
_REQUIRED: Final = ("access_token", "first_call", "virtual_phone_number", "contact", "employee")
_TYPES: Final[dict[str, type]] = {
    "access_token": str,
    "first_call": str,
    "switch_at_once": bool,
    "early_switching": bool,
    "media_file_id": int,
    "virtual_phone_number": str,
    "show_virtual_phone_number": bool,
    "contact": str,
    "external_id": str,
    "dtmf_string": str,
    "direction": str,
    "employee": dict,
    "contact_message": dict,
    "employee_message": dict,
}
_CHOICES: Final = {"first_call": ("employee", "contact"), "direction": ("in", "out")}


@dataclass(frozen=True)
class _Fail:
    mnemonic: str | None
    rpc_code: int


@dataclass(frozen=True)
class _Delay:
    seconds: float


@dataclass(frozen=True)
class _Garble:
    pass


_Script: TypeAlias = _Fail | _Delay | _Garble


@dataclass(frozen=True)
class _Refusal:
    mnemonic: str
    field: str | None = None
    value: Any = None
    text: str | None = None  # UIS's text when it carries a value (the refused IP)


def _paging_refusal(params: dict[str, Any]) -> _Refusal | None:
    """UIS's bounds on a Data API page: `limit` 1…10,000, `offset` 0…100,000."""
    limit = params.get("limit", MAX_DATA_LIMIT)
    if not 1 <= limit <= MAX_DATA_LIMIT:
        return _Refusal("invalid_parameter_value", "limit", limit)
    offset = params.get("offset", 0)
    if not 0 <= offset <= MAX_DATA_OFFSET:
        return _Refusal("invalid_parameter_value", "offset", offset)
    return None


def _has_type(value: Any, expected: type) -> bool:
    # bool is an int in Python but not in JSON: `"media_file_id": true` is a type error.
    if expected is int and isinstance(value, bool):
        return False
    return isinstance(value, expected)


class FakeUis:
    """A local UIS Call API answering `start.employee_call` like UIS does (R18)."""

    def __init__(
        self,
        access_token: str = "fake-uis-key",
        *,
        employee_ids: Collection[int] | None = None,
        virtual_phone_numbers: Collection[str] | None = None,
        allowed_ips: Collection[str] | None = None,
    ) -> None:
        """`employee_ids`/`virtual_phone_numbers`, when given, are the only ones UIS knows;
        `allowed_ips`, when given, is the account's IP allow list (others get
        `ip_not_whitelisted`, after the key is checked: UIS needs the key to know the account).
        `active_calls` is what `list.calls` answers (UIS's shape; empty by default)."""
        self.access_token = access_token
        self.employee_ids = employee_ids
        self.virtual_phone_numbers = virtual_phone_numbers
        self.allowed_ips = allowed_ips
        self.active_calls: list[dict[str, Any]] = []
        # What `get.employees` answers, in UIS's shape (`employee(...)` builds one).
        self.employees: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        # (call_session_id, params) of every call the fake "started", for driving notifications.
        self.calls: list[tuple[int, dict[str, Any]]] = []
        # What `get.calls_report` and `get.call_legs_report` answer from (UIS's row shapes,
        # times as `YYYY-MM-DD hh:mm:ss`); `reports_from_stream` makes them from notifications.
        self.call_rows: list[dict[str, Any]] = []
        self.leg_rows: list[dict[str, Any]] = []
        self._script: deque[_Script] = deque()
        self._next_id = FIRST_CALL_SESSION_ID
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._closing = asyncio.Event()

    @property
    def url(self) -> str:
        """The Call API URL to give the client; only while started."""
        if self._url is None:
            raise RuntimeError("FakeUis is not started")
        return self._url

    @property
    def data_url(self) -> str:
        """The Data API URL (same server, `/v2.0`); only while started."""
        return self.url.removesuffix(PATH) + DATA_PATH

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on host:port (0 picks a free port); return the Call API URL."""
        if self._runner is not None:
            raise RuntimeError("FakeUis is already started")
        app = web.Application()
        app.router.add_post(PATH, self._handle)
        app.router.add_post(DATA_PATH, self._handle)
        # handler_cancellation: a client that timed out leaves, like it would at UIS; the short
        # shutdown_timeout keeps stop() from waiting a minute on a delayed answer.
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        self._runner = runner
        self._closing = asyncio.Event()
        bound_host, bound_port = runner.addresses[0][:2]
        self._url = f"http://{bound_host}:{bound_port}{PATH}"
        return self._url

    async def stop(self) -> None:
        """Stop listening; delayed answers in flight are cut short. Idempotent."""
        if self._runner is None:
            return
        self._closing.set()
        runner, self._runner, self._url = self._runner, None, None
        await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def fail_next(self, mnemonic: str | None, rpc_code: int | None = None) -> None:
        """Answer the next request with this UIS error; `mnemonic=None` leaves it out of data.

        `rpc_code` defaults to the code UIS uses for the mnemonic (-32602 for parameter errors).
        """
        if rpc_code is None:
            if mnemonic is None:
                raise ValueError("fail_next needs a mnemonic or an rpc_code")
            rpc_code = _CODES.get(mnemonic, -32602)
        self._script.append(_Fail(mnemonic, rpc_code))

    def delay_next(self, seconds: float) -> None:
        """Hold the next answer back this long (then answer normally), to make clients time out."""
        self._script.append(_Delay(seconds))

    def garble_next(self) -> None:
        """Answer the next request with a truncated, non-JSON body."""
        self._script.append(_Garble())

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.headers.append(dict(request.headers))
        try:
            body: Any = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return self._refuse(None, _Refusal("parse_error"))
        if isinstance(body, dict):
            self.requests.append(body)
        request_id = body.get("id") if isinstance(body, dict) else None
        log.info("fake UIS got %s", _masked(body))
        script = self._script.popleft() if self._script else None
        if isinstance(script, _Delay):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), script.seconds)
        elif isinstance(script, _Garble):
            return web.Response(
                body=b'{"jsonrpc": "2.0", "result": {"da', content_type="application/json"
            )
        elif isinstance(script, _Fail):
            return self._error(request_id, script.rpc_code, script.mnemonic, None, None)
        data_api = request.path == DATA_PATH
        refusal = self._validate(body, request.remote, data_api)
        if refusal is not None:
            return self._refuse(request_id, refusal)
        if data_api and body["method"] in _REPORTS:
            return self._report(request_id, body["method"], body["params"])
        if data_api:
            return self._get_employees(request_id, body["params"])
        if body["method"] == _LIST_METHOD:
            return self._list_calls(request_id)
        return self._start_call(request_id, body["params"])

    def _validate(self, body: Any, remote: str | None, data_api: bool) -> _Refusal | None:
        """What UIS would refuse in this request from `remote`, or None."""
        if isinstance(body, list):
            return _Refusal("batch_opreations_not_supported")
        if not isinstance(body, dict) or body.get("jsonrpc") != "2.0":
            return _Refusal("invalid_request")
        if "id" not in body:
            return _Refusal("notifications_not_supported")
        method = body.get("method")
        if method not in (_DATA_METHODS if data_api else (_METHOD, _LIST_METHOD)):
            return _Refusal("method_not_found", "method", method)
        params = body.get("params")
        if not isinstance(params, dict):
            return _Refusal("data_type_error", "params", params)
        if params.get("access_token") != self.access_token:
            return _Refusal("access_token_invalid")
        if self.allowed_ips is not None and remote not in self.allowed_ips:
            return _Refusal("ip_not_whitelisted", text=f"Your IP {remote} is not whitelisted")
        if method == _EMPLOYEES:
            return self._validate_employees_params(params)
        if method in _REPORTS:
            return self._validate_report_params(params)
        if method == _LIST_METHOD:
            return self._validate_list_params(params)
        return self._validate_params(params)

    @staticmethod
    def _validate_employees_params(params: dict[str, Any]) -> _Refusal | None:
        for name, value in params.items():
            if name not in _EMPLOYEES_TYPES:
                return _Refusal("unexpected_parameters", name, value)
            if not _has_type(value, _EMPLOYEES_TYPES[name]):
                return _Refusal("data_type_error", name, value)
        return _paging_refusal(params)

    def _get_employees(self, request_id: Any, params: dict[str, Any]) -> web.Response:
        offset = params.get("offset", 0)
        chunk = self.employees[offset : offset + params.get("limit", MAX_DATA_LIMIT)]
        metadata = {
            "api_version": "2.0",
            "total_items": len(self.employees),
            "limits": self._limits(),
        }
        return _json(
            {"jsonrpc": "2.0", "id": request_id, "result": {"data": chunk, "metadata": metadata}}
        )

    @staticmethod
    def _validate_report_params(params: dict[str, Any]) -> _Refusal | None:
        """UIS's rules for the reports: both dates, at most three months apart, the paging
        bounds, known fields only."""
        for name, value in params.items():
            if name not in _REPORT_TYPES:
                return _Refusal("unexpected_parameters", name, value)
            if not _has_type(value, _REPORT_TYPES[name]):
                return _Refusal("data_type_error", name, value)
        for name in ("date_from", "date_till"):
            if name not in params:
                return _Refusal("required_parameter_missed", name)
        try:
            start = datetime.strptime(params["date_from"], _REPORT_TIME)
            till = datetime.strptime(params["date_till"], _REPORT_TIME)
        except ValueError:
            return _Refusal("invalid_parameter_value", "date_from", params["date_from"])
        if till < start or till - start > timedelta(days=_MAX_REPORT_DAYS):
            return _Refusal("invalid_parameter_value", "date_till", params["date_till"])
        return _paging_refusal(params)

    def _report(self, request_id: Any, method: str, params: dict[str, Any]) -> web.Response:
        """The rows whose `start_time` is within [date_from, date_till] (UIS: inclusive, to
        the second), a page of them, only the `fields` asked for."""
        start, till = params["date_from"], params["date_till"]
        if method == _CALLS_REPORT:
            rows = [r for r in self.call_rows if start <= r["start_time"] <= till]
        else:
            # A leg belongs to the period of its call's start, as UIS's report selects it.
            calls = {r["id"]: r["start_time"] for r in self.call_rows}
            rows = [
                r
                for r in self.leg_rows
                if start <= calls.get(r["call_session_id"], r["start_time"]) <= till
            ]
        rows.sort(key=lambda r: (r["start_time"], r["id"]))
        offset = params.get("offset", 0)
        page = rows[offset : offset + params.get("limit", MAX_DATA_LIMIT)]
        fields = params.get("fields")
        if fields:
            page = [{k: v for k, v in r.items() if k in fields} for r in page]
        metadata = {"api_version": "2.0", "total_items": len(rows), "limits": self._limits()}
        return _json(
            {"jsonrpc": "2.0", "id": request_id, "result": {"data": page, "metadata": metadata}}
        )

    def _validate_list_params(self, params: dict[str, Any]) -> _Refusal | None:
        for name, value in params.items():
            if name not in _LIST_TYPES:
                return _Refusal("unexpected_parameters", name, value)
            if not _has_type(value, _LIST_TYPES[name]):
                return _Refusal("data_type_error", name, value)
        if params.get("direction", "in") not in _CHOICES["direction"]:
            return _Refusal("invalid_parameter_value", "direction", params["direction"])
        vpn = params.get("virtual_phone_number")
        if vpn is None:
            return None
        # UIS documents it for list.calls: "the number must start with 7".
        if not vpn.isdigit() or not vpn.startswith("7"):
            return _Refusal("invalid_parameter_value", "virtual_phone_number", vpn)
        # Assumed, as start.employee_call does: a number that is not the account's.
        if self.virtual_phone_numbers is not None and vpn not in self.virtual_phone_numbers:
            return _Refusal("virtual_phone_number_not_found", "virtual_phone_number", vpn)
        return None

    def _validate_params(self, params: dict[str, Any]) -> _Refusal | None:
        for name, value in params.items():
            if name not in _TYPES:
                return _Refusal("unexpected_parameters", name, value)
        for name in _REQUIRED:
            if name not in params:
                return _Refusal("required_parameter_missed", name)
        for name, value in params.items():
            if not _has_type(value, _TYPES[name]):
                return _Refusal("data_type_error", name, value)
            if name in _CHOICES and value not in _CHOICES[name]:
                return _Refusal("invalid_parameter_value", name, value)
        employee = params["employee"]
        if "id" not in employee:
            return _Refusal("required_parameter_missed", "employee.id")
        if extras := set(employee) - {"id", "phone_number"}:
            extra = min(extras)
            return _Refusal("unexpected_parameters", f"employee.{extra}", employee[extra])
        if not _has_type(employee["id"], int):
            return _Refusal("data_type_error", "employee.id", employee["id"])
        if not isinstance(employee.get("phone_number", ""), str):
            return _Refusal("data_type_error", "employee.phone_number", employee["phone_number"])
        vpn = params["virtual_phone_number"]
        if self.virtual_phone_numbers is not None and vpn not in self.virtual_phone_numbers:
            return _Refusal("virtual_phone_number_not_found", "virtual_phone_number", vpn)
        if self.employee_ids is not None and employee["id"] not in self.employee_ids:
            return _Refusal("employee_not_found", "employee.id", employee["id"])
        return None

    def _start_call(self, request_id: Any, params: dict[str, Any]) -> web.Response:
        session_id = self._next_id
        self._next_id += 1
        self.calls.append((session_id, params))
        answer = {
            "jsonrpc": "2.0",
            "id": request_id,
            "result": {
                "data": {"call_session_id": session_id},
                "metadata": {"limits": self._limits()},
            },
        }
        return _json(answer)

    def _list_calls(self, request_id: Any) -> web.Response:
        result = {"data": self.active_calls, "metadata": {"limits": self._limits()}}
        return _json({"jsonrpc": "2.0", "id": request_id, "result": result})

    def _limits(self) -> dict[str, int]:
        # UIS only charges points for successful requests; only started calls count down here.
        used = len(self.calls)
        return {
            "day_limit": DAY_LIMIT,
            "day_remaining": max(0, DAY_LIMIT - used),
            "minute_limit": MINUTE_LIMIT,
            "minute_remaining": max(0, MINUTE_LIMIT - used),
        }

    def _refuse(self, request_id: Any, refusal: _Refusal) -> web.Response:
        code = _CODES.get(refusal.mnemonic, -32602)
        return self._error(
            request_id, code, refusal.mnemonic, refusal.field, refusal.value, refusal.text
        )

    @staticmethod
    def _error(
        request_id: Any,
        rpc_code: int,
        mnemonic: str | None,
        field: str | None,
        value: Any,
        text: str | None = None,
    ) -> web.Response:
        data: dict[str, Any] = {"field": field, "value": value, "params": {}}
        if mnemonic is not None:
            data["mnemonic"] = mnemonic
        text = text or _TEXTS.get(mnemonic or "", "Error")
        error = {"code": rpc_code, "message": text, "data": data}
        # UIS answers JSON-RPC errors with HTTP 200, like successes.
        return _json({"jsonrpc": "2.0", "id": request_id, "error": error})


class FakeUisThread:
    """A `FakeUis` serving from an event loop of its own in a daemon thread, for synchronous
    tests (browser and end-to-end ones)."""

    def __init__(self, access_token: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.fake = FakeUis(access_token)
        self.url: str = asyncio.run_coroutine_threadsafe(self.fake.start(), self.loop).result(10)

    def apply(self, change: Callable[[FakeUis], object]) -> None:
        """Run `change(fake)` on the fake's own loop (e.g. `lambda f: f.fail_next(...)`)."""

        async def run() -> None:
            change(self.fake)

        asyncio.run_coroutine_threadsafe(run(), self.loop).result(10)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.fake.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def employee(
    employee_id: int,
    full_name: str,
    email: str | None = None,
    *,
    groups: Sequence[str] = (),
    phones: Sequence[str] = (),
    extension: str | None = None,
) -> dict[str, Any]:
    """One `get.employees` item in UIS's shape (UIS.md); the phones are active."""
    return {
        "id": employee_id,
        "full_name": full_name,
        "email": email,
        "status": "available",
        "groups": [
            {"group_id": 100 + i, "group_name": name} for i, name in enumerate(groups, start=1)
        ],
        "phone_numbers": [{"phone_number": p, "status": "active"} for p in phones],
        "extension": {"extension_phone_number": extension} if extension else None,
    }


def reports_from_stream(
    bodies: Iterable[bytes | dict[str, Any]], tz: ZoneInfo = MSK
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """What UIS's `get.calls_report` and `get.call_legs_report` would say about the calls of
    a COMPLETE stream of notification bodies (`uis_bodies`, `bench/generate_traffic.py`): tests
    drop bodies from the stream and reconcile against this truth.

    Times are whole seconds, as the Data API reports them. A call without a call end is still
    going on (no `finish_time`). The caller's own leg (in `leg_ids`, never dialled out) is a
    leg of direction "in"; dialled legs are "out". Recording ids are the links' last part.
    """
    notes: dict[int, list[tuple[Notification, dict[str, Any]]]] = {}
    for raw in bodies:
        doc = orjson.loads(raw) if isinstance(raw, bytes) else raw
        n = parse_notification(doc, tz, datetime.now(tz))
        notes.setdefault(n.call_session_id, []).append((n, doc))
    calls: list[dict[str, Any]] = []
    legs: list[dict[str, Any]] = []
    for call_id, items in notes.items():
        items.sort(key=lambda item: item[0].time)
        ns = [n for n, _ in items]
        end = next((n for n in ns if n.kind is Kind.CALL_END), None)
        first = ns[0]
        start = end.time - timedelta(seconds=end.total_seconds or 0) if end else first.time
        start = min(start, first.time)
        employees: dict[int, str | None] = {}
        for n in sorted(ns, key=lambda n: (n.kind is not Kind.OUTGOING_CALL, n.time)):
            if n.employee_id is not None and n.kind is not Kind.RECORDING:
                employees.setdefault(n.employee_id, n.employee_name)
        answers = [n for n in ns if n.kind is Kind.ANSWER]
        records = [n for n in ns if n.kind is Kind.RECORDING]
        leg_records: dict[int | None, list[str]] = {}
        for r in records:
            for url in r.record_urls:
                leg_records.setdefault(r.leg_id, []).append(url.rsplit("/", 1)[-1])
        calls.append(
            {
                "id": call_id,
                "start_time": _second(start),
                "finish_time": _second(end.time) if end else None,
                "direction": first.direction or "in",
                "source": first.call_source,
                "is_lost": bool(end.is_lost) if end else False,
                "contact_phone_number": first.phone,
                "virtual_phone_number": first.virtual_phone_number,
                "wait_duration": (end.wait_seconds or 0) if end else 0,
                "talk_duration": (end.talk_seconds or 0) if end else 0,
                "total_duration": (end.total_seconds or 0) if end else 0,
                "call_records": [rid for ids in leg_records.values() for rid in ids],
                "employees": [
                    {
                        "employee_id": e,
                        "employee_full_name": name,
                        "is_answered": any(a.employee_id == e for a in answers),
                    }
                    for e, name in employees.items()
                ],
                "last_answered_employee_id": answers[-1].employee_id if answers else None,
                "call_api_external_id": first.external_id,
            }
        )
        dialled: dict[int, list[Notification]] = {}
        for n in ns:
            if n.kind in (Kind.LEG_START, Kind.ANSWER, Kind.LEG_END) and n.leg_id is not None:
                dialled.setdefault(n.leg_id, []).append(n)
        for leg_id, leg_notes in dialled.items():
            began = min(n.time for n in leg_notes)
            ended = max(n.time for n in leg_notes)
            connect = next((n.time for n in leg_notes if n.kind is Kind.ANSWER), None)
            leg_end = next((n for n in leg_notes if n.kind is Kind.LEG_END), None)
            named = next((n for n in leg_notes if n.employee_id is not None), leg_notes[0])
            legs.append(
                {
                    "id": leg_id,
                    "call_session_id": call_id,
                    "start_time": _second(began),
                    "connect_time": _second(connect) if connect else None,
                    "duration": int((_floor(ended) - _floor(began)).total_seconds()),
                    "direction": "out",
                    "is_operator": bool(leg_end.is_operator) if leg_end else False,
                    "is_failed": False,
                    "is_talked": connect is not None,
                    "employee_id": named.employee_id,
                    "employee_full_name": named.employee_name,
                    "called_phone_number": None,
                    "call_records": leg_records.get(leg_id, []),
                }
            )
        own: set[int] = set()
        for _, doc in items:
            ids = doc.get("leg_ids")
            if isinstance(ids, list):
                own.update(i for i in ids if isinstance(i, int))
        for leg_id in sorted(own - set(dialled)):
            legs.append(
                {
                    "id": leg_id,
                    "call_session_id": call_id,
                    "start_time": _second(start),
                    "connect_time": _second(start),
                    "duration": (end.total_seconds or 0) if end else 0,
                    "direction": "in",
                    "is_operator": False,
                    "is_failed": False,
                    "is_talked": True,
                    "employee_id": None,
                    "employee_full_name": None,
                    "called_phone_number": None,
                    "call_records": [],
                }
            )
    return calls, legs


def _floor(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def _second(moment: datetime) -> str:
    return moment.strftime(_REPORT_TIME)


def demo_employees() -> list[dict[str, Any]]:
    """A few employees to try the import with (`--demo-employees`)."""
    return [
        employee(
            1001,
            "Анна Смирнова",
            "anna@example.test",
            groups=["Поддержка"],
            phones=["79161234567"],
            extension="101",
        ),
        employee(
            1002,
            "Иван Петров",
            "IVAN@example.test",
            groups=["Поддержка", "Продажи"],
            phones=["79031505050", "74955140578...2345"],
            extension="102",
        ),
        employee(1003, "Мария Кузнецова", None, groups=["Продажи"], phones=["79261112233"]),
    ]


def _json(answer: dict[str, Any]) -> web.Response:
    return web.Response(body=orjson.dumps(answer), content_type="application/json")


def _masked(body: Any) -> Any:
    """The body for logs, without the API key."""
    if isinstance(body, dict) and isinstance(body.get("params"), dict):
        return {**body, "params": {**body["params"], "access_token": "***"}}
    return body


def _bodies(path: Path) -> list[bytes]:
    """Notification bodies from a file: a JSON list of them, or one JSON body per line."""
    raw = path.read_bytes()
    if raw.lstrip().startswith(b"["):
        return [orjson.dumps(doc) for doc in orjson.loads(raw)]
    return [line for line in raw.splitlines() if line.strip()]


async def _serve(
    host: str,
    port: int,
    access_token: str,
    employees: list[dict[str, Any]],
    reports: tuple[list[dict[str, Any]], list[dict[str, Any]]] = ([], []),
) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    # SIGTERM too, so scripts and process managers stop it cleanly, not only Ctrl-C.
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    fake = FakeUis(access_token)
    fake.employees = employees
    fake.call_rows, fake.leg_rows = reports
    url = await fake.start(host, port)
    print(f"fake UIS Call API at {url}, Data API at {fake.data_url}", flush=True)
    try:
        await stopping.wait()
    finally:
        await fake.stop()


def main(argv: Sequence[str] | None = None) -> None:
    """Run the fake standalone until interrupted."""
    parser = argparse.ArgumentParser(
        description="Fake UIS Call API (start.employee_call, list.calls) and Data API "
        "(get.employees, get.calls_report, get.call_legs_report)."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--access-token", required=True, help="the key clients must send")
    parser.add_argument(
        "--employees", type=Path, help="a JSON file: the list get.employees answers (UIS's shape)"
    )
    parser.add_argument(
        "--demo-employees", action="store_true", help="answer get.employees with three samples"
    )
    parser.add_argument(
        "--calls", type=Path, help="a JSON file: the rows get.calls_report answers (UIS's shape)"
    )
    parser.add_argument(
        "--legs", type=Path, help="a JSON file: the rows get.call_legs_report answers"
    )
    parser.add_argument(
        "--reports-from-stream",
        type=Path,
        metavar="FILE",
        help="notification bodies (a JSON list, or one per line) of a COMPLETE stream: both "
        "reports answer what UIS would say of those calls",
    )
    parser.add_argument(
        "--timezone", default="Europe/Moscow", help="the account's zone, for --reports-from-stream"
    )
    args = parser.parse_args(argv)
    reports: tuple[list[dict[str, Any]], list[dict[str, Any]]] = ([], [])
    if args.reports_from_stream is not None:
        reports = reports_from_stream(_bodies(args.reports_from_stream), ZoneInfo(args.timezone))
    if args.calls is not None:
        reports = (orjson.loads(args.calls.read_bytes()), reports[1])
    if args.legs is not None:
        reports = (reports[0], orjson.loads(args.legs.read_bytes()))
    employees = demo_employees() if args.demo_employees else []
    if args.employees is not None:
        employees = orjson.loads(args.employees.read_bytes())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    asyncio.run(_serve(args.host, args.port, args.access_token, employees, reports))


if __name__ == "__main__":
    main()
