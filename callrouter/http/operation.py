"""`@operation(...)`: what an endpoint takes and answers, declared once beside its handler.

The declaration does the work the handlers used to repeat by hand — authenticate, read and
validate the body and the query through their `http.schemas` models, turn pydantic's errors
into API.md's error shape — and it is what `http.openapi` reads to describe the endpoint, so
the document and the behaviour come from the same value.

A handler names what it wants as parameters: `principal`, `staff_id` (staff-only endpoints),
`body` and `query`; it returns a `web.StreamResponse`, or plain data answered as JSON with the
declared `status`.

Auth kinds: "admin" (the admin token, or a member with the role admin), "staff" (a staff
member; an admin member acts as staff too), "any" (the admin or a staff member), "wallboard"
("any", or a read-only wallboard link, also as `?link=`), "none". Only "wallboard" takes a link.
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from callrouter.http.auth import Principal, authenticate, socket_guard
from callrouter.http.errors import ApiError, bad_request, forbidden, json_response, unprocessable

Auth = Literal["admin", "staff", "any", "wallboard", "none"]
Kind = Literal["json", "html", "text", "csv", "websocket"]

MAX_BODY = 1 << 20

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Operation:
    """One endpoint's contract, as the OpenAPI document shows it."""

    auth: Auth
    body: type[BaseModel] | None
    own_body: bool  # the handler reads the raw body itself; `body` documents it
    query: type[BaseModel] | None
    answer: Any  # a model, `list[Model]`, or None
    status: int
    errors: tuple[int, ...]
    kind: Kind
    tag: str
    summary: str
    description: str


def operation(
    *,
    auth: Auth,
    tag: str,
    body: type[BaseModel] | None = None,
    own_body: bool = False,
    query: type[BaseModel] | None = None,
    answer: Any = None,
    status: int = 200,
    errors: tuple[int, ...] = (),
    kind: Kind = "json",
) -> Callable[[Callable[..., Awaitable[Any]]], Handler]:
    """Declare an endpoint's contract and enforce it around `handler`."""

    def wrap(handler: Callable[..., Awaitable[Any]]) -> Handler:
        doc = inspect.getdoc(handler) or handler.__name__.replace("_", " ")
        summary, _, description = doc.partition("\n\n")
        op = Operation(
            auth,
            body,
            own_body,
            query,
            answer,
            status,
            errors,
            kind,
            tag,
            summary.replace("\n", " "),
            description,
        )
        wants = set(inspect.signature(handler).parameters)

        @functools.wraps(handler)
        async def run(request: web.Request) -> web.StreamResponse:
            given: dict[str, Any] = {}
            who: Principal | None = None
            if auth != "none":
                who = await _allowed(request, auth, query_token=kind == "websocket")
                given["principal"] = who
                if auth == "staff":
                    given["staff_id"] = who.staff_id
            if query is not None:
                given["query"] = parse_query(query, request)
            if body is not None and not own_body:
                given["body"] = await read_body(body, request)
            args = {k: v for k, v in given.items() if k in wants}
            if kind == "websocket" and who is not None:
                # A socket outlives its handshake: it is closed when its credential is revoked.
                guard = socket_guard(request.app)
                guard.add(request, who)
                try:
                    answer_ = await handler(request, **args)
                finally:
                    guard.discard(request, who)
            else:
                answer_ = await handler(request, **args)
            if isinstance(answer_, web.StreamResponse):
                return answer_
            return json_response(answer_, status)

        run.__operation__ = op  # type: ignore[attr-defined]
        return run

    return wrap


def operation_of(handler: object) -> Operation | None:
    """The contract declared on a route's handler, if any."""
    return getattr(handler, "__operation__", None)


async def _allowed(request: web.Request, auth: Auth, *, query_token: bool) -> Principal:
    who = await authenticate(request, allow_query=query_token, allow_link=auth == "wallboard")
    if who.is_link and auth != "wallboard":
        raise forbidden("forbidden", "A wallboard link can read the wallboard and nothing else.")
    if auth == "admin" and not who.is_admin:
        raise forbidden("forbidden", "This needs the admin token.")
    if auth == "staff" and who.staff_id is None:
        raise forbidden("forbidden", "This needs a staff token: the admin does not act as staff.")
    return who


async def read_body(model: type[BaseModel], request: web.Request) -> Any:
    """The body validated by `model`: 413 over 1 MiB, 400 `invalid_json` when it is not JSON,
    422 when it is JSON but not what `model` takes. An empty body reads as `{}` (bodiless
    POSTs are common from simple clients)."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ApiError(413, "too_large", f"The body is larger than {MAX_BODY} bytes.")
    raw = await request.read()
    if len(raw) > MAX_BODY:
        raise ApiError(413, "too_large", f"The body is larger than {MAX_BODY} bytes.")
    if not raw.strip():
        raw = b"{}"
    try:
        data = orjson.loads(raw)  # orjson's message names the position; pydantic's does not
    except orjson.JSONDecodeError as exc:
        raise bad_request("invalid_json", f"The body is not valid JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise unprocessable("invalid_body", "The body must be a JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise body_error(exc, getattr(model, "error_codes", {})) from None


def parse_query(model: type[BaseModel], request: web.Request) -> Any:
    """The query string validated by `model`; 400 `invalid_parameter` naming the parameter."""
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        name = ".".join(str(part) for part in first["loc"]) or "query"
        raise bad_request(
            "invalid_parameter", f"Query parameter '{name}': {first['msg'].lower()}."
        ) from None


def body_error(exc: ValidationError, codes: Mapping[str, str]) -> ApiError:
    """pydantic's first error as API.md's 422: `missing_field`, `unknown_field` or
    `invalid_field`, with a sentence naming the field. A model may name its own codes in
    `error_codes`: by error type, by field (`phones.*` for any item), or "" for any other
    error."""
    first = exc.errors(include_url=False)[0]
    name = ".".join(str(part) for part in first["loc"])
    if first["type"] == "missing":
        return unprocessable("missing_field", f"Field '{name}' is required.")
    if first["type"] == "extra_forbidden":
        unknown = sorted(str(e["loc"][-1]) for e in exc.errors() if e["type"] == "extra_forbidden")
        code = codes.get("extra_forbidden", "unknown_field")
        return unprocessable(code, f"Unknown field(s): {', '.join(unknown)}.")
    field = re.sub(r"\.\d+(?=\.|$)", ".*", name)  # phones.3 -> phones.*
    code = codes.get(field) or codes.get("", "invalid_field")
    if first["type"] == "string_too_short" and not first["input"].strip():
        return unprocessable("missing_field", f"Field '{name}' is required (a non-empty string).")
    return unprocessable(code, f"Field '{name}': {first['msg'].lower()}.")
