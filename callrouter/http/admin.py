"""Admin endpoints (API.md "Admin"): integration, settings, staff, operators, fields, and the
refused webhook bodies. All need the admin token except reading the settings (R34)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from callrouter.domain.account import DEFAULT_CALL_API_URL, Integration
from callrouter.http.auth import require_admin, require_any
from callrouter.http.errors import (
    json_response,
    not_found,
    optional_bool,
    optional_int,
    optional_str,
    paging,
    path_id,
    read_json,
    reject_unknown,
    require_str,
    unprocessable,
)
from callrouter.http.keys import CONTROL, DB, STORE
from callrouter.http.render import iso, page
from callrouter.storage import directory

routes = web.RouteTableDef()


def _integration_json(integration: Integration) -> dict[str, Any]:
    return {
        "webhook_path": f"/webhooks/uis/{integration.webhook_secret}",
        "virtual_phone_number": integration.virtual_phone_number,
        "call_api_url": integration.call_api_url,
    }


@routes.put("/api/v1/integrations/uis")
async def put_integration(request: web.Request) -> web.Response:
    """Enable or update the UIS integration (R1); answers with the webhook path to give UIS."""
    await require_admin(request)
    body = await read_json(request)
    reject_unknown(body, {"api_key", "virtual_phone_number", "call_api_url"})
    api_key = require_str(body, "api_key", max_len=500)
    number = require_str(body, "virtual_phone_number", max_len=64)
    url = optional_str(body, "call_api_url", max_len=500) or DEFAULT_CALL_API_URL
    integration = await request.app[STORE].run(directory.save_integration, api_key, number, url)
    await request.app[CONTROL].config_changed()
    return json_response(_integration_json(integration))


@routes.get("/api/v1/integrations/uis")
async def get_integration(request: web.Request) -> web.Response:
    """The integration as the last PUT answered it; 404 before the first PUT."""
    await require_admin(request)
    async with request.app[DB].sessions() as session:
        account = await directory.load_account(session)
    if account.integration is None:
        raise not_found("integration_not_configured", "The UIS integration is not set up yet.")
    return json_response(_integration_json(account.integration))


@routes.put("/api/v1/settings")
async def put_settings(request: web.Request) -> web.Response:
    """Change any of the account settings; answers with all of them."""
    await require_admin(request)
    body = await read_json(request)
    account = await request.app[STORE].run(directory.change_settings, body)
    await request.app[CONTROL].config_changed()
    return json_response(account.settings_json())


@routes.get("/api/v1/settings")
async def get_settings(request: web.Request) -> web.Response:
    """All account settings (staff may read them: the console shows times in the zone)."""
    await require_any(request)
    async with request.app[DB].sessions() as session:
        account = await directory.load_account(session)
    return json_response(account.settings_json())


@routes.post("/api/v1/staff")
async def post_staff(request: web.Request) -> web.Response:
    """A new staff member; the answer carries their token, which is never shown again."""
    await require_admin(request)
    body = await read_json(request)
    reject_unknown(body, {"full_name", "email"})
    full_name = require_str(body, "full_name")
    email = require_str(body, "email")
    answer = await request.app[STORE].run(directory.add_staff, full_name, email)
    await request.app[CONTROL].config_changed()  # the wallboard lists every staff member
    return json_response(answer, status=201)


@routes.get("/api/v1/staff")
async def get_staff_list(request: web.Request) -> web.Response:
    """Staff, newest first (no tokens)."""
    await require_admin(request)
    limit, offset = paging(request)
    async with request.app[DB].sessions() as session:
        staff, total = await directory.list_staff(session, limit, offset)
    return json_response(page([directory.staff_json(s) for s in staff], total))


@routes.put("/api/v1/operators/{employee_id}")
async def put_operator(request: web.Request) -> web.Response:
    """Map a UIS employee to a staff member, or unmap it with `"staff_id": null` (R2)."""
    await require_admin(request)
    employee_id = path_id(request, "employee_id")
    body = await read_json(request)
    reject_unknown(body, {"staff_id"})
    if "staff_id" not in body:
        raise unprocessable("missing_field", "Field 'staff_id' is required (an id or null).")
    staff_id = optional_int(body, "staff_id", minimum=1)
    answer = await request.app[STORE].run(directory.map_operator, employee_id, staff_id)
    await request.app[CONTROL].config_changed()
    return json_response(answer)


@routes.get("/api/v1/operators")
async def get_operators(request: web.Request) -> web.Response:
    """Operator mappings by employee id."""
    await require_admin(request)
    limit, offset = paging(request)
    async with request.app[DB].sessions() as session:
        operators, total = await directory.list_operators(session, limit, offset)
    return json_response(page([directory.operator_json(o) for o in operators], total))


@routes.get("/api/v1/fields")
async def get_fields(request: web.Request) -> web.Response:
    """All user fields in popup order, as the bare array API.md shows (built-ins first)."""
    await require_admin(request)
    async with request.app[DB].sessions() as session:
        fields = await directory.list_fields(session)
    return json_response([directory.field_json(f) for f in fields])


@routes.post("/api/v1/fields")
async def post_field(request: web.Request) -> web.Response:
    """A custom user field; 409 when the key exists."""
    await require_admin(request)
    body = await read_json(request)
    reject_unknown(body, {"key", "title", "incoming_call"})
    key = require_str(body, "key", max_len=64)
    title = require_str(body, "title")
    incoming_call = optional_bool(body, "incoming_call") or False
    answer = await request.app[STORE].run(directory.add_field, key, title, incoming_call)
    await request.app[CONTROL].config_changed()
    return json_response(answer, status=201)


@routes.patch("/api/v1/fields/{key}")
async def patch_field(request: web.Request) -> web.Response:
    """Flag a field for the incoming-call popup (R3), or rename it."""
    await require_admin(request)
    body = await read_json(request)
    reject_unknown(body, {"incoming_call", "title"})
    incoming_call = optional_bool(body, "incoming_call")
    title = require_str(body, "title") if "title" in body else None
    if incoming_call is None and title is None:
        raise unprocessable("missing_field", "Field 'incoming_call' (true or false) is required.")
    answer = await request.app[STORE].run(
        directory.change_field, request.match_info["key"], incoming_call, title
    )
    await request.app[CONTROL].config_changed()
    return json_response(answer)


@routes.get("/api/v1/rejected")
async def get_rejected(request: web.Request) -> web.Response:
    """Webhook bodies refused with a 4xx, newest first, for inspection (R33)."""
    await require_admin(request)
    limit, offset = paging(request)
    async with request.app[DB].sessions() as session:
        tz = (await directory.load_account(session)).tz
        rows, total = await directory.list_rejected(session, limit, offset)
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
    return json_response(page(items, total))
