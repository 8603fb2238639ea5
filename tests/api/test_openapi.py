"""The OpenAPI document (issue 10; API.md "Additions"): generated from the app's route table
and the models each endpoint declares, valid OpenAPI 3.1, covering every endpoint, and served
with a docs page whose files come from the package. The running service is fuzzed against it
in tests/e2e/test_contract_fuzz.py."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from openapi_spec_validator import validate

from callrouter.config import Settings
from callrouter.http import openapi
from callrouter.http.app import create_app
from callrouter.http.operation import operation_of

# API.md's endpoints, as its tables name them (method, path).
API_MD = {
    ("put", "/api/v1/integrations/uis"),
    ("get", "/api/v1/integrations/uis"),
    ("put", "/api/v1/settings"),
    ("post", "/api/v1/staff"),
    ("get", "/api/v1/staff"),
    ("put", "/api/v1/operators/{employee_id}"),
    ("get", "/api/v1/operators"),
    ("get", "/api/v1/fields"),
    ("post", "/api/v1/fields"),
    ("patch", "/api/v1/fields/{key}"),
    ("post", "/webhooks/uis/{secret}"),
    ("get", "/api/v1/rejected"),
    ("post", "/api/v1/users"),
    ("get", "/api/v1/users/{id}"),
    ("patch", "/api/v1/users/{id}"),
    ("get", "/api/v1/users"),
    ("get", "/api/v1/calls"),
    ("get", "/api/v1/calls/{id}"),
    ("post", "/api/v1/calls/{id}/link-user"),
    ("post", "/api/v1/calls/{id}/case"),
    ("post", "/api/v1/calls/{id}/attach"),
    ("put", "/api/v1/calls/{id}/draft"),
    ("get", "/api/v1/cases"),
    ("get", "/api/v1/cases/{id}"),
    ("patch", "/api/v1/cases/{id}"),
    ("post", "/api/v1/cases/{id}/messages"),
    ("post", "/api/v1/cases/{id}/calls"),
    ("get", "/api/v1/stats/{report}"),
    ("get", "/api/v1/stats/{report}.csv"),
    ("get", "/api/v1/wallboard"),
    ("get", "/api/v1/events"),
    ("get", "/api/v1/wallboard/events"),
    ("get", "/"),
    ("get", "/wallboard"),
    ("get", "/healthz"),
    ("get", "/api/v1/openapi.json"),
    ("get", "/metrics"),
    ("get", "/api/v1/quarantine"),
    ("post", "/api/v1/quarantine/{id}/retry"),
    # issue 9: sign-in, staff management, wallboard links
    ("post", "/api/v1/auth/login"),
    ("post", "/api/v1/auth/logout"),
    ("get", "/api/v1/me"),
    ("get", "/api/v1/directory/staff"),
    ("patch", "/api/v1/staff/{id}"),
    ("post", "/api/v1/staff/{id}/token"),
    ("post", "/api/v1/wallboard/links"),
    ("get", "/api/v1/wallboard/links"),
    ("delete", "/api/v1/wallboard/links/{id}"),
    ("get", "/login"),
    # issue 11: operators imported from UIS
    ("get", "/api/v1/operators/import"),
    ("post", "/api/v1/operators/import"),
    # issue 11 part 1: smart routing
    ("post", "/webhooks/uis/{secret}/route"),
    ("get", "/webhooks/uis/{secret}/route"),
    ("get", "/api/v1/routing"),
    ("put", "/api/v1/routing"),
    ("get", "/api/v1/routing/stats"),
    # issue 11 part 2: reconciliation with the UIS Data API
    ("post", "/api/v1/reconcile"),
    ("get", "/api/v1/reconcile"),
    ("get", "/api/v1/reconcile/settings"),
    ("put", "/api/v1/reconcile/settings"),
}


@pytest.fixture(scope="module")
def app() -> web.Application:
    return create_app(Settings(), "admin-token")  # routes only: nothing starts until it runs


@pytest.fixture(scope="module")
def doc(app: web.Application) -> dict[str, Any]:
    return openapi.document(app)


def test_the_document_is_valid_openapi_3_1(doc: dict[str, Any]) -> None:
    assert doc["openapi"] == "3.1.0"
    validate(doc)  # openapi-spec-validator: the whole document, schemas and references


def test_every_endpoint_of_api_md_is_described(doc: dict[str, Any]) -> None:
    described = {(m, p) for p, ops in doc["paths"].items() for m in ops}
    assert API_MD <= described, sorted(API_MD - described)


def test_every_route_of_the_app_declares_its_contract(app: web.Application) -> None:
    """A route without `@operation` would be missing from the document: only the docs page
    (from swagger-ui-py) and static files have none."""
    missing = []
    for route in app.router.routes():
        path = route.resource.canonical if route.resource else "?"
        if route.method == "HEAD" or path.startswith(("/static", "/api/docs")):
            continue
        if operation_of(route.handler) is None:
            missing.append(f"{route.method} {path}")
    assert missing == []


def test_auth_errors_and_examples_are_documented(doc: dict[str, Any]) -> None:
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "The admin token or a staff token",
    }
    staff_put = doc["paths"]["/api/v1/staff"]["post"]
    assert staff_put["security"] == [{"bearer": []}, {"session": []}]
    assert schemes["session"]["in"] == "cookie"
    assert schemes["session"]["name"] == "callrouter_session"
    board = doc["paths"]["/api/v1/wallboard"]["get"]["security"]
    assert board == [{"bearer": []}, {"session": []}, {"wallboard_link": []}]
    login = doc["paths"]["/api/v1/auth/login"]["post"]
    assert login["security"] == [] and {"401", "429"} <= set(login["responses"])
    assert {"201", "401", "403", "409", "422"} <= set(staff_put["responses"])
    error = staff_put["responses"]["409"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/Error"}
    shape = doc["components"]["schemas"]["ErrorDetail"]["properties"]
    assert set(shape) == {"code", "message"} and shape["code"]["examples"]
    assert doc["paths"]["/webhooks/uis/{secret}"]["post"]["security"] == []
    notification = doc["components"]["schemas"]["UisNotification"]
    assert notification["examples"][0]["notification_name"] == "Поднятие трубки"


def test_request_models_say_what_the_handlers_enforce(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    staff = schemas["StaffIn"]
    assert staff["additionalProperties"] is False  # a typo is refused, not ignored
    assert set(staff["required"]) == {"full_name", "email"}
    change = schemas["CaseChange"]["properties"]
    assert change["status"]["enum"] == ["open", "waiting", "closed"]
    assert "default" not in change["status"]  # may be left out, never null
    paging = {
        p["name"]: p["schema"] for p in doc["paths"]["/api/v1/cases"]["get"]["parameters"]
    }
    assert paging["limit"]["maximum"] == 500 and paging["limit"]["default"] == 50


async def test_the_document_and_the_docs_page_are_served(aiohttp_client: Any) -> None:
    app = web.Application()
    app.add_routes(openapi.routes)
    openapi.add_docs_page(app)
    client = await aiohttp_client(app)
    resp = await client.get("/api/v1/openapi.json")
    assert resp.status == 200
    assert (await resp.json())["paths"]["/api/v1/openapi.json"]["get"]["security"] == []
    page = await (await client.get("/api/docs")).text()
    assert 'url: "/api/docs/../v1/openapi.json"' in page and "swagger-ui-bundle.js" in page
    bundle = await client.get("/api/docs/static/swagger-ui-bundle.js")
    assert bundle.status == 200 and len(await bundle.read()) > 100_000  # from the package


def test_every_operation_is_under_a_described_tag(doc: dict[str, Any]) -> None:
    tags = [t["name"] for t in doc["tags"]]
    used = {op["tags"][0] for ops in doc["paths"].values() for op in ops.values()}
    assert used <= set(tags), used - set(tags)
    assert tags[0] == "webhook"  # the reader meets the endpoints in the order of a call
