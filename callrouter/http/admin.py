"""Admin endpoints (API.md "Admin"): integration, settings, staff, operators, fields, and the
refused webhook bodies. All need the admin token except reading the settings (R34)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from callrouter.domain.account import Integration
from callrouter.http.errors import not_found, path_id, unprocessable
from callrouter.http.keys import CONTROL, DB, PUBLIC_URL, STORE
from callrouter.http.operation import operation
from callrouter.http.render import iso, page
from callrouter.http.schemas import (
    FieldChange,
    FieldIn,
    FieldOut,
    IntegrationIn,
    IntegrationOut,
    NewStaff,
    OperatorIn,
    OperatorOut,
    Page,
    Paging,
    Rejected,
    SettingsIn,
    SettingsOut,
    StaffIn,
    StaffOut,
)
from callrouter.storage import directory

routes = web.RouteTableDef()


def _integration_json(request: web.Request, integration: Integration) -> dict[str, Any]:
    path = f"/webhooks/uis/{integration.webhook_secret}"
    # UIS needs the full address; behind a proxy the request's host is not it (--public-url).
    base = request.app.get(PUBLIC_URL) or f"{request.scheme}://{request.host}"
    return {
        "webhook_path": path,
        "webhook_url": base.rstrip("/") + path,
        "virtual_phone_number": integration.virtual_phone_number,
        "call_api_url": integration.call_api_url,
    }


@routes.put("/api/v1/integrations/uis")
@operation(auth="admin", tag="admin", body=IntegrationIn, answer=IntegrationOut, errors=(422,))
async def put_integration(request: web.Request, body: IntegrationIn) -> dict[str, Any]:
    """Enable or update the UIS integration (R1)

    Answers with the webhook address to paste into UIS; the secret in it is kept across
    updates."""
    integration = await request.app[STORE].run(
        directory.save_integration, body.api_key, body.virtual_phone_number, body.call_api_url
    )
    await request.app[CONTROL].config_changed()
    return _integration_json(request, integration)


@routes.get("/api/v1/integrations/uis")
@operation(auth="admin", tag="admin", answer=IntegrationOut, errors=(404,))
async def get_integration(request: web.Request) -> dict[str, Any]:
    """The integration as the last PUT answered it; 404 before the first PUT"""
    async with request.app[DB].sessions() as session:
        account = await directory.load_account(session)
    if account.integration is None:
        raise not_found("integration_not_configured", "The UIS integration is not set up yet.")
    return _integration_json(request, account.integration)


@routes.put("/api/v1/settings")
@operation(auth="admin", tag="admin", body=SettingsIn, answer=SettingsOut, errors=(422,))
async def put_settings(request: web.Request, body: SettingsIn) -> Any:
    """Change any of the account settings; answers with all of them"""
    changes = body.model_dump(exclude_unset=True)
    account = await request.app[STORE].run(directory.change_settings, changes)
    await request.app[CONTROL].config_changed()
    return account.settings_json()


@routes.get("/api/v1/settings")
@operation(auth="wallboard", tag="admin", answer=SettingsOut)
async def get_settings(request: web.Request) -> dict[str, object]:
    """All account settings

    Staff and wallboard links may read them: pages show times in the account's zone."""
    async with request.app[DB].sessions() as session:
        account = await directory.load_account(session)
    return account.settings_json()


@routes.post("/api/v1/staff")
@operation(auth="admin", tag="admin", body=StaffIn, answer=NewStaff, status=201, errors=(409, 422))
async def post_staff(request: web.Request, body: StaffIn) -> Any:
    """A new staff member

    The answer carries their token, which is never shown again."""
    answer = await request.app[STORE].run(directory.add_staff, body.full_name, body.email)
    await request.app[CONTROL].config_changed()  # the wallboard lists every staff member
    return answer


@routes.get("/api/v1/staff")
@operation(auth="admin", tag="admin", query=Paging, answer=Page[StaffOut])
async def get_staff_list(request: web.Request, query: Paging) -> dict[str, Any]:
    """Staff, newest first (no tokens)"""
    async with request.app[DB].sessions() as session:
        staff, total = await directory.list_staff(session, query.limit, query.offset)
    return page([directory.staff_json(s) for s in staff], total)


@routes.put("/api/v1/operators/{employee_id}")
@operation(auth="admin", tag="admin", body=OperatorIn, answer=OperatorOut, errors=(404, 422))
async def put_operator(request: web.Request, body: OperatorIn) -> Any:
    """Map a UIS employee to a staff member, or unmap it with `"staff_id": null` (R2)

    `phones`, when given, replace the operator's phones that smart routing rings."""
    employee_id = path_id(request, "employee_id")
    answer = await request.app[STORE].run(
        directory.map_operator, employee_id, body.staff_id, body.phones
    )
    await request.app[CONTROL].config_changed()
    return answer


@routes.get("/api/v1/operators")
@operation(auth="admin", tag="admin", query=Paging, answer=Page[OperatorOut])
async def get_operators(request: web.Request, query: Paging) -> dict[str, Any]:
    """Operator mappings by employee id"""
    async with request.app[DB].sessions() as session:
        operators, total = await directory.list_operators(session, query.limit, query.offset)
    return page([directory.operator_json(o) for o in operators], total)


@routes.get("/api/v1/fields")
@operation(auth="admin", tag="admin", answer=list[FieldOut])
async def get_fields(request: web.Request) -> list[dict[str, Any]]:
    """All user fields in popup order, as the bare array API.md shows (built-ins first)"""
    async with request.app[DB].sessions() as session:
        fields = await directory.list_fields(session)
    return [directory.field_json(f) for f in fields]


@routes.post("/api/v1/fields")
@operation(auth="admin", tag="admin", body=FieldIn, answer=FieldOut, status=201, errors=(409, 422))
async def post_field(request: web.Request, body: FieldIn) -> Any:
    """A custom user field; 409 when the key exists"""
    answer = await request.app[STORE].run(
        directory.add_field, body.key, body.title, body.incoming_call
    )
    await request.app[CONTROL].config_changed()
    return answer


@routes.patch("/api/v1/fields/{key}")
@operation(auth="admin", tag="admin", body=FieldChange, answer=FieldOut, errors=(404, 422))
async def patch_field(request: web.Request, body: FieldChange) -> Any:
    """Flag a field for the incoming-call popup (R3), or rename it"""
    if body.incoming_call is None and body.title is None:
        raise unprocessable("missing_field", "Field 'incoming_call' (true or false) is required.")
    answer = await request.app[STORE].run(
        directory.change_field, request.match_info["key"], body.incoming_call, body.title
    )
    await request.app[CONTROL].config_changed()
    return answer


@routes.get("/api/v1/rejected")
@operation(auth="admin", tag="admin", query=Paging, answer=Page[Rejected])
async def get_rejected(request: web.Request, query: Paging) -> dict[str, Any]:
    """Webhook bodies refused with a 4xx, newest first, for inspection (R33)"""
    async with request.app[DB].sessions() as session:
        tz = (await directory.load_account(session)).tz
        rows, total = await directory.list_rejected(session, query.limit, query.offset)
    items = [
        {
            "id": r.id,
            "received_at": iso(r.received_at, tz),
            "status": r.status,
            "code": r.code,
            "message": r.message,
            "body": r.body,
            "size": r.size,
        }
        for r in rows
    ]
    return page(items, total)
