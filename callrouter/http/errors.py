"""Errors at the HTTP boundary (STYLE habit 10) and the small request-reading helpers.

Every error leaves as `{"error": {"code", "message"}}` (API.md "Conventions"): handlers raise
`ApiError`, storage raises `DirectoryError` subclasses, aiohttp raises its HTTP exceptions, and
`error_middleware` turns all of them into that one shape.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from aiohttp import web
from multidict import CIMultiDict

from callrouter.storage.directory import (
    ConflictError,
    DirectoryError,
    InvalidError,
    NotFoundError,
)

log = logging.getLogger(__name__)

# 2**63 - 1: ids are BIGINT; a larger number in a path cannot name anything.
MAX_ID = (1 << 63) - 1

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    503: "unavailable",
}

_DIRECTORY_STATUS: dict[type[DirectoryError], int] = {
    InvalidError: 422,
    NotFoundError: 404,
    ConflictError: 409,
}


class ApiError(Exception):
    """An error answer: HTTP `status`, snake_case `code`, a human `message`."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def bad_request(code: str, message: str) -> ApiError:
    """400: the request is malformed."""
    return ApiError(400, code, message)


def unauthorized(code: str, message: str) -> ApiError:
    """401: no valid token."""
    return ApiError(401, code, message, {"WWW-Authenticate": "Bearer"})


def forbidden(code: str, message: str) -> ApiError:
    """403: the token may not do this."""
    return ApiError(403, code, message)


def not_found(code: str, message: str) -> ApiError:
    """404: no such thing."""
    return ApiError(404, code, message)


def conflict(code: str, message: str) -> ApiError:
    """409: the current state forbids this."""
    return ApiError(409, code, message)


def unprocessable(code: str, message: str) -> ApiError:
    """422: valid JSON, wrong content."""
    return ApiError(422, code, message)


def json_response(
    data: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    """A JSON answer serialised with orjson."""
    return web.Response(
        body=orjson.dumps(data),
        status=status,
        content_type="application/json",
        headers=headers,
    )


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    """The one error shape of API.md."""
    return json_response({"error": {"code": code, "message": message}}, status, headers)


def _from_http_exception(exc: web.HTTPException) -> web.Response:
    # Keep headers that mean something to the client (Allow on 405, Retry-After on 503);
    # the body and its type are ours now.
    headers = CIMultiDict(exc.headers)
    for name in ("Content-Type", "Content-Length"):
        headers.popall(name, None)
    code = _STATUS_CODES.get(exc.status, "http_error")
    message = exc.reason if exc.text is None or exc.text.startswith(f"{exc.status}:") else exc.text
    return error_response(exc.status, code, message, headers)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every failure with the API error shape; log what nobody expected."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.headers)
    except DirectoryError as exc:
        status = next(s for t, s in _DIRECTORY_STATUS.items() if isinstance(exc, t))
        return error_response(status, exc.code, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # redirects and the like are answers, not errors
        return _from_http_exception(exc)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "The server failed to handle the request.")


async def read_json(request: web.Request, max_bytes: int = 1 << 20) -> dict[str, Any]:
    """The request body as a JSON object: 413 over `max_bytes`, 400 `invalid_json` when it is
    not JSON, 422 `invalid_body` when it is JSON but not an object. An empty body is `{}`."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise ApiError(413, "too_large", f"The body is larger than {max_bytes} bytes.")
    raw = await request.read()
    if len(raw) > max_bytes:
        raise ApiError(413, "too_large", f"The body is larger than {max_bytes} bytes.")
    if not raw.strip():
        # Bodiless POSTs (`{}` in API.md) are common from simple clients.
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise bad_request("invalid_json", f"The body is not valid JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise unprocessable("invalid_body", "The body must be a JSON object.")
    return data


def require_str(body: Mapping[str, Any], key: str, *, max_len: int = 200) -> str:
    """A required non-blank string field, stripped; 422 naming the field otherwise."""
    value = optional_str(body, key, max_len=max_len)
    if value is None or not value:
        raise unprocessable("missing_field", f"Field '{key}' is required (a non-empty string).")
    return value


def optional_str(body: Mapping[str, Any], key: str, *, max_len: int = 200) -> str | None:
    """A string field or None when absent or null, stripped; 422 for any other type."""
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise unprocessable("invalid_field", f"Field '{key}' must be a string.")
    value = value.strip()
    if len(value) > max_len:
        raise unprocessable("invalid_field", f"Field '{key}' is longer than {max_len} characters.")
    return value


def optional_int(
    body: Mapping[str, Any], key: str, *, minimum: int | None = None, maximum: int = MAX_ID
) -> int | None:
    """An integer field or None when absent or null; 422 for other types or out of range."""
    value = body.get(key)
    if value is None:
        return None
    # bool is an int subclass in Python; `true` is not a number in JSON.
    if isinstance(value, bool) or not isinstance(value, int):
        raise unprocessable("invalid_field", f"Field '{key}' must be an integer.")
    if (minimum is not None and value < minimum) or value > maximum:
        raise unprocessable(
            "invalid_field", f"Field '{key}' must be between {minimum} and {maximum}."
        )
    return value


def optional_bool(body: Mapping[str, Any], key: str) -> bool | None:
    """A boolean field or None when absent or null; 422 for any other type."""
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise unprocessable("invalid_field", f"Field '{key}' must be true or false.")
    return value


def reject_unknown(body: Mapping[str, Any], allowed: set[str] | frozenset[str]) -> None:
    """422 `unknown_field` when the body has a key outside `allowed` (catches typos)."""
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise unprocessable("unknown_field", f"Unknown field(s): {', '.join(unknown)}.")


def path_id(request: web.Request, name: str) -> int:
    """A positive integer path parameter; 404 when it cannot name anything."""
    raw = request.match_info[name]
    if not (raw.isascii() and raw.isdecimal()) or not 0 < int(raw) <= MAX_ID:
        raise not_found("not_found", f"No such {name}: {raw}.")
    return int(raw)


def paging(request: web.Request, *, default: int = 50, maximum: int = 500) -> tuple[int, int]:
    """`limit` and `offset` from the query string; 400 `invalid_parameter` when malformed."""
    result = []
    for name, fallback, top in (("limit", default, maximum), ("offset", 0, MAX_ID)):
        raw = request.query.get(name)
        if raw is None or raw == "":
            result.append(fallback)
            continue
        if not (raw.isascii() and raw.isdecimal()) or int(raw) > top:
            raise bad_request(
                "invalid_parameter", f"Query parameter '{name}' must be an integer 0..{top}."
            )
        result.append(int(raw))
    return result[0], result[1]
