"""UIS Call API client: `start.employee_call` over JSON-RPC 2.0 (R18, UIS.md "Call API"), and
`list.calls` for the admin's check of the API key (`check_access`, which starts no call).

The click-to-call of a case (R18) asks UIS to ring the staff member's phone first and then the
case's user. `CallApiClient` is the real implementation over an injected `aiohttp.ClientSession`;
`callrouter.testing.fake_uis.FakeUis` is a real HTTP server that answers like UIS, for tests.
The app depends on the `CallStarter` protocol only, so either can be injected.

Every failure leaves as one `CallApiError` whose `code` is the UIS mnemonic (or `uis_timeout`,
`uis_unreachable`, `uis_bad_response` for transport problems, where UIS refused nothing, and
`invalid_contact` for a number with no digits, which is never sent) and whose `message` tells
staff what happened and what to do; the HTTP layer answers 502 with that code (API.md,
`POST /api/v1/cases/{id}/calls`).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol

import aiohttp
import orjson

from callrouter.domain.phones import dial_digits

log = logging.getLogger(__name__)

DEFAULT_URL: Final = "https://callapi.uiscom.ru/v4.0"
METHOD: Final = "start.employee_call"
CHECK_METHOD: Final = "list.calls"  # starts nothing: the admin's key check (decisions.md)

# UIS checks the exact header (UIS.md); aiohttp's `json=` would omit the charset.
_HEADERS: Final = {"Content-Type": "application/json; charset=UTF-8"}

# When UIS leaves out `error.data.mnemonic`, the JSON-RPC code still names the error group.
_RPC_FALLBACK: Final[Mapping[int, str]] = {
    -32700: "parse_error",
    -32600: "invalid_request",
    -32601: "method_not_found",
    -32602: "invalid_parameter_value",
    -32603: "internal_error",
    -32001: "access_token_invalid",
    -32002: "call_forbidden",
    -32003: "ip_not_whitelisted",
    -32007: "virtual_phone_number_not_found",
    -32008: "component_disabled",
    -32009: "account_inactive",
    -32029: "limit_exceeded",
}

_ASK_ADMIN_KEY = "Ask an administrator to check the UIS API key in the integration settings."
_MAY_HAVE_STARTED = (
    "The call may still start: wait a few seconds for your phone to ring before trying again."
)
# Staff know UIS as "the telephony"; the transport messages must not read as a refusal by UIS.
_TELEPHONY = "The telephony service (UIS)"

# What staff read for each mnemonic UIS documents for start.employee_call and for every method.
_MESSAGES: Final[Mapping[str, str]] = {
    "access_token_invalid": f"UIS rejected the API key. {_ASK_ADMIN_KEY}",
    "access_token_expired": "The UIS API key has expired. Ask an administrator to create a new "
    "key in UIS and save it in the integration settings.",
    "access_token_blocked": f"The UIS API key is blocked. {_ASK_ADMIN_KEY}",
    "auth_error": f"UIS refused to authenticate this service. {_ASK_ADMIN_KEY}",
    "ip_not_whitelisted": "UIS refused the call because this server's IP address is not on the "
    "account's allow list. Ask an administrator to add it in UIS (Call API settings, IP "
    "addresses tab).",
    "forbidden": "UIS does not allow this API key to start calls. Ask an administrator to check "
    "the key's permissions in UIS.",
    "virtual_phone_number_not_found": "UIS does not know the virtual phone number set for calls. "
    "Ask an administrator to check it in the integration settings.",
    "limit_exceeded": "The UIS Call API limit is used up for now. Wait a minute and try again; "
    "if it keeps happening, the daily limit is reached.",
    "employee_not_found": "UIS does not know the employee linked to your account. Ask an "
    "administrator to check which UIS employee you are linked to.",
    "no_active_phone_number": "Your UIS employee has no active phone number to ring. Turn on a "
    "phone for your employee in UIS (or ask an administrator), then try again.",
    "data_type_error": "UIS rejected the call request as malformed. Check the user's phone "
    "number and try again; if it keeps happening, tell an administrator.",
    "invalid_parameter_value": "UIS rejected a value in the call request. Check the user's phone "
    "number and try again; if it keeps happening, tell an administrator.",
    "required_parameter_missed": "The call request to UIS was incomplete. Tell an administrator; "
    "this is a fault in the service.",
    "own_virtual_phone_number_not_allowed": "The user's number is one of our own virtual "
    "numbers, which UIS cannot call. Correct the user's phone number.",
    "contact_in_blacklist": "The user's number is on the UIS blacklist, so UIS will not call it. "
    "Ask an administrator to remove it from the blacklist if the call is wanted.",
    "call_forbidden": "UIS security rules forbid calling this number. Ask an administrator to "
    "check the call directions allowed for the API in UIS.",
    "component_disabled": "The Call API is not enabled on the UIS account. Ask an administrator "
    "to enable it in UIS.",
    "account_inactive": "The UIS account is disabled. Ask an administrator to contact UIS support.",
    "internal_error": "UIS had an internal error. Try again in a minute; if it keeps happening, "
    "tell an administrator.",
    "uis_timeout": f"{_TELEPHONY} did not answer in time. {_MAY_HAVE_STARTED}",
    "uis_unreachable": f"{_TELEPHONY} could not be reached, so the call was not started. Try "
    "again in a minute; if it keeps happening, ask an administrator to check the server's "
    "network connection and the Call API URL in the integration settings.",
    "uis_bad_response": f"{_TELEPHONY} answered with something this service could not "
    f"understand. {_MAY_HAVE_STARTED}",
    "invalid_contact": "The user's phone number has no digits to call. Correct it in the "
    "user's profile, then try again.",
}

# What the admin reads when the key check (`check_access`) fails: the admin is the one who can
# fix it, so each says where. The guide's words for UIS's menus, in English.
_URL_HINT = "The usual Call API URL is https://callapi.uiscom.ru/v4.0."
# The key, its IP allow list and the account are the same for the Call API and the Data API
# (UIS.md), so what the admin reads about them is shared (`callrouter.dataapi`).
KEY_ADMIN_MESSAGES: Final[Mapping[str, str]] = {
    "access_token_invalid": "UIS does not know this API key. Copy the key again from UIS "
    "(Administrator → User management → the user → Use API key), the whole key without spaces, "
    "and save it.",
    "access_token_expired": "This API key has expired in UIS. Create a new key in UIS (or extend "
    "this one) and save it here.",
    "access_token_blocked": "This API key is blocked in UIS. Unblock it or create a new key in "
    "UIS, then save it here.",
    "auth_error": "UIS refused to authenticate with this API key. Check the key in UIS and save "
    "it again.",
    "ip_not_whitelisted": "UIS refuses requests from this server's IP address.{seen} In UIS, add "
    "it under Administrator → Account → Security rules and settings → API (the guide adds "
    "0.0.0.0/0), then check again.",
    "account_inactive": "The UIS account is disabled. Contact UIS support.",
}
_ADMIN_MESSAGES: Final[Mapping[str, str]] = {
    **KEY_ADMIN_MESSAGES,
    "forbidden": "UIS took the key, but its user may not use the Call API. In UIS, give the key's "
    "user access to the Call API (User management), then check again.",
    "component_disabled": "The key works, but the Call API is not enabled on the UIS account. "
    "Turn on «Call API Базовый набор» and «Call API Управление вызовами» (Administrator → "
    "Account → Tariff and options).",
    "virtual_phone_number_not_found": "The key works, but this virtual phone number is not one "
    "of the UIS account's. Enter one of the account's virtual numbers, digits only "
    "(e.g. 74951234567).",
    "invalid_parameter_value": "The key works, but UIS refused the virtual phone number. Enter "
    "it as digits starting with 7 (e.g. 74951234567).",
    "data_type_error": "The key works, but UIS refused the virtual phone number. Enter it as "
    "digits starting with 7 (e.g. 74951234567).",
    "limit_exceeded": "The key works, but the UIS Call API limit is used up for now, so calls "
    "from cases would fail. Wait a minute and check again; if it persists, the daily limit is "
    "reached (Tariff and options in UIS).",
    "method_not_found": f"The address answered, but not as the UIS Call API. Check the Call API "
    f"URL. {_URL_HINT}",
    "internal_error": "UIS had an internal error during the check. Try again in a minute; if it "
    "keeps happening, contact UIS support.",
    "uis_timeout": f"UIS did not answer in time. Check the Call API URL and this server's network "
    f"connection, then try again. {_URL_HINT}",
    "uis_unreachable": f"This server could not connect to the Call API URL. Check the URL and "
    f"that this server can reach the internet. {_URL_HINT}",
    "uis_bad_response": f"The address answered with something that is not the UIS Call API. "
    f"Check the Call API URL. {_URL_HINT}",
}

_MNEMONIC = re.compile(r"[a-z][a-z0-9_]{0,63}")


class CallApiError(Exception):
    """UIS did not start the call (R18): a snake_case `code`, a staff-facing `message`.

    `rpc_code` is the JSON-RPC error code (None for transport problems). `retryable` means
    sending the same request again is safe and may succeed; `detail` is UIS's own text or the
    transport error, for logs.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        rpc_code: int | None = None,
        retryable: bool = False,
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.rpc_code = rpc_code
        self.retryable = retryable
        self.detail = detail

    def __repr__(self) -> str:
        return f"CallApiError({self.code!r}, rpc_code={self.rpc_code}, retryable={self.retryable})"


def _transport_error(code: str, detail: str, *, retryable: bool) -> CallApiError:
    return CallApiError(code, _MESSAGES[code], retryable=retryable, detail=detail)


def _rpc_error(error: Mapping[str, Any]) -> CallApiError:
    """Map a JSON-RPC `error` object to a CallApiError (UIS.md error list)."""
    raw_code = error.get("code")
    rpc_code = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else None
    data = error.get("data")
    mnemonic = data.get("mnemonic") if isinstance(data, Mapping) else None
    uis_text = error.get("message")
    detail = uis_text if isinstance(uis_text, str) else None
    if isinstance(mnemonic, str) and _MNEMONIC.fullmatch(mnemonic):
        code = mnemonic
    else:
        code = _RPC_FALLBACK.get(rpc_code, "uis_error") if rpc_code is not None else "uis_error"
    message = _MESSAGES.get(code)
    if message is None:
        # An error UIS added after this table: its own English text is the best hint we have.
        suffix = f": {detail.rstrip('.')}." if detail else "."
        message = f"UIS refused the call{suffix} Tell an administrator if it keeps happening."
    # Only an internal error says nothing about our request, so the same request may succeed.
    return CallApiError(
        code, message, rpc_code=rpc_code, retryable=rpc_code == -32603, detail=detail
    )


@dataclass(frozen=True, slots=True)
class AccessCheck:
    """UIS took the key (`check_access`): the account's calls in progress, its limits if sent."""

    active_calls: int
    limits: dict[str, Any] | None


class CallStarter(Protocol):
    """Starts a staff-first call to a user (R18); implemented by CallApiClient and fakes."""

    async def start_employee_call(
        self,
        *,
        virtual_phone_number: str,
        contact: str,
        employee_id: int,
        external_id: str,
        employee_phone: str | None = None,
    ) -> int:
        """Ring the employee, then `contact` (as typed or as digits); return the
        call_session_id or raise CallApiError."""
        ...


class CallApiClient:
    """The real UIS Call API over an injected aiohttp session (R18)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        access_token: str,
        *,
        timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 0.25,
    ) -> None:
        self._session = session
        self._url = url
        self._access_token = access_token
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._retries = max(0, retries)
        self._backoff = backoff
        self._ids = itertools.count(1)

    async def start_employee_call(
        self,
        *,
        virtual_phone_number: str,
        contact: str,
        employee_id: int,
        external_id: str,
        employee_phone: str | None = None,
    ) -> int:
        """Ask UIS to ring the employee first, then `contact` (R18); return call_session_id.

        `contact` goes out as its digits (`dial_digits`: "+7 916 123-45-67" is "79161234567",
        UIS.md); one without digits is CallApiError `invalid_contact`, and nothing is sent.
        `external_id` comes back in every notification of the call. Retryable failures
        (internal UIS errors, UIS unreachable) are retried `retries` times with a doubling
        backoff; anything else, or the last failure, is raised as CallApiError.
        """
        digits = dial_digits(contact)
        if digits is None:
            detail = f"contact {contact!r}"
            raise CallApiError("invalid_contact", _MESSAGES["invalid_contact"], detail=detail)
        employee: dict[str, Any] = {"id": employee_id}
        if employee_phone is not None:
            employee["phone_number"] = employee_phone
        params: dict[str, Any] = {
            "access_token": self._access_token,
            "first_call": "employee",
            "virtual_phone_number": virtual_phone_number,
            "contact": digits,
            "employee": employee,
            "external_id": external_id,
            "direction": "out",
            # Connect the moment the user answers; staff see our virtual number, not theirs.
            "switch_at_once": True,
            "show_virtual_phone_number": False,
        }
        attempt = 0
        while True:
            try:
                return await self._call_once(params)
            except CallApiError as exc:
                log.warning(
                    "UIS %s failed (external_id=%s, attempt %d): %s %s",
                    METHOD,
                    external_id,
                    attempt + 1,
                    exc.code,
                    exc.detail,
                )
                if not exc.retryable or attempt >= self._retries:
                    raise
                await asyncio.sleep(self._backoff * 2**attempt)
                attempt += 1

    async def _call_once(self, params: Mapping[str, Any]) -> int:
        return _call_session_id(*await self._exchange(METHOD, params))

    async def _exchange(self, method: str, params: Mapping[str, Any]) -> tuple[int, bytes, Any]:
        return await rpc_exchange(
            self._session, self._url, method, params, next(self._ids), self._timeout
        )

    async def check_access(self, virtual_phone_number: str | None = None) -> AccessCheck:
        """Whether UIS takes this key from this server, without placing a call (the admin's
        check, decisions.md): `list.calls` (the account's calls in progress) needs the same key,
        IP allow list and URL as `start.employee_call`, and the guide's «Call API Управление
        вызовами» component; given `virtual_phone_number`, UIS also checks the number is the
        account's. Sent once, never retried; CallApiError says what is wrong (`admin_message`
        words it for the admin)."""
        params: dict[str, Any] = {"access_token": self._access_token}
        if virtual_phone_number is not None:
            params["virtual_phone_number"] = virtual_phone_number
        try:
            status, raw, result = await self._exchange(CHECK_METHOD, params)
        except CallApiError as exc:
            log.warning("UIS %s failed: %s %s", CHECK_METHOD, exc.code, exc.detail)
            raise
        data = result.get("data") if isinstance(result, dict) else None
        if not isinstance(data, list):
            detail = f"HTTP {status}: no list of calls in {raw[:200]!r}"
            raise _transport_error("uis_bad_response", detail, retryable=False)
        metadata = result.get("metadata")
        limits = metadata.get("limits") if isinstance(metadata, dict) else None
        return AccessCheck(
            active_calls=len(data), limits=limits if isinstance(limits, dict) else None
        )


async def rpc_exchange(
    session: aiohttp.ClientSession,
    url: str,
    method: str,
    params: Mapping[str, Any],
    request_id: int,
    timeout: aiohttp.ClientTimeout,
) -> tuple[int, bytes, Any]:
    """One UIS JSON-RPC 2.0 request (Call API or Data API): (HTTP status, raw answer, its
    `result`). UIS errors and transport problems raise CallApiError, `retryable` as for a
    request that may have acted (a reader may retry more: `callrouter.dataapi`)."""
    body = orjson.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
    try:
        async with session.post(url, data=body, headers=_HEADERS, timeout=timeout) as response:
            status = response.status
            raw = await response.read()
    # Order matters: a connect timeout is a TimeoutError too, but nothing was sent, so it
    # is safe to retry; any later timeout may come after UIS already started the call.
    except aiohttp.ConnectionTimeoutError as exc:
        raise _transport_error("uis_unreachable", repr(exc), retryable=True) from exc
    except TimeoutError as exc:
        raise _transport_error("uis_timeout", repr(exc), retryable=False) from exc
    except aiohttp.ClientConnectorError as exc:
        raise _transport_error("uis_unreachable", repr(exc), retryable=True) from exc
    except aiohttp.ClientError as exc:
        # The connection broke after the request went out: outcome unknown, don't resend.
        raise _transport_error("uis_bad_response", repr(exc), retryable=False) from exc
    return status, raw, _result(status, raw)


def _result(status: int, raw: bytes) -> Any:
    """The `result` of a UIS answer, or the CallApiError the answer stands for."""
    try:
        answer = orjson.loads(raw)
    except orjson.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict):
        # A proxy's HTML error page, a truncated body: we cannot tell whether UIS acted.
        detail = f"HTTP {status}: {raw[:200]!r}"
        raise _transport_error("uis_bad_response", detail, retryable=False)
    error = answer.get("error")
    if isinstance(error, dict):
        raise _rpc_error(error)
    # The answer's `id` is not checked: one HTTP exchange carries one request (no batches),
    # and refusing a well-formed result would hide a call that really started.
    return answer.get("result")


def _call_session_id(status: int, raw: bytes, result: Any) -> int:
    """call_session_id from a `start.employee_call` result."""
    data = result.get("data") if isinstance(result, dict) else None
    session_id = data.get("call_session_id") if isinstance(data, dict) else None
    if isinstance(session_id, int) and not isinstance(session_id, bool):
        return session_id
    detail = f"HTTP {status}: no call_session_id in {raw[:200]!r}"
    raise _transport_error("uis_bad_response", detail, retryable=False)


# "Your IP 1.2.3.4 is not whitelisted" (or an IPv6 address)
_IP = re.compile(r"\bIP\s+\[?(\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]*:[0-9A-Fa-f:]*[0-9A-Fa-f])")


def refused_ip(exc: CallApiError) -> str | None:
    """The address UIS saw, from its `ip_not_whitelisted` text ("Your IP 1.2.3.4 is not
    whitelisted"): the one the admin must add to the allow list."""
    if exc.code != "ip_not_whitelisted" or not exc.detail:
        return None
    found = _IP.search(exc.detail)
    return found.group(1) if found else None


def admin_message(
    exc: CallApiError, messages: Mapping[str, str] = _ADMIN_MESSAGES, what: str = "the check"
) -> str:
    """What the admin reads when the key check (or another admin request, given its
    `messages` and `what`) fails: what is wrong and where to fix it (the staff-facing
    `exc.message` tells staff to ask an admin, who is the reader here)."""
    message = messages.get(exc.code)
    if message is None:
        said = f": {exc.detail.rstrip('.')}." if exc.detail else "."
        return f"UIS refused {what} ({exc.code}){said} Check the integration settings."
    ip = refused_ip(exc)
    return message.format(seen=f" UIS saw the request come from {ip}." if ip else "")
