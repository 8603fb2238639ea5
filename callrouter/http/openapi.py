"""`GET /api/v1/openapi.json` and `GET /api/docs`: the contract, generated, never written.

The document is built from the app's route table and the `@operation` each handler declares
(`http.operation`), whose models (`http.schemas`) give every schema; so an endpoint, a field
or an error code cannot be added without the document showing it. `/api/docs` renders it with
Swagger UI from the `swagger-ui-py` package (served from here: no internet needed).
"""

from __future__ import annotations

import re
from importlib.metadata import version
from typing import Any
from weakref import WeakKeyDictionary

from aiohttp import web
from pydantic import BaseModel, TypeAdapter
from swagger_ui import api_doc

from callrouter.http.errors import json_response
from callrouter.http.operation import Operation, operation, operation_of
from callrouter.http.schemas import MAX_ID, REPORT_MODELS, Error

routes = web.RouteTableDef()

# Built once per app, on first request: the route table is frozen by then.
_documents: WeakKeyDictionary[web.Application, dict[str, Any]] = WeakKeyDictionary()

REF = "#/components/schemas/{model}"

# Path parameters by name: ids are positive BIGINTs; a report is one of the six.
PATH_PARAMETERS: dict[str, dict[str, Any]] = {
    "id": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
    "employee_id": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
    "report": {"type": "string", "enum": list(REPORT_MODELS)},
    "key": {"type": "string", "maxLength": 64},
    "secret": {"type": "string", "description": "the webhook secret of the integration"},
}

ERRORS: dict[int, str] = {
    400: "Malformed: not JSON, or a bad query parameter",
    401: "No valid token",
    403: "The token may not do this",
    404: "No such thing",
    409: "The current state forbids this",
    413: "The body is too large",
    422: "Valid JSON, wrong content",
    429: "Too many failed attempts; retry after `Retry-After` seconds",
    502: "UIS refused the call (`code` is UIS's mnemonic)",
    503: "Overloaded or unavailable; retry after `Retry-After` seconds",
}

# Tags in the order a reader meets them, with what each covers.
TAGS = {
    "webhook": "What UIS posts: one notification per step of a call",
    "calls": "Live and past calls, and what staff do during one; live events",
    "cases": "Cases of the `calls` channel, their messages, calling the user back",
    "users": "The helpdesk's users (callers) and their profiles",
    "statistics": "The guide's six reports",
    "wallboard": "The live wallboard, and read-only links to it for wall screens",
    "auth": "Signing in from the pages, who is signed in, the staff names pages show",
    "admin": "Integration, settings, staff, operators, popup fields, rejected bodies",
    "service": "Health, state, metrics, this document",
    "pages": "The pages staff and managers open",
    "routing": "Smart routing: its settings and how many callers reached their own agent",
    "reconcile": "Reconciliation with the UIS Data API: repairing what UIS never sent",
}

# The media type of an answer that is not JSON.
MEDIA = {"html": "text/html", "text": "text/plain", "csv": "text/csv"}

WHO = {
    "admin": "Needs the admin: the admin token, or a staff member with the role admin (token"
    " or sign-in).",
    "staff": "Needs a staff member (the acting one): a staff token or a sign-in; a member with"
    " the role admin acts as staff too.",
    "any": "Needs the admin or a staff member (token or sign-in); a wallboard link is refused.",
    "wallboard": "Needs the admin, a staff member, or a read-only wallboard link (`?link=` or"
    " the bearer header).",
    "none": "No token.",
}


class _Schemas:
    """components/schemas, filled as operations name their models."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def of(self, annotation: Any, mode: str) -> dict[str, Any]:
        """A schema for `annotation` (a model, `list[Model]`, ...), models by reference."""
        if isinstance(annotation, dict):  # one answer per value of a path parameter
            return {"oneOf": [self.of(model, mode) for model in annotation.values()]}
        schema = TypeAdapter(annotation).json_schema(ref_template=REF, mode=mode)  # type: ignore[arg-type]
        self.components.update(schema.pop("$defs", {}))
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            name = re.sub(r"[^A-Za-z0-9._-]", "_", annotation.__name__)
            self.components[name] = schema
            return {"$ref": REF.format(model=name)}
        return schema


def document(app: web.Application) -> dict[str, Any]:
    """The OpenAPI 3.1 document of every route that declares an `@operation`."""
    schemas = _Schemas()
    error = schemas.of(Error, "serialization")
    paths: dict[str, dict[str, Any]] = {}
    for route in app.router.routes():
        op = operation_of(route.handler)
        if op is None or route.method == "HEAD":
            continue
        info = route.resource.get_info() if route.resource else {}
        path = info.get("formatter") or info.get("path")
        assert path is not None
        paths.setdefault(path, {})[route.method.lower()] = _operation(
            op, path, route.handler.__name__, schemas, error
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "callrouter",
            "version": version("callrouter"),
            "description": "The real-time telephony side of a helpdesk: UIS webhooks in; cases,"
            ' popups and statistics out. Errors: `{"error": {"code", "message"}}`.',
        },
        "tags": [{"name": name, "description": text} for name, text in TAGS.items()],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The admin token or a staff token",
                },
                "token_query": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "token",
                    "description": "WebSocket handshakes only (browsers cannot set headers)",
                },
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "callrouter_session",
                    "description": "The pages' sign-in (`POST /api/v1/auth/login`); a POST,"
                    " PUT, PATCH or DELETE with it needs `X-Requested-With: callrouter`",
                },
                "wallboard_link": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "link",
                    "description": "A read-only wallboard link's secret: the wallboard and the"
                    " staff directory only",
                },
            },
        },
    }


def _operation(
    op: Operation, path: str, name: str, schemas: _Schemas, error: dict[str, Any]
) -> dict[str, Any]:
    parameters = [
        {
            "name": p,
            "in": "path",
            "required": True,
            "schema": PATH_PARAMETERS.get(p, {"type": "string"}),
        }
        for p in re.findall(r"{(\w+)}", path)
    ]
    if op.query is not None:
        parameters += _query_parameters(op.query)
    codes = set(op.errors)
    if parameters and any(p["in"] == "path" for p in parameters):
        codes.add(404)
    if op.auth != "none":
        codes |= {401, 403}  # 403: not allowed, a wallboard link, or `csrf`
    if op.query is not None:
        codes.add(400)
    if op.body is not None:
        codes |= {400, 413, 422}
    if op.kind == "websocket":
        codes.add(400)  # a plain GET without the upgrade
    answer: dict[str, Any] = {"description": "OK"}
    if op.kind == "json" and op.answer is not None:
        answer["content"] = {"application/json": {"schema": schemas.of(op.answer, "serialization")}}
    elif op.kind in MEDIA:
        answer["content"] = {MEDIA[op.kind]: {"schema": {"type": "string"}}}
    status = "101" if op.kind == "websocket" else str(op.status)
    if op.kind == "websocket":
        answer["description"] = "Switching to a WebSocket; each message is a JSON object"
        if op.answer is not None:
            answer["content"] = {
                "application/json": {"schema": schemas.of(op.answer, "serialization")}
            }
    responses: dict[str, Any] = {status: answer}
    for code in sorted(codes):
        responses[str(code)] = {
            "description": ERRORS[code],
            "content": {"application/json": {"schema": error}},
        }
    result: dict[str, Any] = {
        "operationId": name,
        "tags": [op.tag],
        "summary": op.summary,
        "description": f"{op.description}\n\n{WHO[op.auth]}".strip(),
        "responses": responses,
    }
    if parameters:
        result["parameters"] = parameters
    if op.auth != "none":
        result["security"] = (
            [{"bearer": []}, {"session": []}]
            + ([{"token_query": []}] if op.kind == "websocket" else [])
            + ([{"wallboard_link": []}] if op.auth == "wallboard" else [])
        )
    else:
        result["security"] = []
    if op.body is not None:
        result["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": schemas.of(op.body, "validation")}},
        }
    return result


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=REF)
    required = set(schema.get("required", ()))
    return [
        {"name": key, "in": "query", "required": key in required, "schema": prop}
        for key, prop in schema.get("properties", {}).items()
    ]


@routes.get("/api/v1/openapi.json")
@operation(auth="none", tag="service")
async def openapi(request: web.Request) -> web.Response:
    """This document: OpenAPI 3.1, generated from the code's models and route table"""
    doc = _documents.get(request.app)
    if doc is None:
        doc = _documents[request.app] = document(request.app)
    return json_response(doc)


def add_docs_page(app: web.Application) -> None:
    """`GET /api/docs`: Swagger UI over the document (its files from the package)."""
    api_doc(
        app,
        # swagger-ui-py puts this after the page's own prefix: /api/docs/../v1/openapi.json.
        config_rel_url="/../v1/openapi.json",
        url_prefix="/api/docs",
        title="callrouter API",
    )
