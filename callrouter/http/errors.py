"""Errors at the HTTP boundary (STYLE habit 10), and reading an id from a path.

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

from callrouter.http.schemas import MAX_ID
from callrouter.storage.directory import (
    ConflictError,
    DirectoryError,
    InvalidError,
    NotFoundError,
)

log = logging.getLogger(__name__)

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
        # The route's pattern, not the path: a webhook path carries the integration's secret.
        route = request.match_info.route.resource
        where = route.canonical if route is not None else "?"
        log.exception("unhandled error on %s %s", request.method, where)
        return error_response(500, "internal_error", "The server failed to handle the request.")


def path_id(request: web.Request, name: str) -> int:
    """A positive integer path parameter; 404 when it cannot name anything."""
    raw = request.match_info[name]
    if not (raw.isascii() and raw.isdecimal()) or not 0 < int(raw) <= MAX_ID:
        raise not_found("not_found", f"No such {name}: {raw}.")
    return int(raw)
